/**
 * The WASM SIMD training kernels (src/kernels/wasm/assembly/train.ts and the one-part batch norm
 * of batchnorm.ts) against the reference kernels over sweeps of odd sizes, with `accumulate` off (outputs pre-filled
 * with NaN, so an unwritten element fails) and on (outputs pre-filled with random values).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  addReference,
  avgPool2dBackwardReference,
  batchNormTrainingBackwardReference,
  batchNormTrainingReference,
  batchStatisticsReference,
  globalAvgPoolBackwardReference,
  maxPool2dBackwardReference,
  reluBackwardReference,
  reluReference,
  type Pool2dGeometry,
} from '../src/kernels/reference/index.js';
import type { WasmKernels } from '../src/kernels/wasm/module.js';
import { Random } from '../src/tensor/random.js';
import { describeEachBuild } from './helpers/wasm-builds.js';
import { mismatch, normalArrays } from './helpers/kernel-data.js';

let kernels: WasmKernels;

describeEachBuild('training kernels', (load) => {
  beforeAll(async () => (kernels = await load()));
  const random = new Random(11);
  const randomArray = normalArrays(random);

  /** |actual − expected| ≤ bound(expected) everywhere. */
  function mismatchWithin(
    actual: ArrayLike<number>,
    expected: ArrayLike<number>,
    bound: (expected: number, index: number) => number,
  ): string | null {
    for (let i = 0; i < actual.length; i++) {
      const e = expected[i]!;
      if (!(Math.abs(actual[i]! - e) <= bound(e, i)))
        return `element ${i}: got ${actual[i]} but the reference gives ${e}`;
    }
    return null;
  }

  /** `count` floats in wasm memory: NaN when overwriting, random values when accumulating into them. */
  function output(count: number, accumulate: boolean): { address: number; initial: Float32Array } {
    const initial = accumulate ? randomArray(count) : new Float32Array(count).fill(NaN);
    return { address: kernels.upload(initial), initial };
  }

  /** What an accumulating kernel should leave: initial + reference (or the reference alone). */
  function expectedAfter(reference: Float32Array, initial: Float32Array, accumulate: boolean): Float32Array {
    return accumulate ? reference.map((v, i) => v + initial[i]!) : reference;
  }

  const read = (address: number, count: number): Float32Array => kernels.f32(address, count).slice();

  const bnShapes: [number, number, number][] = [];
  for (const batch of [1, 2, 3]) {
    for (const channels of [1, 5, 24])
      for (const pixels of [1, 3, 49, 196, 225]) bnShapes.push([batch, channels, pixels]);
  }
  // Rows longer than one f32 partial-sum block (256 floats); more images than one flush (every
  // 5 images at 49 pixels); several channel blocks of ~128 KB (16 channels at 2×1000, the last
  // one partial) and more channels than the block's maximum of 512.
  bnShapes.push([2, 3, 2500], [7, 5, 49], [2, 37, 1000], [2, 600, 3]);
  // Data as N(offset, spread²): a large mean against a small spread needs care in the statistics.
  const distributions: [number, number][] = [
    [0, 1],
    [1000, 1],
    [-50, 0.01],
  ];
  const eps = 1e-5;
  // Measured worst case ~4e-6 (∂gamma, ∂beta: sums over up to 5,000 values) where the mean is
  // small against σ. On top of it, the kernels normalise with the f32 mean (as the exchange
  // between threads carries it): x̂ moves by up to 2^-24·|μ|/σ (3e-5 at N(1000, 1), 2e-4 at
  // N(−50, 0.01²)), which `meanShift` adds to each bound, scaled by what multiplies x̂.
  const bnTolerance = 2e-5;
  const meanShift = (mean: number, variance: number): number =>
    (2 * 2 ** -24 * Math.abs(mean)) / Math.sqrt(variance + eps);

  // The one-part kernels (statistics and apply fused per block); test/wasm-batchnorm.test.ts holds
  // the separate passes to them bit for bit, and N parts to one part.
  describe('batchNormTrainForward', () => {
    it('matches batchNormTrainingReference and batchStatisticsReference', () => {
      const failures: string[] = [];
      let cases = 0;
      for (const [batch, channels, pixels] of bnShapes) {
        for (const [offset, spread] of distributions) {
          const mark = kernels.mark();
          const count = batch * channels * pixels;
          const x = randomArray(count, offset, spread);
          const gamma = randomArray(channels);
          const beta = randomArray(channels);
          const expected = new Float32Array(count);
          batchNormTrainingReference(x, expected, gamma, beta, eps, batch, channels, pixels);
          const mean = new Float64Array(channels);
          const variance = new Float64Array(channels);
          batchStatisticsReference(x, mean, variance, batch, channels, pixels);
          // Every other case runs in place (y = x).
          const inPlace = cases++ % 2 === 1;
          const xAddress = kernels.upload(x);
          const y = inPlace ? xAddress : output(count, false).address;
          const meanAddress = output(channels, false).address;
          const varianceAddress = output(channels, false).address;
          kernels.exports.batchNormTrainForward(
            batch,
            channels,
            pixels,
            xAddress,
            kernels.upload(gamma),
            kernels.upload(beta),
            meanAddress,
            varianceAddress,
            eps,
            y,
          );
          const where = `${batch}×${channels}×${pixels} N(${offset}, ${spread}²)${inPlace ? ' in place' : ''}`;
          const problems = [
            mismatchWithin(read(y, count), expected, (e, i) => {
              const c = Math.floor(i / pixels) % channels;
              return bnTolerance * Math.max(Math.abs(e), 1) + Math.abs(gamma[c]!) * meanShift(mean[c]!, variance[c]!);
            }),
            // The mean within its f32 rounding plus 1e-6 of the spread; the variance relative to itself.
            mismatchWithin(read(meanAddress, channels), mean, (e) => 1e-6 * spread + 2 ** -24 * Math.abs(e)),
            mismatchWithin(read(varianceAddress, channels), variance, (e) => 1e-5 * e),
          ];
          problems.forEach((p, i) => {
            if (p !== null) failures.push(`${where}: ${['y', 'mean', 'variance'][i]}: ${p}`);
          });
          kernels.release(mark);
        }
      }
      expect(failures).toEqual([]);
      expect(cases).toBe(bnShapes.length * distributions.length);
    });
  });

  /**
   * Per element, |a·∂y| + |k| + |b·(x − mean)|: the three terms of ∂x = a·∂y + b·(x − mean) + k
   * (a = γ/σ, b = −a·Σ∂y·x̂/(Mσ), k = −a·Σ∂y/M). With a small σ they are far larger than ∂x and
   * cancel, so each f32 rounding in them (the sums cross between the passes as f32, as the
   * exchange carries them) costs a few 2^-24 of this, not of ∂x: 2e-5 of ∂x at σ = 0.01 and M = 6.
   * Also per channel: the shift of x̂ by the f32 mean (meanShift) and Σ|∂y|.
   */
  function gradInTerms(
    x: Float32Array,
    gradOut: Float32Array,
    gamma: Float32Array,
    gradGamma: Float32Array,
    gradBeta: Float32Array,
    batch: number,
    channels: number,
    pixels: number,
  ): { terms: Float64Array; shift: Float64Array; sumAbsDy: Float64Array } {
    const mean = new Float64Array(channels);
    const variance = new Float64Array(channels);
    batchStatisticsReference(x, mean, variance, batch, channels, pixels);
    const m = batch * pixels;
    const terms = new Float64Array(x.length);
    const sumAbsDy = new Float64Array(channels);
    const shift = mean.map((m, c) => meanShift(m, variance[c]!));
    for (let i = 0; i < x.length; i++) {
      const c = Math.floor(i / pixels) % channels;
      sumAbsDy[c] += Math.abs(gradOut[i]!);
      const invStd = 1 / Math.sqrt(variance[c]! + eps);
      const a = Math.abs(gamma[c]!) * invStd;
      const xHat = (x[i]! - mean[c]!) * invStd;
      terms[i] = a * (Math.abs(gradOut[i]!) + Math.abs(gradBeta[c]!) / m + Math.abs(xHat * gradGamma[c]!) / m);
    }
    return { terms, shift, sumAbsDy };
  }

  describe('batchNormTrainBackward', () => {
    it('matches batchNormTrainingBackwardReference, overwriting and accumulating', () => {
      const failures: string[] = [];
      let cases = 0;
      for (const [batch, channels, pixels] of bnShapes) {
        if (batch * pixels < 2) continue; // one value per channel has no batch statistics to train with
        for (const [offset, spread] of distributions) {
          const accumulate = cases % 2 === 1;
          const inPlace = cases++ % 3 === 2 && !accumulate; // gradIn = gradOut
          const mark = kernels.mark();
          const count = batch * channels * pixels;
          const x = randomArray(count, offset, spread);
          const gamma = randomArray(channels);
          const gradOut = randomArray(count);
          const gradIn = new Float32Array(count);
          const gradGamma = new Float32Array(channels);
          const gradBeta = new Float32Array(channels);
          batchNormTrainingBackwardReference(
            x,
            gradOut,
            gamma,
            eps,
            gradIn,
            gradGamma,
            gradBeta,
            batch,
            channels,
            pixels,
          );

          // The statistics come from the forward kernel, as in a training step.
          const xAddress = kernels.upload(x);
          const gammaAddress = kernels.upload(gamma);
          const meanAddress = kernels.allocFloats(channels);
          const varianceAddress = kernels.allocFloats(channels);
          const y = kernels.allocFloats(count);
          const beta = kernels.upload(new Float32Array(channels));
          kernels.exports.batchNormTrainForward(
            batch,
            channels,
            pixels,
            xAddress,
            gammaAddress,
            beta,
            meanAddress,
            varianceAddress,
            eps,
            y,
          );
          const gradOutAddress = kernels.upload(gradOut);
          const into = inPlace ? { address: gradOutAddress, initial: gradOut } : output(count, accumulate);
          const gradGammaAddress = output(channels, false).address;
          const gradBetaAddress = output(channels, false).address;
          kernels.exports.batchNormTrainBackward(
            batch,
            channels,
            pixels,
            xAddress,
            gradOutAddress,
            gammaAddress,
            meanAddress,
            varianceAddress,
            eps,
            gradBetaAddress,
            gradGammaAddress,
            into.address,
            accumulate ? 1 : 0,
          );
          const where = `${batch}×${channels}×${pixels} N(${offset}, ${spread}²)${accumulate ? ' accumulate' : ''}${inPlace ? ' in place' : ''}`;
          const { terms, shift, sumAbsDy } = gradInTerms(
            x,
            gradOut,
            gamma,
            gradGamma,
            gradBeta,
            batch,
            channels,
            pixels,
          );
          const problems = [
            // ∂x's terms move by the mean's shift of x̂ and by a few roundings each.
            mismatchWithin(
              read(into.address, count),
              expectedAfter(gradIn, into.initial, accumulate),
              (e, i) =>
                bnTolerance * Math.max(Math.abs(e), 1) +
                (8 * 2 ** -24 + 2 * shift[Math.floor(i / pixels) % channels]!) * terms[i]!,
            ),
            // ∂γ = Σ ∂y·x̂ moves by the shift times Σ|∂y|.
            mismatchWithin(
              read(gradGammaAddress, channels),
              gradGamma,
              (e, c) => bnTolerance * Math.max(Math.abs(e), 1) + shift[c]! * sumAbsDy[c]!,
            ),
            mismatch(read(gradBetaAddress, channels), gradBeta, bnTolerance),
          ];
          problems.forEach((p, i) => {
            if (p !== null) failures.push(`${where}: ${['gradIn', 'gradGamma', 'gradBeta'][i]}: ${p}`);
          });
          kernels.release(mark);
        }
      }
      expect(failures).toEqual([]);
      expect(cases).toBeGreaterThan(100);
    });
  });

  /** Random values with exact zeros, −0, ties and a NaN among them. */
  function signedValues(n: number): Float32Array {
    const a = randomArray(n);
    for (let i = 0; i < n; i += 5) a[i] = 0;
    for (let i = 2; i < n; i += 11) a[i] = -0;
    if (n > 3) a[3] = NaN;
    return a;
  }
  const counts = [1, 3, 4, 7, 8, 9, 49, 196, 1001];

  describe('element-wise kernels', () => {
    it('relu matches reluReference (NaN and −0 kept), also in place', () => {
      for (const n of counts) {
        for (const inPlace of [false, true]) {
          const mark = kernels.mark();
          const x = signedValues(n);
          const expected = new Float32Array(n);
          reluReference(x, expected);
          const xAddress = kernels.upload(x);
          const y = inPlace ? xAddress : output(n, false).address;
          kernels.exports.relu(n, xAddress, y);
          // Object.is tells −0 from 0 and matches NaN with NaN.
          const actual = read(y, n);
          const differs = Array.from(actual).findIndex((v, i) => !Object.is(v, expected[i]));
          expect(differs, `n=${n}${inPlace ? ' in place' : ''} at ${differs}`).toBe(-1);
          kernels.release(mark);
        }
      }
    });

    it('reluBackward matches reluBackwardReference, overwriting, accumulating and in place', () => {
      for (const n of counts) {
        for (const mode of ['overwrite', 'accumulate', 'in place'] as const) {
          const mark = kernels.mark();
          const x = signedValues(n);
          const gradOut = randomArray(n);
          const expected = new Float32Array(n);
          reluBackwardReference(x, gradOut, expected);
          const gradOutAddress = kernels.upload(gradOut);
          const into =
            mode === 'in place' ? { address: gradOutAddress, initial: gradOut } : output(n, mode === 'accumulate');
          kernels.exports.reluBackward(
            n,
            kernels.upload(x),
            gradOutAddress,
            into.address,
            mode === 'accumulate' ? 1 : 0,
          );
          expect(mismatch(read(into.address, n), expectedAfter(expected, into.initial, mode === 'accumulate'), 0)).toBe(
            null,
          );
          kernels.release(mark);
        }
      }
    });

    it('add and accumulate are exact', () => {
      for (const n of counts) {
        const mark = kernels.mark();
        const a = randomArray(n);
        const b = randomArray(n);
        const sum = new Float32Array(n);
        addReference(a, b, sum);
        const aAddress = kernels.upload(a);
        const bAddress = kernels.upload(b);
        const y = output(n, false).address;
        kernels.exports.add(n, aAddress, bAddress, y);
        expect(mismatch(read(y, n), sum, 0)).toBe(null);
        kernels.exports.add(n, aAddress, bAddress, aAddress); // in place
        expect(mismatch(read(aAddress, n), sum, 0)).toBe(null);

        kernels.exports.accumulate(n, bAddress, y); // y = a + b + b
        expect(
          mismatch(
            read(y, n),
            sum.map((v, i) => v + b[i]!),
            0,
          ),
        ).toBe(null);

        kernels.release(mark);
      }
    });
  });

  function poolGeometry(planes: number, h: number, w: number): Pool2dGeometry {
    return {
      ...{ batch: 1, channels: planes, inHeight: h, inWidth: w },
      ...{ outHeight: Math.floor((h - 1) / 2) + 1, outWidth: Math.floor((w - 1) / 2) + 1 },
      ...{ kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2 },
      ...{ padTop: 1, padLeft: 1, padBottom: 1, padRight: 1 },
    };
  }
  const planeSizes: [number, number][] = [
    [1, 1],
    [1, 6],
    [2, 2],
    [3, 3],
    [5, 4],
    [4, 5],
    [7, 7],
    [8, 9],
    [14, 14],
    [15, 15],
    [28, 28],
  ];

  describe('pool gradients', () => {
    it('avgPool3x3s2Backward matches avgPool2dBackwardReference with and without countIncludePad', () => {
      const failures: string[] = [];
      for (const planes of [1, 5, 24]) {
        for (const [h, w] of planeSizes) {
          for (const includePad of [true, false]) {
            for (const accumulate of [false, true]) {
              const mark = kernels.mark();
              const g = poolGeometry(planes, h, w);
              const gradOut = randomArray(planes * g.outHeight * g.outWidth);
              const expected = new Float32Array(planes * h * w);
              avgPool2dBackwardReference(gradOut, expected, g, includePad);
              const into = output(planes * h * w, accumulate);
              kernels.exports.avgPool3x3s2Backward(
                planes,
                h,
                w,
                includePad ? 1 : 0,
                kernels.upload(gradOut),
                into.address,
                accumulate ? 1 : 0,
              );
              const p = mismatch(read(into.address, planes * h * w), expectedAfter(expected, into.initial, accumulate));
              if (p !== null) failures.push(`${planes}×${h}×${w} includePad=${includePad} acc=${accumulate}: ${p}`);
              kernels.release(mark);
            }
          }
        }
      }
      expect(failures).toEqual([]);
    });

    it('avgPool3x3s2Backward traps on rows wider than its scratch instead of writing past it', () => {
      expect(() => kernels.exports.avgPool3x3s2Backward(0, 1, 2 * 8192 + 1, 1, 0, 0, 0)).toThrow(
        WebAssembly.RuntimeError,
      );
    });

    it('maxPool3x3s2Backward matches maxPool2dBackwardReference on ties, NaN and −∞', () => {
      const failures: string[] = [];
      for (const planes of [1, 5, 24]) {
        for (const [h, w] of planeSizes) {
          for (const accumulate of [false, true]) {
            const mark = kernels.mark();
            const g = poolGeometry(planes, h, w);
            // Few distinct values: most windows have tied maxima; plus a NaN and a run of −∞.
            const input = Float32Array.from({ length: planes * h * w }, () => Math.floor(random.next() * 3));
            if (input.length > 7) input[7] = NaN;
            if (input.length > 20) input.fill(-Infinity, 12, 20);
            const gradOut = randomArray(planes * g.outHeight * g.outWidth);
            const expected = new Float32Array(planes * h * w);
            maxPool2dBackwardReference(input, gradOut, expected, g);
            const into = output(planes * h * w, accumulate);
            kernels.exports.maxPool3x3s2Backward(
              planes,
              h,
              w,
              kernels.upload(input),
              kernels.upload(gradOut),
              into.address,
              accumulate ? 1 : 0,
            );
            const p = mismatch(read(into.address, planes * h * w), expectedAfter(expected, into.initial, accumulate));
            if (p !== null) failures.push(`${planes}×${h}×${w} acc=${accumulate}: ${p}`);
            kernels.release(mark);
          }
        }
      }
      expect(failures).toEqual([]);
    });

    it('maxPool3x3s2Backward on planes too large for its scratch (the scalar path) matches too', () => {
      for (const [h, w] of [
        [300, 301],
        [257, 258],
      ]) {
        const mark = kernels.mark();
        const g = poolGeometry(2, h, w);
        const input = Float32Array.from({ length: 2 * h * w }, () => Math.floor(random.next() * 4));
        input[5] = NaN;
        const gradOut = randomArray(2 * g.outHeight * g.outWidth);
        const expected = new Float32Array(2 * h * w);
        maxPool2dBackwardReference(input, gradOut, expected, g);
        const into = output(2 * h * w, false);
        kernels.exports.maxPool3x3s2Backward(2, h, w, kernels.upload(input), kernels.upload(gradOut), into.address, 0);
        expect(kernels.exports.paddedPlaneFloats(h, w)).toBeGreaterThan(65536);
        expect(mismatch(read(into.address, 2 * h * w), expected)).toBe(null);
        kernels.release(mark);
      }
    });

    it('maxPool3x3s2Backward passes nothing from a window of −∞ only, as the reference', () => {
      const mark = kernels.mark();
      const input = new Float32Array([-Infinity]);
      const into = output(1, false);
      kernels.exports.maxPool3x3s2Backward(
        1,
        1,
        1,
        kernels.upload(input),
        kernels.upload(new Float32Array([5])),
        into.address,
        0,
      );
      const expected = new Float32Array(1);
      maxPool2dBackwardReference(input, new Float32Array([5]), expected, poolGeometry(1, 1, 1));
      expect(read(into.address, 1)).toEqual(expected);
      expect(expected[0]).toBe(0);
      kernels.release(mark);
    });

    it('globalAvgPoolBackward matches globalAvgPoolBackwardReference', () => {
      for (const planes of [1, 5, 24, 72]) {
        for (const pixels of [1, 3, 49, 196, 225]) {
          for (const accumulate of [false, true]) {
            const mark = kernels.mark();
            const gradOut = randomArray(planes);
            const expected = new Float32Array(planes * pixels);
            globalAvgPoolBackwardReference(gradOut, expected, planes, pixels);
            const into = output(planes * pixels, accumulate);
            kernels.exports.globalAvgPoolBackward(
              planes,
              pixels,
              kernels.upload(gradOut),
              into.address,
              accumulate ? 1 : 0,
            );
            const p = mismatch(read(into.address, planes * pixels), expectedAfter(expected, into.initial, accumulate));
            expect(p, `${planes}×${pixels} acc=${accumulate}`).toBe(null);
            kernels.release(mark);
          }
        }
      }
    });
  });
});
