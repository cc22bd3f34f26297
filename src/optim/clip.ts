import type { Tensor } from '../tensor/tensor.js';

/**
 * Scales all gradients together so that their global L2 norm is at most `maxNorm`, as
 * torch.nn.utils.clip_grad_norm_ does (factor maxNorm / (norm + 1e-6), capped at 1). Returns the
 * norm before clipping; a NaN or infinite norm is returned as is and leaves the gradients alone,
 * so that the caller can stop on it.
 */
export function clipGradientNorm(gradients: Iterable<Tensor>, maxNorm: number): number {
  const list = [...gradients];
  let squares = 0;
  for (const g of list) for (let i = 0; i < g.size; i++) squares += g.data[i]! * g.data[i]!;
  const norm = Math.sqrt(squares);
  const factor = maxNorm / (norm + 1e-6);
  if (factor < 1 && Number.isFinite(norm)) {
    for (const g of list) for (let i = 0; i < g.size; i++) g.data[i] *= factor;
  }
  return norm;
}
