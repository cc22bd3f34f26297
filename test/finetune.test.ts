/**
 * Fine-tuning (issue 13, first part): a network rebuilt for new data starts from a trained one's
 * weights, with a fresh classifier for a new label set; `train --init` records where it started.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { architectureOf, createModel } from '../src/models/registry.js';
import { FineTuneError, fineTuneModel, headTensors } from '../src/train/finetune.js';
import { loadModelFile } from '../src/io/modelfile.js';
import { loadModel } from '../src/io/load.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import { onnxArchitectureKey } from '../src/io/onnx/loader.js';
import { FormatError } from '../src/errors.js';

const options = { numClasses: 10, inputChannels: 1, smallInput: true, seed: 5 };

describe('fineTuneModel', () => {
  for (const arch of ['shufflenet_v1_g3_0.25x', 'shufflenet_v2_0.5x', 'mobilenet_v1_0.25']) {
    it(`${arch}: every tensor but the head carried over, a new head for 3 classes`, () => {
      const module = createModel(arch, options);
      const from = { module, architecture: architectureOf(arch, options), source: 'trained.safetensors' };
      const { model, head } = fineTuneModel(from, { numClasses: 3, inputChannels: 1, size: 28, seed: 9 }, true);
      expect(head).toEqual(['fc.weight', 'fc.bias']);
      const before = module.stateDict();
      for (const [name, tensor] of model.stateDict()) {
        if (head.includes(name)) continue;
        expect(Array.from(tensor.data), name).toEqual(Array.from(before.get(name)!.data));
      }
      expect(model.stateDict().get('fc.weight')!.shape[0]).toBe(3);
    });
  }

  it('refuses another label set without a new head, and other image channels, naming the file', () => {
    const module = createModel('shufflenet_v1_g3_0.25x', options);
    const from = { module, architecture: architectureOf('shufflenet_v1_g3_0.25x', options), source: 'a.safetensors' };
    expect(() => fineTuneModel(from, { numClasses: 3, inputChannels: 1, size: 28, seed: 0 }, false)).toThrow(
      /a\.safetensors has 10 classes, the data 3: add --new-head/,
    );
    expect(() => fineTuneModel(from, { numClasses: 10, inputChannels: 3, size: 32, seed: 0 }, true)).toThrow(
      FineTuneError,
    );
    expect(headTensors(createModel('alexnet', { inputSize: 32, smallInput: true }), [1, 3, 32, 32])).toEqual([
      'fc8.weight',
      'fc8.bias',
    ]);
  });
});

describe('our ONNX exports load back as our networks', () => {
  const arch = 'shufflenet_v1_g3_0.25x';
  const model = createModel(arch, options);
  const graph = model.trace([1, 1, 28, 28]);
  const withMetadata = (value: string): Uint8Array => exportOnnx(graph, { metadata: { [onnxArchitectureKey]: value } });

  it('rebuilds the module with its weights from the architecture in the metadata', () => {
    const loaded = loadModel(withMetadata(JSON.stringify(architectureOf(arch, options))), 'ours.onnx');
    expect(loaded.module).toBeDefined();
    expect(loaded.info?.architecture?.family).toBe('shufflenet_v1');
    expect(loaded.inputShape).toEqual([1, 1, 28, 28]);
    const before = model.stateDict();
    for (const [name, tensor] of loaded.module!.stateDict()) {
      expect(Array.from(tensor.data), name).toEqual(Array.from(before.get(name)!.data));
    }
    // Without the metadata, the same file is an imported graph.
    expect(loadModel(exportOnnx(graph), 'plain.onnx').module).toBeUndefined();
  });

  it('refuses metadata that is not JSON, not an architecture, or does not fit the parameters, naming the key', () => {
    const refused = (value: string): string => {
      try {
        loadModel(withMetadata(value), 'hostile.onnx');
      } catch (e) {
        expect(e).toBeInstanceOf(FormatError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused('{not json')).toMatch(/hostile\.onnx: metadata shufflenet\.architecture is not JSON/);
    const huge = { family: 'shufflenet_v1', config: { groups: 3, scale: 0.25, numClasses: 1e9 } };
    expect(refused(JSON.stringify(huge))).toMatch(/numClasses is 1000000000; expected an integer from 1 to 100,000/);
    const other = { family: 'shufflenet_v1', config: { groups: 8, scale: 0.25, numClasses: 10, inputChannels: 1 } };
    expect(refused(JSON.stringify(other))).toMatch(/does not fit the file's parameters/);
    expect(() =>
      loadModel(withMetadata(JSON.stringify(architectureOf(arch, options))), 'ours.onnx', 'shufflenet_v1_g3_1.0x'),
    ).toThrow(/names its own network; --arch shufflenet_v1_g3_1\.0x does not apply/);
  });
});

describe('shufflenet train --init', () => {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  const bundled = fileURLToPath(new URL('../models/fashion-mnist-shufflenet.safetensors', import.meta.url));

  it('fine-tunes the bundled Fashion-MNIST model on MNIST with a new head, and records where it started', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'shufflenet-finetune-')), 'mnist.safetensors');
    // prettier-ignore
    const r = cli('train', '--init', bundled, '--new-head', '--data', 'mnist', '--max-train', '40', '--epochs', '1', '--bn-batches', '2', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /fine-tuning from .*fashion-mnist-shufflenet\.safetensors \(shufflenet_v1, shufflenet_v1_g3_0\.5x\): a new classifier \(fc\.weight, fc\.bias\) for 10 classes/,
    );
    expect(r.stdout).toMatch(/test accuracy \d+\.\d+% on \d+ mnist images/);
    const { info, model } = loadModelFile(new Uint8Array(readFileSync(out)), out);
    expect(info.notes?.['init']).toBe(bundled);
    expect(info.notes?.['head']).toBe('new');
    expect(info.training?.config['init']).toBe(bundled);
    expect(info.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // The trunk started from the bundled weights: the first convolution moved only a little.
    const start = loadModelFile(new Uint8Array(readFileSync(bundled)), bundled)
      .model.stateDict()
      .get('conv1.weight')!;
    const tuned = model.stateDict().get('conv1.weight')!;
    const moved = Math.max(...tuned.data.map((v, i) => Math.abs(v - start.data[i]!)));
    const scale = Math.max(...start.data.map(Math.abs));
    expect(moved).toBeLessThan(0.5 * scale);
    expect(moved).toBeGreaterThan(0);
    // A fine-tuned run resumes like any other: finished, the file is left alone.
    const again = cli('train', '--resume', '--data', 'mnist', '--max-train', '40', '--out', out);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/is finished/);
  }, 120_000);

  it('--freeze backbone: only the classifier moves; the trunk and its batch-norm statistics stay as they were', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'shufflenet-finetune-')), 'frozen.safetensors');
    // prettier-ignore
    const r = cli('train', '--init', bundled, '--new-head', '--freeze', 'backbone', '--data', 'mnist', '--max-train', '60', '--epochs', '3', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /training the classifier of shufflenet_v1_g3_0\.5x on cached features of its frozen trunk: 60/,
    );
    expect(r.stdout).toMatch(/test accuracy \d+\.\d+% on \d+ mnist images/);
    const { info, model } = loadModelFile(new Uint8Array(readFileSync(out)), out);
    expect(info.notes?.['freeze']).toBe('backbone');
    expect(info.training?.state['finished']).toBe(true);
    const start = loadModelFile(new Uint8Array(readFileSync(bundled)), bundled).model.stateDict();
    const moved: string[] = [];
    for (const [name, tensor] of model.stateDict()) {
      const before = start.get(name)!;
      if (tensor.data.some((v, i) => v !== before.data[i])) moved.push(name);
    }
    expect(moved).toEqual(['fc.weight', 'fc.bias']);
    const again = cli('train', '--resume', '--data', 'mnist', '--max-train', '60', '--out', out);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/classifier trained on a frozen trunk, tested\); nothing to do/);
  }, 120_000);

  it('refuses an ONNX graph and --new-head without --init, before any training', () => {
    const onnx = fileURLToPath(new URL('./fixtures/onnx/zoo/resnet_mini.onnx', import.meta.url));
    const out = join(mkdtempSync(join(tmpdir(), 'shufflenet-finetune-')), 'x.safetensors');
    const graph = cli('train', '--init', onnx, '--data', 'mnist', '--max-train', '20', '--out', out);
    expect(graph.status).toBe(1);
    expect(graph.stderr).toMatch(/is an imported graph, not one of our networks/);
    const head = cli('train', '--new-head', '--data', 'mnist', '--max-train', '20', '--out', out);
    expect(head.status).toBe(1);
    expect(head.stderr).toMatch(/--new-head applies to --init only/);
    const frozen = cli('train', '--freeze', 'backbone', '--data', 'mnist', '--max-train', '20', '--out', out);
    expect(frozen.status).toBe(1);
    expect(frozen.stderr).toMatch(/--freeze backbone applies to --init only/);
  }, 60_000);
});
