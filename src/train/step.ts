import { crossEntropy } from '../autograd/loss.js';
import { backward, forwardWithTape } from '../autograd/tape.js';
import type { Graph } from '../graph/graph.js';
import { clipGradientNorm } from '../optim/clip.js';
import type { Sgd } from '../optim/sgd.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ForwardBackwardOptions, ForwardBackwardResult, TrainingEngine } from './plan.js';

export interface TrainStepOptions {
  /** Learning rate of this step (from a schedule). */
  lr: number;
  /** ε of the cross-entropy's label smoothing; default 0. */
  labelSmoothing?: number;
  /** Clip the gradients' global L2 norm to this value; default no clipping. */
  maxGradNorm?: number;
  /** Called with the loss before anything is updated; may throw to stop (e.g. on NaN). */
  guard?: (loss: number) => void;
}

export interface TrainStepResult {
  /** The mini-batch loss before the update. */
  loss: number;
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** The batch's logits (before the update), e.g. for training accuracy. */
  logits: Tensor;
}

/**
 * One optimisation step on one mini-batch: forward in training mode (which updates the batch-norm
 * running statistics), cross-entropy, backward, optional clipping, SGD update. The engine is a
 * graph from `model.trace(shape, { training: true })`, run on the reference tape, or a training
 * engine built from one (a `TrainingPlan` on the WASM kernels, or a `ParallelTrainingEngine` over
 * several threads), which computes the same. Either way the
 * parameters are the model's own tensors, so the model trains.
 *
 * @example
 * const plan = await TrainingPlan.compile(model.trace([64, 1, 28, 28], { training: true }));
 * const sgd = new Sgd(model.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 4e-5 });
 * const { loss } = trainStep(plan, sgd, images, labels, { lr: learningRate(schedule, t) });
 */
export function trainStep(
  engine: Graph | TrainingEngine,
  sgd: Sgd,
  images: Tensor,
  labels: ArrayLike<number>,
  options: TrainStepOptions,
): TrainStepResult {
  const loss = { labelSmoothing: options.labelSmoothing ?? 0, ...(options.guard ? { guard: options.guard } : {}) };
  const result =
    'forwardBackward' in engine
      ? engine.forwardBackward(images, labels, loss)
      : tapeForwardBackward(engine, images, labels, loss);
  const gradNorm = clipGradientNorm(result.gradients.values(), options.maxGradNorm ?? Infinity);
  sgd.step(result.gradients, options.lr);
  return { loss: result.loss, gradNorm, logits: result.logits };
}

/** The reference path: forward with tape, cross-entropy, backward. */
function tapeForwardBackward(
  graph: Graph,
  images: Tensor,
  labels: ArrayLike<number>,
  options: ForwardBackwardOptions,
): ForwardBackwardResult {
  const tape = forwardWithTape(graph, images);
  const { loss, gradient } = crossEntropy(tape.output, labels, { labelSmoothing: options.labelSmoothing ?? 0 });
  options.guard?.(loss);
  return { loss, logits: tape.output, gradients: backward(tape, gradient).parameters };
}
