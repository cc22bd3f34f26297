/**
 * Which activation layout? Times the NCHW kernels of the library against NHWC variants of the
 * same micro-kernels (bench/layout/nhwc.ts, compiled here) on ShuffleNet 1× g=3 shapes, after
 * checking both against the reference. `npm run bench:layout`.
 */
import asc from 'assemblyscript/asc';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { packGemmWeights, padBias } from '../src/kernels/wasm/pack.js';
import { Random } from '../src/tensor/random.js';
import { conv2dGeometry, convCase, depthwiseGeometry, normalArrays } from '../test/helpers/kernel-data.js';
import { medianMs } from './timing.js';

interface NhwcExports {
  memory: WebAssembly.Memory;
  gemmNhwc4x8(...args: number[]): void;
  dwNhwc3x3(...args: number[]): void;
}

const outputs = new Map<string, Uint8Array>();
const result = await asc.main(
  [
    'bench/layout/nhwc.ts',
    '--enable',
    'simd',
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--use',
    'abort=',
    '-o',
    'nhwc.wasm',
  ],
  { writeFile: (name: string, contents: string | Uint8Array) => void outputs.set(name, contents as Uint8Array) },
);
if (result.error) throw result.error;
const nhwcModule = await WebAssembly.compile(outputs.get('nhwc.wasm')! as Uint8Array<ArrayBuffer>);
const nhwc = (await WebAssembly.instantiate(nhwcModule, {})).exports as unknown as NhwcExports;
nhwc.memory.grow(512); // 32 MB
let top = 1024;
const allocate = (floats: number): number => {
  const at = top;
  top = (top + floats * 4 + 64 + 15) & ~15;
  return at;
};
const put = (data: Float32Array): number => {
  const at = allocate(data.length);
  new Float32Array(nhwc.memory.buffer, at, data.length).set(data);
  return at;
};

const kernels = await WasmKernels.create();
const randomArray = normalArrays(new Random(2));
const toNhwc = (a: Float32Array, c: number, s: number): Float32Array => {
  const t = new Float32Array(a.length);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < s; p++) t[p * c + ch] = a[ch * s + p]!;
  return t;
};
const check = (what: string, got: Float32Array, want: Float32Array): void => {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= 1e-4 * Math.max(1, Math.abs(want[i]!)))) {
      let bad = 0;
      for (let j = 0; j < want.length; j++)
        if (!(Math.abs(got[j]! - want[j]!) <= 1e-4 * Math.max(1, Math.abs(want[j]!)))) bad++;
      throw new Error(
        `${what}: element ${i} is ${got[i]} but the reference gives ${want[i]} (${bad} of ${want.length} differ)`,
      );
    }
  }
};

const rows: string[][] = [['layer', 'MMAC', 'NCHW ms', 'NCHW GMAC/s', 'NHWC ms', 'NHWC GMAC/s']];
const report = (name: string, macs: number, nchwMs: number, nhwcMs: number): void => {
  rows.push([
    name,
    (macs / 1e6).toFixed(2),
    nchwMs.toFixed(3),
    (macs / nchwMs / 1e6).toFixed(2),
    nhwcMs.toFixed(3),
    (macs / nhwcMs / 1e6).toFixed(2),
  ]);
};

