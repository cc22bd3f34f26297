/**
 * Reference int8 kernels: the exact semantics of a quantized network (docs/int8.md), in the style
 * of ONNX's QuantizeLinear / QLinearConv. Activations are uint8 with a per-tensor scale and zero
 * point (x ≈ scale · (q − zero)); weights are int8, symmetric, one scale per output channel;
 * biases are int32 at scale (input scale · weight scale).
 *
 * A kernel computes exact int32 accumulators; one requantization rule turns them into the next
 * uint8 tensor, in float32 arithmetic that a SIMD kernel reproduces bit for bit:
 *
 *   u = fround(fround(acc) · m)          m = fround(s_in · s_w[o] / s_out): the value in output steps
 *   u = act(u)                           (ReLU: max(u, 0); ReLU6: min(max(u, 0), fround(6 / s_out));
 *                                          others on the real value u · s_out, see `activateSteps`)
 *   q = clamp(roundHalfEven(u) + z_out, 0, 255)
 *
 * NOTE: deliberately obvious loops over typed arrays, no validation (the step executor checks
 * shapes): the oracle that fast int8 kernels are tested against.
 */
import type { Conv2dGeometry } from './conv2d.js';
import { forEachWindow, type Pool2dGeometry } from './pool2d.js';

/** A per-tensor affine quantization of uint8 values: x ≈ scale · (q − zeroPoint). */
export interface QParams {
  /** float32, > 0. */
  readonly scale: number;
  /** An integer in [0, 255]. */
  readonly zeroPoint: number;
}

/** Round half to even (ONNX QuantizeLinear's rounding, and WASM's `f32x4.nearest`). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds halves up; a tie whose upward result is odd goes down instead.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Saturates to uint8. */
export function clampU8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** ONNX QuantizeLinear to uint8: clamp(roundHalfEven(fround(x / scale)) + zero, 0, 255). */
export function quantizeLinear(x: Float32Array, p: QParams, out: Uint8Array): void {
  for (let i = 0; i < x.length; i++) out[i] = clampU8(roundHalfEven(Math.fround(x[i]! / p.scale)) + p.zeroPoint);
}

/** ONNX DequantizeLinear: fround(scale · (q − zero)). */
export function dequantizeLinear(q: Uint8Array, p: QParams, out: Float32Array): void {
  for (let i = 0; i < q.length; i++) out[i] = Math.fround(p.scale * (q[i]! - p.zeroPoint));
}

/**
 * An activation applied to `u`, a value in output steps (real value u · scale), giving output
 * steps. `scale` 1 with no rounding after is a float output. The fast kernels' `activate` codes.
 */
export type StepActivation = 'relu' | 'relu6' | 'hardswish' | 'hardsigmoid' | 'sigmoid' | 'silu';

export function activateSteps(u: number, activation: StepActivation | null, scale: number): number {
  if (activation === null) return u;
  if (activation === 'relu') return u > 0 ? u : 0;
  // ReLU6 clamps in output steps too: at 6 expressed in them (what a SIMD kernel's clamp does).
  if (activation === 'relu6') return Math.min(Math.max(u, 0), Math.fround(6 / scale));
  const x = Math.fround(u * scale);
  let y: number;
  switch (activation) {
    case 'hardsigmoid':
      y = Math.min(Math.max(x / 6 + 0.5, 0), 1);
      break;
    case 'hardswish':
      y = x * Math.min(Math.max(x / 6 + 0.5, 0), 1);
      break;
    case 'sigmoid':
      y = 1 / (1 + Math.exp(-x));
      break;
    case 'silu':
      y = x / (1 + Math.exp(-x));
      break;
  }
  return Math.fround(Math.fround(y) / scale);
}

/** Per output channel multipliers m[o] = fround(fround(s_in · s_w[o]) / s_out): steps of the output per unit of acc. */
export function channelMultipliers(inScale: number, weightScales: Float32Array, outScale: number): Float32Array {
  return weightScales.map((s) => Math.fround(Math.fround(inScale * s) / outScale));
}

/** The requantization rule: acc (int32) · m → activation → uint8 at `zero`. */
export function requantize(
  acc: number,
  m: number,
  activation: StepActivation | null,
  scale: number,
  zero: number,
): number {
  const u = activateSteps(Math.fround(Math.fround(acc) * m), activation, scale);
  return clampU8(roundHalfEven(u) + zero);
}

/**
 * A residual step's rule, in output steps: the convolution's accumulator quantized at the pre-add
 * scale (QLinearConv's output), then added to the residual in float (QLinearAdd):
 * u = fround(m_a · (q_c − z_c)) + fround(m_r · (r − z_r)), m_a = s_c / s_y, m_r = s_r / s_y.
 * The activation and the rounding follow, as for any step.
 */
