/**
 * Memory over many runs: an inference session runs `--runs` single-image inferences (default
 * 10,000) of a network and records, every tenth of the way, the WASM memory the plan holds, the JS
 * heap after a forced GC, and the process's resident set. A leak shows as a trend; the report
 * prints the first and last figures and the growth.
 *
 *   npm run bench:memory [-- --arch shufflenet_v1_g3_0.5x --runs 10000 --size 224 --threads 1]
 *
 * Run with --expose-gc (the npm script does) so that heap figures are after a full collection.
 */
import { createModel } from '../src/models/registry.js';
import { createNodeSession } from '../src/node/session.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { InferencePlan } from '../src/runtime/plan.js';

const option = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const arch = option('arch', 'shufflenet_v1_g3_0.5x');
const runs = Number(option('runs', '10000'));
const size = Number(option('size', '224'));
const threads = Number(option('threads', '1'));
const gc = (globalThis as { gc?: () => void }).gc;

const model = createModel(arch);
const random = new Random(1);
const input = new Tensor(
  [1, 3, size, size],
  Float32Array.from({ length: 3 * size * size }, () => random.normal()),
);
const plan = await InferencePlan.compile(model.trace([1, 3, size, size]));
const session = await createNodeSession(model, { threads, inputShape: [3, size, size] });

interface Sample {
  runs: number;
  wasmBytes: number;
  heapBytes: number;
  rssBytes: number;
}
const sample = (done: number): Sample => {
  gc?.();
  const usage = process.memoryUsage();
  return { runs: done, wasmBytes: plan.memoryBytes, heapBytes: usage.heapUsed, rssBytes: usage.rss };
};
const samples: Sample[] = [];
const start = performance.now();
// Warm-up, then the measured runs, alternating the plan and the session (two code paths).
plan.run(input);
await session.run(input);
samples.push(sample(0));
for (let i = 1; i <= runs; i++) {
  if (i % 2 === 0) plan.run(input);
  else await session.run(input);
  if (i % Math.max(1, Math.floor(runs / 10)) === 0) samples.push(sample(i));
}
await session.dispose();
const seconds = (performance.now() - start) / 1000;
const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
console.log(
  `${arch} at ${size}×${size}, ${runs} runs (plan and ${threads}-thread session alternately), ${seconds.toFixed(0)} s`,
);
console.log('runs    | WASM MB | JS heap MB (after GC) | RSS MB');
for (const s of samples) {
  console.log(
    `${String(s.runs).padStart(7)} | ${mb(s.wasmBytes).padStart(7)} | ${mb(s.heapBytes).padStart(21)} | ${mb(s.rssBytes).padStart(6)}`,
  );
}
// Growth over the second half (after allocators have settled).
const half = samples[Math.floor(samples.length / 2)]!;
const last = samples.at(-1)!;
console.log(
  `growth over the last ${last.runs - half.runs} runs: WASM ${mb(last.wasmBytes - half.wasmBytes)} MB, ` +
    `heap ${mb(last.heapBytes - half.heapBytes)} MB, RSS ${mb(last.rssBytes - half.rssBytes)} MB` +
    (gc ? '' : ' (no --expose-gc: heap figures include garbage)'),
);
