// Does a threaded plan's solo run (threads: 'auto' choosing 1 thread: the leader runs every unit,
// the helpers asleep) cost more than the 1-thread plan? Both plans of ARCH, run alternately in one
// process, each sample timed; prints the medians and solo/single with a paired bootstrap interval.
//
//   npm run build && node bench/solo-vs-single.mjs [ARCH] [ROUNDS]
import { createModel } from '../dist/models/registry.js';
import { compilePlan } from '../dist/runtime/plan.js';
import { startHelpers } from '../dist/runtime/session.js';
import { spawnNodeWorker } from '../dist/node/session.js';
import { median, pairedRatio } from '../dist/node/bench/stats.js';
import { Tensor } from '../dist/tensor/tensor.js';

const arch = process.argv[2] ?? 'alexnet';
const rounds = Number(process.argv[3] ?? 40);
const graph = createModel(arch).trace([1, 3, 224, 224]);
const single = await compilePlan(graph);
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
for (let i = 0; i < 3; i++) {
  time(single);
  time(threaded);
}
const a = [];
const b = [];
for (let r = 0; r < rounds; r++) {
  // Alternate which plan goes first, so neither always follows the other.
  if (r % 2 === 0) {
    a.push(time(single));
    b.push(time(threaded));
  } else {
    b.push(time(threaded));
    a.push(time(single));
  }
}
const r = pairedRatio(b, a, { resamples: 2000, seed: 1, level: 0.95 });
console.log(
  `${arch}: 1-thread plan ${median(a).toFixed(2)} ms, 2-thread plan run solo ${median(b).toFixed(2)} ms; ` +
    `solo/single ${r.ratio.toFixed(3)} [${r.low.toFixed(3)}, ${r.high.toFixed(3)}] over ${rounds} rounds`,
);
threaded.dispose();
await stop();
