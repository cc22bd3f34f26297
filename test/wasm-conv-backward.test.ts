/**
 * The WASM SIMD convolution backward kernels against the reference gradients over sweeps of odd
 * sizes. Outputs written with `=` are pre-filled with NaN (an unwritten element shows); outputs
 * written with `+=` start from random values (the kernel must really add). Every buffer a kernel
 * reads is followed by NaN, and batch samples are separated by NaN gaps, so a tail that picks up
 * anything past a row shows as well.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { conv2dInputGradReference, conv2dWeightGradReference } from '../src/kernels/reference/index.js';
import type { WasmKernels } from '../src/kernels/wasm/module.js';
import { Random } from '../src/tensor/random.js';
import { describeEachBuild } from './helpers/wasm-builds.js';
import { conv2dGeometry, depthwiseGeometry, normalArrays } from './helpers/kernel-data.js';

let kernels: WasmKernels;

describeEachBuild('', (load) => {
  beforeAll(async () => (kernels = await load()));
  const randomArray = normalArrays(new Random(11));
  const abs = (a: Float32Array): Float32Array => a.map(Math.abs);

  /**
   * |actual − expected| ≤ 1e-4 · max(|expected|, 1e-2 · scale): f32 sums of many products lose
   * precision relative to the sum of their absolute values (`scale`), not to the result, which
   * may cancel to near zero. NaN (an unwritten element) fails.
   */
  function mismatch(actual: Float32Array, expected: Float32Array, scale: Float32Array): string | null {
    if (actual.length !== expected.length) return `length ${actual.length} vs ${expected.length}`;
    for (let i = 0; i < actual.length; i++) {
      const e = expected[i]!;
      const tolerance = 1e-4 * Math.max(Math.abs(e), 1e-2 * scale[i]!, 1e-3);
      if (!(Math.abs(actual[i]! - e) <= tolerance))
        return `element ${i}: got ${actual[i]} but the reference gives ${e}`;
    }
    return null;
  }

  /** Uploads `data` followed by 16 NaN. */
  function uploadNanAfter(data: Float32Array): number {
    const padded = new Float32Array(data.length + 16).fill(NaN);
    padded.set(data);
    return kernels.upload(padded);
  }

  /** Uploads N samples of `sampleFloats` each, `gap` NaN floats between samples and 16 after. */
  function uploadSamples(data: Float32Array, batch: number, sampleFloats: number, gap: number): number {
    const stride = sampleFloats + gap;
    const spaced = new Float32Array(batch * stride + 16).fill(NaN);
    for (let n = 0; n < batch; n++) spaced.set(data.subarray(n * sampleFloats, (n + 1) * sampleFloats), n * stride);
    return kernels.upload(spaced);
  }

  describe('conv-weightgrad-4x2-wasmsimd (dW of a 1×1 convolution over a batch)', () => {
    it('matches conv2dWeightGradReference for odd m, k, pixels and batch, with = and +=', () => {
      const spatials: [number, number][] = [
        [1, 1],
        [1, 3],
        [1, 5],
        [7, 7],
        [13, 13],
        [14, 14],
        [28, 28],
      ];
      const sizes = [1, 3, 5, 8, 17, 30];
      const failures: string[] = [];
      let cases = 0;
      for (const [h, w] of spatials) {
        for (const m of sizes) {
          for (const k of sizes) {
            const batch = 1 + (cases % 3);
            const accumulate = (cases >> 1) % 2;
            cases++;
            const mark = kernels.mark();
            const pixels = h * w;
            const input = randomArray(batch * k * pixels); // [N, k, H, W]
            const gradOut = randomArray(batch * m * pixels); // [N, m, H, W]
            const g = conv2dGeometry({ batch, inChannels: k, outChannels: m, inHeight: h, inWidth: w });
            Object.assign(g, { outHeight: h, outWidth: w });
            const expected = new Float32Array(m * k);
            conv2dWeightGradReference(input, gradOut, expected, g);
            const scale = new Float32Array(m * k);
            conv2dWeightGradReference(abs(input), abs(gradOut), scale, g);
            const initial = accumulate ? randomArray(m * k) : new Float32Array(m * k).fill(NaN);
            if (accumulate) for (let i = 0; i < m * k; i++) expected[i]! += initial[i]!;
            // Sample strides with gaps, as a group's rows inside a larger tensor have.
            const [gapOut, gapIn] = [3 + (cases % 5), 1 + (cases % 7)];
            const gradWeight = kernels.upload(initial);
            kernels.exports.convWeightGrad(
              m,
              k,
              pixels,
              batch,
              uploadSamples(gradOut, batch, m * pixels, gapOut),
              (m * pixels + gapOut) * 4,
              uploadSamples(input, batch, k * pixels, gapIn),
              (k * pixels + gapIn) * 4,
              gradWeight,
              accumulate,
            );
            const problem = mismatch(kernels.f32(gradWeight, m * k).slice(), expected, scale);
            if (problem !== null) failures.push(`m=${m} k=${k} ${h}×${w} N=${batch} acc ${accumulate}: ${problem}`);
            kernels.release(mark);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(cases).toBe(252);
    });

    it('sums a batch larger than one chunk of samples', () => {
      // 64 samples of 2 + 3 rows of 4096 pixels are 5 MB: several chunks, the later ones added.
      const [m, k, pixels, batch] = [2, 3, 4096, 64];
      const input = randomArray(batch * k * pixels);
      const gradOut = randomArray(batch * m * pixels);
      const g = conv2dGeometry({ batch, inChannels: k, outChannels: m, inHeight: 64, inWidth: 64 });
      Object.assign(g, { outHeight: 64, outWidth: 64 });
      const expected = new Float32Array(m * k);
      conv2dWeightGradReference(input, gradOut, expected, g);
      const scale = new Float32Array(m * k);
      conv2dWeightGradReference(abs(input), abs(gradOut), scale, g);
      const mark = kernels.mark();
      const gradWeight = kernels.upload(new Float32Array(m * k).fill(NaN));
      const [gradOutAddress, inputAddress] = [uploadNanAfter(gradOut), uploadNanAfter(input)];
      kernels.exports.convWeightGrad(
        m,
        k,
        pixels,
        batch,
        gradOutAddress,
        m * pixels * 4,
        inputAddress,
        k * pixels * 4,
        gradWeight,
        0,
      );
      expect(mismatch(kernels.f32(gradWeight, m * k).slice(), expected, scale)).toBeNull();
      kernels.release(mark);
    });
  });

  describe('conv-weightgrad-4x2-wasmsimd over an empty batch', () => {
    it('writes zeros (=) or leaves the gradient as it was (+=)', () => {
      const mark = kernels.mark();
      const initial = randomArray(15);
      const gradWeight = kernels.upload(initial);
      const rows = kernels.upload(randomArray(64));
      kernels.exports.convWeightGrad(3, 5, 4, 0, rows, 64, rows, 64, gradWeight, 1);
      expect(kernels.f32(gradWeight, 15).slice()).toEqual(initial);
      kernels.exports.convWeightGrad(3, 5, 0, 2, rows, 64, rows, 64, gradWeight, 0);
      expect(kernels.f32(gradWeight, 15).slice()).toEqual(new Float32Array(15));
      kernels.release(mark);
    });
  });

  const planeSizes: [number, number][] = [
    [1, 1],
    [2, 2],
    [3, 5],
    [5, 3],
    [1, 6],
    [4, 9],
    [7, 7],
    [8, 13],
    [14, 14],
    [15, 15],
  ];

  describe('dwconv-3x3p1-backward-input-wasmsimd at stride 1 and 2', () => {
    it('matches conv2dInputGradReference with groups = channels, with = and +=', () => {
      const failures: string[] = [];
      for (const channels of [1, 3, 5]) {
        for (const [h, w] of planeSizes) {
          for (const stride of [1, 2]) {
            for (const accumulate of [0, 1]) {
              const mark = kernels.mark();
              const g = depthwiseGeometry(1, channels, h, w, stride);
              const gradOut = randomArray(channels * g.outHeight * g.outWidth);
              const weight = randomArray(channels * 9);
              const expected = new Float32Array(channels * h * w);
              conv2dInputGradReference(gradOut, weight, expected, g);
              const scale = new Float32Array(channels * h * w);
              conv2dInputGradReference(abs(gradOut), abs(weight), scale, g);
              const initial = accumulate ? randomArray(expected.length) : new Float32Array(expected.length).fill(NaN);
              if (accumulate) for (let i = 0; i < expected.length; i++) expected[i]! += initial[i]!;
              const gradIn = kernels.upload(initial);
              const scratch = kernels.upload(new Float32Array(kernels.exports.paddedPlaneFloats(h, w)).fill(NaN));
              kernels.exports.dwconv3x3BackwardInput(
                channels,
                h,
                w,
                stride,
                uploadNanAfter(gradOut),
                uploadNanAfter(weight),
                gradIn,
                accumulate,
                scratch,
              );
              const problem = mismatch(kernels.f32(gradIn, expected.length).slice(), expected, scale);
              if (problem !== null)
                failures.push(`C=${channels} ${h}×${w} stride ${stride} acc ${accumulate}: ${problem}`);
              kernels.release(mark);
            }
          }
        }
      }
      expect(failures).toEqual([]);
    });
  });

  describe('dwconv-3x3p1-backward-weight-wasmsimd at stride 1 and 2', () => {
    it('matches conv2dWeightGradReference with groups = channels, accumulating over samples', () => {
      const failures: string[] = [];
      for (const channels of [1, 3, 5]) {
        for (const [h, w] of planeSizes) {
          for (const stride of [1, 2]) {
            const batch = 1 + ((channels + h + stride) % 3);
            const mark = kernels.mark();
            const g = depthwiseGeometry(batch, channels, h, w, stride);
            const inFloats = channels * h * w;
            const outFloats = channels * g.outHeight * g.outWidth;
            const input = randomArray(batch * inFloats);
            const gradOut = randomArray(batch * outFloats);
            const expected = new Float32Array(channels * 9);
            conv2dWeightGradReference(input, gradOut, expected, g);
            const scale = new Float32Array(channels * 9);
            conv2dWeightGradReference(abs(input), abs(gradOut), scale, g);
            const initial = randomArray(channels * 9);
            for (let i = 0; i < expected.length; i++) expected[i]! += initial[i]!;
            const gradWeight = kernels.upload(initial);
            const scratch = kernels.upload(new Float32Array(kernels.exports.paddedPlaneFloats(h, w)).fill(NaN));
            for (let n = 0; n < batch; n++) {
              kernels.exports.dwconv3x3BackwardWeight(
                channels,
                h,
                w,
                stride,
                uploadNanAfter(input.subarray(n * inFloats, (n + 1) * inFloats)),
                uploadNanAfter(gradOut.subarray(n * outFloats, (n + 1) * outFloats)),
                gradWeight,
                scratch,
              );
            }
            const problem = mismatch(kernels.f32(gradWeight, expected.length).slice(), expected, scale);
            if (problem !== null) failures.push(`C=${channels} ${h}×${w} stride ${stride} N=${batch}: ${problem}`);
            kernels.release(mark);
          }
        }
      }
      expect(failures).toEqual([]);
    });
  });
});
