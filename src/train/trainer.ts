/**
 * The training loop: epochs of shuffled, augmented mini-batches through `trainStep`, a learning
 * rate schedule over the whole run, and a state that checkpoints can carry so that an interrupted
 * run resumes to the same loss curve. Browser-safe: files and progress bars are the CLI's.
 *
 *   dataset ─► batches(seed, epoch) ─► augment ─► trainStep (forward with tape → loss → backward → SGD)
 *                                                    ▲ lr = schedule(step)
 */
import { batchCount, batches, type ImageTransform } from '../data/batches.js';
import type { ImageDataset } from '../data/dataset.js';
import { ShuffleNetError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import type { Module } from '../nn/module.js';
import { learningRate, type ScheduleConfig } from '../optim/schedule.js';
import type { Tensor } from '../tensor/tensor.js';
import { Sgd } from '../optim/sgd.js';
import { argmaxRows } from './evaluate.js';
import type { SpawnWorker } from '../runtime/session.js';
import { ParallelTrainingEngine } from './parallel.js';
import { TrainingPlan, type TrainingEngine } from './plan.js';
import { trainStep } from './step.js';
import {
  arrayField,
  booleanField,
  integerField,
  numberField,
  objectField,
  seedField,
  stringField,
  type Fields,
} from '../validate.js';

/** What runs the steps: the WASM training plan, or the reference tape (the oracle; slow). */
export type EngineKind = 'wasm' | 'reference';

export interface PrepareOptions {
  engine?: EngineKind;
  /** Threads for the WASM engine (data-parallel with whole-batch batch norm); default 1. */
  threads?: number;
  /** How to start a worker thread (Node: spawnTrainingWorker from shufflenet/node). */
  spawnWorker?: SpawnWorker;
}

/** Everything that decides a run's outcome. The CLI maps its flags onto this one to one. */
export interface TrainConfig {
  /** Registered network name. */
  arch: string;
  epochs: number;
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** SGD momentum; the official code uses 0.9. */
  momentum: number;
  nesterov: boolean;
  /** L2 weight decay on weights with more than one dimension (the official recipe skips 1-D ones). */
  weightDecay: number;
  /** Label smoothing ε of the cross-entropy (the official code: 0.1). */
  labelSmoothing: number;
  /** Learning-rate shape: the paper decays linearly to 0. */
  schedule: ScheduleConfig['kind'];
  /** Epochs of linear warm-up (may be fractional). */
  warmupEpochs: number;
  /** Clip the gradients' global norm to this; 0 disables clipping. */
  maxGradNorm: number;
  /** Augmentation: left–right flips. */
  flip: boolean;
  /** Augmentation: random shift by up to this many pixels (pad and crop). */
  padCrop: number;
  /** Training batches used to re-estimate BN statistics at the end (0 = skip). */
  bnBatches: number;
  seed: number;
  /** Fine-tuning: the model file or checkpoint the run started from (`train --init`). */
  init?: string;
  /** Fine-tuning: the classifier was drawn anew for the data's classes (`--new-head`). */
  newHead?: boolean;
  /** Fine-tuning: only the classifier learned, on cached features of the frozen trunk (`--freeze backbone`). */
  freeze?: 'backbone';
}

/** TrainConfig fields a run may lack (a run from scratch has no init). */
export const optionalTrainConfigFields = ['init', 'newHead', 'freeze'] as const;

/** The type and range of each TrainConfig field: the CLI's flags and a checkpoint's config are checked against it. */
export const trainConfigFields: Fields = {
  arch: stringField(200),
  epochs: integerField(1, 10_000),
  batchSize: integerField(1, 8192),
  lr: numberField(0, 1e30, true), // any finite rate: a divergent one is stopped by the non-finite-loss check
  momentum: numberField(0, 1),
  nesterov: booleanField,
  weightDecay: numberField(0, 1),
  labelSmoothing: numberField(0, 1),
  schedule: stringField(16, ['linear', 'cosine', 'constant']),
  warmupEpochs: numberField(0, 10_000),
  maxGradNorm: numberField(0, 1e6),
  flip: booleanField,
  padCrop: integerField(0, 64),
  bnBatches: integerField(0, 100_000),
  seed: seedField,
  init: stringField(4096),
  newHead: booleanField,
  freeze: stringField(16, ['backbone']),
};

const epochRecordFields: Fields = {
  epoch: integerField(1, 10_000),
  loss: numberField(-1e9, 1e9),
  accuracy: numberField(0, 1),
  lr: numberField(0, 1e30),
  seconds: numberField(0, 1e9),
  imagesPerSecond: numberField(0, 1e12),
  testAccuracy: numberField(0, 1),
};

/** A checkpoint's training state; `checkTrainState` adds the rules between fields. */
export const trainStateFields: Fields = {
  epoch: integerField(0, 10_000),
  step: integerField(0, Number.MAX_SAFE_INTEGER),
  history: arrayField(objectField(epochRecordFields, ['epoch', 'loss', 'accuracy']), 0, 10_000),
  finished: booleanField,
};

export interface EpochRecord {
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Training accuracy over the epoch (augmented images, weights changing). */
  accuracy: number;
  /** Learning rate at the epoch's last step. */
  lr: number;
  seconds: number;
  imagesPerSecond: number;
  /** Test accuracy after the epoch, when the caller evaluates. */
  testAccuracy?: number;
}

export interface TrainState {
  /** Completed epochs. */
  epoch: number;
  /** Completed optimiser steps. */
  step: number;
  history: EpochRecord[];
  /** The run's last steps after its epochs (batch-norm re-estimation, the test) are done too. */
  finished?: boolean;
}

export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  lr: number;
}

