/**
 * The fast int8 kernels (src/kernels/wasm/assembly/int8.ts) against the reference int8 arithmetic
 * (src/kernels/reference/quantized.ts), bit for bit, over sweeps of odd sizes: outputs pre-filled
 * with a sentinel so that an unwritten byte shows.
 */
import { describe, expect, it } from 'vitest';
import type { Conv2dGeometry } from '../src/kernels/reference/conv2d.js';
import {
  activateSteps,
  channelMultipliers,
  clampU8,
  qavgPool2dSums,
  qconv2dAccumulators,
  qdenseAccumulators,
  qglobalAvgPoolSums,
  qmaxPool2d,
  residualSteps,
  roundHalfEven,
  type QParams,
} from '../src/kernels/reference/quantized.js';
import { epilogueParams, Int8Kernels, type Int8Activation } from '../src/kernels/wasm/int8.js';
import {
  packQdenseWeights,
  packQgemm7Weights,
  packQgemmWeights,
  qpackPairStride,
  sevenBitWeights,
} from '../src/kernels/wasm/pack.js';
import { Random } from '../src/tensor/random.js';
import { conv2dGeometry } from './helpers/kernel-data.js';

/** A 1×1 convolution of `k` inputs and `m` outputs over a row of `pixels`. */
const geometry1x1 = (k: number, m: number, pixels: number): Conv2dGeometry =>
  conv2dGeometry({ inChannels: k, outChannels: m, inWidth: pixels, outWidth: pixels });

describe('the int8 kernels module', () => {
  it('loads the relaxed-SIMD build where the engine runs it right, else says why it did not', async () => {
    const kernels = await Int8Kernels.create();
    for (const [a, b, c] of [
      [-1, 1, 0],
      [-128, 127, 5],
      [100, 3, -7],
    ] as const) {
      expect(kernels.exports.qdot4Probe(a, b, c), `${a} ${b} ${c}`).toBe(4 * a * b + c);
    }
    if (process.env.SHUFFLENET_EXPECT_VARIANT === 'relaxed-simd') {
      // Node 20's V8 validates relaxed SIMD under the flag but doubles the 8-bit dot product: the
      // SIMD128 build then runs, and says so. (Chromium runs the relaxed build: int8-browser.test.ts.)
      if (kernels.variant !== 'relaxed-simd') {
        expect(kernels.relaxedRefused).toMatch(/relaxed_dot_i8x16_i7x16_add_s gives -?\d+ for 4 × -?\d+ × \d+/);
      }
    } else {
      expect(kernels.variant).toBe('simd');
      expect(kernels.relaxedRefused).toBeNull();
    }
    const plain = await Int8Kernels.create({ relaxedSimd: false });
    expect(plain.variant).toBe('simd');
  });
});

