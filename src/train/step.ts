import { crossEntropy } from '../autograd/loss.js';
import { backward, forwardWithTape } from '../autograd/tape.js';
import type { Graph } from '../graph/graph.js';
import { clipGradientNorm } from '../optim/clip.js';
import type { Sgd } from '../optim/sgd.js';
import type { Tensor } from '../tensor/tensor.js';

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
 * running statistics), cross-entropy, backward over the graph, optional clipping, SGD update.
 * `graph` must come from `model.trace(shape, { training: true })`; its parameters are the model's
 * own tensors, so the model trains.
 *
 * @example
 * const graph = model.trace([64, 1, 28, 28], { training: true });
 * const sgd = new Sgd(model.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 4e-5 });
 * const { loss } = trainStep(graph, sgd, images, labels, { lr: learningRate(schedule, t) });
 */
export function trainStep(
  graph: Graph,
  sgd: Sgd,
  images: Tensor,
  labels: ArrayLike<number>,
  options: TrainStepOptions,
): TrainStepResult {
  const tape = forwardWithTape(graph, images);
  const { loss, gradient } = crossEntropy(tape.output, labels, { labelSmoothing: options.labelSmoothing ?? 0 });
  options.guard?.(loss);
  const { parameters } = backward(tape, gradient);
  const gradNorm = clipGradientNorm(parameters.values(), options.maxGradNorm ?? Infinity);
  sgd.step(parameters, options.lr);
  return { loss, gradNorm, logits: tape.output };
}
