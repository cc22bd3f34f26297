/**
 * The training-mode batch-norm kernel family (src/kernels/wasm/assembly/batchnorm.ts), on both
 * builds, over odd shapes (channels not multiples of 4, 1..15 pixels, batch 1..3, and several
 * channel blocks):
 * - the passes with no exchange (statistics → apply, sums → backward apply) give bit for bit what
 *   the one-part kernels give (batchNormTrainForward / batchNormTrainBackward, which
 *   test/wasm-train-kernels.test.ts holds to the reference kernels);
 * - a batch split into parts whose figures are exchanged as src/train/parallel.ts exchanges them
 *   (Chan's parallel variance over the parts' f32 mean and variance; sums added) gives the one-part
 *   result within the tolerance the exchange's f32 mean explains (see `meanError`).
 */
import { beforeAll, expect, it } from 'vitest';
import type { WasmKernels } from '../src/kernels/wasm/module.js';
import { Random } from '../src/tensor/random.js';
import { describeEachBuild } from './helpers/wasm-builds.js';
import { normalArrays } from './helpers/kernel-data.js';

const eps = 1e-5;
const ULP = 2 ** -24;
/** Data as N(offset, spread²): a large mean against a small spread is the hard case. */
const distributions: [number, number][] = [
  [0, 1],
  [1000, 1],
  [-50, 0.01],
];

const shapes: [number, number, number][] = [];
for (const batch of [1, 2, 3]) {
  for (const channels of [1, 3, 6, 13])
    for (const pixels of [1, 2, 3, 4, 5, 7, 9, 15]) shapes.push([batch, channels, pixels]);
}
// Rows longer than a partial-sum block, several channel blocks (the last one partial), more
// channels than a block's maximum of 512, and more images than one flush of the partial sums.
shapes.push([2, 37, 1000], [2, 600, 3], [7, 5, 49]);

let kernels: WasmKernels;