describe('qgemm-4x8 and qgemm7-4x8 against the reference int8 arithmetic', async () => {
  const kernels = await Int8Kernels.create();
  const rng = new Random(11);
  const activations: Int8Activation[] = [null, 'relu', 'relu6'];
  const cases: {
    k: number;
    m: number;
    pixels: number;
    residual: boolean;
    activation: Int8Activation;
    sevenBit: boolean;
  }[] = [];
  for (const k of [1, 2, 3, 5, 8, 9, 24, 33])
    for (const m of [1, 3, 4, 5, 9])
      for (const pixels of [1, 3, 4, 7, 8, 9, 19, 49])
        cases.push({
          k,
          m,
          pixels,
          residual: rng.int(2) === 1,
          activation: activations[rng.int(3)]!,
          sevenBit: rng.int(2) === 1,
        });

  it(`${cases.length} cases: k 1–33, m 1–9, 1–49 pixels, residual or not, ReLU, ReLU6 or none, permuted outputs; qgemm7 too where the weights are 7-bit (${kernels.variant} build)`, () => {
    let sevenBitCases = 0;
    for (const { k, m, pixels, residual, activation, sevenBit } of cases) {
      const mark = kernels.mark();
      const x: QParams = { scale: Math.fround(0.02 + rng.next() * 0.05), zeroPoint: rng.int(256) };
      const out: QParams = { scale: Math.fround(0.05 + rng.next() * 0.1), zeroPoint: rng.int(256) };
      const pre: QParams = { scale: Math.fround(0.05 + rng.next() * 0.1), zeroPoint: rng.int(256) };
      const res: QParams = { scale: Math.fround(0.05 + rng.next() * 0.1), zeroPoint: rng.int(256) };
      const input = Uint8Array.from({ length: k * pixels }, () => rng.int(256));
      const weight = Int8Array.from({ length: m * k }, () => (sevenBit ? rng.int(128) - 64 : rng.int(255) - 127));
      const bias = Int32Array.from({ length: m }, () => rng.int(40001) - 20000);
      const wScales = Float32Array.from({ length: m }, () => Math.fround(0.001 + rng.next() * 0.01));
      const r = Uint8Array.from({ length: m * pixels }, () => rng.int(256));
      const multipliers = wScales.map((s) => Math.fround(Math.fround(x.scale * s) / (residual ? pre : out).scale));
      // A permutation of the output planes (a fused shuffle), each plane `pixels` bytes apart.
      const order = Array.from({ length: m }, (_, i) => i).sort(() => rng.next() - 0.5);

      const acc = new Int32Array(m * pixels);
      qconv2dAccumulators(input, x.zeroPoint, weight, bias, geometry1x1(k, m, pixels), acc);
      const expected = new Uint8Array(m * pixels);
      for (let o = 0; o < m; o++) {
        for (let p = 0; p < pixels; p++) {
          const i = o * pixels + p;
          const u = residual
            ? residualSteps(acc[i]!, multipliers[o]!, pre, r[i]!, res, out)
            : Math.fround(Math.fround(acc[i]!) * multipliers[o]!);
          const v = activateSteps(u, activation, out.scale);
          expected[order[o]! * pixels + p] = clampU8(roundHalfEven(v) + out.zeroPoint);
        }
      }

      const stride = qpackPairStride(pixels);
      const inAt = kernels.upload(input);
      const packed = kernels.allocBytes(Math.ceil(k / 2) * stride);
      kernels.exports.qpack(inAt, pixels, k, pixels, x.zeroPoint, packed, stride);
      const wAt = kernels.upload(packQgemmWeights(weight, m, k));
      const bAt = kernels.upload(Int32Array.from({ length: Math.ceil(m / 4) * 4 }, (_, i) => bias[i] ?? 0));
      const mAt = kernels.upload(Float32Array.from({ length: Math.ceil(m / 4) * 4 }, (_, i) => multipliers[i] ?? 0));
      const outAt = kernels.allocBytes(m * pixels);
      kernels.u8(outAt, m * pixels).fill(0xa5);
      const resAt = kernels.upload(r);
      const outTable = kernels.upload(Uint32Array.from(order, (o) => outAt + o * pixels));
      const resTable = residual ? kernels.upload(Uint32Array.from({ length: m }, (_, o) => resAt + o * pixels)) : 0;
      const params = kernels.upload(epilogueParams(activation, out, residual ? { pre, res } : undefined));
      kernels.exports.qgemm(Math.ceil(k / 2), m, pixels, wAt, bAt, mAt, packed, stride, outTable, resTable, 0, params);
      const got = kernels.u8(outAt, m * pixels).slice();
      const what = `k ${k}, m ${m}, ${pixels} px, residual ${residual}, ${activation}`;
      expect([...got], what).toEqual([...expected]);
      if (sevenBit) {
        expect(sevenBitWeights(weight)).toBe(true);
        sevenBitCases++;
        const quads = Math.ceil(k / 4);
        // The quad rows, then the per-pixel sums (⌈pixels/8⌉·8 i32: one more stride).
        const packed4 = kernels.allocBytes((quads + 1) * stride);
        kernels.exports.qpack4(inAt, pixels, k, pixels, packed4, stride);
        const w7 = packQgemm7Weights(weight, bias, m, k, x.zeroPoint);
        kernels.u8(outAt, m * pixels).fill(0xa5);
        const [w7At, b7At] = [kernels.upload(w7.weights), kernels.upload(w7.bias)];
        kernels.exports.qgemm7(quads, m, pixels, w7At, b7At, mAt, packed4, stride, outTable, resTable, 0, params);
        expect([...kernels.u8(outAt, m * pixels)], `qgemm7, ${what}`).toEqual([...expected]);
      }
      kernels.release(mark);
    }
    expect(sevenBitCases).toBeGreaterThan(100);
  });
});

