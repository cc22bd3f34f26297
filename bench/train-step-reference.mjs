/**
 * Times training steps of shufflenet_v1_g3_0.25x (small-input stem) on the reference kernels:
 * forward with tape, cross-entropy, backward over the graph, SGD. Batch 8 of 1×28×28 by default.
 *
 *   npm run build && node bench/train-step-reference.mjs [batch]
 *
 * Prints the median of five steps after one warm-up step, split into forward and backward + SGD.
 */
import { backward, createModel, crossEntropy, forwardWithTape, Random, Sgd, Tensor } from '../dist/index.js';

const batch = Number(process.argv[2] ?? 8);
const model = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, inputChannels: 1, smallInput: true });
const graph = model.trace([batch, 1, 28, 28], { training: true });
const sgd = new Sgd(model.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 4e-5 });
const rng = new Random(1);
const images = new Tensor([batch, 1, 28, 28]);
for (let i = 0; i < images.size; i++) images.data[i] = rng.normal();
const labels = Array.from({ length: batch }, () => rng.int(10));

const times = [];
for (let step = 0; step < 6; step++) {
  const t0 = performance.now();
  const tape = forwardWithTape(graph, images);
  const { gradient } = crossEntropy(tape.output, labels);
  const t1 = performance.now();
  const { parameters } = backward(tape, gradient);
  sgd.step(parameters);
  const t2 = performance.now();
  if (step > 0) times.push({ forward: t1 - t0, backward: t2 - t1, total: t2 - t0 });
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (key) => median(times.map((t) => t[key])).toFixed(0);
console.log(
  `training step, batch ${batch} × 1×28×28, reference kernels: median ${ms('total')} ms ` +
    `(forward ${ms('forward')} ms, backward + SGD ${ms('backward')} ms)`,
);
