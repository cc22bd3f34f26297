/**
 * Int8 against float32 in Chromium (Debian's, headless, through playwright-core), where both
 * relaxed-SIMD builds run right: batch 1 at 224×224, one thread, rounds interleaved over the
 * engines on the same input, median of the rounds. Engines, each a plan in the page:
 *   float-relaxed    our float32 plan, relaxed-SIMD build (fused multiply-add)
 *   float-simd128    our float32 plan, SIMD128 build
 *   int8-relaxed-w7  the int8 plan, relaxed build, 7-bit weights (qgemm7: the 8-bit dot product)
 *   int8-relaxed-w8  the int8 plan, relaxed build, 8-bit weights (qgemm: i32x4.dot_i16x8_s)
 *   int8-simd128-w8  the int8 plan, SIMD128 build, 8-bit weights
 * Networks have random weights, calibrated (minmax) on 4 random images: the speed does not depend
 * on the values. --warmup untimed rounds first (default 10: Chromium tiers WASM code up as it
 * runs). Writes the medians, ratios and the machine's load to --out (JSON).
 *
 *   npx tsx bench/int8-browser.ts [--rounds 21] [--warmup 10] [--arch a,b] [--out results/int8-browser-DATE.json]
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { chromiumLaunchOptions } from '../test/helpers/chromium.js';
import { bundlePage, pageResult, servePage } from '../test/helpers/page.js';

const argv = process.argv;
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(flag('rounds') ?? 21);
const warmup = Number(flag('warmup') ?? 10);
const archs = (flag('arch') ?? 'shufflenet_v1_g3_1.0x,shufflenet_v1_g3_0.5x,mobilenet_v1_1.0').split(',');
const out = flag('out');
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000) throw new Error(`--rounds ${rounds}: 1 to 1000`);
if (!Number.isInteger(warmup) || warmup < 0 || warmup > 1000) throw new Error(`--warmup ${warmup}: 0 to 1000`);

const pageSource = `
import { createModel } from '../src/models/registry.js';
import { compilePlan } from '../src/runtime/plan.js';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { Calibrator } from '../src/runtime/quant/calibrate.js';
import { QuantizedPlan } from '../src/runtime/quant/plan.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';

const rounds = ${rounds};
const warmup = ${warmup};
const archs = ${JSON.stringify(archs)};
const rng = new Random(5);
const image = () => new Tensor([1, 3, 224, 224], Float32Array.from({ length: 3 * 224 * 224 }, () => rng.next()));
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const rows = [];
for (const arch of archs) {
  const graph = createModel(arch).trace([1, 3, 224, 224]);
  const calibrate = (weightBits) => {
    const c = new Calibrator(graph, { method: 'minmax', images: 4, weightBits });
    for (let i = 0; i < 4; i++) c.observe(image());
    return c.finish();
  };
  const w8 = calibrate(8);
  const w7 = calibrate(7);
  const engines = {
    'float-relaxed': await compilePlan(graph),
    'float-simd128': await compilePlan(graph, { kernels: await WasmKernels.create({ relaxedSimd: false }) }),
    'int8-relaxed-w7': await QuantizedPlan.create(w7),
    'int8-relaxed-w8': await QuantizedPlan.create(w8),
    'int8-simd128-w8': await QuantizedPlan.create(w8, { relaxedSimd: false }),
  };
  const builds = {
    'float-relaxed': engines['float-relaxed'].summary.variant,
    'float-simd128': engines['float-simd128'].summary.variant,
    'int8-relaxed-w7': engines['int8-relaxed-w7'].variant.build,
    'int8-relaxed-w8': engines['int8-relaxed-w8'].variant.build,
    'int8-simd128-w8': engines['int8-simd128-w8'].variant.build,
  };
  const x = image();
  const times = Object.fromEntries(Object.keys(engines).map((k) => [k, []]));
  for (let r = 0; r < rounds + warmup; r++) {
    for (const [name, plan] of Object.entries(engines)) {
      const start = performance.now();
      plan.run(x);
      if (r >= warmup) times[name].push(performance.now() - start);
    }
  }
  rows.push({ arch, builds, medianMs: Object.fromEntries(Object.entries(times).map(([k, t]) => [k, median(t)])) });
}
window.result = { rows, userAgent: navigator.userAgent };
`;

const files = new Map([
  ['/', '<!doctype html><title>int8 bench</title><script type="module" src="/page.js"></script>'],
  ['/page.js', await bundlePage(pageSource, fileURLToPath(new URL('.', import.meta.url)))],
]);
// Cross-origin isolated: the page's performance.now() is then fine-grained (not 100 µs steps).
const server = await servePage(files, true);
const browser = await chromium.launch(chromiumLaunchOptions);
const load = loadavg()[0]!;
console.log(`int8 vs float32 in Chromium, batch 1, 224×224, 1 thread, ${rounds} interleaved rounds after ${warmup}`);
console.log(`${cpus()[0]?.model ?? 'unknown CPU'}, load ${load.toFixed(2)}`);
interface Row {
  arch: string;
  builds: Record<string, string>;
  medianMs: Record<string, number>;
}
const result = await pageResult<{ rows: Row[]; userAgent: string }>(browser, server, 20 * 60_000);
await browser.close();
server.close();
console.log(result.userAgent);
const rows = result.rows.map((row) => {
  const t = row.medianMs;
  const speedups = {
    'int8-relaxed-w7 vs float-relaxed': t['float-relaxed']! / t['int8-relaxed-w7']!,
    'int8-relaxed-w8 vs float-relaxed': t['float-relaxed']! / t['int8-relaxed-w8']!,
    'int8-simd128-w8 vs float-simd128': t['float-simd128']! / t['int8-simd128-w8']!,
  };
  console.log(`\n${row.arch}`);
  for (const [engine, ms] of Object.entries(t))
    console.log(`  ${engine.padEnd(18)} ${ms.toFixed(2)} ms  (${row.builds[engine]})`);
  for (const [what, s] of Object.entries(speedups)) console.log(`  ${what}: ${s.toFixed(2)}×`);
  return { ...row, speedups };
});
const byArch = new Map(rows.map((r) => [r.arch, r.medianMs]));
const mobile = byArch.get('mobilenet_v1_1.0');
const shuffle = byArch.get('shufflenet_v1_g3_1.0x');
const mobileOverShuffle =
  mobile && shuffle ? Object.fromEntries(Object.keys(mobile).map((k) => [k, mobile[k]! / shuffle[k]!])) : undefined;
if (mobileOverShuffle) {
  console.log('\nMobileNet 1.0 / ShuffleNet 1× g3 time (theory 4.14×, PAPER.md):');
  for (const [k, v] of Object.entries(mobileOverShuffle)) console.log(`  ${k.padEnd(18)} ${v.toFixed(2)}×`);
}
const loadAfter = loadavg()[0]!;
console.log(`\nload after ${loadAfter.toFixed(2)}`);
if (out !== undefined) {
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        command: `npx tsx bench/int8-browser.ts ${argv.slice(2).join(' ')}`.trim(),
        date: new Date().toISOString(),
        cpu: cpus()[0]?.model ?? 'unknown',
        browser: result.userAgent,
        load,
        loadAfter,
        rounds,
        warmup,
        rows,
        mobileOverShuffle,
      },
      null,
      2,
    )}\n`,
  );
}