describe('qdwconv-3x3p1-wasmsimd against the reference int8 arithmetic', async () => {
  const kernels = await Int8Kernels.create();
  const rng = new Random(12);
  const planes: [number, number][] = [];
  for (const h of [1, 2, 3, 7, 14]) for (const w of [1, 2, 5, 8, 9, 14, 17, 28]) planes.push([h, w]);

  it(`${planes.length * 2} planes from 1×1 to 14×28 at strides 1 and 2, each activation`, () => {
    for (const stride of [1, 2]) {
      for (const [h, w] of planes) {
        const mark = kernels.mark();
        const activation = ([null, 'relu', 'relu6'] as const)[rng.int(3)]!;
        const x: QParams = { scale: 0.03, zeroPoint: rng.int(256) };
        const out: QParams = { scale: Math.fround(0.02 + rng.next() * 0.1), zeroPoint: rng.int(256) };
        const input = Uint8Array.from({ length: h * w }, () => rng.int(256));
        const weight = Int8Array.from({ length: 9 }, () => rng.int(255) - 127);
        const bias = rng.int(20001) - 10000;
        const m = Math.fround(0.0005 + rng.next() * 0.002);
        const oh = Math.floor((h - 1) / stride) + 1;
        const ow = Math.floor((w - 1) / stride) + 1;
        const g: Conv2dGeometry = {
          ...geometry1x1(1, 1, 1),
          inHeight: h,
          inWidth: w,
          outHeight: oh,
          outWidth: ow,
          kernelHeight: 3,
          kernelWidth: 3,
          strideHeight: stride,
          strideWidth: stride,
          padTop: 1,
          padLeft: 1,
        };
        const acc = new Int32Array(oh * ow);
        qconv2dAccumulators(input, x.zeroPoint, weight, Int32Array.of(bias), g, acc);
        const expected = Uint8Array.from(acc, (a) =>
          clampU8(roundHalfEven(activateSteps(Math.fround(Math.fround(a) * m), activation, out.scale)) + out.zeroPoint),
        );
        const inAt = kernels.upload(input);
        const wAt = kernels.upload(Int32Array.from(weight));
        const pw = kernels.exports.qdwPaddedWidth(w);
        const scratch = kernels.allocBytes((h + 2) * pw * 2);
        const outAt = kernels.allocBytes(oh * ow);
        kernels.u8(outAt, oh * ow + 16).fill(0xa5);
        const params = kernels.upload(epilogueParams(activation, out));
        kernels.exports.qdwconv3x3(
          1,
          inAt,
          h,
          w,
          x.zeroPoint,
          wAt,
          kernels.upload(Int32Array.of(bias)),
          kernels.upload(Float32Array.of(m)),
          stride,
          outAt,
          scratch,
          params,
        );
        const got = kernels.u8(outAt, oh * ow + 16).slice();
        kernels.release(mark);
        expect([...got.subarray(0, oh * ow)], `${h}×${w} stride ${stride}, ${activation}`).toEqual([...expected]);
        // Nothing written past the plane's outputs.
        expect([...got.subarray(oh * ow)]).toEqual(new Array<number>(16).fill(0xa5));
      }
    }
  });
});

