/**
 * Micro-benchmark of the WASM SIMD kernels on the layer shapes of ShuffleNet 1× g=3 at 224×224,
 * beside the reference kernel in the same run. Prints achieved GMAC/s (median of repeats); for
 * the pools, a "MAC" is one window element (9 per output).
 *
 *   npm run bench:kernels            (add -- --quick for fewer repeats)
 */
import {
  avgPool2dReference,
  conv2dReference,
  globalAvgPoolReference,
  linearReference,
  maxPool2dReference,
} from '../src/kernels/reference/index.js';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { packDenseWeights, packGemmWeights, padBias } from '../src/kernels/wasm/pack.js';
import { Random } from '../src/tensor/random.js';
import { conv2dGeometry, depthwiseGeometry, normalArrays } from '../test/helpers/kernel-data.js';
import { medianMs } from './timing.js';

const quick = process.argv.includes('--quick');
const randomArray = normalArrays(new Random(1));

interface Case {
  name: string;
  kernel: string;
  macs: number;
  fast: () => void;
  reference: () => void;
}

const kernels = await WasmKernels.create();
const x = kernels.exports;

function pointwise(name: string, inChannels: number, outChannels: number, groups: number, size: number): Case {
  const pixels = size * size;
  const k = inChannels / groups;
  const m = outChannels / groups;
  const input = randomArray(inChannels * pixels);
  const weight = randomArray(outChannels * k);
  const bias = randomArray(outChannels);
  const inAddress = kernels.upload(input);
  const out = kernels.allocFloats(outChannels * pixels);
  const perGroup = Array.from({ length: groups }, (_, g) => ({
    weights: kernels.upload(packGemmWeights(weight.subarray(g * m * k, (g + 1) * m * k), m, k)),
    bias: kernels.upload(padBias(bias.subarray(g * m), m, 4)),
    // Output remapped by the paper's shuffle, as the plan does.
    table: kernels.upload(Uint32Array.from({ length: m }, (_, r) => out + (r * groups + g) * pixels * 4)),
    input: inAddress + g * k * pixels * 4,
  }));
  const expected = new Float32Array(outChannels * pixels);
  const g = conv2dGeometry({
    inChannels,
    outChannels,
    groups,
    inHeight: size,
    inWidth: size,
    outHeight: size,
    outWidth: size,
  });
  return {
    name,
    kernel: 'gemm-4x8-wasmsimd',
    macs: pixels * outChannels * k,
    fast: () => {
      for (const p of perGroup) x.gemm4x8(k, m, pixels, p.weights, p.bias, p.input, pixels * 4, p.table, 0, 0, 1);
    },
    reference: () => conv2dReference(input, weight, bias, expected, g),
  };
}

function depthwise(name: string, channels: number, size: number, stride: number): Case {
  const out = Math.floor((size - 1) / stride) + 1;
  const input = randomArray(channels * size * size);
  const weight = randomArray(channels * 9);
  const bias = randomArray(channels);
  const addresses = [kernels.upload(input), kernels.upload(weight), kernels.upload(bias)] as const;
  const output = kernels.allocFloats(channels * out * out);
  const scratch = kernels.allocFloats(x.paddedPlaneFloats(size, size));
  const expected = new Float32Array(channels * out * out);
  const g = depthwiseGeometry(1, channels, size, size, stride);
  return {
    name,
    kernel: `dwconv-3x3s${stride}p1-wasmsimd`,
    macs: channels * out * out * 9,
    fast: () => x.dwconv3x3(channels, size, size, stride, ...addresses, output, 0, scratch),
    reference: () => conv2dReference(input, weight, bias, expected, g),
  };
}

function stem(): Case {
  const [c, size, oc] = [3, 224, 24];
  const out = 112;
  const input = randomArray(c * size * size);
  const weight = randomArray(oc * c * 9);
  const bias = randomArray(oc);
  const inAddress = kernels.upload(input);
  const band = 4; // output rows per im2col band, as the plan does
  const col = kernels.allocFloats(c * 9 * band * out + 4);
  const padded = kernels.allocFloats(c * x.paddedPlaneFloats(size, size));
  const weights = kernels.upload(packGemmWeights(weight, oc, c * 9));
  const packedBias = kernels.upload(padBias(bias, oc, 4));
  const output = kernels.allocFloats(oc * out * out);
  const table = kernels.upload(Uint32Array.from({ length: oc }, (_, i) => output + i * out * out * 4));
  const expected = new Float32Array(oc * out * out);
  const g = conv2dGeometry({
    ...{ inChannels: c, outChannels: oc, inHeight: size, inWidth: size, outHeight: out, outWidth: out },
    ...{ kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1 },
  });
  return {
    name: 'conv1 3→24 3×3/2 224²',
    kernel: 'im2col-3x3s2p1 + gemm-4x8',
    macs: oc * c * 9 * out * out,
    fast: () => {
      x.padPlanes(c, size, size, inAddress, padded);
      for (let oy = 0; oy < out; oy += band) {
        const rows = Math.min(band, out - oy);
        x.im2col3x3s2(c, size, size, padded, oy, oy + rows, col);
        x.gemm4x8(c * 9, oc, rows * out, weights, packedBias, col, rows * out * 4, table, 0, oy * out * 4, 1);
      }
    },
    reference: () => conv2dReference(input, weight, bias, expected, g),
  };
}

