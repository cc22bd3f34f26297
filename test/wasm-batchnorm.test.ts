/**
 * The training-mode batch-norm kernels (reduction and apply passes) against the reference kernels,
 * over odd shapes, a large mean (numerical care), and split batches whose per-part figures are
 * combined as threads combine them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { batchNormTrainingReference, batchStatisticsReference } from '../src/kernels/reference/normalization.js';
import { batchNormTrainingBackwardReference } from '../src/kernels/reference/normalization-backward.js';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { Random } from '../src/tensor/random.js';

let kernels: WasmKernels;
beforeAll(async () => {
  kernels = await WasmKernels.create({ relaxedSimd: false });
});

const random = new Random(21);
const randomArray = (n: number, offset = 0): Float32Array =>
  Float32Array.from({ length: n }, () => offset + random.normal());

/** Largest |a − b| relative to max(|b|, floor). */
function relative(a: Float32Array, b: Float32Array, floor = 1): number {
  let worst = 0;
  let scale = floor;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]!)) return Infinity;
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  }
  return worst / scale;
}

const shapes: [number, number, number][] = [
  [1, 1, 1 * 2],
  [2, 3, 1],
  [3, 5, 7],
  [2, 24, 49],
  [1, 7, 15 * 15],
  [4, 3, 196],
];

describe('batch norm training kernels', () => {
  for (const [n, c, p] of shapes) {
    // A mean of 1000 stored in float32 is off by up to 6e-5: checked where a channel has enough
    // values for σ to dwarf that (2 values can be 0.01 apart).
    for (const offset of n * p >= 7 ? [0, 1000] : [0]) {
      it(`forward and backward on [${n}, ${c}, ${p}] with mean ≈ ${offset}`, () => {
        const k = kernels.exports;
        const mark = kernels.mark();
        const size = n * c * p;
        const x = randomArray(size, offset);
        const gy = randomArray(size);
        const gamma = randomArray(c);
        const beta = randomArray(c);
        const eps = 1e-5;
        const [xa, ya, ga, ba, ma, va, gya, sa, sxa, gxa] = [size, size, c, c, c, c, size, c, c, size].map((f) =>
          kernels.allocFloats(f),
        ) as number[];
        kernels.f32(xa!, size).set(x);
        kernels.f32(ga!, c).set(gamma);
        kernels.f32(ba!, c).set(beta);
        kernels.f32(gya!, size).set(gy);
        kernels.f32(ya!, size).fill(NaN);

        k.batchNormStatistics(n, c, p, xa!, ma!, va!);
        const mean = new Float64Array(c);
        const variance = new Float64Array(c);
        batchStatisticsReference(x, mean, variance, n, c, p);
        expect(relative(kernels.f32(ma!, c), Float32Array.from(mean))).toBeLessThan(1e-6);
        expect(relative(kernels.f32(va!, c), Float32Array.from(variance), 1e-3)).toBeLessThan(1e-4);

        k.batchNormApply(n, c, p, xa!, ga!, ba!, ma!, va!, eps, ya!);
        const y = new Float32Array(size);
        batchNormTrainingReference(x, y, gamma, beta, eps, n, c, p);
        // With a mean of 1000, float32 x itself carries ~6e-5 of absolute error per unit of σ.
        expect(relative(kernels.f32(ya!, size), y)).toBeLessThan(offset ? 1e-3 : 1e-5);

        const gx = new Float32Array(size);
        const gg = new Float32Array(c);
        const gb = new Float32Array(c);
        batchNormTrainingBackwardReference(x, gy, gamma, eps, gx, gg, gb, n, c, p);
        k.batchNormBackwardSums(n, c, p, xa!, ma!, va!, eps, gya!, sa!, sxa!);
        expect(relative(kernels.f32(sa!, c), gb)).toBeLessThan(1e-5);
        expect(relative(kernels.f32(sxa!, c), gg)).toBeLessThan(offset ? 1e-3 : 1e-5);
        for (const accumulate of [0, 1]) {
          const initial = randomArray(size);
          kernels.f32(gxa!, size).set(initial);
          k.batchNormBackwardApply(n, c, p, xa!, ga!, ma!, va!, eps, gya!, sa!, sxa!, n * p, gxa!, accumulate);
          const expected = accumulate ? gx.map((v, i) => v + initial[i]!) : gx;
          expect(relative(kernels.f32(gxa!, size), expected), `accumulate ${accumulate}`).toBeLessThan(
            n * p <= 2 ? 1e-3 : offset ? 1e-3 : 1e-4,
          );
        }
        kernels.release(mark);
      });
    }
  }
});
