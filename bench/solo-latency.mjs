// One network on our 1-thread plan, timed back to back for a few seconds: median latency. Run two
// at once to see whether the machine's two cores slow each other down when both compute (shared
// execution units or clock), which would cap any 2-thread gain whatever the split:
//
//   npm run build
//   node bench/solo-latency.mjs ARCH; (node bench/solo-latency.mjs ARCH & node bench/solo-latency.mjs ARCH; wait)
import { createModel } from '../dist/models/registry.js';
import { compilePlan } from '../dist/runtime/plan.js';
import { Tensor } from '../dist/tensor/tensor.js';

const arch = process.argv[2] ?? 'shufflenet_v1_g3_0.5x';
const seconds = Number(process.argv[3] ?? 4);
const plan = await compilePlan(createModel(arch).trace([1, 3, 224, 224]));
const input = new Tensor([1, 3, 224, 224]);
input.data.fill(0.5);
for (let i = 0; i < 20; i++) plan.run(input);
const times = [];
const end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  const start = performance.now();
  plan.run(input);
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
console.log(`${arch}: median ${times[times.length >> 1].toFixed(3)} ms over ${times.length} runs (pid ${process.pid})`);
