/** The training loop: determinism, resume to the same loss curve, checkpoints, and the NaN stop. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { toFloat } from '../src/data/batches.js';
import { ArrayDataset } from '../src/data/dataset.js';
import { loadModelFile, saveModelFile } from '../src/io/modelfile.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { architectureOf, createModel } from '../src/models/registry.js';
import { Random } from '../src/tensor/random.js';
import { spawnTrainingWorker } from '../src/node/session.js';
import { NonFiniteLossError, Trainer, type PrepareOptions, type TrainConfig } from '../src/train/trainer.js';

const options = { numClasses: 2, inputChannels: 1, smallInput: true, seed: 3 };
const config: TrainConfig = {
  arch: 'shufflenet_v1_g1_0.25x',
  epochs: 2,
  batchSize: 8,
  lr: 0.05,
  momentum: 0.9,
  nesterov: true,
  weightDecay: 4e-5,
  labelSmoothing: 0.1,
  schedule: 'linear',
  warmupEpochs: 0,
  maxGradNorm: 5,
  flip: true,
  padCrop: 1,
  bnBatches: 0,
  seed: 5,
};

/** 32 images of 8×8: class 1 is brighter on the left half. */
function toyDataset(): ArrayDataset {
  const rng = new Random(1);
  const labels = Uint8Array.from({ length: 32 }, (_, i) => i % 2);
  const data = new Uint8Array(32 * 64).map((_, k) => {
    const [i, x] = [Math.floor(k / 64), k % 8];
    return Math.min(255, rng.int(100) + (labels[i] === 1 && x < 4 ? 120 : 0));
  });
  return new ArrayDataset('toy', [1, 8, 8], ['dark', 'bright'], data, labels);
}

/** The engines a Trainer runs on: the reference tape, the WASM plan, and the plan over 2 threads. */
const engines: { name: string; prepare: PrepareOptions | null }[] = [
  { name: 'reference tape', prepare: null },
  { name: 'WASM plan', prepare: { engine: 'wasm' } },
  { name: 'WASM plan, 2 threads', prepare: { engine: 'wasm', threads: 2, spawnWorker: spawnTrainingWorker } },
];

describe.each(engines)('Trainer on the $name', ({ prepare }) => {
  const dataset = toyDataset();
  const transform = toFloat();
  const trainers: Trainer[] = [];
  afterAll(async () => {
    await Promise.all(trainers.map((t) => t.dispose()));
  });
  /** A trainer on this engine. */
  const make = async (...args: ConstructorParameters<typeof Trainer>): Promise<Trainer> => {
    const t = new Trainer(...args);
    trainers.push(t);
    return prepare ? t.prepare(prepare) : t;
  };

  it('gives the same loss curve for the same seed', async () => {
    const run = async (): Promise<number[]> => {
      const t = await make(createModel(config.arch, options), dataset, config, transform);
      return [t.runEpoch().loss, t.runEpoch().loss];
    };
    const [a, b] = [await run(), await run()];
    expect(a).toEqual(b);
    expect(a.every(Number.isFinite)).toBe(true);
  });

  it('resumes from a checkpoint to exactly the loss curve of an uninterrupted run', async () => {
    const whole = await make(createModel(config.arch, options), dataset, config, transform);
    whole.runEpoch();
    whole.runEpoch();

    const first = await make(createModel(config.arch, options), dataset, config, transform);
    first.runEpoch();
    const bytes = saveModelFile(
      first.model,
      { architecture: architectureOf(config.arch, options), training: { config: { ...config }, state: first.state } },
      first.sgd.state(),
    );
    const loaded = loadModelFile(bytes, 'ckpt.safetensors');
    const state = JSON.parse(JSON.stringify(loaded.info.training!.state));
    const second = await make(loaded.model, dataset, config, transform, state, loaded.optimizer);
    second.runEpoch();
    expect(second.state.history.map((r) => r.loss)).toEqual(whole.state.history.map((r) => r.loss));
    expect(second.done).toBe(true);
  });

  it('stops on a non-finite loss before updating the weights with it', async () => {
    const model = createModel(config.arch, options);
    const t = await make(model, dataset, { ...config, lr: 1e30, maxGradNorm: 0, labelSmoothing: 0 }, transform);
    expect(() => {
      for (let i = 0; i < 5; i++) t.runEpoch();
    }).toThrow(NonFiniteLossError);
    expect(() => {
      for (let i = 0; i < 5; i++) t.runEpoch();
    }).toThrow(/the loss became (NaN|Infinity).*the weights were not updated with it/);
  });
});

