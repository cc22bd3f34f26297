/**
 * The int8 1×1 GEMM (qpack + qgemm-4x8, src/kernels/wasm/assembly/int8.ts) against the float32
 * GEMM (gemm-4x8) on the grouped 1×1 layers of ShuffleNet 1× g=3 at 224×224, one thread, the
 * same shapes and output remap (the paper's shuffle), rounds interleaved (float, int8, float, …)
 * so that both see the same machine; median of the rounds. Prints GMAC/s and the int8/float
 * speed-up per layer, and writes them with the machine's load to --out (JSON).
 *
 *   npx tsx bench/int8-kernels.ts [--rounds 31] [--out results/int8-kernels-DATE.json]
 *   node --experimental-wasm-relaxed-simd --import tsx bench/int8-kernels.ts   (float with FMA)
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Int8Kernels } from '../src/kernels/wasm/int8.js';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { packGemmWeights, packQgemmWeights, padBias, qpackPairStride } from '../src/kernels/wasm/pack.js';
import { Random } from '../src/tensor/random.js';

const argv = process.argv;
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(flag('rounds') ?? 31);
const out = flag('out');

const float = await WasmKernels.create();
const int8 = await Int8Kernels.create();
const rng = new Random(3);

/** ShuffleNet 1× g=3 at 224×224: [name, in, out, groups, size]. */
const layers: [string, number, number, number, number][] = [
  ['stage2.0 gconv1 24→60 g1 56²', 24, 60, 1, 56],
  ['stage2.0 gconv2 60→216 g3 28²', 60, 216, 3, 28],
  ['stage2.x gconv1 240→60 g3 28²', 240, 60, 3, 28],
  ['stage2.x gconv2 60→240 g3 28²', 60, 240, 3, 28],
  ['stage3.x gconv1 480→120 g3 14²', 480, 120, 3, 14],
  ['stage3.x gconv2 120→480 g3 14²', 120, 480, 3, 14],
  ['stage4.x gconv1 960→240 g3 7²', 960, 240, 3, 7],
  ['stage4.x gconv2 240→960 g3 7²', 240, 960, 3, 7],
];

function floatLayer(cin: number, cout: number, groups: number, size: number): () => void {
  const pixels = size * size;
  const k = cin / groups;
  const m = cout / groups;
  const input = float.upload(Float32Array.from({ length: cin * pixels }, () => rng.normal()));
  const outAt = float.allocFloats(cout * pixels);
  const calls = Array.from({ length: groups }, (_, g) => ({
    weights: float.upload(
      packGemmWeights(
        Float32Array.from({ length: m * k }, () => rng.normal()),
        m,
        k,
      ),
    ),
    bias: float.upload(padBias(null, m, 4)),
    table: float.upload(Uint32Array.from({ length: m }, (_, r) => outAt + (r * groups + g) * pixels * 4)),
    input: input + g * k * pixels * 4,
  }));
  return () => {
    for (const c of calls)
      float.exports.gemm4x8(k, m, pixels, c.weights, c.bias, c.input, pixels * 4, c.table, 0, 0, 1);
  };
}

function int8Layer(cin: number, cout: number, groups: number, size: number): () => void {
  const pixels = size * size;
  const k = cin / groups;
  const m = cout / groups;
  const pairs = Math.ceil(k / 2);
  const stride = qpackPairStride(pixels);
  const input = int8.upload(Uint8Array.from({ length: cin * pixels }, () => rng.int(256)));
  const packed = int8.allocBytes(pairs * stride);
  const outAt = int8.allocBytes(cout * pixels);
  // ReLU clamps, zero point 0 (lo, hi, z, then the unused residual parameters).
  const params = int8.upload(new Float32Array([0, 0, 0, 0, 255, 255, 255, 255, ...new Array<number>(20).fill(0)]));
  const calls = Array.from({ length: groups }, (_, g) => ({
    weights: int8.upload(
      packQgemmWeights(
        Int8Array.from({ length: m * k }, () => rng.int(255) - 127),
        m,
        k,
      ),
    ),
    bias: int8.upload(new Int32Array(Math.ceil(m / 4) * 4)),
    multipliers: int8.upload(new Float32Array(Math.ceil(m / 4) * 4).fill(0.001)),
    table: int8.upload(Uint32Array.from({ length: m }, (_, r) => outAt + (r * groups + g) * pixels)),
    input: input + g * k * pixels,
  }));
  return () => {
    for (const c of calls) {
      int8.exports.qpack(c.input, pixels, k, pixels, 128, packed, stride);
      int8.exports.qgemm(pairs, m, pixels, c.weights, c.bias, c.multipliers, packed, stride, c.table, 0, 0, params);
    }
  };
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const load = loadavg()[0]!;
console.log(`int8 vs float32 1×1 GEMMs, ShuffleNet 1× g=3 at 224², 1 thread, ${rounds} interleaved rounds`);
console.log(`${cpus()[0]?.model ?? 'unknown CPU'}, load ${load.toFixed(2)}, float build: ${float.variant}\n`);
const rows = [];
for (const [name, cin, cout, groups, size] of layers) {
  const macs = (cin / groups) * cout * size * size;
  const runs = { float: floatLayer(cin, cout, groups, size), int8: int8Layer(cin, cout, groups, size) };
  const times: Record<'float' | 'int8', number[]> = { float: [], int8: [] };
  for (let r = 0; r < rounds + 2; r++) {
    for (const engine of ['float', 'int8'] as const) {
      const start = performance.now();
      for (let i = 0; i < 5; i++) runs[engine]();
      if (r >= 2) times[engine].push((performance.now() - start) / 5);
    }
  }
  const f = median(times.float);
  const q = median(times.int8);
  rows.push({
    name,
    mmac: macs / 1e6,
    floatMs: f,
    int8Ms: q,
    floatGmacs: macs / f / 1e6,
    int8Gmacs: macs / q / 1e6,
    speedup: f / q,
  });
  console.log(
    `${name.padEnd(34)} ${(macs / 1e6).toFixed(2).padStart(5)} MMAC  float ${f.toFixed(3)} ms (${(macs / f / 1e6).toFixed(1)} GMAC/s)` +
      `  int8 ${q.toFixed(3)} ms (${(macs / q / 1e6).toFixed(1)} GMAC/s)  ${(f / q).toFixed(2)}×`,
  );
}
const total = { float: rows.reduce((a, r) => a + r.floatMs, 0), int8: rows.reduce((a, r) => a + r.int8Ms, 0) };
console.log(
  `\nall layers: float ${total.float.toFixed(3)} ms, int8 ${total.int8.toFixed(3)} ms: ${(total.float / total.int8).toFixed(2)}×`,
);
if (out !== undefined) {
  const result = {
    command: `npx tsx bench/int8-kernels.ts ${argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    load,
    floatVariant: float.variant,
    rounds,
    layers: rows,
    total,
  };
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
}
