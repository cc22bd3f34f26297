/**
 * The page's worker-side logic in Node: where networks come from (manifest, model files, the
 * untrained fallback), that the session the worker opens on them runs them as forward() does, and
 * the labels the browser shares with Node. web/ resolves 'shufflenet/browser' to the built dist/,
 * as here (the package's own "exports").
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { complexity } from '../src/analysis/complexity.js';
import { preprocessImage } from '../src/data/image.js';
import { saveModelFile } from '../src/io/modelfile.js';
import { preprocessingPresets } from '../src/data/preprocessing.js';
import { architectureOf, createModel } from '../src/models/registry.js';
import { forward } from '../src/nn/forward.js';
import { fashionMnistClasses } from '../src/node/data/mnist.js';
import { Tensor } from '../src/tensor/tensor.js';
import { createSession, runGraph } from 'shufflenet/browser';
import { fashionMnistLabels } from '../web/src/labels.js';
import { Calibrator } from '../src/runtime/quant/calibrate.js';
import { runQuantized } from '../src/runtime/quant/execute.js';
import { saveQuantizedModelFile } from '../src/runtime/quant/file.js';
import { QuantizedPlan } from 'shufflenet/browser-int8';
import { calibrateOnRandomImages, int8Network } from '../web/src/int8.js';
import { fetchManifest, fetchModelFile, randomNetwork, scaleName } from '../web/src/models.js';

const base = 'http://page.test/app/';

/** A fetch that serves `files` (paths relative to `base`) and 404s everything else. */
function serveFiles(files: Record<string, Uint8Array | string>): void {
  vi.stubGlobal('fetch', (url: URL | string) => {
    const path = String(url).slice(base.length);
    const body = files[path];
    return Promise.resolve(
      body === undefined
        ? new Response('not found', { status: 404 })
        : new Response(typeof body === 'string' ? body : body.slice()),
    );
  });
}

afterEach(() => {
  vi.unstubAllGlobals();
});

const smallOptions = { numClasses: 10, inputChannels: 1, smallInput: true };

