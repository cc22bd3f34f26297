/**
 * Micro-benchmark of the WASM SIMD convolution backward kernels at the layer shapes of ShuffleNet
 * g=3 0.5× trained on 28×28 inputs (batch 64), beside the forward kernel on the same shape in the
 * same run. Prints GMAC/s (median of repeats) and backward / forward time ratios.
 *
 *   npm run bench:conv-backward          (add -- --quick for fewer repeats)
 */
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { packGemmWeights, padBias } from '../src/kernels/wasm/pack.js';
import { Random } from '../src/tensor/random.js';
import { normalArrays } from '../test/helpers/kernel-data.js';
import { medianMs } from './timing.js';

const quick = process.argv.includes('--quick');
const repeats = quick ? 5 : 21;
const batch = 64;
const randomArray = normalArrays(new Random(1));

const kernels = await WasmKernels.create();
const x = kernels.exports;

interface Row {
  shape: string;
  kernel: string;
  macs: number;
  run: () => void;
  forward?: () => void;
}

/** dW of a 1×1 conv group (m outputs, k inputs) over `pixels`, batch 64; forward: gemm4x8 per sample. */
function pointwise(m: number, k: number, pixels: number, note = ''): Row {
  const gradOut = kernels.upload(randomArray(batch * m * pixels));
  const input = kernels.upload(randomArray(batch * k * pixels));
  const gradWeight = kernels.allocFloats(m * k);
  const weights = kernels.upload(packGemmWeights(randomArray(m * k), m, k));
  const bias = kernels.upload(padBias(randomArray(m), m, 4));
  const output = kernels.allocFloats(batch * m * pixels);
  const table = kernels.upload(Uint32Array.from({ length: m }, (_, r) => output + r * pixels * 4));
  return {
    shape: `1×1 m=${m} k=${k} ${pixels}px${note}`,
    kernel: 'convWeightGrad',
    macs: batch * m * k * pixels,
    run: () => x.convWeightGrad(m, k, pixels, batch, gradOut, m * pixels * 4, input, k * pixels * 4, gradWeight, 0),
    forward: () => {
      for (let n = 0; n < batch; n++) {
        x.gemm4x8(k, m, pixels, weights, bias, input + n * k * pixels * 4, pixels * 4, table, 0, n * m * pixels * 4, 0);
      }
    },
  };
}

/** Both depthwise backward kernels and the forward, one call per sample as a training step makes. */
function depthwise(channels: number, size: number, stride: number): Row[] {
  const out = Math.floor((size - 1) / stride) + 1;
  const inFloats = channels * size * size;
  const outFloats = channels * out * out;
  const input = kernels.upload(randomArray(batch * inFloats));
  const gradOut = kernels.upload(randomArray(batch * outFloats));
  const weights = kernels.upload(randomArray(channels * 9));
  const bias = kernels.upload(randomArray(channels));
  const gradIn = kernels.allocFloats(batch * inFloats);
  const gradWeight = kernels.allocFloats(channels * 9);
  const output = kernels.allocFloats(batch * outFloats);
  const scratch = kernels.allocFloats(x.paddedPlaneFloats(size, size));
  const shape = `dw3×3/${stride} C=${channels} ${size}×${size}`;
  const macs = batch * outFloats * 9;
  const forward = (): void => {
    for (let n = 0; n < batch; n++) {
      x.dwconv3x3(
        channels,
        size,
        size,
        stride,
        input + n * inFloats * 4,
        weights,
        bias,
        output + n * outFloats * 4,
        0,
        scratch,
      );
    }
  };
  return [
    {
      shape,
      kernel: 'dwconv3x3BackwardInput',
      macs,
      run: () => {
        for (let n = 0; n < batch; n++) {
          x.dwconv3x3BackwardInput(
            channels,
            size,
            size,
            stride,
            gradOut + n * outFloats * 4,
            weights,
            gradIn + n * inFloats * 4,
            0,
            scratch,
          );
        }
      },
      forward,
    },
    {
      shape,
      kernel: 'dwconv3x3BackwardWeight',
      macs,
      run: () => {
        for (let n = 0; n < batch; n++) {
          x.dwconv3x3BackwardWeight(
            channels,
            size,
            size,
            stride,
            input + n * inFloats * 4,
            gradOut + n * outFloats * 4,
            gradWeight,
            scratch,
          );
        }
      },
      forward,
    },
  ];
}

const rows: Row[] = [
  pointwise(40, 40, 196),
  pointwise(40, 40, 49),
  pointwise(40, 40, 16),
  pointwise(120, 40, 49),
  pointwise(10, 40, 196, ' (compress)'),
  pointwise(40, 10, 49, ' (expand)'),
  pointwise(24, 27, 196, ' (stem im2col)'),
  ...depthwise(30, 14, 2),
  ...depthwise(30, 7, 1),
  ...depthwise(60, 7, 2),
  ...depthwise(60, 4, 1),
  ...depthwise(120, 4, 2),
  ...depthwise(120, 2, 1),
];

console.log(`WASM ${kernels.variant}, batch ${batch}, median of ${repeats} runs`);
console.log(['shape', 'backward kernel', 'ms', 'GMAC/s', 'forward GMAC/s', 'bwd/fwd time'].join(' | '));
for (const row of rows) {
  const ms = medianMs(row.run, repeats);
  const forwardMs = row.forward ? medianMs(row.forward, repeats) : NaN;
  const gmacs = (macs: number, t: number): string => (macs / t / 1e6).toFixed(2);
  console.log(
    [
      row.shape,
      row.kernel,
      ms.toFixed(3),
      gmacs(row.macs, ms),
      gmacs(row.macs, forwardMs),
      (ms / forwardMs).toFixed(2),
    ].join(' | '),
  );
}