export function residualSteps(
  acc: number,
  mc: number,
  pre: QParams,
  r: number,
  residual: QParams,
  out: QParams,
): number {
  const qc = requantize(acc, mc, null, pre.scale, pre.zeroPoint);
  const ma = Math.fround(pre.scale / out.scale);
  const mr = Math.fround(residual.scale / out.scale);
  return Math.fround(Math.fround(ma * (qc - pre.zeroPoint)) + Math.fround(mr * (r - residual.zeroPoint)));
}

/**
 * Int8 convolution accumulators, NCHW, any kernel, stride, padding, dilation and groups:
 * acc[n, o, y, x] = bias[o] + Σ (q − zero) · w, where padding contributes nothing (it is the real
 * value 0, i.e. q = zero). `weight` is [C_out, C_in / groups, kH, kW] int8; exact int32 arithmetic
 * (|acc| < 2³¹ for any layer of ≤ 66,000 inputs per output).
 */
export function qconv2dAccumulators(
  input: Uint8Array,
  zero: number,
  weight: Int8Array,
  bias: Int32Array,
  g: Conv2dGeometry,
  acc: Int32Array,
): void {
  // Geometry in locals: the objects differ in shape by caller, and the loop must not look them up.
  const { batch, inChannels, inHeight, inWidth, outChannels, outHeight, outWidth, kernelHeight, kernelWidth } = g;
  const { strideHeight, strideWidth, padTop, padLeft, dilationHeight, dilationWidth, groups } = g;
  const inPerGroup = inChannels / groups;
  const outPerGroup = outChannels / groups;
  const taps = kernelHeight * kernelWidth;
  let o = 0;
  for (let n = 0; n < batch; n++) {
    for (let oc = 0; oc < outChannels; oc++) {
      const group = Math.floor(oc / outPerGroup);
      for (let oy = 0; oy < outHeight; oy++) {
        for (let ox = 0; ox < outWidth; ox++) {
          let sum = bias[oc]!;
          for (let ic = 0; ic < inPerGroup; ic++) {
            const plane = (n * inChannels + group * inPerGroup + ic) * inHeight * inWidth;
            const wBase = (oc * inPerGroup + ic) * taps;
            for (let ky = 0; ky < kernelHeight; ky++) {
              const y = oy * strideHeight - padTop + ky * dilationHeight;
              if (y < 0 || y >= inHeight) continue;
              for (let kx = 0; kx < kernelWidth; kx++) {
                const x = ox * strideWidth - padLeft + kx * dilationWidth;
                if (x < 0 || x >= inWidth) continue;
                sum += (input[plane + y * inWidth + x]! - zero) * weight[wBase + ky * kernelWidth + kx]!;
              }
            }
          }
          acc[o++] = sum;
        }
      }
    }
  }
}

/** Int8 fully connected accumulators: acc[n, o] = bias[o] + Σ_i (q[n, i] − zero) · w[o, i]. */
export function qdenseAccumulators(
  input: Uint8Array,
  zero: number,
  weight: Int8Array,
  bias: Int32Array,
  batch: number,
  inFeatures: number,
  outFeatures: number,
  acc: Int32Array,
): void {
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias[o]!;
      for (let i = 0; i < inFeatures; i++) sum += (input[n * inFeatures + i]! - zero) * weight[o * inFeatures + i]!;
      acc[n * outFeatures + o] = sum;
    }
  }
}

/** Max pooling of uint8 values (one scale in and out): padding never wins. */
export function qmaxPool2d(input: Uint8Array, output: Uint8Array, g: Pool2dGeometry): void {
  forEachWindow(g, (inBase, outIndex, y0, y1, x0, x1) => {
    let best = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) best = Math.max(best, input[inBase + y * g.inWidth + x]!);
    }
    output[outIndex] = best;
  });
}

/**
 * Average pooling accumulators: sum[i] = Σ (q − zero) over the window's real pixels (padding is the
 * real value 0), and its divisor (the padded window, or the real pixels).
 */
export function qavgPool2dSums(
  input: Uint8Array,
  zero: number,
  g: Pool2dGeometry,
  countIncludePad: boolean,
  sums: Int32Array,
  divisors: Int32Array,
): void {
  forEachWindow(g, (inBase, outIndex, y0, y1, x0, x1, paddedCount) => {
    let sum = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) sum += input[inBase + y * g.inWidth + x]! - zero;
    }
    sums[outIndex] = sum;
    divisors[outIndex] = countIncludePad ? paddedCount : (y1 - y0) * (x1 - x0);
  });
}

/** Global average pooling sums: sum[plane] = Σ (q − zero) over the plane's `spatial` values. */
export function qglobalAvgPoolSums(
  input: Uint8Array,
  zero: number,
  planes: number,
  spatial: number,
  sums: Int32Array,
): void {
  for (let p = 0; p < planes; p++) {
    let sum = 0;
    for (let s = 0; s < spatial; s++) sum += input[p * spatial + s]! - zero;
    sums[p] = sum;
  }
}