export class NonFiniteLossError extends ShuffleNetError {
  override name = 'NonFiniteLossError';
}

export class Trainer {
  readonly sgd: Sgd;
  readonly state: TrainState;
  private engine: Graph | TrainingEngine | null = null;

  constructor(
    readonly model: Module,
    readonly dataset: ImageDataset,
    readonly config: TrainConfig,
    readonly transform: ImageTransform,
    state?: TrainState,
    momentum?: ReadonlyMap<string, Float32Array>,
  ) {
    if (dataset.length < config.batchSize) {
      throw new ShuffleNetError(
        `train: ${dataset.length} training images are fewer than one batch of ${config.batchSize}`,
      );
    }
    this.sgd = new Sgd(model.namedParameters(), {
      lr: config.lr,
      momentum: config.momentum,
      nesterov: config.nesterov,
      weightDecay: config.weightDecay,
    });
    if (momentum) this.sgd.loadState(momentum);
    this.state = state ?? { epoch: 0, step: 0, history: [] };
  }

  /**
   * Compiles the engine for this run's batch shape: the WASM training plan by default, over
   * `threads` threads. Without a `prepare`, `runEpoch` uses the reference tape.
   */
  async prepare(options: PrepareOptions = {}): Promise<this> {
    const { engine = 'wasm', threads = 1 } = options;
    const graph = this.model.trace(this.batchShape, { training: true });
    if (engine === 'reference') {
      this.engine = graph;
    } else if (threads > 1) {
      if (!options.spawnWorker) throw new ShuffleNetError('train: more than one thread needs a spawnWorker');
      this.engine = await ParallelTrainingEngine.create(graph, threads, options.spawnWorker);
    } else {
      this.engine = await TrainingPlan.compile(graph);
    }
    return this;
  }

  /** The compiled training engine, if `prepare` made one (e.g. for BN re-estimation). */
  get plan(): TrainingEngine | null {
    return this.engine === null || !('forwardBackward' in this.engine) ? null : this.engine;
  }

  /** Stops the engine's worker threads, if any. */
  async dispose(): Promise<void> {
    await this.plan?.dispose?.();
  }

  private get batchShape(): number[] {
    return [this.config.batchSize, ...this.dataset.imageShape];
  }

  /** Optimiser steps per epoch (the last partial batch is dropped, which keeps BN batches full). */
  get stepsPerEpoch(): number {
    return batchCount(this.dataset.length, { batchSize: this.config.batchSize, dropLast: true });
  }

  get schedule(): ScheduleConfig {
    const totalSteps = this.stepsPerEpoch * this.config.epochs;
    const warmupSteps = Math.min(totalSteps - 1, Math.round(this.config.warmupEpochs * this.stepsPerEpoch));
    return { lr: this.config.lr, totalSteps, kind: this.config.schedule, warmupSteps };
  }

  get done(): boolean {
    return this.state.epoch >= this.config.epochs;
  }

  /** Trains one epoch. A NaN or infinite loss stops it before the weights are updated with it. */
  runEpoch(onBatch?: (p: BatchProgress) => void): EpochRecord {
    const { config } = this;
    this.engine ??= this.model.trace(this.batchShape, { training: true });
    const epoch = this.state.epoch;
    const start = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let lr = config.lr;
    let batch = 0;
    const stream = batches(this.dataset, {
      batchSize: config.batchSize,
      shuffle: true,
      dropLast: true,
      seed: config.seed,
      epoch,
      transform: this.transform,
    });
    for (const { input, labels } of stream) {
      lr = learningRate(this.schedule, this.state.step);
      const result = trainStep(this.engine, this.sgd, input, labels, {
        lr,
        labelSmoothing: config.labelSmoothing,
        ...(config.maxGradNorm > 0 ? { maxGradNorm: config.maxGradNorm } : {}),
        guard: (loss) => {
          if (!Number.isFinite(loss)) {
            throw new NonFiniteLossError(
              `train: the loss became ${loss} at epoch ${epoch + 1}, batch ${batch + 1} (learning rate ${lr.toPrecision(3)}); ` +
                'the weights were not updated with it. Lower --lr or set --max-grad-norm',
            );
          }
        },
      });
      correct += countCorrect(result.logits, labels);
      lossSum += result.loss * labels.length;
      seen += labels.length;
      this.state.step++;
      batch++;
      onBatch?.({
        epoch,
        batch,
        batches: this.stepsPerEpoch,
        loss: lossSum / seen,
        accuracy: correct / seen,
        imagesPerSecond: seen / ((performance.now() - start) / 1000),
        lr,
      });
    }
    const seconds = (performance.now() - start) / 1000;
    const record: EpochRecord = {
      epoch: epoch + 1,
      loss: lossSum / seen,
      accuracy: correct / seen,
      lr,
      seconds,
      imagesPerSecond: seen / seconds,
    };
    this.state.epoch++;
    this.state.history.push(record);
    return record;
  }
}

function countCorrect(logits: Tensor, labels: Int32Array): number {
  return argmaxRows(logits).reduce((n, p, i) => n + (p === labels[i] ? 1 : 0), 0);
}