describe('qpool-3x3s2, qglobalAvgPool and qdense against the reference int8 arithmetic', async () => {
  const kernels = await Int8Kernels.create();
  const rng = new Random(13);

  it('max and average 3×3/2 pools at padding 0 and 1, planes 3×3 to 15×29, at one scale and across scales', () => {
    for (const average of [false, true]) {
      for (const pad of [0, 1]) {
        for (const [h, w] of [
          [3, 3],
          [4, 5],
          [7, 7],
          [8, 9],
          [14, 14],
          [15, 29],
        ] as const) {
          const mark = kernels.mark();
          const x: QParams = { scale: 0.04, zeroPoint: rng.int(256) };
          const out: QParams =
            rng.int(2) === 0 && !average
              ? x
              : { scale: Math.fround(0.01 + rng.next() * 0.05), zeroPoint: rng.int(256) };
          const activation = rng.int(2) === 0 ? null : ('relu' as const);
          const input = Uint8Array.from({ length: h * w }, () => rng.int(256));
          const oh = Math.floor((h + 2 * pad - 3) / 2) + 1;
          const ow = Math.floor((w + 2 * pad - 3) / 2) + 1;
          const g = {
            batch: 1,
            channels: 1,
            inHeight: h,
            inWidth: w,
            outHeight: oh,
            outWidth: ow,
            kernelHeight: 3,
            kernelWidth: 3,
            strideHeight: 2,
            strideWidth: 2,
            padTop: pad,
            padLeft: pad,
            padBottom: pad,
            padRight: pad,
          };
          const n = oh * ow;
          const u = new Float32Array(n);
          let m: number;
          if (average) {
            const sums = new Int32Array(n);
            const divisors = new Int32Array(n);
            qavgPool2dSums(input, x.zeroPoint, g, true, sums, divisors);
            expect(divisors.every((d) => d === 9)).toBe(true);
            m = Math.fround(x.scale / Math.fround(9 * out.scale));
            for (let i = 0; i < n; i++) u[i] = sums[i]! * m;
          } else {
            const best = new Uint8Array(n);
            qmaxPool2d(input, best, g);
            m = Math.fround(x.scale / out.scale);
            for (let i = 0; i < n; i++) u[i] = (best[i]! - x.zeroPoint) * m;
          }
          const expected = Uint8Array.from(u, (v) =>
            clampU8(roundHalfEven(activateSteps(v, activation, out.scale)) + out.zeroPoint),
          );
          const inAt = kernels.upload(input);
          const scratch = kernels.allocBytes((h + 2) * kernels.exports.qdwPaddedWidth(w) * 2);
          const outAt = kernels.allocBytes(n);
          kernels.u8(outAt, n + 16).fill(0xa5);
          const params = kernels.upload(epilogueParams(activation, out));
          kernels.exports.qpool3x3s2(
            1,
            inAt,
            h,
            w,
            x.zeroPoint,
            pad,
            average ? 1 : 0,
            kernels.upload(Float32Array.of(m)),
            outAt,
            scratch,
            params,
          );
          const got = kernels.u8(outAt, n + 16).slice();
          kernels.release(mark);
          expect([...got.subarray(0, n)], `${average ? 'avg' : 'max'} ${h}×${w} pad ${pad}`).toEqual([...expected]);
          expect([...got.subarray(n)]).toEqual(new Array<number>(16).fill(0xa5));
        }
      }
    }
  });

  it('global average pool over planes of 1 to 200 values', () => {
    for (const spatial of [1, 7, 16, 49, 196, 200]) {
      const mark = kernels.mark();
      const planes = 5;
      const x: QParams = { scale: 0.05, zeroPoint: rng.int(256) };
      const out: QParams = { scale: 0.02, zeroPoint: rng.int(256) };
      const input = Uint8Array.from({ length: planes * spatial }, () => rng.int(256));
      const sums = new Int32Array(planes);
      qglobalAvgPoolSums(input, x.zeroPoint, planes, spatial, sums);
      const m = Math.fround(x.scale / Math.fround(spatial * out.scale));
      const expected = Uint8Array.from(sums, (s) =>
        clampU8(roundHalfEven(Math.fround(Math.fround(s) * m)) + out.zeroPoint),
      );
      const outAt = kernels.allocBytes(planes);
      kernels.exports.qglobalAvgPool(
        kernels.upload(input),
        planes,
        spatial,
        x.zeroPoint,
        kernels.upload(Float32Array.of(m)),
        outAt,
        kernels.upload(epilogueParams(null, out)),
      );
      const got = kernels.u8(outAt, planes).slice();
      kernels.release(mark);
      expect([...got], `${spatial} values`).toEqual([...expected]);
    }
  });

  it('fully connected layers with float or uint8 outputs, 1 to 37 inputs', () => {
    for (const inFeatures of [1, 7, 8, 9, 16, 17, 37]) {
      for (const floatOut of [true, false]) {
        const mark = kernels.mark();
        const outFeatures = 11;
        const x: QParams = { scale: 0.05, zeroPoint: rng.int(256) };
        const out: QParams = floatOut ? { scale: 1, zeroPoint: 0 } : { scale: 0.3, zeroPoint: rng.int(256) };
        const input = Uint8Array.from({ length: inFeatures }, () => rng.int(256));
        const weight = Int8Array.from({ length: outFeatures * inFeatures }, () => rng.int(255) - 127);
        const bias = Int32Array.from({ length: outFeatures }, () => rng.int(20001) - 10000);
        const wScales = Float32Array.from({ length: outFeatures }, () => Math.fround(0.001 + rng.next() * 0.01));
        const multipliers = channelMultipliers(x.scale, wScales, out.scale);
        const acc = new Int32Array(outFeatures);
        qdenseAccumulators(input, x.zeroPoint, weight, bias, 1, inFeatures, outFeatures, acc);
        const u = Float32Array.from(acc, (a, o) => Math.fround(a) * multipliers[o]!);
        const expected = floatOut ? u : Uint8Array.from(u, (v) => clampU8(roundHalfEven(v) + out.zeroPoint));
        const outAt = kernels.allocBytes(outFeatures * 4);
        kernels.exports.qdense(
          inFeatures,
          outFeatures,
          kernels.upload(input),
          x.zeroPoint,
          kernels.upload(packQdenseWeights(weight, outFeatures, inFeatures)),
          kernels.upload(bias),
          kernels.upload(multipliers),
          outAt,
          floatOut ? 1 : 0,
          kernels.allocBytes(Math.ceil(inFeatures / 8) * 16),
          kernels.upload(epilogueParams(null, out)),
        );
        const got = floatOut ? kernels.f32(outAt, outFeatures).slice() : kernels.u8(outAt, outFeatures).slice();
        kernels.release(mark);
        expect([...got], `${inFeatures} inputs, ${floatOut ? 'float' : 'uint8'}`).toEqual([...expected]);
      }
    }
  });
});

