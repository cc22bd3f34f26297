/**
 * Batch norm folded into the convolution before it, as the lowering decides
 * (`LoweredStep.foldedBatchNorm`): the float plan packs these weights, and quantization
 * (src/runtime/quant) quantizes them.
 */
import type { Graph } from '../graph/graph.js';
import type { LoweredStep } from './lower.js';

/** Folds batch norm into the convolution: w'[o] = w[o]·s[o], b'[o] = (b[o] − mean[o])·s[o] + beta[o]. */
export function foldedConv(
  graph: Graph,
  step: LoweredStep,
): { weight: Float32Array; bias: Float32Array; cOut: number } {
  const conv = step.nodes[0]!;
  const param = (name: string): Float32Array => graph.params.get(name)!.tensor.data;
  const weight = param(conv.inputs[1]!).slice();
  const cOut = graph.shapes.get(conv.inputs[1]!)![0]!;
  const bias = conv.inputs[2] !== undefined ? param(conv.inputs[2]).slice() : new Float32Array(cOut);
  const bn = step.foldedBatchNorm;
  if (bn !== null) {
    const [gamma, beta, mean, variance] = bn.inputs.slice(1).map(param) as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    const eps = bn.attrs.eps;
    const perOut = weight.length / cOut;
    for (let o = 0; o < cOut; o++) {
      const s = gamma[o]! / Math.sqrt(variance[o]! + eps);
      for (let i = 0; i < perOut; i++) weight[o * perOut + i]! *= s;
      bias[o] = (bias[o]! - mean[o]!) * s + beta[o]!;
    }
  }
  return { weight, bias, cOut };
}
