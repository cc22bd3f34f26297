/**
 * Every WASM SIMD kernel against the reference kernels over sweeps of odd sizes. Outputs are
 * pre-filled with NaN so that any element a kernel forgets to write shows up as a mismatch.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  avgPool2dReference,
  channelShuffleReference,
  globalAvgPoolReference,
  linearReference,
  maxPool2dReference,
  type Pool2dGeometry,
} from '../src/kernels/reference/index.js';
import type { WasmKernels } from '../src/kernels/wasm/module.js';
import { packDenseWeights, packGemmWeights, padBias } from '../src/kernels/wasm/pack.js';
import { Random } from '../src/tensor/random.js';
import { describeEachBuild } from './helpers/wasm-builds.js';
import { conv2dGeometry, convCase, depthwiseGeometry, mismatch, normalArrays } from './helpers/kernel-data.js';

let kernels: WasmKernels;

describeEachBuild('', (load) => {
  beforeAll(async () => (kernels = await load()));
  const randomArray = normalArrays(new Random(4));

  /** Allocates `count` floats in wasm memory filled with NaN. */
  function nanOutput(count: number): number {
    const address = kernels.allocFloats(count);
    kernels.f32(address, count).fill(NaN);
    return address;
  }

  function applyRelu(a: Float32Array): void {
    for (let i = 0; i < a.length; i++) if (a[i]! < 0) a[i] = 0;
  }

  describe('gemm-4x8-wasmsimd (grouped and dense 1×1 convolution, NCHW)', () => {
    const spatials: [number, number][] = [
      [1, 1],
      [3, 5],
      [7, 7],
      [4, 2],
      [2, 9],
    ];
    it('matches conv2dReference for groups 1..8, odd channel counts, with shuffle remap, residual and ReLU', () => {
      const failures: string[] = [];
      let cases = 0;
      for (const groups of [1, 2, 3, 4, 5, 8]) {
        for (const inPerGroup of [1, 3, 4, 7, 9]) {
          for (const outPerGroup of [1, 3, 4, 5, 9]) {
            for (const [h, w] of spatials) {
              const variant = cases++ % 4; // 0 plain, 1 ReLU, 2 shuffle + ReLU, 3 residual + ReLU
              const mark = kernels.mark();
              const inChannels = groups * inPerGroup;
              const outChannels = groups * outPerGroup;
              const pixels = h * w;
              const geometry = conv2dGeometry({
                inChannels,
                outChannels,
                inHeight: h,
                inWidth: w,
                outHeight: h,
                outWidth: w,
                groups,
              });
              const { input, weight, bias, expected } = convCase(randomArray, geometry);
              const residual = randomArray(outChannels * pixels);
              if (variant === 3) for (let i = 0; i < expected.length; i++) expected[i]! += residual[i]!;
              if (variant !== 0) applyRelu(expected);
              let reference = expected;
              if (variant === 2) {
                reference = new Float32Array(expected.length);
                channelShuffleReference(expected, reference, 1, outChannels, pixels, groups);
              }

              const inAddress = kernels.upload(input);
              const resAddress = kernels.upload(residual);
              const outAddress = nanOutput(outChannels * pixels);
              const n = outPerGroup;
              // Plane of output channel c: the paper's shuffle sends channel i·n + j to j·g + i.
              const plane = (c: number): number => (variant === 2 ? (c % n) * groups + Math.floor(c / n) : c);
              for (let g = 0; g < groups; g++) {
                const rows = weight.subarray(g * outPerGroup * inPerGroup, (g + 1) * outPerGroup * inPerGroup);
                const packed = kernels.upload(packGemmWeights(rows, outPerGroup, inPerGroup));
                const packedBias = kernels.upload(padBias(bias.subarray(g * outPerGroup), outPerGroup, 4));
                const outTable = Uint32Array.from(
                  { length: outPerGroup },
                  (_, r) => outAddress + plane(g * n + r) * pixels * 4,
                );
                const resTable = Uint32Array.from(
                  { length: outPerGroup },
                  (_, r) => resAddress + (g * n + r) * pixels * 4,
                );
                kernels.exports.gemm4x8(
                  inPerGroup,
                  outPerGroup,
                  pixels,
                  packed,
                  packedBias,
                  inAddress + g * inPerGroup * pixels * 4,
                  pixels * 4,
                  kernels.upload(outTable),
                  variant === 3 ? kernels.upload(resTable) : 0,
                  0,
                  variant === 0 ? 0 : 1,
                );
              }
              const problem = mismatch(kernels.f32(outAddress, outChannels * pixels).slice(), reference);
              if (problem !== null)
                failures.push(
                  `g=${groups} ${inPerGroup}→${outPerGroup}/group ${h}×${w} variant ${variant}: ${problem}`,
                );
              kernels.release(mark);
            }
          }
        }
      }
      expect(failures).toEqual([]);
      expect(cases).toBe(750);
    });
  });

  const planeSizes: [number, number][] = [
    [1, 1],
    [1, 6],
    [2, 2],
    [3, 3],
    [5, 4],
    [7, 7],
    [8, 9],
    [13, 11],
    [14, 14],
  ];

  describe('dwconv-3x3p1-wasmsimd at stride 1 and 2', () => {
    it('matches conv2dReference with groups = channels', () => {
      const failures: string[] = [];
      for (const channels of [1, 3, 5]) {
        for (const [h, w] of planeSizes) {
          for (const stride of [1, 2]) {
            for (const relu of [0, 1]) {
              const mark = kernels.mark();
              const { input, weight, bias, expected } = convCase(
                randomArray,
                depthwiseGeometry(1, channels, h, w, stride),
              );
              if (relu) applyRelu(expected);
              const out = nanOutput(expected.length);
              const scratch = kernels.allocFloats(kernels.exports.paddedPlaneFloats(h, w));
              kernels.exports.dwconv3x3(
                channels,
                h,
                w,
                stride,
                kernels.upload(input),
                kernels.upload(weight),
                kernels.upload(bias),
                out,
                relu,
                scratch,
              );
              const problem = mismatch(kernels.f32(out, expected.length).slice(), expected);
              if (problem !== null) failures.push(`C=${channels} ${h}×${w} stride ${stride} relu ${relu}: ${problem}`);
              kernels.release(mark);
            }
          }
        }
      }
      expect(failures).toEqual([]);
    });
  });

  describe('dwconv-kxk and maxpool-kxk (the zoo: 5×5 and 7×7 depthwise, any max pool at stride 1 or 2)', () => {
    it('depthwise k×k matches conv2dReference with groups = channels, over sizes, strides and paddings', () => {
      const failures: string[] = [];
      for (const k of [2, 5, 7]) {
        for (const pad of [0, 1, Math.floor(k / 2)].filter((p, i, all) => all.indexOf(p) === i && p < k)) {
          for (const stride of [1, 2]) {
            for (const [h, w] of [
              [1, 1],
              [5, 9],
              [8, 8],
              [11, 6],
            ] as const) {
              const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
              const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
              if (oh < 1 || ow < 1) continue;
              const mark = kernels.mark();
              const channels = 3;
              const g = conv2dGeometry({
                ...{ inChannels: channels, outChannels: channels, groups: channels, inHeight: h, inWidth: w },
                ...{ outHeight: oh, outWidth: ow, kernelHeight: k, kernelWidth: k },
                ...{ strideHeight: stride, strideWidth: stride, padTop: pad, padLeft: pad },
              });
              const { input, weight, bias, expected } = convCase(randomArray, g);
              const act = (h + k) % 2; // with and without ReLU over the sweep
              if (act) applyRelu(expected);
              const out = nanOutput(expected.length);
              const scratch = kernels.allocFloats(kernels.exports.paddedPlaneFloatsBy(h, w, pad));
              // prettier-ignore
              kernels.exports.dwconvKxK(channels, h, w, k, stride, pad, kernels.upload(input), kernels.upload(weight), kernels.upload(bias), out, act, scratch);
              const problem = mismatch(kernels.f32(out, expected.length).slice(), expected);
              if (problem !== null) failures.push(`k ${k} pad ${pad} stride ${stride} ${h}×${w}: ${problem}`);
              kernels.release(mark);
            }
          }
        }
      }
      expect(failures).toEqual([]);
    });

    it('max pool k×k matches maxPool2dReference with one-sided padding (ceil_mode) and NaN', () => {
      const failures: string[] = [];
      for (const [kh, kw] of [
        [3, 3],
        [2, 2],
        [3, 2],
      ] as const) {
        for (const stride of [1, 2]) {
          for (const [top, left, bottom, right] of [
            [0, 0, 0, 0],
            [1, 1, 1, 1],
            [0, 0, 1, 1],
            [1, 0, 0, 1],
          ]) {
            for (const [h, w] of [
              [1, 2],
              [6, 7],
              [9, 10],
            ] as const) {
              const oh = Math.floor((h + top + bottom - kh) / stride) + 1;
              const ow = Math.floor((w + left + right - kw) / stride) + 1;
              if (oh < 1 || ow < 1 || top >= kh || bottom >= kh || left >= kw || right >= kw) continue;
              const mark = kernels.mark();
              const channels = 2;
              const g: Pool2dGeometry = {
                ...{ batch: 1, channels, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow },
                ...{ kernelHeight: kh, kernelWidth: kw, strideHeight: stride, strideWidth: stride },
                ...{ padTop: top, padLeft: left, padBottom: bottom, padRight: right },
              };
              const input = randomArray(channels * h * w);
              input[(h * w) >> 1] = NaN;
              const expected = new Float32Array(channels * oh * ow);
              maxPool2dReference(input, expected, g);
              const out = nanOutput(expected.length);
              const scratch = kernels.allocFloats(kernels.exports.poolPlaneFloats(oh, ow, kh, kw, stride));
              // prettier-ignore
              kernels.exports.maxPoolKxK(channels, h, w, kh, kw, stride, top, left, oh, ow, kernels.upload(input), out, 0, scratch);
              const got = kernels.f32(out, expected.length);
              const bad = expected.findIndex((e, i) => !(Object.is(e, got[i]) || e === got[i]));
              if (bad >= 0) {
                failures.push(
                  `${kh}×${kw}/${stride} pads ${[top, left, bottom, right]} ${h}×${w}: ${got[bad]} vs ${expected[bad]}`,
                );
              }
              kernels.release(mark);
            }
          }
        }
      }
      expect(failures).toEqual([]);
    });
  });

  function poolGeometry(channels: number, h: number, w: number, pad = 1): Pool2dGeometry {
    return {
      ...{ batch: 1, channels, inHeight: h, inWidth: w },
      ...{ outHeight: Math.floor((h + 2 * pad - 3) / 2) + 1, outWidth: Math.floor((w + 2 * pad - 3) / 2) + 1 },
      ...{ kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2 },
      ...{ padTop: pad, padLeft: pad, padBottom: pad, padRight: pad },
    };
  }

  describe('maxpool-3x3s2 and avgpool-3x3s2 (count_include_pad) wasmsimd, padding 1 and 0', () => {
    it('match the reference pools', () => {
      const failures: string[] = [];
      for (const channels of [1, 2, 5]) {
        for (const [h, w] of planeSizes) {
          for (const pad of [1, 0]) {
            if (pad === 0 && (h < 3 || w < 3)) continue;
            for (const average of [0, 1]) {
              for (const relu of [0, 1]) {
                const mark = kernels.mark();
                const g = poolGeometry(channels, h, w, pad);
                const input = randomArray(channels * h * w);
                const expected = new Float32Array(channels * g.outHeight * g.outWidth);
                if (average) avgPool2dReference(input, expected, g, true);
                else maxPool2dReference(input, expected, g);
                if (relu) applyRelu(expected);
                const out = nanOutput(expected.length);
                const scratch = kernels.allocFloats(kernels.exports.paddedPlaneFloats(h, w));
                // prettier-ignore
                kernels.exports.pool3x3s2(channels, h, w, pad, average, kernels.upload(input), out, relu, scratch);
                const problem = mismatch(kernels.f32(out, expected.length).slice(), expected);
                const what = `C=${channels} ${h}×${w} pad ${pad} ${average ? 'avg' : 'max'} relu ${relu}`;
                if (problem !== null) failures.push(`${what}: ${problem}`);
                kernels.release(mark);
              }
            }
          }
        }
      }
      expect(failures).toEqual([]);
    });

    it('max pooling propagates NaN exactly where the reference does, over odd sizes', () => {
      const failures: string[] = [];
      for (const [h, w] of planeSizes) {
        const mark = kernels.mark();
        const channels = 3;
        const g = poolGeometry(channels, h, w);
        const input = randomArray(channels * h * w);
        for (let i = 0; i < input.length; i += 7) input[i] = NaN; // scattered NaNs
        const expected = new Float32Array(channels * g.outHeight * g.outWidth);
        maxPool2dReference(input, expected, g);
        const out = nanOutput(expected.length);
        const scratch = kernels.allocFloats(kernels.exports.paddedPlaneFloats(h, w));
        kernels.exports.pool3x3s2(channels, h, w, 1, 0, kernels.upload(input), out, 0, scratch);
        const actual = kernels.f32(out, expected.length).slice();
        const nanOf = (a: Float32Array): string => Array.from(a, (v) => (Number.isNaN(v) ? 'N' : '.')).join('');
        if (nanOf(actual) !== nanOf(expected))
          failures.push(`${h}×${w}: NaN at ${nanOf(actual)}, reference ${nanOf(expected)}`);
        const finite = (a: Float32Array): Float32Array => a.map((v) => (Number.isNaN(v) ? 0 : v));
        const problem = mismatch(finite(actual), finite(expected));
        if (problem !== null) failures.push(`${h}×${w}: ${problem}`);
        kernels.release(mark);
      }
      expect(failures).toEqual([]);
    });

    it('max pooling propagates NaN and never picks the padding', () => {
      const mark = kernels.mark();
      const input = new Float32Array([-5, -6, -7, NaN]); // 2×2, all negative but one NaN
      const out = nanOutput(1);
      kernels.exports.pool3x3s2(1, 2, 2, 1, 0, kernels.upload(input), out, 0, kernels.allocFloats(64));
      expect(Number.isNaN(kernels.f32(out, 1)[0])).toBe(true);
      kernels.exports.pool3x3s2(
        1,
        2,
        2,
        1,
        0,
        kernels.upload(new Float32Array([-5, -6, -7, -8])),
        out,
        0,
        kernels.allocFloats(64),
      );
      expect(kernels.f32(out, 1)[0]).toBe(-5);
      kernels.release(mark);
    });
  });

  describe('conv3x3s2p1 stem (im2col by bands of rows + gemm-4x8)', () => {
    it('matches conv2dReference for 1..3 input channels and odd sizes', () => {
      const failures: string[] = [];
      for (const inChannels of [1, 3]) {
        for (const outChannels of [1, 5, 24]) {
          for (const [h, w] of planeSizes) {
            const mark = kernels.mark();
            const oh = Math.floor((h - 1) / 2) + 1;
            const ow = Math.floor((w - 1) / 2) + 1;
            const pixels = oh * ow;
            const { input, weight, bias, expected } = convCase(
              randomArray,
              conv2dGeometry({
                inChannels,
                outChannels,
                inHeight: h,
                inWidth: w,
                outHeight: oh,
                outWidth: ow,
                kernelHeight: 3,
                kernelWidth: 3,
                strideHeight: 2,
                strideWidth: 2,
                padTop: 1,
                padLeft: 1,
              }),
            );
            applyRelu(expected);
            const k = inChannels * 9;
            const padded = kernels.allocFloats(inChannels * kernels.exports.paddedPlaneFloats(h, w));
            kernels.exports.padPlanes(inChannels, h, w, kernels.upload(input), padded);
            const out = nanOutput(expected.length);
            const table = kernels.upload(Uint32Array.from({ length: outChannels }, (_, c) => out + c * pixels * 4));
            const weights = kernels.upload(packGemmWeights(weight, outChannels, k));
            const packedBias = kernels.upload(padBias(bias, outChannels, 4));
            // Bands of `band` output rows (the last one shorter), each an im2col and a GEMM.
            const band = 1 + (h % 3);
            const col = kernels.allocFloats(k * band * ow + 4);
            for (let oy0 = 0; oy0 < oh; oy0 += band) {
              const oy1 = Math.min(oy0 + band, oh);
              const bandPixels = (oy1 - oy0) * ow;
              kernels.exports.im2col3x3s2(inChannels, h, w, padded, oy0, oy1, col);
              kernels.exports.gemm4x8(
                k,
                outChannels,
                bandPixels,
                weights,
                packedBias,
                col,
                bandPixels * 4,
                table,
                0,
                oy0 * ow * 4,
                1,
              );
            }
            const problem = mismatch(kernels.f32(out, expected.length).slice(), expected);
            if (problem !== null) failures.push(`${inChannels}→${outChannels} ${h}×${w}: ${problem}`);
            kernels.release(mark);
          }
        }
      }
      expect(failures).toEqual([]);
    });
  });

  describe('im2col (any kernel, stride, padding, dilation, groups) + gemm-4x8', () => {
    it('matches conv2dReference over a sweep of odd geometries, by bands of rows', () => {
      const failures: string[] = [];
      let cases = 0;
      for (const [kh, kw] of [
        [1, 1],
        [1, 3],
        [2, 2],
        [3, 3],
        [5, 4],
        [11, 11],
      ] as [number, number][]) {
        for (const stride of [1, 2, 3, 4]) {
          for (const groups of [1, 2, 3]) {
            const variant = cases++;
            const pad: [number, number, number, number] = [
              variant % 3,
              (variant >> 1) % 3,
              (variant >> 2) % 2,
              variant % 2,
            ];
            const dilation = kh <= 3 && variant % 4 === 3 ? 2 : 1;
            const [h, w] = [9 + (variant % 5), 13 - (variant % 4)];
            const inPerGroup = 1 + (variant % 3);
            const outPerGroup = 1 + (variant % 6);
            const [inChannels, outChannels] = [groups * inPerGroup, groups * outPerGroup];
            const oh = Math.floor((h + pad[0] + pad[2] - dilation * (kh - 1) - 1) / stride) + 1;
            const ow = Math.floor((w + pad[1] + pad[3] - dilation * (kw - 1) - 1) / stride) + 1;
            if (oh < 1 || ow < 1) continue;
            const mark = kernels.mark();
            const { input, weight, bias, expected } = convCase(
              randomArray,
              conv2dGeometry({
                ...{ inChannels, outChannels, groups, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow },
                ...{ kernelHeight: kh, kernelWidth: kw, strideHeight: stride, strideWidth: stride },
                ...{ padTop: pad[0], padLeft: pad[1], dilationHeight: dilation, dilationWidth: dilation },
              }),
            );
            const k = inPerGroup * kh * kw;
            const band = 1 + (variant % 3);
            const inAddress = kernels.upload(input);
            const out = nanOutput(expected.length);
            const col = kernels.allocFloats(k * band * ow + 4);
            for (let g = 0; g < groups; g++) {
              const rows = weight.subarray(g * outPerGroup * k, (g + 1) * outPerGroup * k);
              const packed = kernels.upload(packGemmWeights(rows, outPerGroup, k));
              const packedBias = kernels.upload(padBias(bias.subarray(g * outPerGroup), outPerGroup, 4));
              const table = kernels.upload(
                Uint32Array.from({ length: outPerGroup }, (_, r) => out + (g * outPerGroup + r) * oh * ow * 4),
              );
              for (let oy0 = 0; oy0 < oh; oy0 += band) {
                const oy1 = Math.min(oy0 + band, oh);
                const bandPixels = (oy1 - oy0) * ow;
                // prettier-ignore
                kernels.exports.im2col(inPerGroup, h, w, kh, kw, stride, stride, pad[0], pad[1], dilation, dilation, ow, oy0, oy1, inAddress + g * inPerGroup * h * w * 4, col);
                // prettier-ignore
                kernels.exports.gemm4x8(k, outPerGroup, bandPixels, packed, packedBias, col, bandPixels * 4, table, 0, oy0 * ow * 4, 0);
              }
            }
            const problem = mismatch(kernels.f32(out, expected.length).slice(), expected);
            const what = `${kh}×${kw}/${stride} pad ${pad.join(',')} dilation ${dilation} g=${groups} ${h}×${w}`;
            if (problem !== null) failures.push(`${what}: ${problem}`);
            kernels.release(mark);
          }
        }
      }
      expect(failures).toEqual([]);
      expect(cases).toBe(72);
    });
  });

  describe('global average pool and dense-8 (FC) wasmsimd', () => {
    it('global average pool matches the reference', () => {
      const failures: string[] = [];
      for (const channels of [1, 3, 7]) {
        for (const spatial of [1, 3, 7, 8, 9, 49, 50]) {
          const mark = kernels.mark();
          const input = randomArray(channels * spatial);
          const expected = new Float32Array(channels);
          globalAvgPoolReference(input, expected, 1, channels, spatial);
          const out = nanOutput(channels);
          kernels.exports.globalAvgPool(channels, spatial, kernels.upload(input), out);
          const problem = mismatch(kernels.f32(out, channels).slice(), expected);
          if (problem !== null) failures.push(`C=${channels} spatial ${spatial}: ${problem}`);
          kernels.release(mark);
        }
      }
      expect(failures).toEqual([]);
    });

    it('the FC layer matches linearReference (with and without ReLU)', () => {
      const failures: string[] = [];
      for (const inFeatures of [1, 3, 17, 960]) {
        for (const outFeatures of [1, 7, 8, 13, 1000]) {
          const mark = kernels.mark();
          const x = randomArray(inFeatures);
          const weight = randomArray(outFeatures * inFeatures);
          const bias = randomArray(outFeatures);
          const expected = new Float32Array(outFeatures);
          linearReference(x, weight, bias, expected, 1, inFeatures, outFeatures);
          const relu = (inFeatures + outFeatures) % 2; // both epilogues over the sweep
          if (relu) applyRelu(expected);
          const out = nanOutput(Math.ceil(outFeatures / 8) * 8);
          kernels.exports.dense8(
            inFeatures,
            outFeatures,
            kernels.upload(x),
            kernels.upload(packDenseWeights(weight, outFeatures, inFeatures)),
            kernels.upload(padBias(bias, outFeatures, 8)),
            out,
            relu,
          );
          const problem = mismatch(kernels.f32(out, outFeatures).slice(), expected);
          if (problem !== null) failures.push(`${inFeatures}→${outFeatures}: ${problem}`);
          kernels.release(mark);
        }
      }
      expect(failures).toEqual([]);
    });
  });

  describe('activations (every epilogue code), on special and random values', () => {
    const specials = [
      -1e30,
      -1e4,
      -100,
      -88,
      -87,
      -20,
      -6,
      -3.5,
      -3,
      -2.9,
      -1,
      -1e-8,
      0,
      -0,
      1e-8,
      0.5,
      1,
      2.9,
      3,
      3.1,
      5.9,
      6,
      6.1,
      20,
      87,
      88,
      100,
      1e4,
      1e30,
      Infinity,
      -Infinity,
      NaN,
    ];
    const hard = (x: number): number => Math.min(Math.max(x / 6 + 0.5, 0), 1);
    const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
    const expected: Record<number, (x: number) => number> = {
      1: (x) => (x < 0 ? 0 : x),
      2: (x) => (x < 0 ? 0 : x > 6 ? 6 : x),
      3: (x) => x * hard(x),
      4: hard,
      5: sigmoid,
      6: (x) => x * sigmoid(x), // NaN at −∞ (−∞ · 0), as the reference's x · sigmoid(x)
    };
    it('match their definitions to a few ulp, NaN staying NaN; the add and channel-scale kernels too', () => {
      const failures: string[] = [];
      const values = Float32Array.from([...specials, ...randomArray(61).map((v) => v * 8)]);
      const x = kernels.upload(values);
      for (const [code, f] of Object.entries(expected)) {
        const out = nanOutput(values.length);
        kernels.exports.activation(values.length, x, out, Number(code));
        const got = kernels.f32(out, values.length);
        values.forEach((v, i) => {
          const want = Math.fround(f(v));
          const ok = Number.isNaN(want)
            ? Number.isNaN(got[i]!)
            : Math.abs(got[i]! - want) <= 4e-7 * Math.max(Math.abs(want), 1) || got[i] === want;
          if (!ok) failures.push(`code ${code} at ${v}: ${got[i]} (expected ${want})`);
        });
      }
      // a + b then ReLU6, over a length that ends in a partial vector.
      const b = kernels.upload(Float32Array.from(values, (v) => -v / 2));
      const sum = nanOutput(values.length);
      kernels.exports.addActivation(values.length, x, b, sum, 2);
      kernels.f32(sum, values.length).forEach((got, i) => {
        const want = Math.fround(expected[2]!(Math.fround(values[i]! + Math.fround(-values[i]! / 2))));
        if (!(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)) || got === want)) {
          failures.push(`add+relu6 at ${values[i]}: ${got} (expected ${want})`);
        }
      });
      // x[c, p] · s[c] over 3 planes of 7.
      const planes = Float32Array.from(randomArray(21));
      const scale = Float32Array.from([0.5, -2, 0]);
      const scaled = nanOutput(21);
      kernels.exports.scaleChannels(3, 7, kernels.upload(planes), kernels.upload(scale), scaled);
      kernels.f32(scaled, 21).forEach((got, i) => {
        if (got !== Math.fround(planes[i]! * scale[Math.floor(i / 7)]!)) failures.push(`scaleChannels ${i}: ${got}`);
      });
      expect(failures).toEqual([]);
    });
  });
});
