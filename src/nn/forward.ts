import { ShapeError } from '../errors.js';
import { runGraph } from '../graph/execute.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from './module.js';

/**
 * Runs a model on the reference kernels: trace for this input's shape, then execute the graph.
 * A NaN or infinite input is refused rather than silently propagated into every logit.
 *
 * @example
 * const logits = forward(createModel('shufflenet_v1_g3_0.25x'), Tensor.zeros([1, 3, 64, 64]));
 */
export function forward(model: Module, input: Tensor): Tensor {
  const bad = input.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new ShapeError(`forward: input element ${bad} is ${input.data[bad]}; inputs must be finite numbers`);
  }
  return runGraph(model.trace(input.shape), input);
}