function pool(name: string, channels: number, size: number, average: boolean): Case {
  const out = Math.floor((size - 1) / 2) + 1;
  const input = randomArray(channels * size * size);
  const inAddress = kernels.upload(input);
  const output = kernels.allocFloats(channels * out * out);
  const scratch = kernels.allocFloats(x.paddedPlaneFloats(size, size));
  const expected = new Float32Array(channels * out * out);
  const g = {
    ...{ batch: 1, channels, inHeight: size, inWidth: size, outHeight: out, outWidth: out, kernelHeight: 3 },
    ...{ kernelWidth: 3, strideHeight: 2, strideWidth: 2, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1 },
  };
  return {
    name,
    kernel: average ? 'avgpool-3x3s2p1-wasmsimd' : 'maxpool-3x3s2p1-wasmsimd',
    macs: channels * out * out * 9,
    fast: () => x.pool3x3s2(channels, size, size, 1, average ? 1 : 0, inAddress, output, 0, scratch),
    reference: () => (average ? avgPool2dReference(input, expected, g, true) : maxPool2dReference(input, expected, g)),
  };
}

function globalPool(): Case {
  const [channels, spatial] = [960, 49];
  const input = randomArray(channels * spatial);
  const inAddress = kernels.upload(input);
  const output = kernels.allocFloats(channels);
  const expected = new Float32Array(channels);
  return {
    name: 'global avg pool 960@7²',
    kernel: 'gavgpool-wasmsimd',
    macs: channels * spatial,
    fast: () => x.globalAvgPool(channels, spatial, inAddress, output),
    reference: () => globalAvgPoolReference(input, expected, 1, channels, spatial),
  };
}

function fc(): Case {
  const [inF, outF] = [960, 1000];
  const input = randomArray(inF);
  const weight = randomArray(inF * outF);
  const bias = randomArray(outF);
  const addresses = [
    kernels.upload(input),
    kernels.upload(packDenseWeights(weight, outF, inF)),
    kernels.upload(padBias(bias, outF, 8)),
  ] as const;
  const output = kernels.allocFloats(Math.ceil(outF / 8) * 8);
  const expected = new Float32Array(outF);
  return {
    name: 'fc 960→1000',
    kernel: 'dense-8-wasmsimd',
    macs: inF * outF,
    fast: () => x.dense8(inF, outF, ...addresses, output, 0),
    reference: () => linearReference(input, weight, bias, expected, 1, inF, outF),
  };
}

const cases: Case[] = [
  stem(),
  pool('maxpool 24@112²', 24, 112, false),
  pointwise('stage2.0 gconv1 24→60 g1 56²', 24, 60, 1, 56),
  depthwise('stage2.0 dwconv 60 s2 56²', 60, 56, 2),
  pointwise('stage2.0 gconv2 60→216 g3 28²', 60, 216, 3, 28),
  pool('stage2.0 avgpool 24@56²', 24, 56, true),
  pointwise('stage2.x gconv1 240→60 g3 28²', 240, 60, 3, 28),
  depthwise('stage2.x dwconv 60 s1 28²', 60, 28, 1),
  pointwise('stage2.x gconv2 60→240 g3 28²', 60, 240, 3, 28),
  pointwise('stage3.x gconv1 480→120 g3 14²', 480, 120, 3, 14),
  depthwise('stage3.0 dwconv 120 s2 28²', 120, 28, 2),
  depthwise('stage3.x dwconv 120 s1 14²', 120, 14, 1),
  pointwise('stage3.x gconv2 120→480 g3 14²', 120, 480, 3, 14),
  pointwise('stage4.x gconv1 960→240 g3 7²', 960, 240, 3, 7),
  depthwise('stage4.x dwconv 240 s1 7²', 240, 7, 1),
  pointwise('stage4.x gconv2 240→960 g3 7²', 240, 960, 3, 7),
  globalPool(),
  fc(),
];

console.log(`kernels build: ${kernels.variant} (Node runs relaxed SIMD only with --experimental-wasm-relaxed-simd)`);
const rows: string[][] = [['layer', 'kernel', 'MMAC', 'wasm ms', 'wasm GMAC/s', 'ref ms', 'ref GMAC/s', 'speed-up']];
for (const c of cases) {
  // Enough repeats for ~0.2 s of the fast kernel, at least 15; the reference gets 3 (or 1 if slow).
  const fastOnce = medianMs(c.fast, 3);
  const repeats = quick ? 5 : Math.max(15, Math.min(500, Math.ceil(200 / Math.max(fastOnce, 1e-3))));
  const fastMs = medianMs(c.fast, repeats);
  const refMs = medianMs(c.reference, quick ? 1 : 3);
  rows.push([
    c.name,
    c.kernel,
    (c.macs / 1e6).toFixed(2),
    fastMs.toFixed(3),
    (c.macs / fastMs / 1e6).toFixed(2),
    refMs.toFixed(2),
    (c.macs / refMs / 1e6).toFixed(3),
    `${(refMs / fastMs).toFixed(0)}×`,
  ]);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows)
  console.log(row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
