/**
 * The int8 plan (src/runtime/quant/plan.ts) against our float32 plan, batch 1 at 224×224, one
 * thread, rounds interleaved (float, int8, float, …) on the same input; median of the rounds.
 * Networks have random weights, calibrated (minmax) on 4 random images: the speed does not depend
 * on the values. Writes the times with the machine's load to --out (JSON).
 *
 *   npx tsx bench/int8-plan.ts [--rounds 21] [--arch a,b] [--out results/int8-plan-DATE.json]
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createModel } from '../src/models/registry.js';
import { compilePlan } from '../src/runtime/plan.js';
import { Calibrator } from '../src/runtime/quant/calibrate.js';
import { QuantizedPlan } from '../src/runtime/quant/plan.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';

const argv = process.argv;
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(flag('rounds') ?? 21);
const archs = (flag('arch') ?? 'shufflenet_v1_g3_1.0x,shufflenet_v1_g3_0.5x,mobilenet_v1_1.0').split(',');
const out = flag('out');
const rng = new Random(5);
const image = (): Tensor =>
  new Tensor(
    [1, 3, 224, 224],
    Float32Array.from({ length: 3 * 224 * 224 }, () => rng.next()),
  );
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;

const load = loadavg()[0]!;
console.log(`int8 plan vs float32 plan, batch 1, 224×224, 1 thread, ${rounds} interleaved rounds`);
console.log(`${cpus()[0]?.model ?? 'unknown CPU'}, load ${load.toFixed(2)}\n`);
const rows = [];
for (const arch of archs) {
  const graph = createModel(arch).trace([1, 3, 224, 224]);
  const calibrator = new Calibrator(graph, { method: 'minmax', images: 4 });
  for (let i = 0; i < 4; i++) calibrator.observe(image());
  const float = await compilePlan(graph);
  const int8 = await QuantizedPlan.create(calibrator.finish());
  const x = image();
  const times = { float: [] as number[], int8: [] as number[] };
  for (let r = 0; r < rounds + 3; r++) {
    for (const [engine, run] of [
      ['float', () => float.run(x)],
      ['int8', () => int8.run(x)],
    ] as const) {
      const start = performance.now();
      run();
      if (r >= 3) times[engine].push(performance.now() - start);
    }
  }
  const f = median(times.float);
  const q = median(times.int8);
  rows.push({ arch, floatMs: f, int8Ms: q, speedup: f / q, variant: float.summary.variant });
  console.log(
    `${arch.padEnd(24)} float ${f.toFixed(2)} ms (${float.summary.variant})  int8 ${q.toFixed(2)} ms  int8/float ${(q / f).toFixed(2)}  speed-up ${(f / q).toFixed(2)}×`,
  );
}
if (out !== undefined) {
  const result = {
    command: `npx tsx bench/int8-plan.ts ${argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    load,
    loadAfter: loadavg()[0],
    rounds,
    rows,
  };
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
}
