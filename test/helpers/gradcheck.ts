/**
 * Builders for gradient tests: a one-node graph around an op (first input is the graph input,
 * the others parameters), and central finite differences of L = Σ r ⊙ f(x).
 */
import { GraphBuilder } from '../../src/graph/builder.js';
import type { Graph } from '../../src/graph/graph.js';
import { getOp, type OpAttrs, type OpType } from '../../src/ops/index.js';
import { Tensor } from '../../src/tensor/tensor.js';

/** Inputs 1.. become parameters `p1`, `p2`, …; trainable when `trainable[i]`. */
export function singleOpGraph(
  op: OpType,
  inputs: readonly Tensor[],
  attrs: OpAttrs[OpType],
  trainable: readonly boolean[],
): Graph {
  const g = new GraphBuilder(inputs[0]!.shape);
  const values = [g.input, ...inputs.slice(1).map((t, i) => g.param(`p${i + 1}`, t, trainable[i + 1]!))];
  return g.finish(g.apply(getOp(op), values, attrs));
}

/** Σ r ⊙ y in float64: a scalar whose gradient with respect to y is r. */
export function project(y: Tensor, r: Tensor): number {
  let sum = 0;
  for (let i = 0; i < y.size; i++) sum += y.data[i]! * r.data[i]!;
  return sum;
}

/**
 * Central difference (f(x + h) − f(x − h)) / 2h of `loss` with respect to element `index` of
 * `tensor`, which `loss` reads. The element is restored afterwards.
 */
export function centralDifference(tensor: Tensor, index: number, h: number, loss: () => number): number {
  const saved = tensor.data[index]!;
  tensor.data[index] = saved + h;
  const up = loss();
  tensor.data[index] = saved - h;
  const down = loss();
  tensor.data[index] = saved;
  // The step actually taken in float32, not the nominal h.
  const step = Math.fround(saved + h) - Math.fround(saved - h);
  return (up - down) / step;
}

/** Up to `count` indices spread over [0, size), always including the first and last. */
export function sampleIndices(size: number, count: number): number[] {
  if (size <= count) return Array.from({ length: size }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.round((i * (size - 1)) / (count - 1)));
}
