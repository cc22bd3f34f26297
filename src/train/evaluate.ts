import { batches, type ImageTransform } from '../data/batches.js';
import type { ImageDataset } from '../data/dataset.js';
import type { Graph } from '../graph/graph.js';
import { runGraph } from '../graph/execute.js';
import type { Module } from '../nn/module.js';
import { createSession, type SessionOptions } from '../runtime/session.js';
import { QuantizedPlan } from '../runtime/quant/plan.js';
import type { QuantizedNetwork } from '../runtime/quant/network.js';
import type { Shape, Tensor } from '../tensor/tensor.js';

export interface Evaluation {
  /** Fraction of examples whose top-1 prediction is their label, in [0, 1]. */
  accuracy: number;
  /** confusion[label][prediction] = count. */
  confusion: number[][];
  examples: number;
  /** Mean cross-entropy is not reported: evaluation needs only the argmax. */
  seconds: number;
}

/** Index of the largest logit of each row. */
export function argmaxRows(logits: Tensor): Int32Array {
  const [n, k] = logits.shape as [number, number];
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits.data[i * k + j]! > logits.data[i * k + best]!) best = j;
    out[i] = best;
  }
  return out;
}

/** Options of every evaluation: batching, the image transform, progress. */
export interface EvaluateOptions {
  batchSize?: number;
  transform?: ImageTransform;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Top-1 accuracy and the confusion matrix of a model (inference mode: running BN statistics) over
 * a dataset, in batches. `run` defaults to the reference executor; the fast runtime plugs in here.
 */
export async function evaluate(
  model: Module,
  dataset: ImageDataset,
  options: EvaluateOptions & { run?: (graph: Graph, input: Tensor) => Tensor | Promise<Tensor> } = {},
): Promise<Evaluation> {
  const graphs = new Map<string, Graph>();
  const graphFor = (shape: Shape): Graph => {
    const key = shape.join('x');
    let g = graphs.get(key);
    if (g === undefined) graphs.set(key, (g = model.trace(shape)));
    return g;
  };
  const run = options.run ?? runGraph;
  return evaluatePredictions((input) => run(graphFor(input.shape), input), dataset, options);
}

/** Top-1 accuracy and the confusion matrix of `predict` (a batch [N, C, H, W] → logits [N, K]). */
export async function evaluatePredictions(
  predict: (input: Tensor) => Tensor | Promise<Tensor>,
  dataset: ImageDataset,
  options: EvaluateOptions = {},
): Promise<Evaluation> {
  const start = performance.now();
  const k = dataset.classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let done = 0;
  let correct = 0;
  const batchOptions = {
    batchSize: options.batchSize ?? 64,
    ...(options.transform ? { transform: options.transform } : {}),
  };
  for (const batch of batches(dataset, batchOptions)) {
    const predictions = argmaxRows(await predict(batch.input));
    predictions.forEach((p, i) => {
      const label = batch.labels[i]!;
      confusion[label]![p]!++;
      if (p === label) correct++;
    });
    done += batch.labels.length;
    options.onProgress?.(done, dataset.length);
  }
  return {
    accuracy: done ? correct / done : 0,
    confusion,
    examples: done,
    seconds: (performance.now() - start) / 1000,
  };
}

/**
 * `evaluate` on the fused WASM plan, compiled once from the model's current weights, through a
 * session: the calling thread alone unless `session` options say otherwise (threads, 'auto').
 */
export async function evaluateOnPlan(
  model: Module,
  dataset: ImageDataset,
  options: EvaluateOptions & { session?: SessionOptions } = {},
): Promise<Evaluation & { notes: string }> {
  const [c, h, w] = dataset.imageShape;
  const graph = model.trace([1, c, h, w]);
  const { session: sessionOptions = { threads: 1 }, ...rest } = options;
  const session = await createSession(graph, sessionOptions);
  try {
    const result = await evaluate(model, dataset, { ...rest, run: (_graph, input) => session.run(input) });
    return { ...result, notes: session.notes };
  } finally {
    await session.dispose();
  }
}

/** `evaluate` of an int8 network on the int8 plan (one thread; docs/int8.md). */
export async function evaluateInt8(
  network: QuantizedNetwork,
  dataset: ImageDataset,
  options: EvaluateOptions = {},
): Promise<Evaluation & { notes: string }> {
  const plan = await QuantizedPlan.create(network);
  const result = await evaluatePredictions((input) => plan.runBatch(input), dataset, options);
  return { ...result, notes: 'int8 kernels, 1 thread' };
}
