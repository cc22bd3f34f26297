// Does a threaded plan's solo run (threads: 'auto' choosing 1 thread: the leader runs every unit,
// the helpers asleep) cost more than the 1-thread plan? And how much of that is the shared-memory
// build alone (the same 1-thread plan compiled on the kernels threads use)? The plans of ARCH run
// in turn in one process, each sample timed; prints the medians and each ratio to the 1-thread
// plan with a paired bootstrap interval.
//
//   npm run build && node bench/solo-vs-single.mjs [ARCH] [ROUNDS]
import { createModel } from '../dist/models/registry.js';
import { compilePlan } from '../dist/runtime/plan.js';
import { WasmKernels } from '../dist/kernels/wasm/module.js';
import { startHelpers } from '../dist/runtime/session.js';
import { spawnNodeWorker } from '../dist/node/session.js';
import { median, pairedRatio } from '../dist/node/bench/stats.js';
import { Tensor } from '../dist/tensor/tensor.js';

const arch = process.argv[2] ?? 'alexnet';
const rounds = Number(process.argv[3] ?? 40);
const graph = createModel(arch).trace([1, 3, 224, 224]);
const single = await compilePlan(graph, await WasmKernels.create({ relaxedSimd: false }));
const sharedSingle = await compilePlan(graph, await WasmKernels.create({ shared: true }));
const threaded = await compilePlan(graph, { threads: 2 });
const stop = await startHelpers(threaded, spawnNodeWorker);
const auto = threaded.useAuto();
auto.next = () => false; // every sample solo
auto.record = () => {};
const input = new Tensor([1, 3, 224, 224]);
input.data.fill(0.5);
const time = (plan) => {
  const start = performance.now();
  plan.run(input);
  return performance.now() - start;
};
const plans = [
  ['1-thread plan', single],
  ['1-thread plan on the shared build', sharedSingle],
  ['2-thread plan run solo', threaded],
];
for (let i = 0; i < 3; i++) for (const [, plan] of plans) time(plan);
const samples = plans.map(() => []);
for (let r = 0; r < rounds; r++) {
  // Rotate which plan goes first, so none always follows another.
  for (let k = 0; k < plans.length; k++) {
    const i = (r + k) % plans.length;
    samples[i].push(time(plans[i][1]));
  }
}
const parts = plans.map(([name], i) => {
  const median_ = `${name} ${median(samples[i]).toFixed(3)} ms`;
  if (i === 0) return median_;
  const r = pairedRatio(samples[i], samples[0], { resamples: 2000, seed: 1, level: 0.95 });
  return `${median_} (${r.ratio.toFixed(3)}× [${r.low.toFixed(3)}, ${r.high.toFixed(3)}])`;
});
console.log(`${arch}, ${rounds} rounds: ${parts.join('; ')}`);
threaded.dispose();
await stop();
