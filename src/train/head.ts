/**
 * Fine-tuning with a frozen backbone (`train --init … --freeze backbone`): the trunk runs once per
 * training image, in inference mode (running BN statistics) on the fused plan, and only the
 * classifier learns, on the cached features:
 *
 *   images ──► trunk plan (graph cut before the last linear layer) ──► features [N, F], cached
 *                                                                          │
 *   head W [K, F], b [K] ◄── SGD (the run's lr schedule, momentum, weight decay) ◄── cross-entropy
 *
 * No augmentation (the features are computed once); the trunk's weights and statistics do not move.
 */
import { crossEntropy } from '../autograd/loss.js';
import { batches, permutation, type ImageTransform } from '../data/batches.js';
import type { ImageDataset } from '../data/dataset.js';
import type { Graph } from '../graph/graph.js';
import { linearBackwardReference, linearReference } from '../kernels/reference/index.js';
import type { Module } from '../nn/module.js';
import { learningRate } from '../optim/schedule.js';
import { Sgd } from '../optim/sgd.js';
import { compilePlan } from '../runtime/plan.js';
import { Random } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { argmaxRows } from './evaluate.js';
import { FineTuneError } from './finetune.js';
import type { TrainConfig } from './trainer.js';

/** The run settings head training reads: those of the run (`train`'s TrainConfig). */
export type HeadTraining = Pick<
  TrainConfig,
  'epochs' | 'batchSize' | 'lr' | 'momentum' | 'nesterov' | 'weightDecay' | 'labelSmoothing' | 'schedule' | 'seed'
>;

export interface HeadEpoch {
  epoch: number;
  loss: number;
  accuracy: number;
  seconds: number;
  /** Optimiser steps so far. */
  step: number;
}

/** The graph up to the classifier's input, and the classifier's weight and bias names. */
export function splitAtHead(graph: Graph): { trunk: Graph; weight: string; bias: string | null } {
  const index = graph.nodes.length - 1;
  const head = graph.nodes[index];
  if (head?.op !== 'linear') {
    throw new FineTuneError('--freeze backbone needs a network that ends in its linear classifier');
  }
  return {
    trunk: { ...graph, nodes: graph.nodes.slice(0, index), output: head.inputs[0]! },
    weight: head.inputs[1]!,
    bias: head.inputs[2] ?? null,
  };
}

/**
 * Trains `model`'s classifier in place on `dataset` (images through `transform`), the rest frozen.
 * `onEpoch` reports each epoch.
 */
export async function trainHead(
  model: Module,
  dataset: ImageDataset,
  transform: ImageTransform,
  config: HeadTraining,
  onEpoch: (e: HeadEpoch) => void = () => {},
): Promise<HeadEpoch[]> {
  const [channels, height, width] = dataset.imageShape;
  const { trunk, weight, bias } = splitAtHead(model.trace([1, channels, height, width]));
  const features = trunk.shapes
    .get(trunk.output)!
    .slice(1)
    .reduce((a, b) => a * b, 1);
  const state = model.stateDict();
  const w = state.get(weight)!;
  const b = bias === null ? null : state.get(bias)!;
  const classes = w.shape[0]!;

  // 1. The frozen trunk, once per image.
  const plan = await compilePlan(trunk);
  const cached = new Float32Array(dataset.length * features);
  const labels = new Int32Array(dataset.length);
  let at = 0;
  try {
    for (const batch of batches(dataset, { batchSize: 64, shuffle: false, dropLast: false, transform })) {
      cached.set(plan.run(batch.input).data, at * features);
      labels.set(batch.labels, at);
      at += batch.labels.length;
    }
  } finally {
    plan.dispose();
  }

  // 2. Softmax regression on the cached features.
  const parameters = new Map([[weight, w], ...(b === null ? [] : ([[bias!, b]] as const))]);
  const sgd = new Sgd(parameters, {
    lr: config.lr,
    momentum: config.momentum,
    nesterov: config.nesterov,
    weightDecay: config.weightDecay,
  });
  const stepsPerEpoch = Math.max(1, Math.floor(dataset.length / config.batchSize));
  const random = new Random(config.seed);
  const records: HeadEpoch[] = [];
  let step = 0;
  for (let epoch = 1; epoch <= config.epochs; epoch++) {
    const start = performance.now();
    const order = permutation(dataset.length, random);
    let lossSum = 0;
    let correct = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      const rows = Array.from(order.subarray(s * config.batchSize, (s + 1) * config.batchSize));
      const x = new Float32Array(rows.length * features);
      rows.forEach((r, i) => x.set(cached.subarray(r * features, (r + 1) * features), i * features));
      const y = rows.map((r) => labels[r]!);
      const logits = new Tensor([rows.length, classes]);
      linearReference(x, w.data, b?.data ?? null, logits.data, rows.length, features, classes);
      const { loss, gradient } = crossEntropy(logits, y, { labelSmoothing: config.labelSmoothing });
      lossSum += loss;
      correct += argmaxRows(logits).reduce((n, p, i) => n + (p === y[i] ? 1 : 0), 0);
      const gw = new Tensor(w.shape);
      const gb = b === null ? null : new Tensor(b.shape);
      linearBackwardReference(
        x,
        w.data,
        gradient.data,
        null,
        gw.data,
        gb?.data ?? null,
        rows.length,
        features,
        classes,
      );
      const lr = learningRate(
        { lr: config.lr, totalSteps: stepsPerEpoch * config.epochs, kind: config.schedule },
        step++,
      );
      sgd.step(new Map([[weight, gw], ...(gb === null ? [] : ([[bias!, gb]] as const))]), lr);
    }
    const record = {
      epoch,
      loss: lossSum / stepsPerEpoch,
      accuracy: correct / (stepsPerEpoch * config.batchSize),
      seconds: (performance.now() - start) / 1000,
      step,
    };
    records.push(record);
    onEpoch(record);
  }
  return records;
}