describe('qim2col against a direct gather', async () => {
  const kernels = await Int8Kernels.create();
  const rng = new Random(14);

  it('patches of odd geometries: kernels 1–5, strides 1–3, padding 0–2, dilation 1–2, bands of rows', () => {
    let cases = 0;
    for (const w of [1, 3, 8, 17, 33, 40]) {
      for (const strideW of [1, 2, 3]) {
        const channels = 1 + rng.int(3);
        const h = 1 + rng.int(9);
        const [kh, kw] = [1 + rng.int(5), 1 + rng.int(5)];
        const [strideH, padTop, padLeft] = [1 + rng.int(3), rng.int(3), rng.int(3)];
        const [dilationH, dilationW] = [1 + rng.int(2), 1 + rng.int(2)];
        const oh = Math.floor((h + 2 * padTop - dilationH * (kh - 1) - 1) / strideH) + 1;
        const ow = Math.floor((w + 2 * padLeft - dilationW * (kw - 1) - 1) / strideW) + 1;
        if (oh < 1 || ow < 1) continue;
        const mark = kernels.mark();
        const zero = rng.int(256);
        const input = Uint8Array.from({ length: channels * h * w }, () => rng.int(256));
        // A band of output rows [oy0, oy1), as the plan asks for one.
        const oy0 = rng.int(oh);
        const oy1 = oy0 + 1 + rng.int(oh - oy0);
        const n = (oy1 - oy0) * ow;
        const expected: number[] = [];
        for (let c = 0; c < channels; c++)
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kw; kx++)
              for (let oy = oy0; oy < oy1; oy++)
                for (let ox = 0; ox < ow; ox++) {
                  const y = oy * strideH - padTop + ky * dilationH;
                  const x = ox * strideW - padLeft + kx * dilationW;
                  expected.push(y < 0 || y >= h || x < 0 || x >= w ? zero : input[(c * h + y) * w + x]!);
                }
        const outAt = kernels.allocBytes(expected.length + 16);
        kernels.u8(outAt, expected.length + 16).fill(0xa5);
        kernels.exports.qim2col(
          kernels.upload(input),
          channels,
          h,
          w,
          kh,
          kw,
          strideH,
          strideW,
          padTop,
          padLeft,
          dilationH,
          dilationW,
          oy0,
          oy1,
          ow,
          zero,
          outAt,
        );
        const got = kernels.u8(outAt, expected.length + 16).slice();
        kernels.release(mark);
        const what = `${channels}×${h}×${w}, k ${kh}×${kw}, s ${strideH},${strideW}, p ${padTop},${padLeft}, d ${dilationH},${dilationW}, rows ${oy0}–${oy1}`;
        expect(expected.length, what).toBe(channels * kh * kw * n);
        expect([...got.subarray(0, expected.length)], what).toEqual(expected);
        expect([...got.subarray(expected.length)], what).toEqual(new Array<number>(16).fill(0xa5));
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(12);
  });
});
