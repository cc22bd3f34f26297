/**
 * Micro-benchmark of the WASM SIMD training kernels (src/kernels/wasm/assembly/train.ts) at the
 * batch-64 activation shapes of shufflenet_v1_g3_0.5x on 28×28 input, beside the reference
 * kernels on the same input in the same run. Prints the median time, the bandwidth over the
 * bytes each kernel must move at least (read every input once, write every output once), and
 * the speed-up over the reference.
 *
 *   npm run bench:train-kernels            (add -- --quick for fewer repeats)
 */
import {
  avgPool2dBackwardReference,
  globalAvgPoolBackwardReference,
  maxPool2dBackwardReference,
  type Pool2dGeometry,
  batchNormTrainingBackwardReference,
  batchNormTrainingReference,
  reluBackwardReference,
} from '../src/kernels/reference/index.js';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { Random } from '../src/tensor/random.js';
import { normalArrays } from '../test/helpers/kernel-data.js';
import { medianMs } from './timing.js';

const quick = process.argv.includes('--quick');
const randomArray = normalArrays(new Random(1));

const kernels = await WasmKernels.create();
const x = kernels.exports;
const eps = 1e-5;

interface Case {
  name: string;
  shape: string;
  bytes: number;
  fast: () => void;
  reference: () => void;
}

// [batch, channels, pixels]: stage 2 output (120 × 14×14), stage 3 (240 × 7×7), stage 4 (480 × 4×4).
const shapes: [number, number, number][] = [
  [64, 120, 196],
  [64, 240, 49],
  [64, 480, 16],
];

const cases: Case[] = [];
for (const [batch, channels, pixels] of shapes) {
  const count = batch * channels * pixels;
  const shape = `${batch}×${channels}×${pixels}`;
  const input = randomArray(count, 0.5);
  const gradOut = randomArray(count);
  const gamma = randomArray(channels);
  const beta = randomArray(channels);
  const output = new Float32Array(count);
  const gradIn = new Float32Array(count);
  const gradGamma = new Float32Array(channels);
  const gradBeta = new Float32Array(channels);

  const xa = kernels.upload(input);
  const dya = kernels.upload(gradOut);
  const ga = kernels.upload(gamma);
  const ba = kernels.upload(beta);
  const ya = kernels.allocFloats(count);
  const gia = kernels.allocFloats(count);
  const mean = kernels.allocFloats(channels);
  const variance = kernels.allocFloats(channels);
  const gga = kernels.allocFloats(channels);
  const gba = kernels.allocFloats(channels);
  x.batchNormTrainForward(batch, channels, pixels, xa, ga, ba, mean, variance, eps, ya);

  cases.push({
    name: 'batchNormTrainForward',
    shape,
    bytes: 8 * count,
    fast: () => x.batchNormTrainForward(batch, channels, pixels, xa, ga, ba, mean, variance, eps, ya),
    reference: () => batchNormTrainingReference(input, output, gamma, beta, eps, batch, channels, pixels),
  });
  cases.push({
    name: 'batchNormTrainBackward',
    shape,
    bytes: 12 * count,
    fast: () => x.batchNormTrainBackward(batch, channels, pixels, xa, dya, ga, mean, variance, eps, gba, gga, gia, 0),
    reference: () =>
      batchNormTrainingBackwardReference(
        input,
        gradOut,
        gamma,
        eps,
        gradIn,
        gradGamma,
        gradBeta,
        batch,
        channels,
        pixels,
      ),
  });
  cases.push({
    name: 'reluBackward',
    shape,
    bytes: 12 * count,
    fast: () => x.reluBackward(count, xa, dya, gia, 0),
    reference: () => reluBackwardReference(input, gradOut, gradIn),
  });
}

/** 3×3/2 pool with padding 1 over `planes` planes of size×size. */
function poolGeometry(planes: number, size: number): Pool2dGeometry {
  const out = Math.floor((size - 1) / 2) + 1;
  return {
    ...{ batch: 1, channels: planes, inHeight: size, inWidth: size, outHeight: out, outWidth: out },
    ...{ kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2 },
    ...{ padTop: 1, padLeft: 1, padBottom: 1, padRight: 1 },
  };
}

// The stride-2 units' average-pool shortcuts on 28×28 input (small stem), the stem's max pool on
// 64×64 input, and the global pool's gradient before the classifier.
for (const [planes, size] of [
  [64 * 24, 28],
  [64 * 120, 14],
  [64 * 240, 7],
] as const) {
  const g = poolGeometry(planes, size);
  const count = planes * size * size;
  const outCount = planes * g.outHeight * g.outWidth;
  const gradOut = randomArray(outCount);
  const gradIn = new Float32Array(count);
  const goa = kernels.upload(gradOut);
  const gia = kernels.allocFloats(count);
  cases.push({
    name: 'avgPool3x3s2Backward',
    shape: `64×${planes / 64}×${size}×${size}`,
    bytes: 4 * (count + outCount),
    fast: () => x.avgPool3x3s2Backward(planes, size, size, 1, goa, gia, 0),
    reference: () => avgPool2dBackwardReference(gradOut, gradIn, g, true),
  });
}
{
  const [planes, size] = [64 * 24, 32];
  const g = poolGeometry(planes, size);
  const count = planes * size * size;
  const outCount = planes * g.outHeight * g.outWidth;
  const input = randomArray(count);
  const gradOut = randomArray(outCount);
  const gradIn = new Float32Array(count);
  const ia = kernels.upload(input);
  const goa = kernels.upload(gradOut);
  const gia = kernels.allocFloats(count);
  cases.push({
    name: 'maxPool3x3s2Backward',
    shape: `64×24×${size}×${size}`,
    bytes: 4 * (2 * count + outCount),
    fast: () => x.maxPool3x3s2Backward(planes, size, size, ia, goa, gia, 0),
    reference: () => maxPool2dBackwardReference(input, gradOut, gradIn, g),
  });
}
{
  const [planes, pixels] = [64 * 480, 16];
  const gradOut = randomArray(planes);
  const gradIn = new Float32Array(planes * pixels);
  const goa = kernels.upload(gradOut);
  const gia = kernels.allocFloats(planes * pixels);
  cases.push({
    name: 'globalAvgPoolBackward',
    shape: `64×480×${pixels}`,
    bytes: 4 * (planes + planes * pixels),
    fast: () => x.globalAvgPoolBackward(planes, pixels, goa, gia, 0),
    reference: () => globalAvgPoolBackwardReference(gradOut, gradIn, planes, pixels),
  });
}

console.log(`kernels build: ${kernels.variant}; median of repeats, GB/s over the bytes each kernel must move`);
const header = ['kernel', 'shape', 'wasm ms', 'wasm GB/s', 'ref ms', 'ref GB/s', 'speed-up'];
const rows: string[][] = [header];
for (const c of cases) {
  const fastMs = medianMs(c.fast, quick ? 5 : 21);
  const refMs = medianMs(c.reference, quick ? 1 : 5);
  rows.push([
    c.name,
    c.shape,
    fastMs.toFixed(3),
    (c.bytes / fastMs / 1e6).toFixed(1),
    refMs.toFixed(2),
    (c.bytes / refMs / 1e6).toFixed(2),
    `${(refMs / fastMs).toFixed(1)}×`,
  ]);
}
const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows) {
  console.log(row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}
