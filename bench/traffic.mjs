// Cross-core traffic of a 2-thread run split by channels, estimated from the graph: the bytes of
// activations each convolution and pool reads (one sample, float32). With every step split by
// output channels or planes, about half of what a step reads was written by the other thread in
// the step before (the shuffle and every dense 1×1 read all channels), so about half crosses
// between cores once per run. docs/engine.md, "Where two threads lose time", compares it with the
// extra thread-time that traces measure.
//
//   npm run build && node bench/traffic.mjs [--size 224] [--arch a,b] > results/issue12/traffic.txt
import { createModel } from '../dist/models/registry.js';
import { shapeSize } from '../dist/tensor/tensor.js';
import { defaultArchs } from '../dist/node/bench/run.js';

const flag = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : process.argv[at + 1];
};
const size = Number(flag('--size', '224'));
const archs = flag('--arch', defaultArchs.join(',')).split(',');
const reading = new Set(['conv2d', 'maxPool2d', 'avgPool2d', 'globalAvgPool', 'linear']);

console.log(`Activations read per run (batch 1, ${size}×${size}, float32), and half of them: the estimate`);
console.log('of what crosses between cores in a 2-thread run split by channels.\n');
console.log('| network | steps | MB read | MB across (½) |');
console.log('|---|---:|---:|---:|');
for (const arch of archs) {
  const graph = createModel(arch).trace([1, 3, size, size]);
  let bytes = 0;
  let steps = 0;
  for (const node of graph.nodes) {
    if (!reading.has(node.op)) continue;
    steps++;
    bytes += shapeSize(graph.shapes.get(node.inputs[0])) * 4;
  }
  console.log(`| ${arch} | ${steps} | ${(bytes / 1e6).toFixed(2)} | ${(bytes / 2e6).toFixed(2)} |`);
}
