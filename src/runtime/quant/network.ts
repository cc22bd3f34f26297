/**
 * A quantized network: the float graph's fused inference steps (the lowering's, the same steps the
 * float plan runs), with uint8 activations at the steps' boundaries and int8 weights. See
 * docs/int8.md for the data flow and the exact arithmetic.
 *
 *   Graph ──► lowerForInference ──► steps ──► quantizationPoints: which values carry a scale
 *                                     │             (calibrated, or shared with another value)
 *                                     └──► quantizeWeights: folded BN, int8 per output channel,
 *                                                  int32 bias at (input scale · weight scale)
 */
import { ShuffleNetError } from '../../errors.js';
import type { Graph } from '../../graph/graph.js';
import type { QParams } from '../../kernels/reference/quantized.js';
import { foldedConv } from '../fold.js';
import { lowerForInference, type LoweredStep } from '../lower.js';

/** A network cannot be quantized as asked (a bias out of int32 range, an unknown method, …). */
export class QuantizationError extends ShuffleNetError {
  override name = 'QuantizationError';
}

export type { QParams };

/** Kernels that multiply by weights: quantized per output channel. */
export const WEIGHTED_KERNELS: readonly string[] = [
  'gemm1x1',
  'stem3x3s2',
  'im2col-gemm',
  'dwconv3x3',
  'dwconv',
  'dense',
];

/** A weighted step's int8 weights (BN folded) and int32 bias. */
export interface QuantizedWeights {
  /** [C_out, …] as the float weight, int8 in [−127, 127]. */
  weight: Int8Array;
  /** float32 > 0, one per output channel. */
  scales: Float32Array;
  /** int32 at scale (input scale · scales[o]). */
  bias: Int32Array;
}

/**
 * How a quantized value gets its scale: calibrated from its own float values, or the same as
 * another value's (a max pool's output, an alias, a concat part that only the concat reads).
 */
export type QuantizationPoint = { value: string; kind: 'calibrated' } | { value: string; kind: 'same'; as: string };

export interface QuantizedNetwork {
  /** The float graph (traced at `graph.input.shape`); its float weights are not read by int8 steps. */
  graph: Graph;
  steps: LoweredStep[];
  /** Every quantized value's scale and zero point. */
  activations: Map<string, QParams>;
  /** Weighted steps' weights, by the weight parameter's name (`stage2.0.gconv1.weight`). */
  weights: Map<string, QuantizedWeights>;
}

/** The weight parameter of a weighted step (the main node's second input). */
export function weightName(step: LoweredStep): string {
  return step.nodes[0]!.inputs[1]!;
}

/**
 * The value a residual step quantizes before its add: the convolution's output after its folded
 * batch norm (ONNX QDQ's Q between QLinearConv and QLinearAdd).
 */
export function preAddValue(step: LoweredStep): string {
  const add = step.nodes.find((n) => n.op === 'add')!;
  return add.inputs[0] === step.residual ? add.inputs[1]! : add.inputs[0]!;
}

const ALIASES: readonly string[] = ['channel-slice', 'flatten'];

/**
 * The values that carry a scale, in graph order: the input, each step's output (but the graph's
 * output, which int8 steps write as float), and each residual step's pre-add value.
 */
export function quantizationPoints(graph: Graph, steps: readonly LoweredStep[]): QuantizationPoint[] {
  const sharedWithConcat = new Map<string, string>();
  const readers = new Map<string, number>();
  for (const step of steps)
    for (const v of new Set([...step.inputs, step.residual ?? ''])) readers.set(v, (readers.get(v) ?? 0) + 1);
  for (const step of steps) {
    if (step.lowering.kernel !== 'concat') continue;
    // A part that only the concat reads is written at the concat's scale: joining costs nothing.
    for (const part of step.inputs)
      if (readers.get(part) === 1 && part !== graph.input.name) sharedWithConcat.set(part, step.output);
  }
  const points: QuantizationPoint[] = [{ value: graph.input.name, kind: 'calibrated' }];
  for (const step of steps) {
    if (step.residual !== null) points.push({ value: preAddValue(step), kind: 'calibrated' });
    if (step.output === graph.output) continue;
    const concat = sharedWithConcat.get(step.output);
    const kernel = step.lowering.kernel;
    const maxPool = (kernel === 'pool3x3s2' && !step.lowering.average) || kernel === 'max-pool';
    // An alias is its input's bytes; a part that only a concat reads is written at its scale.
    if (ALIASES.includes(kernel)) points.push({ value: step.output, kind: 'same', as: step.inputs[0]! });
    else if (concat !== undefined) points.push({ value: step.output, kind: 'same', as: concat });
    else if (maxPool && step.activation === null)
      points.push({ value: step.output, kind: 'same', as: step.inputs[0]! });
    else points.push({ value: step.output, kind: 'calibrated' });
  }
  return points;
}

