/**
 * Batch throughput of createNodeSession at 1 and 2 threads, interleaved (one batch at 1 thread,
 * then one at 2, repeated), median images/s. Usage: npx tsx bench/session.ts [arch] [batch] [repeats]
 */
import { createModel } from '../src/models/registry.js';
import { createNodeSession } from '../src/node/session.js';
import { Tensor } from '../src/tensor/tensor.js';

const arch = process.argv[2] ?? 'shufflenet_v1_g3_1.0x';
const batch = Number(process.argv[3] ?? 8);
const repeats = Number(process.argv[4] ?? 9);
const graph = createModel(arch).trace([1, 3, 224, 224]);
const input = new Tensor([batch, 3, 224, 224]);
input.data.forEach((_, i) => (input.data[i] = Math.sin(i)));
const sessions = [await createNodeSession(graph, { threads: 1 }), await createNodeSession(graph, { threads: 2 })];
const times: number[][] = [[], []];
for (const s of sessions) await s.run(input); // warm-up
for (let r = 0; r < repeats; r++) {
  for (const [i, s] of sessions.entries()) {
    const start = performance.now();
    await s.run(input);
    times[i]!.push(performance.now() - start);
  }
}
const median = (t: number[]): number => [...t].sort((a, b) => a - b)[t.length >> 1]!;
const [one, two] = times.map(median) as [number, number];
console.log(`${arch}, batch ${batch}, median of ${repeats} interleaved repeats`);
console.log(`1 thread : ${one.toFixed(1)} ms/batch, ${((batch / one) * 1000).toFixed(1)} images/s`);
console.log(`2 threads: ${two.toFixed(1)} ms/batch, ${((batch / two) * 1000).toFixed(1)} images/s`);
console.log(`speed-up : ${(one / two).toFixed(2)}×`);
// Many callers with batch 1 each: runs spread over the least-loaded workers.
const single = new Tensor([1, 3, 224, 224], input.data.slice(0, 3 * 224 * 224));
const concurrent: number[][] = [[], []];
for (let r = 0; r < repeats; r++) {
  for (const [i, s] of sessions.entries()) {
    const start = performance.now();
    await Promise.all(Array.from({ length: batch }, () => s.run(single)));
    concurrent[i]!.push(performance.now() - start);
  }
}
const [c1, c2] = concurrent.map(median) as [number, number];
console.log(
  `${batch} concurrent batch-1 runs: 1 thread ${c1.toFixed(1)} ms, 2 threads ${c2.toFixed(1)} ms (${(c1 / c2).toFixed(2)}×)`,
);
await Promise.all(sessions.map((s) => s.dispose()));
