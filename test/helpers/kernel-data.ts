/**
 * Data and comparisons for the kernel suites and the kernel benchmarks (bench/ imports this file,
 * so it needs no test runner): seeded normal arrays, a convolution geometry from the fields a case
 * sets, and the element-wise tolerance the WASM kernel suites hold kernels to.
 */
import { conv2dReference, type Conv2dGeometry } from '../../src/kernels/reference/index.js';
import type { Random } from '../../src/tensor/random.js';

/**
 * A source of arrays of N(offset, spread²) values drawn from `random` in order.
 *
 * @example
 * const randomArray = normalArrays(new Random(4));
 * const x = randomArray(8); // N(0, 1)
 * const y = randomArray(8, 1000, 0.01); // N(1000, 0.01²)
 */
export function normalArrays(random: Random): (n: number, offset?: number, spread?: number) => Float32Array {
  return (n, offset = 0, spread = 1) => Float32Array.from({ length: n }, () => offset + spread * random.normal());
}

/** A convolution's geometry: batch 1, 1×1 planes and kernel, stride 1, no padding, dilation 1, one group, but for what `c` sets. */
export function conv2dGeometry(
  c: Partial<Conv2dGeometry> & Pick<Conv2dGeometry, 'inChannels' | 'outChannels'>,
): Conv2dGeometry {
  return {
    batch: 1,
    inHeight: 1,
    inWidth: 1,
    outHeight: 1,
    outWidth: 1,
    kernelHeight: 1,
    kernelWidth: 1,
    strideHeight: 1,
    strideWidth: 1,
    padTop: 0,
    padLeft: 0,
    dilationHeight: 1,
    dilationWidth: 1,
    groups: 1,
    ...c,
  };
}

/** The convolution dwconv-3x3p1 computes: depthwise (groups = channels), 3×3, padding 1, `stride`. */
export function depthwiseGeometry(
  batch: number,
  channels: number,
  h: number,
  w: number,
  stride: number,
): Conv2dGeometry {
  return conv2dGeometry({
    ...{ batch, inChannels: channels, outChannels: channels, groups: channels, inHeight: h, inWidth: w },
    ...{ outHeight: Math.floor((h - 1) / stride) + 1, outWidth: Math.floor((w - 1) / stride) + 1 },
    ...{ kernelHeight: 3, kernelWidth: 3, strideHeight: stride, strideWidth: stride, padTop: 1, padLeft: 1 },
  });
}

export interface ConvCase {
  input: Float32Array; // [N, C_in, H, W]
  weight: Float32Array; // [C_out, C_in / groups, kH, kW]
  bias: Float32Array; // [C_out]
  /** What conv2dReference gives for them. */
  expected: Float32Array; // [N, C_out, outH, outW]
}

/** A convolution case for `g`: random input, weight and bias (drawn in that order) and the reference output. */
export function convCase(randomArray: (n: number) => Float32Array, g: Conv2dGeometry): ConvCase {
  const input = randomArray(g.batch * g.inChannels * g.inHeight * g.inWidth);
  const weight = randomArray(g.outChannels * (g.inChannels / g.groups) * g.kernelHeight * g.kernelWidth);
  const bias = randomArray(g.outChannels);
  const expected = new Float32Array(g.batch * g.outChannels * g.outHeight * g.outWidth);
  conv2dReference(input, weight, bias, expected, g);
  return { input, weight, bias, expected };
}

/** |actual − expected| ≤ tolerance · max(|expected|, 1) everywhere; NaN (an unwritten element) fails. */
export function mismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-4): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} vs ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i]!;
    if (!(Math.abs(actual[i]! - e) <= tolerance * Math.max(Math.abs(e), 1))) {
      return `element ${i}: got ${actual[i]} but the reference gives ${e}`;
    }
  }
  return null;
}
