// Before/after: our engine from two built checkouts, in ONE process, every case interleaved
// round-robin (network × threads × build), so that each after/before ratio compares the same
// minutes of a shared machine. Reports, per network and thread count, the median of each build
// and after/before with a paired bootstrap 95% interval (src/node/bench/stats.ts), the outputs'
// largest difference between the builds, the calibration kernel's drift, and the load.
//
//   npm run build                                    # this checkout: the "after" build
//   git worktree add /tmp/base <rev> && (cd /tmp/base && ln -s $PWD/node_modules && npm run build)
//   node bench/compare-builds.mjs /tmp/base . [--arch a,b] [--threads 1,2] [--rounds 30] [--out F]
//
// Each build traces its own copy of each network (same registry name, same seeded weights) and
// runs it through its own createNodeSession (its own workers for threads > 1).
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { assessDrift, median, pairedRatio } from '../dist/node/bench/stats.js';
import { timeCalibration } from '../dist/node/bench/calibration.js';
import { defaultArchs } from '../dist/node/bench/run.js';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const [beforeDir, afterDir] = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (!beforeDir || !afterDir) {
  console.error('usage: node bench/compare-builds.mjs BEFORE_DIR AFTER_DIR [--arch a,b] [--threads 1,2] [--rounds N]');
  process.exit(2);
}
const archs = flag('arch', defaultArchs.join(',')).split(',');
const threadCounts = flag('threads', '1,2').split(',').map(Number);
const rounds = Number(flag('rounds', '30'));
const warmup = Number(flag('warmup', '5'));
const size = Number(flag('size', '224'));
const out = flag('out', `results/compare-builds-${new Date().toISOString().slice(0, 10)}.json`);

const load = async (dir) => {
  const at = (p) => pathToFileURL(resolve(dir, 'dist', p)).href;
  return {
    dir: resolve(dir),
    registry: await import(at('models/registry.js')),
    session: await import(at('node/session.js')),
    tensor: await import(at('tensor/tensor.js')),
    random: await import(at('tensor/random.js')),
  };
};
const builds = { before: await load(beforeDir), after: await load(afterDir) };

const loadStart = loadavg();
const cases = [];
for (const arch of archs) {
  // Each build traces its own copy of the network once, for every thread count.
  const traced = Object.entries(builds).map(([name, b]) => {
    const graph = b.registry.createModel(arch).trace([1, 3, size, size]);
    const random = new b.random.Random(7);
    const input = new b.tensor.Tensor([1, 3, size, size]);
    input.data.forEach((_, i) => (input.data[i] = random.normal()));
    return { name, b, graph, input };
  });
  for (const threads of threadCounts) {
    for (const { name, b, graph, input } of traced) {
      const session = await b.session.createNodeSession(graph, { threads });
      if (session.threads !== threads) throw new Error(`${name} ${arch}: got ${session.threads} threads`);
      cases.push({ arch, threads, build: name, session, input, times: [], output: null });
    }
  }
  console.error(`prepared ${arch}`);
}

for (const c of cases) {
  for (let i = 0; i < warmup; i++) c.output = await c.session.run(c.input);
}
const calibration = [timeCalibration()];
const loads = [];
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < cases.length; i++) {
    const c = cases[(i + r) % cases.length]; // rotate the order every round
    const start = performance.now();
    await c.session.run(c.input);
    c.times.push(performance.now() - start);
  }
  calibration.push(timeCalibration());
  loads.push(loadavg()[0]);
  if ((r + 1) % 5 === 0) console.error(`round ${r + 1}/${rounds}`);
}

const rows = [];
for (const arch of archs) {
  for (const threads of threadCounts) {
    const pick = (build) => cases.find((c) => c.arch === arch && c.threads === threads && c.build === build);
    const before = pick('before');
    const after = pick('after');
    let maxDiff = 0;
    before.output.data.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - after.output.data[i]))));
    const ratio = pairedRatio(after.times, before.times);
    rows.push({
      arch,
      threads,
      before_ms: median(before.times),
      after_ms: median(after.times),
      after_over_before: ratio.ratio,
      ci95: [ratio.low, ratio.high],
      max_abs_output_diff: maxDiff,
      before_samples_ms: before.times,
      after_samples_ms: after.times,
    });
  }
}
await Promise.all(cases.map((c) => c.session.dispose()));

const drift = assessDrift(calibration);
const report = {
  date: new Date().toISOString(),
  command: `node bench/compare-builds.mjs ${args.join(' ')}`,
  machine: { cpu: cpus()[0]?.model, nproc: cpus().length, node: process.version },
  builds: { before: builds.before.dir, after: builds.after.dir },
  settings: { archs, threads: threadCounts, rounds, warmup, size },
  load: { start: loadStart, end: loadavg(), per_round_1min: loads },
  calibration_ms: calibration,
  drift,
  rows,
};
writeFileSync(out, `${JSON.stringify(report, null, 1)}\n`);
console.log(
  `${report.date}, ${report.machine.cpu}, ${report.machine.nproc} CPUs, load ${loadStart.map((l) => l.toFixed(2)).join(' ')} → ${report.load.end.map((l) => l.toFixed(2)).join(' ')}`,
);
console.log(`drift: ${JSON.stringify(drift)}`);
console.log('| network | threads | before ms | after ms | after/before | 95% CI | max |Δ output| |');
console.log('|---|---:|---:|---:|---:|---|---:|');
for (const r of rows) {
  console.log(
    `| ${r.arch} | ${r.threads} | ${r.before_ms.toFixed(2)} | ${r.after_ms.toFixed(2)} | ${r.after_over_before.toFixed(3)} | ${r.ci95.map((x) => x.toFixed(3)).join('–')} | ${r.max_abs_output_diff.toExponential(1)} |`,
  );
}
console.log(`→ ${out}`);
