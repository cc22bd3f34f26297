import type { Module } from '../../src/nn/module.js';
import { Random } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';

/**
 * Non-trivial batch-norm statistics and affine parameters (a freshly built network has mean 0,
 * variance 1, gamma 1, beta 0, which would hide a mix-up of the four), and non-zero biases.
 */
export function randomizeBuffers(model: Module, seed = 1): void {
  const rng = new Random(seed);
  for (const [name, t] of model.stateDict()) {
    if (name.endsWith('running_var')) for (let i = 0; i < t.size; i++) t.data[i] = 0.5 + rng.next();
    else if (name.endsWith('running_mean') || name.endsWith('bias'))
      for (let i = 0; i < t.size; i++) t.data[i] = 0.2 * rng.normal();
    else if (name.match(/bn\d?\.weight$/)) for (let i = 0; i < t.size; i++) t.data[i] = 0.5 + rng.next();
  }
}

export function randomInput(shape: readonly number[], seed = 2): Tensor {
  const rng = new Random(seed);
  const t = new Tensor(shape);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal();
  return t;
}
