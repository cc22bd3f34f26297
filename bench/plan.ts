/**
 * Single-threaded latency of the fused WASM plan on one network (batch 1), median of ≥ 30 runs
 * after warm-up, beside the reference executor, and where the time goes by step kind.
 *
 *   npm run bench:plan [-- --arch shufflenet_v1_g3_1.0x --runs 50]
 *   npm run bench:plan:relaxed   (the same with Node's --experimental-wasm-relaxed-simd: FMA kernels)
 */
import { complexity } from '../src/analysis/complexity.js';
import { runGraph } from '../src/graph/execute.js';
import { createModel } from '../src/models/registry.js';
import { compilePlan } from '../src/runtime/plan.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { medianMs, medianWallAndCpuMs } from './timing.js';

const option = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const arch = option('arch', 'shufflenet_v1_g3_1.0x');
const runs = Math.max(30, Number(option('runs', '50')));
const size = Number(option('size', '224'));

const graph = createModel(arch).trace([1, 3, size, size]);
const { macs } = complexity(graph);
const random = new Random(3);
const input = new Tensor([1, 3, size, size]);
input.data.forEach((_, i) => (input.data[i] = random.normal()));

const compileStart = performance.now();
const plan = await compilePlan(graph);
const compileMs = performance.now() - compileStart;
for (let i = 0; i < 10; i++) plan.run(input); // warm-up
const { wall: planMs, cpu: planCpuMs } = medianWallAndCpuMs(() => plan.run(input), runs);
const referenceMs = medianMs(() => runGraph(graph, input), 2);

console.log(`${arch} at ${size}×${size}, batch 1, 1 thread, ${plan.summary.variant}: ${(macs / 1e6).toFixed(1)} MMAC`);
console.log(
  `  plan (wasm simd)  ${planMs.toFixed(2)} ms median of ${runs}  (${(macs / planMs / 1e6).toFixed(2)} GMAC/s); ` +
    `CPU time ${planCpuMs.toFixed(2)} ms`,
);
console.log(`  reference         ${referenceMs.toFixed(1)} ms  (${(referenceMs / planMs).toFixed(0)}× slower)`);
console.log(
  `  compile ${compileMs.toFixed(0)} ms; arena ${(plan.summary.arenaBytes / 1024).toFixed(0)} KiB; ` +
    `packed weights ${(plan.summary.weightBytes / 1024).toFixed(0)} KiB`,
);

const byKind = new Map<string, number>();
for (const { step, ms } of plan.profile(input, runs)) {
  const kind = step.split(' ')[0]!;
  byKind.set(kind, (byKind.get(kind) ?? 0) + ms);
}
const total = [...byKind.values()].reduce((a, b) => a + b, 0);
console.log('  time by step kind (sum of per-step medians):');
for (const [kind, ms] of [...byKind].sort((a, b) => b[1] - a[1])) {
  console.log(
    `    ${kind.padEnd(10)} ${ms.toFixed(3).padStart(7)} ms  ${((100 * ms) / total).toFixed(0).padStart(3)}%`,
  );
}
