/** Error measures and test-graph set-up shared by the engine tests. */
import type { Graph } from '../../src/graph/graph.js';
import type { Random } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { maxAbs, maxAbsDiff } from './fixtures.js';

/** max |actual − expected| over max |expected| (at least `floor`). */
export function relativeError(actual: Tensor, expected: Tensor, floor = 1e-12): number {
  return maxAbsDiff(actual, expected) / Math.max(maxAbs(expected), floor);
}

/**
 * Largest |actual − expected| over the output's scale, max(max |expected|, 1). Randomly initialised
 * networks reach logits of ~1e3, so an element-wise relative error would only measure float32
 * rounding of logits near zero. NaN counts as a failure (Infinity).
 */
export function worstRelative(actual: Tensor, expected: Tensor): number {
  let scale = 1;
  for (const v of expected.data) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.size; i++) {
    const r = Math.abs(actual.data[i]! - expected.data[i]!) / scale;
    if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : r;
  }
  return worst;
}

/** Gives every batch norm non-trivial running statistics, so that a wrong fold shows. */
export function randomiseRunningStatistics(graph: Graph, random: Random): void {
  for (const [name, param] of graph.params) {
    const data = param.tensor.data;
    if (name.endsWith('running_var')) data.forEach((_, i) => (data[i] = 0.5 + random.next()));
    else if (name.endsWith('running_mean')) data.forEach((_, i) => (data[i] = 0.2 * random.normal()));
  }
}
