/**
 * One run of an experiment: a network built from seed s, trained with the `Trainer` (the same loop
 * as `shufflenet train`), its batch-norm statistics re-estimated, then tested on the fixed test split.
 */
import { complexity } from '../../analysis/complexity.js';
import { batches, toFloat } from '../../data/batches.js';
import type { ImageDataset } from '../../data/dataset.js';
import { augment } from '../../data/transforms.js';
import { createModel, imageModelOptions } from '../../models/registry.js';
import type { Tensor } from '../../tensor/tensor.js';
import { reestimateBatchNorm } from '../../train/batchnorm.js';
import { evaluateOnPlan } from '../../train/evaluate.js';
import { Trainer, type EpochRecord, type TrainConfig } from '../../train/trainer.js';
import { spawnTrainingWorker } from '../session.js';
import type { ExperimentNetwork, ExperimentSettings, RunRecord } from './experiment.js';

/** Gray 28×28 images scaled to [0, 1], as the train command's `mnist` preprocessing preset. */
const mean = [0];
const std = [1];

/** Parameters and multiply-adds (millions, one image) of a network as the experiment builds it. */
export function networkComplexity(
  arch: string,
  imageShape: readonly [number, number, number],
  numClasses: number,
): { params: number; mflops: number } {
  const [c, h, w] = imageShape;
  const model = createModel(arch, { ...imageModelOptions(numClasses, c, h), initialize: false });
  const { params, macs } = complexity(model.trace([1, c, h, w]));
  return { params, mflops: macs / 1e6 };
}

export function trainConfigOf(settings: ExperimentSettings, arch: string, seed: number): TrainConfig {
  const { kind: _kind, scale: _scale, data: _data, maxTrain: _maxTrain, maxTest: _maxTest, ...recipe } = settings;
  return { ...recipe, arch, seed };
}

export async function runOne(
  settings: ExperimentSettings,
  network: ExperimentNetwork,
  seed: number,
  data: { train: ImageDataset; test: ImageDataset },
  onEpoch?: (record: EpochRecord) => void,
  threads = 1,
): Promise<RunRecord> {
  const config = trainConfigOf(settings, network.arch, seed);
  const [channels, size] = data.train.imageShape;
  const model = createModel(network.arch, imageModelOptions(data.train.classes.length, channels, size, seed));
  const transform = augment({ flip: config.flip, padCrop: config.padCrop, mean, std });
  const trainer = await new Trainer(model, data.train, config, transform).prepare({
    threads,
    spawnWorker: spawnTrainingWorker,
  });
  let last: EpochRecord | undefined;
  try {
    while (!trainer.done) {
      last = trainer.runEpoch();
      onEpoch?.(last);
    }
  } catch (error) {
    await trainer.dispose();
    throw error;
  }
  const trainSeconds = trainer.state.history.reduce((s, r) => s + r.seconds, 0);
  const evalStart = performance.now();
  const evalTransform = toFloat(mean, std);
  if (config.bnBatches > 0) {
    const stream = batches(data.train, {
      batchSize: config.batchSize,
      shuffle: true,
      dropLast: true,
      seed: config.seed + 1,
      transform: evalTransform,
    });
    reestimateBatchNorm(model, firstInputs(stream, config.bnBatches), trainer.plan);
  }
  await trainer.dispose();
  const result = await evaluateOnPlan(model, data.test, { transform: evalTransform });
  return {
    arch: network.arch,
    groups: network.groups,
    shuffle: network.shuffle,
    seed,
    errorPercent: (1 - result.accuracy) * 100,
    testImages: result.examples,
    trainLoss: last!.loss,
    trainAccuracy: last!.accuracy,
    trainSeconds,
    evalSeconds: (performance.now() - evalStart) / 1000,
    finishedAt: new Date().toISOString(),
  };
}

function* firstInputs(stream: Iterable<{ input: Tensor }>, n: number): Generator<Tensor> {
  let k = 0;
  for (const b of stream) {
    if (k++ >= n) return;
    yield b.input;
  }
}
