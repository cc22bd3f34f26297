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

/** An element-wise tolerance: |actual − expected| ≤ atol · scale + rtol · |expected|. */
export interface Tolerance {
  /** Absolute part, as a fraction of the tensor's scale (the cancellation floor). */
  atol: number;
  /** Relative part, as a fraction of each element's own magnitude. */
  rtol: number;
}

/**
 * Checks every element against `tolerance`, where `scale` is max |expected| (at least `floor`):
 * float32 rounding in a sum is relative to the size of its terms, so an element that cancels to
 * near zero is held to the tensor's scale, every other one to its own magnitude. Returns null when
 * all pass, otherwise a message naming the worst element (NaN and a size mismatch always fail).
 */
export function elementwiseMismatch(actual: Tensor, expected: Tensor, tolerance: Tolerance, floor = 0): string | null {
  if (actual.size !== expected.size) return `size ${actual.size} but expected ${expected.size}`;
  let scale = floor;
  for (const v of expected.data) scale = Math.max(scale, Math.abs(v));
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < expected.size; i++) {
    const e = expected.data[i]!;
    const allowed = tolerance.atol * scale + tolerance.rtol * Math.abs(e);
    const diff = Math.abs(actual.data[i]! - e);
    const ratio = diff === 0 ? 0 : diff / allowed; // equal is within any tolerance, 0 included
    if (!(ratio <= worstRatio)) {
      worstRatio = Number.isNaN(ratio) ? Infinity : ratio;
      worst = i;
    }
  }
  if (worstRatio <= 1) return null;
  const e = expected.data[worst]!;
  const a = actual.data[worst]!;
  return (
    `element ${worst}: ${a} but expected ${e} (|diff| ${Math.abs(a - e).toExponential(2)}, ` +
    `${worstRatio.toFixed(1)}× the tolerance ${tolerance.atol}·${scale.toExponential(2)} + ${tolerance.rtol}·|expected|)`
  );
}