/**
 * All quantization parameters from the calibrated ones: each shared value takes its source's
 * (sources may come later in the list, as a concat comes after its parts).
 */
export function resolveActivations(
  points: readonly QuantizationPoint[],
  calibrated: ReadonlyMap<string, QParams>,
): Map<string, QParams> {
  const byValue = new Map(points.map((p) => [p.value, p]));
  const out = new Map<string, QParams>();
  const resolve = (value: string, depth: number): QParams => {
    const known = out.get(value);
    if (known !== undefined) return known;
    const point = byValue.get(value);
    if (point === undefined || depth > points.length)
      throw new QuantizationError(`no quantization point for value ${JSON.stringify(value)}`);
    const p = point.kind === 'same' ? resolve(point.as, depth + 1) : calibrated.get(value);
    if (p === undefined) throw new QuantizationError(`value ${JSON.stringify(value)} has no calibrated scale`);
    out.set(value, p);
    return p;
  };
  for (const point of points) resolve(point.value, 0);
  return out;
}

/**
 * Scale and zero point for the range [lo, hi] (widened to include 0, so that zero is exact, as
 * padding and ReLU need): scale = (hi − lo) / 255 in float32, zero = round(−lo / scale).
 */
export function chooseQParams(lo: number, hi: number): QParams {
  const low = Math.min(lo, 0);
  const high = Math.max(hi, 0);
  if (!Number.isFinite(low) || !Number.isFinite(high))
    throw new QuantizationError(`range [${lo}, ${hi}] is not finite`);
  if (high - low < 1e-30) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((high - low) / 255);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-low / scale)));
  return { scale, zeroPoint };
}

/**
 * Quantizes a weighted step: BN folded, weights symmetric int8 per output channel
 * (scale = max |w| / 127, or / 63 for 7-bit weights; an all-zero channel gets scale 1), bias int32 at (input scale · weight
 * scale), refused if it leaves int32 range.
 */
export function quantizeWeights(
  graph: Graph,
  step: LoweredStep,
  inputScale: number,
  weightBits: WeightBits = 8,
): QuantizedWeights {
  const top = weightBits === 7 ? 63 : 127;
  const { weight, bias, cOut } = foldedConv(graph, step);
  const perOut = weight.length / cOut;
  const q = new Int8Array(weight.length);
  const scales = new Float32Array(cOut);
  const qBias = new Int32Array(cOut);
  for (let o = 0; o < cOut; o++) {
    let max = 0;
    for (let i = 0; i < perOut; i++) max = Math.max(max, Math.abs(weight[o * perOut + i]!));
    const s = max > 0 ? Math.fround(max / top) : 1;
    scales[o] = s;
    for (let i = 0; i < perOut; i++)
      q[o * perOut + i] = Math.max(-top, Math.min(top, Math.round(weight[o * perOut + i]! / s)));
    const b = Math.round(bias[o]! / (inputScale * s));
    if (!(Math.abs(b) <= 2 ** 31 - 1)) {
      throw new QuantizationError(
        `${weightName(step)}: folded bias ${bias[o]} of output channel ${o} is ${b} steps of its scale, outside int32`,
      );
    }
    qBias[o] = b;
  }
  return { weight: q, scales, bias: qBias };
}

/**
 * Bits of the int8 weights' range: 8 ([−127, 127]) or 7 ([−63, 63], still int8 in files and QDQ):
 * 7-bit weights let the relaxed-SIMD build multiply 16 pairs per instruction (qgemm7, docs/int8.md).
 */
export type WeightBits = 7 | 8;

/** Builds a quantized network from a float graph and calibrated scales. */
export function quantizeNetwork(
  graph: Graph,
  calibrated: ReadonlyMap<string, QParams>,
  steps: LoweredStep[] = lowerForInference(graph),
  weightBits: WeightBits = 8,
): QuantizedNetwork {
  const activations = resolveActivations(quantizationPoints(graph, steps), calibrated);
  const weights = new Map<string, QuantizedWeights>();
  for (const step of steps) {
    if (!WEIGHTED_KERNELS.includes(step.lowering.kernel)) continue;
    weights.set(weightName(step), quantizeWeights(graph, step, activations.get(step.inputs[0]!)!.scale, weightBits));
  }
  return { graph, steps, activations, weights };
}