describeEachBuild('batch norm kernel family', (load) => {
  beforeAll(async () => (kernels = await load()));
  const randomArray = normalArrays(new Random(21));
  const read = (address: number, count: number): Float32Array => kernels.f32(address, count).slice();
  /** `count` floats of NaN in wasm memory, so an unwritten element shows. */
  const nan = (count: number): number => kernels.upload(new Float32Array(count).fill(NaN));

  /** The first index where a and b differ as bits (NaN = NaN), or null. */
  function firstDifference(a: Float32Array, b: Float32Array): string | null {
    const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
    const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
    for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) return `element ${i}: ${a[i]} vs ${b[i]}`;
    return a.length === b.length ? null : `length ${a.length} vs ${b.length}`;
  }

  it('the passes with no exchange give bit for bit what the one-part kernels give', () => {
    const failures: string[] = [];
    let cases = 0;
    for (const [batch, channels, pixels] of shapes) {
      for (const [offset, spread] of distributions) {
        const mark = kernels.mark();
        const size = batch * channels * pixels;
        const k = kernels.exports;
        const x = kernels.upload(randomArray(size, offset, spread));
        const gamma = kernels.upload(randomArray(channels));
        const beta = kernels.upload(randomArray(channels));
        const gradOut = kernels.upload(randomArray(size));
        const accumulate = cases++ % 2;
        const initial = randomArray(size);
        // [mean, variance, y, sumDy, sumDyXhat, gradIn] of each way.
        const run = (fused: boolean): Float32Array[] => {
          const [mean, variance, y, sumDy, sumDyXhat] = [channels, channels, channels, size, channels, channels].map(
            nan,
          ) as [number, number, number, number, number, number];
          const gradIn = kernels.upload(initial);
          if (fused) {
            k.batchNormTrainForward(batch, channels, pixels, x, gamma, beta, mean, variance, eps, y);
            k.batchNormTrainBackward(
              batch,
              channels,
              pixels,
              x,
              gradOut,
              gamma,
              mean,
              variance,
              eps,
              sumDy,
              sumDyXhat,
              gradIn,
              accumulate,
            );
          } else {
            k.batchNormStatistics(batch, channels, pixels, x, mean, variance);
            k.batchNormApply(batch, channels, pixels, x, gamma, beta, mean, variance, eps, y);
            k.batchNormBackwardSums(batch, channels, pixels, x, gradOut, mean, variance, eps, sumDy, sumDyXhat);
            const count = batch * pixels;
            k.batchNormBackwardApply(
              batch,
              channels,
              pixels,
              x,
              gradOut,
              gamma,
              mean,
              variance,
              eps,
              sumDy,
              sumDyXhat,
              count,
              gradIn,
              accumulate,
            );
          }
          return [mean, variance, y, sumDy, sumDyXhat, gradIn].map((a, i) =>
            read(a, i === 2 || i === 5 ? size : channels),
          );
        };
        const fused = run(true);
        const passes = run(false);
        const names = ['mean', 'variance', 'y', 'sumDy', 'sumDyXhat', 'gradIn'];
        fused.forEach((f, i) => {
          const d = firstDifference(passes[i]!, f);
          if (d !== null) failures.push(`${batch}×${channels}×${pixels} N(${offset}, ${spread}²): ${names[i]}: ${d}`);
          if (f.some(Number.isNaN)) failures.push(`${batch}×${channels}×${pixels}: ${names[i]} has NaN (unwritten)`);
        });
        kernels.release(mark);
      }
    }
    expect(failures).toEqual([]);
    expect(cases).toBe(shapes.length * distributions.length);
  });

  /**
   * Parts of a batch as src/train/parallel.ts runs them: each part's statistics; the exchange
   * (Chan's formula over the parts' f32 mean and variance, in f64, in part order; rounded to f32);
   * each part's apply; each part's sums; the exchange (sums added
   * in part order, rounded to f32); each part's backward apply over the whole batch's count.
   */
  function runParts(
    parts: number[],
    channels: number,
    pixels: number,
    data: { x: Float32Array; gamma: Float32Array; beta: Float32Array; gradOut: Float32Array },
  ): { y: Float32Array; gradIn: Float32Array; sumDy: Float32Array; sumDyXhat: Float32Array } {
    const k = kernels.exports;
    const mark = kernels.mark();
    const total = parts.reduce((a, b) => a + b, 0);
    const size = total * channels * pixels;
    const x = kernels.upload(data.x);
    const gradOut = kernels.upload(data.gradOut);
    const gamma = kernels.upload(data.gamma);
    const beta = kernels.upload(data.beta);
    const y = nan(size);
    const gradIn = nan(size);
    const perPart = parts.map(() => ({
      mean: nan(channels),
      variance: nan(channels),
      sumDy: nan(channels),
      sumDyXhat: nan(channels),
    }));
    const offsets = parts.map((_, t) => parts.slice(0, t).reduce((a, b) => a + b, 0) * channels * pixels * 4);
    parts.forEach((n, t) =>
      k.batchNormStatistics(n, channels, pixels, x + offsets[t]!, perPart[t]!.mean, perPart[t]!.variance),
    );
    const means = perPart.map((p) => read(p.mean, channels));
    const variances = perPart.map((p) => read(p.variance, channels));
    const mean = new Float32Array(channels);
    const variance = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      parts.forEach((n, t) => (sum += n * means[t]![c]!));
      const mu = sum / total;
      let m2 = 0;
      parts.forEach((n, t) => (m2 += n * (variances[t]![c]! + (means[t]![c]! - mu) ** 2)));
      mean[c] = mu;
      variance[c] = m2 / total;
    }
    for (const p of perPart) {
      kernels.f32(p.mean, channels).set(mean);
      kernels.f32(p.variance, channels).set(variance);
    }
    parts.forEach((n, t) => {
      const p = perPart[t]!;
      k.batchNormApply(n, channels, pixels, x + offsets[t]!, gamma, beta, p.mean, p.variance, eps, y + offsets[t]!);
      k.batchNormBackwardSums(
        n,
        channels,
        pixels,
        x + offsets[t]!,
        gradOut + offsets[t]!,
        p.mean,
        p.variance,
        eps,
        p.sumDy,
        p.sumDyXhat,
      );
    });
    const sumDy = new Float32Array(channels);
    const sumDyXhat = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      let a = 0;
      let b = 0;
      for (const p of perPart) {
        a += kernels.f32(p.sumDy, channels)[c]!;
        b += kernels.f32(p.sumDyXhat, channels)[c]!;
      }
      sumDy[c] = a;
      sumDyXhat[c] = b;
    }
    parts.forEach((n, t) => {
      const p = perPart[t]!;
      kernels.f32(p.sumDy, channels).set(sumDy);
      kernels.f32(p.sumDyXhat, channels).set(sumDyXhat);
      const o = offsets[t]!;
      k.batchNormBackwardApply(
        n,
        channels,
        pixels,
        x + o,
        gradOut + o,
        gamma,
        p.mean,
        p.variance,
        eps,
        p.sumDy,
        p.sumDyXhat,
        total * pixels,
        gradIn + o,
        0,
      );
    });
    const result = { y: read(y, size), gradIn: read(gradIn, size), sumDy, sumDyXhat };
    kernels.release(mark);
    return result;
  }

  /**
   * The error of the exchanged mean against σ, per channel: each part's mean crosses as f32
   * (off by up to half an ulp of |μ|) and the combined mean is rounded to f32 again, where one
   * part's is rounded once: x − mean differs by up to ~2^-23·|μ|, relative to σ
   * ε = 2^-23·|μ|/σ, plus a few 2^-24 for the f32 variances in Chan's formula.
   */
  function meanError(mean: number, variance: number): number {
    return (2 * ULP * Math.abs(mean)) / Math.sqrt(variance + eps) + 4 * ULP;
  }

  it('N parts with the exchange match one part within the f32 rounding of the exchanged mean', () => {
    const failures: string[] = [];
    let cases = 0;
    let worst = 0; // the largest error as a share of its bound, so a bound far too loose shows too
    const splits: [number[], number, number][] = [
      [[1, 1], 5, 7],
      [[2, 1], 3, 15],
      [[1, 1, 1], 13, 9],
      [[1, 2], 6, 1],
      [[3, 2, 2], 5, 49],
      [[1, 1], 37, 1000],
    ];
    for (const [parts, channels, pixels] of splits) {
      for (const [offset, spread] of distributions) {
        cases++;
        const total = parts.reduce((a, b) => a + b, 0);
        const size = total * channels * pixels;
        const data = {
          x: randomArray(size, offset, spread),
          gamma: randomArray(channels),
          beta: randomArray(channels),
          gradOut: randomArray(size),
        };
        const one = runParts([total], channels, pixels, data);
        // One part's statistics, for the bounds: the one-part kernels hold them to the reference.
        const mark = kernels.mark();
        const [m, v] = [nan(channels), nan(channels)];
        kernels.exports.batchNormStatistics(total, channels, pixels, kernels.upload(data.x), m, v);
        const mean = read(m, channels);
        const variance = read(v, channels);
        kernels.release(mark);
        const many = runParts(parts, channels, pixels, data);
        const where = `parts ${parts.join('+')} × ${channels} × ${pixels} N(${offset}, ${spread}²)`;
        const check = (
          what: string,
          actual: Float32Array,
          expected: Float32Array,
          bound: (i: number) => number,
        ): void => {
          for (let i = 0; i < expected.length; i++) {
            const error = Math.abs(actual[i]! - expected[i]!);
            const b = bound(i);
            worst = Math.max(worst, error / b);
            if (!(error <= b)) {
              failures.push(`${where}: ${what}[${i}]: ${actual[i]} vs one part's ${expected[i]} (bound ${b})`);
              return;
            }
          }
        };
        const channelOf = (i: number): number => Math.floor(i / pixels) % channels;
        const invStd = (c: number): number => 1 / Math.sqrt(variance[c]! + eps);
        const xHat = (i: number): number => (data.x[i]! - mean[channelOf(i)]!) * invStd(channelOf(i));
        const e = (c: number): number => meanError(mean[c]!, variance[c]!);
        // y = γ·x̂ + β: x̂ moves by ε (the mean) and by |x̂|·ε (σ), plus y's own f32 rounding.
        check('y', many.y, one.y, (i) => {
          const c = channelOf(i);
          return Math.abs(data.gamma[c]!) * e(c) * (1 + Math.abs(xHat(i))) + 4 * ULP * Math.max(Math.abs(one.y[i]!), 1);
        });
        // Σ∂y: the parts' f32 sums added; Σ∂y·x̂: x̂ moves by (1 + |x̂|)·ε, so by ε·Σ|∂y|(1 + |x̂|).
        const absSums = (weight: (i: number) => number): Float64Array => {
          const s = new Float64Array(channels);
          for (let i = 0; i < size; i++) s[channelOf(i)] += Math.abs(data.gradOut[i]!) * weight(i);
          return s;
        };
        const dyAbs = absSums(() => 1);
        const dyXhatAbs = absSums((i) => 1 + Math.abs(xHat(i)));
        check('sumDy', many.sumDy, one.sumDy, (c) => 4 * parts.length * ULP * dyAbs[c]!);
        check(
          'sumDyXhat',
          many.sumDyXhat,
          one.sumDyXhat,
          (c) => e(c) * dyXhatAbs[c]! + 4 * parts.length * ULP * dyAbs[c]!,
        );
        // ∂x = a·∂y + b·(x − mean) + k: its terms (γ/σ·(|∂y| + |Σ∂y|/M + |x̂·Σ∂y·x̂|/M)) move by
        // the same relative ε as the sums and x̂ do, and each f32 rounding in them costs 2^-24 of them.
        const m2 = total * pixels;
        check('gradIn', many.gradIn, one.gradIn, (i) => {
          const c = channelOf(i);
          const a = Math.abs(data.gamma[c]!) * invStd(c);
          const terms =
            a * (Math.abs(data.gradOut[i]!) + dyAbs[c]! / m2 + ((1 + Math.abs(xHat(i))) * dyXhatAbs[c]!) / m2);
          return terms * (2 * e(c) + 8 * ULP);
        });
      }
    }
    expect(failures).toEqual([]);
    expect(cases).toBe(splits.length * distributions.length);
    // The bounds are derived, not fitted: the worst case uses a fair share of them.
    expect(worst).toBeGreaterThan(0.01);
  });
});