describe('Trainer', () => {
  it('refuses a dataset smaller than one batch', () => {
    expect(
      () => new Trainer(createModel(config.arch, options), toyDataset(), { ...config, batchSize: 64 }, toFloat()),
    ).toThrow('train: 32 training images are fewer than one batch of 64');
  });
});

describe('shufflenet train / eval on an image folder', () => {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const run = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

  it('trains with atomic per-epoch checkpoints, resumes, evaluates, and stops on NaN keeping the checkpoint', async () => {
    const root = mkdtempSync(join(tmpdir(), 'shufflenet-train-'));
    for (const split of ['train', 'test']) {
      for (const [name, level] of [
        ['dark', 40],
        ['bright', 210],
      ] as const) {
        mkdirSync(join(root, split, name), { recursive: true });
        for (let i = 0; i < (split === 'train' ? 8 : 4); i++) {
          const v = level + i * 3;
          const png = await sharp({ create: { width: 12, height: 12, channels: 3, background: { r: v, g: v, b: v } } })
            .png()
            .toBuffer();
          writeFileSync(join(root, split, name, `${i}.png`), png);
        }
      }
    }
    const out = join(root, 'model.safetensors');
    const common = [
      '--data',
      root,
      '--arch',
      'shufflenet_v1_g1_0.25x',
      '--batch',
      '8',
      '--bn-batches',
      '1',
      '--out',
      out,
    ];
    const first = run('train', ...common, '--epochs', '1');
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/epoch 1\/1: loss [\d.]+/);
    expect(loadModelFile(readFileSync(out), out).info.training!.state.epoch).toBe(1);
    const resumed = run('train', ...common, '--epochs', '2', '--resume');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('epoch 1 of 2 done');
    expect(loadModelFile(readFileSync(out), out).info.training!.state.epoch).toBe(2);
    // Resuming a finished run says so and leaves the file alone; a changed setting is refused.
    const finishedBytes = readFileSync(out);
    const again = run('train', ...common, '--resume');
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain(`--resume: the run in ${out} is finished (2 of 2 epochs`);
    expect(again.stderr).toContain('nothing to do, the file is left as it is');
    expect(readFileSync(out).equals(finishedBytes)).toBe(true);
    const changed = run('train', ...common, '--resume', '--epochs', '3', '--lr', '0.5');
    expect(changed.status).toBe(1);
    expect(changed.stderr).toContain('--lr 0.5 differs from its 0.1 (only --epochs may change');
    expect(readFileSync(out).equals(finishedBytes)).toBe(true);
    // Killed after its last epoch but before the end (BN re-estimation, the test): resume finishes it.
    const file = readSafetensors(finishedBytes);
    const meta = JSON.parse(file.metadata['shufflenet']!);
    meta.training.state.finished = false;
    delete meta.notes.testAccuracy;
    writeFileSync(out, writeSafetensors(file.tensors, { shufflenet: JSON.stringify(meta) }));
    const finishing = run('train', ...common, '--resume');
    expect(finishing.status, finishing.stderr).toBe(0);
    expect(finishing.stderr).toContain('all 2 epochs done, finishing the run');
    expect(finishing.stderr).toContain('re-estimated batch-norm statistics on 1 batch(es)');
    expect(loadModelFile(readFileSync(out), out).info.training!.state.finished).toBe(true);
    const evaluation = run('eval', '--model', out, '--data', root, '--json');
    expect(evaluation.status, evaluation.stderr).toBe(0);
    const result = JSON.parse(evaluation.stdout);
    expect(result.accuracy).toBeGreaterThanOrEqual(0);
    expect(result.accuracy).toBeLessThanOrEqual(1);
    expect(result.examples).toBe(8);

    const before = readFileSync(out);
    const nan = run(
      'train',
      ...common,
      '--epochs',
      '2',
      '--lr',
      '1e30',
      '--max-grad-norm',
      '0',
      '--label-smoothing',
      '0',
      '--out',
      join(root, 'nan.safetensors'),
    );
    expect(nan.status).toBe(1);
    expect(nan.stderr).toMatch(/shufflenet: error: train: the loss became/);
    expect(existsSync(join(root, 'nan.safetensors'))).toBe(false);
    expect(readFileSync(out).equals(before)).toBe(true);
  });
});