function pointwise(inC: number, outC: number, groups: number, size: number): void {
  const pixels = size * size;
  const [k, m] = [inC / groups, outC / groups];
  const { input, weight, bias, expected } = convCase(
    randomArray,
    conv2dGeometry({
      inChannels: inC,
      outChannels: outC,
      groups,
      inHeight: size,
      inWidth: size,
      outHeight: size,
      outWidth: size,
    }),
  );
  for (let i = 0; i < expected.length; i++) expected[i] = Math.max(expected[i]!, 0);

  const mark = kernels.mark();
  const inAddress = kernels.upload(input);
  const out = kernels.allocFloats(outC * pixels);
  const groupsNchw = Array.from({ length: groups }, (_, g) => ({
    w: kernels.upload(packGemmWeights(weight.subarray(g * m * k, (g + 1) * m * k), m, k)),
    b: kernels.upload(padBias(bias.subarray(g * m), m, 4)),
    t: kernels.upload(Uint32Array.from({ length: m }, (_, r) => out + (g * m + r) * pixels * 4)),
  }));
  const runNchw = (): void => {
    groupsNchw.forEach((p, g) =>
      kernels.exports.gemm4x8(k, m, pixels, p.w, p.b, inAddress + g * k * pixels * 4, pixels * 4, p.t, 0, 0, 1),
    );
  };
  runNchw();
  check('NCHW gemm', kernels.f32(out, outC * pixels).slice(), expected);

  const mark2 = top;
  const inNhwc = put(toNhwc(input, inC, pixels));
  // Rows padded by 8 floats: the measurement kernel stores whole 8-channel blocks.
  const outRow = outC + 8;
  const outNhwc = allocate(outRow * pixels);
  const mPad = Math.ceil(m / 8) * 8;
  const groupsNhwc = Array.from({ length: groups }, (_, g) => {
    const packed = new Float32Array(mPad * k); // [m/8][k][8]
    for (let r = 0; r < m; r++)
      for (let kk = 0; kk < k; kk++)
        packed[Math.floor(r / 8) * k * 8 + kk * 8 + (r % 8)] = weight[(g * m + r) * k + kk]!;
    return { w: put(packed), b: put(padBias(bias.subarray(g * m), m, 8)) };
  });
  // Groups in order, so that the next group overwrites the 8-wide overhang of the previous one.
  const runNhwc = (): void => {
    for (let g = 0; g < groups; g++) {
      nhwc.gemmNhwc4x8(
        k,
        m,
        pixels,
        groupsNhwc[g]!.w,
        groupsNhwc[g]!.b,
        inNhwc + g * k * 4,
        inC * 4,
        outNhwc + g * m * 4,
        outRow * 4,
      );
    }
  };
  runNhwc();
  const rowsOut = new Float32Array(nhwc.memory.buffer, outNhwc, outRow * pixels);
  const dense = new Float32Array(outC * pixels);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < outC; c++) dense[c * pixels + p] = rowsOut[p * outRow + c]!;
  check('NHWC gemm', dense, expected);
  const repeats = 101;
  report(
    `gconv ${inC}→${outC} g${groups} ${size}²`,
    pixels * outC * k,
    medianMs(runNchw, repeats),
    medianMs(runNhwc, repeats),
  );
  kernels.release(mark);
  top = mark2;
}

function depthwise(channels: number, size: number, stride: number): void {
  const o = Math.floor((size - 1) / stride) + 1;
  const { input, weight, bias, expected } = convCase(randomArray, depthwiseGeometry(1, channels, size, size, stride));

  const mark = kernels.mark();
  const addresses = [kernels.upload(input), kernels.upload(weight), kernels.upload(bias)] as const;
  const out = kernels.allocFloats(channels * o * o);
  const scratch = kernels.allocFloats(kernels.exports.paddedPlaneFloats(size, size));
  const runNchw = (): void => kernels.exports.dwconv3x3(channels, size, size, stride, ...addresses, out, 0, scratch);
  runNchw();
  check('NCHW dwconv', kernels.f32(out, expected.length).slice(), expected);

  const mark2 = top;
  const inNhwc = put(toNhwc(input, channels, size * size));
  const packed = new Float32Array(channels * 10); // [C/4][10][4]
  for (let c = 0; c < channels; c++) {
    for (let t = 0; t < 9; t++) packed[Math.floor(c / 4) * 40 + t * 4 + (c % 4)] = weight[c * 9 + t]!;
    packed[Math.floor(c / 4) * 40 + 36 + (c % 4)] = bias[c]!;
  }
  const w = put(packed);
  const outNhwc = allocate(channels * o * o);
  const zeros = put(new Float32Array(channels));
  const runNhwc = (): void => nhwc.dwNhwc3x3(channels, size, size, stride, inNhwc, w, outNhwc, zeros);
  runNhwc();
  check(
    'NHWC dwconv',
    toNhwc(new Float32Array(nhwc.memory.buffer, outNhwc, expected.length).slice(), o * o, channels),
    expected,
  );
  const repeats = 201;
  report(
    `dwconv ${channels} s${stride} ${size}²`,
    channels * o * o * 9,
    medianMs(runNchw, repeats),
    medianMs(runNhwc, repeats),
  );
  kernels.release(mark);
  top = mark2;
}

pointwise(24, 60, 1, 56);
pointwise(60, 216, 3, 28);
pointwise(240, 60, 3, 28);
pointwise(60, 240, 3, 28);
pointwise(480, 120, 3, 14);
pointwise(120, 480, 3, 14);
pointwise(960, 240, 3, 7);
pointwise(240, 960, 3, 7);
depthwise(60, 56, 2);
depthwise(60, 28, 1);
depthwise(120, 28, 2);
depthwise(120, 14, 1);
depthwise(240, 14, 2);
depthwise(240, 7, 1);

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows)
  console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
