/**
 * Training throughput: median time of a training step (forward in training mode, cross-entropy with
 * label smoothing 0.1, backward, SGD with momentum 0.9) of shufflenet_v1_g3_0.5x with the standard
 * ImageNet stem (3 input channels, 1000 classes), batch 64 of 3×64×64, after warm-up steps, for 1
 * and 2 threads; PyTorch CPU (scripts/bench_train_torch.py) on the same network in the same run.
 *
 *   npm run bench:train [-- --steps 5 --warmup 2 --batch 64 --size 64 --threads 1,2 --out FILE --json]
 *   BENCH_TRAIN_NO_TORCH=1 npm run bench:train    (ours only)
 *
 * Writes results/bench-train-<date>.json. Nothing here is asserted about speed.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModel } from '../src/models/registry.js';
import { median } from '../src/node/bench/stats.js';
import { Sgd } from '../src/optim/sgd.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { spawnTrainingWorker } from '../src/node/session.js';
import { ParallelTrainingEngine } from '../src/train/parallel.js';
import { TrainingPlan } from '../src/train/plan.js';
import { trainStep } from '../src/train/step.js';

const option = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const settings = {
  arch: option('arch', 'shufflenet_v1_g3_0.5x'),
  batch: Number(option('batch', '64')),
  size: Number(option('size', '64')),
  steps: Number(option('steps', '5')),
  warmup: Number(option('warmup', '2')),
  stem: 'standard (stride-2 conv1 and max pool), 3 input channels, 1000 classes',
  optimizer: 'SGD lr 0.05, momentum 0.9, weight decay 4e-5; cross-entropy with label smoothing 0.1',
};
const threadCounts = option('threads', '1,2').split(',').map(Number);
const date = new Date().toISOString();
const out = option('out', `results/bench-train-${date.slice(0, 10)}.json`);
const withTorch = !process.env['BENCH_TRAIN_NO_TORCH'];
const python = '/usr/bin/python3';
const torchScript = fileURLToPath(new URL('../scripts/bench_train_torch.py', import.meta.url));

/** A prepared training step of our engine. */
interface PreparedStep {
  step: () => void;
  engine: string;
  dispose: () => Promise<void>;
}

/**
 * Our training step as `Trainer` runs it: `trainStep` on the WASM training plan, or at several
 * threads on the data-parallel engine (the batch split over worker threads, batch norm over the
 * whole batch).
 */
async function ourTrainStep(arch: string, batch: number, size: number, threads: number): Promise<PreparedStep> {
  const model = createModel(arch, { seed: 0 });
  const graph = model.trace([batch, 3, size, size], { training: true });
  const engine =
    threads === 1
      ? await TrainingPlan.compile(graph)
      : await ParallelTrainingEngine.create(graph, threads, spawnTrainingWorker);
  const sgd = new Sgd(model.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 4e-5 });
  const { images, labels } = randomBatch(batch, size);
  return {
    engine: threads === 1 ? 'TrainingPlan (WASM SIMD)' : `ParallelTrainingEngine (WASM SIMD, ${threads} threads)`,
    step: () => void trainStep(engine, sgd, images, labels, { lr: 0.05, labelSmoothing: 0.1 }),
    dispose: async () => {
      await engine.dispose?.();
    },
  };
}

function randomBatch(batch: number, size: number): { images: Tensor; labels: Int32Array } {
  const random = new Random(1);
  const images = new Tensor([batch, 3, size, size]);
  for (let i = 0; i < images.size; i++) images.data[i] = random.normal();
  return { images, labels: Int32Array.from({ length: batch }, () => random.int(1000)) };
}

interface Measurement {
  median_ms: number;
  images_per_second: number;
}

async function timeOurs(threads: number): Promise<Measurement> {
  const prepared = await ourTrainStep(settings.arch, settings.batch, settings.size, threads);
  for (let i = 0; i < settings.warmup; i++) prepared.step();
  const times: number[] = [];
  for (let i = 0; i < settings.steps; i++) {
    const start = performance.now();
    prepared.step();
    times.push(performance.now() - start);
  }
  await prepared.dispose();
  const ms = median(times);
  return { median_ms: ms, images_per_second: settings.batch / (ms / 1000) };
}

function torchMissing(): string | null {
  if (!withTorch) return 'skipped (BENCH_TRAIN_NO_TORCH is set)';
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  return probe.status === 0 ? null : `PyTorch is not installed for ${python} (apt-get install python3-torch)`;
}

function timeTorch(threads: number): (Measurement & { torch: string }) | { skipped: string } {
  const args = ['--threads', threads, '--arch', settings.arch, '--batch', settings.batch, '--size', settings.size];
  const r = spawnSync(
    python,
    [torchScript, ...args.map(String), '--steps', String(settings.steps), '--warmup', String(settings.warmup)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return { skipped: `bench_train_torch.py failed: ${r.stderr.trim().split('\n').pop()}` };
  const result = JSON.parse(r.stdout) as Measurement & { torch: string };
  return { median_ms: result.median_ms, images_per_second: result.images_per_second, torch: result.torch };
}

const missing = torchMissing();
const loadStart = loadavg();
const results = [];
for (const threads of threadCounts) {
  const ours = await timeOurs(threads);
  const pytorch = missing === null ? timeTorch(threads) : { skipped: missing };
  const ratio =
    'median_ms' in ours && 'median_ms' in pytorch ? ours.images_per_second / pytorch.images_per_second : null;
  results.push({ threads, ours, pytorch, ratio });
}
const report = {
  date,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    nproc: cpus().length,
    node: process.version,
    loadavg_start: loadStart,
    loadavg_end: loadavg(),
  },
  settings: { ...settings, engine: 'trainStep on TrainingPlan / ParallelTrainingEngine (WASM SIMD)' },
  results,
};

const cell = (m: Measurement | { skipped: string }, width: number): string =>
  ('median_ms' in m ? `${m.images_per_second.toFixed(1)} (${m.median_ms.toFixed(0)} ms)` : 'n/a').padStart(width);
const lines = [
  `Training step of ${settings.arch}, batch ${settings.batch} × 3×${settings.size}×${settings.size}, ${settings.stem}; ` +
    `median of ${settings.steps} step(s) after ${settings.warmup} warm-up. ${date}, ${report.machine.cpu}, ${report.machine.nproc} CPUs`,
  '',
  'threads | ours img/s (step)    | PyTorch img/s (step) | ours / PyTorch',
  '--------|----------------------|----------------------|---------------',
  ...results.map(
    (r) =>
      `${String(r.threads).padStart(7)} | ${cell(r.ours, 20)} | ${cell(r.pytorch, 20)} | ${(r.ratio === null ? 'n/a' : r.ratio.toFixed(3)).padStart(14)}`,
  ),
];
const notes = [
  ...new Set(results.flatMap((r) => [r.ours, r.pytorch].flatMap((m) => ('skipped' in m ? [m.skipped] : [])))),
];
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 1) + '\n');
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(report));
} else {
  console.log([...lines, '', ...notes.map((n) => `note: ${n}`), `→ ${out}`].join('\n'));
}
