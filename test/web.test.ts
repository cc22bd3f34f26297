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
    const files = await fetchManifest(base);
    expect(files).toEqual(['trained.safetensors']);
    const network = await fetchModelFile(base, files[0]!);
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
    serveFiles({ 'models/manifest.json': '<!doctype html>' });
    await expect(fetchManifest(base)).rejects.toThrow('models/manifest.json: not valid JSON');
  });

  it('refuses model files it cannot show honestly', async () => {
    serveFiles({});
    await expect(fetchModelFile(base, 'gone.safetensors')).rejects.toThrow(
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
    await expect(fetchModelFile(base, 'nolabels.safetensors')).rejects.toThrow(
      "models/nolabels.safetensors: the page needs the file's preprocessing and labels, and this file lacks them",
    );
    await expect(fetchModelFile(base, 'fewlabels.safetensors')).rejects.toThrow(
      'models/fewlabels.safetensors: metadata.labels has 2 names for 10 classes',
    );
    await expect(fetchModelFile(base, 'mobilenet.safetensors')).rejects.toThrow(
      'models/mobilenet.safetensors: holds a mobilenet_v1 network; the page shows ShuffleNets only',
    );
  });
});