describe('web page models', () => {
  it('keeps the same Fashion-MNIST labels as the Node loader', () => {
    expect([...fashionMnistLabels]).toEqual([...fashionMnistClasses]); // one list, shared by Node and the page
  });

  it('builds the untrained fallback as the registry does, and a session runs it like forward()', async () => {
    const network = randomNetwork({ groups: 4, scale: '0.25' });
    const model = createModel('shufflenet_v1_g4_0.25x', { ...smallOptions, seed: 0 });
    const graph = model.trace([1, 1, 28, 28]);
    expect(network.summary).toMatchObject({
      name: 'shufflenet_v1_g4_0.25x',
      weights: 'random',
      source: 'random, seed 0',
      inputShape: [1, 1, 28, 28],
      mflops: complexity(graph).macs / 1e6,
      params: complexity(graph).params,
    });
    const pixels = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 37) % 256);
    const input = preprocessImage({ width: 28, height: 28, channels: 1, data: pixels }, network.preprocessing);
    // The traced graph is the registry's network: the reference executor gives forward()'s bits.
    const expected = forward(model, input);
    expect([...runGraph(network.graph, input).data]).toEqual([...expected.data]);
    // The page's worker runs it in a session (one thread in Node without a worker factory): the
    // fused WASM plan agrees to float32 rounding of the fused kernels, relative to the largest logit.
    const session = await createSession(network.graph, { threads: 1 });
    try {
      const logits = await session.run(input);
      expect(logits.shape).toEqual([1, 10]);
      expect(session.threads).toBe(1);
      const scale = Math.max(...expected.data.map(Math.abs));
      logits.data.forEach((v, i) => expect(Math.abs(v - expected.data[i]!)).toBeLessThan(1e-4 * scale));
    } finally {
      await session.dispose();
    }
  });

  it('spells scales as the registry names do', () => {
    expect([0.25, 0.5, 1, 1.5, 2].map(scaleName)).toEqual(['0.25', '0.5', '1.0', '1.5', '2.0']);
  });

  it('reads a model file named by the manifest, with its labels, preprocessing and notes', async () => {
    const name = 'shufflenet_v1_g8_0.5x';
    const model = createModel(name, { ...smallOptions, seed: 3 });
    const labels = fashionMnistClasses.map((l) => l.toUpperCase());
    serveFiles({
      'models/manifest.json': JSON.stringify({ models: [{ file: 'trained.safetensors' }] }),
      'models/trained.safetensors': saveModelFile(model, {
        architecture: architectureOf(name, smallOptions),
        preprocessing: preprocessingPresets.mnist,
        labels,
        notes: { accuracy: 0.5 },
      }),
    });
    const entries = await fetchManifest(base);
    expect(entries).toEqual([{ file: 'trained.safetensors' }]);
    const network = await fetchModelFile(base, entries[0]!);
    expect(network.summary).toMatchObject({
      name,
      groups: 8,
      scale: '0.5',
      weights: 'file',
      source: 'models/trained.safetensors',
      notes: { accuracy: 0.5 },
      labels,
    });
    const input = Tensor.zeros([1, 1, 28, 28]);
    input.data.fill(0.25);
    expect([...runGraph(network.graph, input).data]).toEqual([...forward(model, input).data]);
  });

  it('has no bundled model when there is no manifest, and refuses a malformed one', async () => {
    serveFiles({});
    await expect(fetchManifest(base)).resolves.toEqual([]);
    serveFiles({ 'models/manifest.json': '{"models": "all of them"}' });
    await expect(fetchManifest(base)).rejects.toThrow(/models\/manifest.json: expected \{ "models": \[\{ "file"/);
    serveFiles({ 'models/manifest.json': '{"models": [{ "file": "a.safetensors", "int8": 8 }]}' });
    await expect(fetchManifest(base)).rejects.toThrow(/"int8": "name-int8.safetensors" \}, …\] \} \("int8" optional\)/);
    serveFiles({ 'models/manifest.json': '<!doctype html>' });
    await expect(fetchManifest(base)).rejects.toThrow('models/manifest.json: not valid JSON');
  });

  it('refuses model files it cannot show honestly', async () => {
    serveFiles({});
    await expect(fetchModelFile(base, { file: 'gone.safetensors' })).rejects.toThrow(
      'models/gone.safetensors: HTTP 404 (listed in models/manifest.json)',
    );
    const name = 'shufflenet_v1_g1_0.25x';
    const model = createModel(name, { ...smallOptions, initialize: false });
    serveFiles({
      'models/nolabels.safetensors': saveModelFile(model, { architecture: architectureOf(name, smallOptions) }),
      'models/fewlabels.safetensors': saveModelFile(model, {
        architecture: architectureOf(name, smallOptions),
        preprocessing: preprocessingPresets.mnist,
        labels: ['a', 'b'],
      }),
      'models/mobilenet.safetensors': saveModelFile(createModel('mobilenet_v1_0.25', { initialize: false }), {
        architecture: architectureOf('mobilenet_v1_0.25'),
      }),
    });
    await expect(fetchModelFile(base, { file: 'nolabels.safetensors' })).rejects.toThrow(
      "models/nolabels.safetensors: the page needs the file's preprocessing and labels, and this file lacks them",
    );
    await expect(fetchModelFile(base, { file: 'fewlabels.safetensors' })).rejects.toThrow(
      'models/fewlabels.safetensors: metadata.labels has 2 names for 10 classes',
    );
    await expect(fetchModelFile(base, { file: 'mobilenet.safetensors' })).rejects.toThrow(
      'models/mobilenet.safetensors: holds a mobilenet_v1 network; the page shows ShuffleNets only',
    );
  });
});

describe('web page int8 forms (web/src/int8.ts)', () => {
  const name = 'shufflenet_v1_g2_0.25x';
  const labels: string[] = [...fashionMnistClasses];
  /** A float model file and its int8 file, calibrated (minmax) on two images. */
  function modelFiles(seed: number, architectureName = name, fileLabels = labels) {
    const model = createModel(architectureName, { ...smallOptions, seed });
    const info = {
      architecture: architectureOf(architectureName, smallOptions),
      preprocessing: preprocessingPresets.mnist,
      labels: fileLabels,
    };
    const graph = model.trace([1, 1, 28, 28]);
    const calibrator = new Calibrator(graph, { method: 'minmax', images: 2 });
    for (const fill of [0.2, 0.7]) calibrator.observe(new Tensor([1, 1, 28, 28], new Float32Array(28 * 28).fill(fill)));
    const int8 = calibrator.finish();
    const quantization = { calibration: { method: 'minmax', images: 2 } };
    return { float: saveModelFile(model, info), int8: saveQuantizedModelFile(int8, info, quantization), network: int8 };
  }
  const input = preprocessImage(
    { width: 28, height: 28, channels: 1, data: Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 37) % 256) },
    preprocessingPresets.mnist,
  );

  it('reads the int8 file the manifest pairs with a model file; its plan gives the reference int8 logits', async () => {
    const files = modelFiles(5);
    serveFiles({
      'models/manifest.json': JSON.stringify({ models: [{ file: 'm.safetensors', int8: 'm-int8.safetensors' }] }),
      'models/m.safetensors': files.float,
      'models/m-int8.safetensors': files.int8,
    });
    const [entry] = await fetchManifest(base);
    expect(entry).toEqual({ file: 'm.safetensors', int8: 'm-int8.safetensors' });
    const network = await fetchModelFile(base, entry!);
    expect(network.int8File).toBe('m-int8.safetensors');
    expect(network.summary.int8Source).toBe('models/m-int8.safetensors');
    const int8 = await int8Network(base, network);
    const plan = await QuantizedPlan.create(int8);
    expect([...plan.run(input).data]).toEqual([...runQuantized(files.network, input).data]);
  });

  it('refuses an int8 file that is not the same network as its pair', async () => {
    const files = modelFiles(5);
    const pair = async (int8: Uint8Array | undefined) => {
      serveFiles({
        'models/m.safetensors': files.float,
        ...(int8 !== undefined ? { 'models/m-int8.safetensors': int8 } : {}),
      });
      return int8Network(base, await fetchModelFile(base, { file: 'm.safetensors', int8: 'm-int8.safetensors' }));
    };
    await expect(pair(undefined)).rejects.toThrow(
      'models/m-int8.safetensors: HTTP 404 (listed in models/manifest.json as the int8 form of models/m.safetensors)',
    );
    await expect(pair(files.float)).rejects.toThrow(
      'models/m-int8.safetensors: a float model file, not an int8 one (no metadata.quantization)',
    );
    await expect(pair(modelFiles(5, 'shufflenet_v1_g1_0.25x').int8)).rejects.toThrow(
      'models/m-int8.safetensors and models/m.safetensors, paired in models/manifest.json, differ in architecture',
    );
    const shouted = labels.map((l) => l.toUpperCase());
    await expect(pair(modelFiles(5, name, shouted).int8)).rejects.toThrow(
      'models/m-int8.safetensors and models/m.safetensors, paired in models/manifest.json, differ in labels',
    );
  });

  it('calibrates a network without an int8 file on seeded random images, the same every time', async () => {
    const network = randomNetwork({ groups: 3, scale: '0.25' });
    expect(network.summary.int8Source).toBe('calibrated here on 8 random images (minmax, seed 0); weights are random');
    const first = calibrateOnRandomImages(network);
    const again = await int8Network(base, randomNetwork({ groups: 3, scale: '0.25' }));
    expect([...again.activations]).toEqual([...first.activations]);
    expect(first.activations.size).toBeGreaterThan(10);
    const plan = await QuantizedPlan.create(first);
    expect([...plan.run(input).data]).toEqual([...runQuantized(first, input).data]);
    // A trained file without an int8 pair is calibrated the same way, and says it has no int8 file.
    serveFiles({ 'models/m.safetensors': modelFiles(5).float });
    const unpaired = await fetchModelFile(base, { file: 'm.safetensors' });
    expect(unpaired.summary.int8Source).toBe(
      'calibrated here on 8 random images (minmax, seed 0); no int8 file in the manifest',
    );
  });
});
