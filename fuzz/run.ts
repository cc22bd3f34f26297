/**
 * The fuzz suite of issue 15: seeded mutations of every file the library reads from outside, run
 * in isolated workers, reported like a benchmark.
 *
 *   npm run fuzz                                    10,000 cases per reader, seed 1
 *   npm run fuzz -- --reader onnx,torch --cases 2000 --seed 7
 *   npm run fuzz -- --reader image --seed 1 --case 12     replay one case (prints the stack)
 *   npm run fuzz -- --out results/fuzz-today.json
 *
 * Readers (fuzz/readers.ts): safetensors (with model metadata, through `info`), onnx, torch (.pth
 * zip and legacy), image (every format sharp reads, each preprocessing preset), imagefolder.
 * Case i of reader R under seed S is a pure function of (S, R, i): the first cases of each reader
 * are its unmutated seeds and issue 15's reproducers, the rest are mutations drawn from a generator
 * seeded by the three (fuzz/mutate.ts).
 *
 * Outcomes (fuzz/outcome.ts): accepted, typed error (a one-line ShuffleNetError), or failure: any
 * other exception, over 5 s, over 1 GB of resident memory, or a crash. Every failure prints its
 * reader, seed and index and leaves its input in fuzz-failures/<reader>-<seed>-<index>.<ext>
 * (a zip for an image folder). The JSON report goes to results/fuzz-<date>.json (--out); the exit
 * code is 1 when any case failed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import sharp from 'sharp';
import { type CaseResult, signature, sourceFrame } from './outcome.js';
import { type Artifact, FuzzPool } from './pool.js';
import { generateCase, prepareReader, readerNames, readers, type ReaderName } from './readers.js';
import type { CaseTask } from './worker.js';

interface Options {
  readers: ReaderName[];
  seed: number;
  cases: number;
  only: number | null;
  workers: number;
  out: string;
  failures: string;
}

function parseOptions(argv: string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
    return v;
  };
  const integer = (name: string, fallback: number, min: number): number => {
    const v = value(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, not ${v}`);
    return n;
  };
  const known = ['reader', 'seed', 'cases', 'case', 'workers', 'out', 'failures'];
  for (const a of argv) {
    if (a.startsWith('--') && !known.includes(a.slice(2)))
      throw new Error(`unknown option ${a}; known: --${known.join(', --')}`);
  }
  const names = (value('reader') ?? 'all').split(',');
  const chosen = names.includes('all') ? [...readerNames] : names;
  for (const n of chosen) {
    if (!(readerNames as readonly string[]).includes(n))
      throw new Error(`unknown reader ${n}; readers: ${readerNames.join(', ')}`);
  }
  const date = new Date().toISOString().slice(0, 10);
  const only = value('case') === undefined ? null : integer('case', 0, 0);
  if (only !== null && chosen.length !== 1) throw new Error('--case replays one case: name one --reader');
  return {
    readers: chosen as ReaderName[],
    seed: integer('seed', 1, 0),
    cases: integer('cases', 10_000, 1),
    only,
    workers: integer('workers', 2, 1),
    out: value('out') ?? `results/fuzz-${date}.json`,
    failures: value('failures') ?? 'fuzz-failures',
  };
}

interface Slowest {
  ms: number;
  seed: number;
  index: number;
  outcome: string;
}

interface FailureRecord {
  index: number;
  kind: string;
  error: string | null;
  message: string;
  source: string | null;
  what: string;
  input: string;
}

interface ReaderReport {
  calls: string;
  seeds: string[];
  fixedCases: number;
  cases: number;
  outcomes: { accepted: number; typed: number; failure: number };
  failureKinds: Record<string, number>;
  slowest: Slowest | null;
  peakRssMB: number;
  wallSeconds: number;
  casesPerSecond: number;
  workersStarted: number;
  distinctFailures: { signature: string; count: number; first: FailureRecord }[];
  failures: FailureRecord[];
}

/** Failures listed one by one in the report (all are counted, and all inputs are written). */
const listedFailures = 2000;

async function runReader(o: Options, pool: FuzzPool, reader: ReaderName): Promise<ReaderReport> {
  const prepared = await prepareReader(reader);
  const report: ReaderReport = {
    calls: readers[reader].calls,
    seeds: prepared.seeds.map((s) => s.name),
    fixedCases: prepared.fixed.length,
    cases: 0,
    outcomes: { accepted: 0, typed: 0, failure: 0 },
    failureKinds: {},
    slowest: null,
    peakRssMB: 0,
    wallSeconds: 0,
    casesPerSecond: 0,
    workersStarted: 0,
    distinctFailures: [],
    failures: [],
  };
  const groups = new Map<string, { count: number; first: FailureRecord }>();
  const start = performance.now();
  const startedBefore = pool.workersStarted;
  let lastPrint = start;
  const progress = (): void => {
    const s = (performance.now() - start) / 1000;
    const { accepted, typed, failure } = report.outcomes;
    console.log(
      `[${reader}] ${report.cases}/${o.cases} cases in ${s.toFixed(0)} s (${(report.cases / s).toFixed(1)}/s): ` +
        `${accepted} accepted, ${typed} typed errors, ${failure} failures; peak RSS ${report.peakRssMB.toFixed(0)} MB`,
    );
  };
  const onResult = (task: CaseTask, r: CaseResult, artifact: Artifact | null): void => {
    report.cases++;
    report.outcomes[r.outcome]++;
    report.peakRssMB = Math.max(report.peakRssMB, (r.maxRss ?? 0) / 2 ** 20);
    if (report.slowest === null || r.ms > report.slowest.ms) {
      report.slowest = {
        ms: Math.round(r.ms * 10) / 10,
        seed: o.seed,
        index: task.index,
        outcome: r.failure ?? r.outcome,
      };
    }
    if (r.outcome === 'failure') {
      report.failureKinds[r.failure!] = (report.failureKinds[r.failure!] ?? 0) + 1;
      const source = sourceFrame(r.stack);
      const line = `${r.failure}${r.error ? ` ${r.error}` : ''}: ${(r.message ?? '').slice(0, 300).replace(/\s+/g, ' ')}`;
      console.log(`FAIL reader=${reader} seed=${o.seed} case=${task.index} ${line}${source ? ` [${source}]` : ''}`);
      const { path, what } = artifact!;
      console.log(
        `  input ${path} (${what.slice(0, 200)}); replay: npm run fuzz -- --reader ${reader} --seed ${o.seed} --case ${task.index}`,
      );
      const record: FailureRecord = {
        index: task.index,
        kind: r.failure!,
        error: r.error ?? null,
        message: (r.message ?? '').slice(0, 500),
        source: source ?? (r.step ? `during ${r.step}` : null),
        what: what.slice(0, 500),
        input: path,
      };
      if (report.failures.length < listedFailures) report.failures.push(record);
      const key = signature(r);
      const group = groups.get(key);
      if (group === undefined) groups.set(key, { count: 1, first: record });
      else group.count++;
    }
    if (performance.now() - lastPrint > 5000) {
      lastPrint = performance.now();
      progress();
    }
  };
  const tasks = function* (): Generator<CaseTask> {
    for (let index = 0; index < o.cases; index++) yield { reader, seed: o.seed, index };
  };
  await pool.run(tasks(), onResult, o.failures);
  progress();
  report.wallSeconds = Math.round((performance.now() - start) / 100) / 10;
  report.casesPerSecond = Math.round((report.cases / report.wallSeconds) * 10) / 10;
  report.workersStarted = pool.workersStarted - startedBefore;
  report.peakRssMB = Math.round(report.peakRssMB);
  report.failures.sort((a, b) => a.index - b.index);
  report.distinctFailures = [...groups.entries()]
    .map(([sig, g]) => ({ signature: sig, count: g.count, first: g.first }))
    .sort((a, b) => b.count - a.count);
  return report;
}

async function replay(o: Options, pool: FuzzPool): Promise<number> {
  const reader = o.readers[0]!;
  const index = o.only!;
  console.log(`${reader} seed ${o.seed} case ${index}: ${(await generateCase(reader, o.seed, index)).what}`);
  let result: CaseResult | null = null;
  let input: Artifact | null = null;
  await pool.run(
    [{ reader, seed: o.seed, index }],
    (_, r, artifact) => {
      result = r;
      input = artifact;
    },
    o.failures,
  );
  const r = result! as CaseResult;
  console.log(
    `outcome: ${r.outcome}${r.failure ? ` (${r.failure})` : ''} in ${r.ms.toFixed(1)} ms, peak RSS ${((r.maxRss ?? 0) / 2 ** 20).toFixed(0)} MB`,
  );
  if (r.error) console.log(`${r.error}: ${r.message}`);
  else if (r.message) console.log(r.message);
  if (r.outcome !== 'failure') return 0;
  if (r.stack) console.log(r.stack);
  console.log(`input written to ${(input! as Artifact).path}`);
  return 1;
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const pool = new FuzzPool({ workers: o.workers });
  try {
    if (o.only !== null) return await replay(o, pool);
    const start = performance.now();
    console.log(`fuzz: readers ${o.readers.join(', ')}; ${o.cases} cases each; seed ${o.seed}; ${o.workers} workers`);
    const reports: Partial<Record<ReaderName, ReaderReport>> = {};
    for (const reader of o.readers) reports[reader] = await runReader(o, pool, reader);
    const wallSeconds = Math.round((performance.now() - start) / 100) / 10;
    const totalFailures = Object.values(reports).reduce((n, r) => n + r.outcomes.failure, 0);
    const report = {
      date: new Date().toISOString(),
      command: `npm run fuzz -- ${process.argv.slice(2).join(' ')}`.trim(),
      seed: o.seed,
      casesPerReader: o.cases,
      limits: { timeMs: 5000, rssMB: 1024 },
      machine: {
        cpu: cpus()[0]?.model ?? 'unknown',
        cores: cpus().length,
        memoryGB: Math.round(totalmem() / 2 ** 30),
        os: `${platform()} ${release()}`,
        node: process.version,
        sharp: sharp.versions.sharp,
        vips: sharp.versions.vips,
      },
      workers: o.workers,
      wallSeconds,
      totalCases: Object.values(reports).reduce((n, r) => n + r.cases, 0),
      totalFailures,
      readers: reports,
    };
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, `${JSON.stringify(report, null, 1)}\n`);
    console.log('');
    console.log(`reader       cases  accepted  typed  failures  slowest (ms, case)   peak RSS`);
    for (const [name, r] of Object.entries(reports)) {
      console.log(
        `${name.padEnd(12)} ${String(r.cases).padStart(5)}  ${String(r.outcomes.accepted).padStart(8)}  ${String(r.outcomes.typed).padStart(5)}  ${String(r.outcomes.failure).padStart(8)}  ` +
          `${(r.slowest ? `${r.slowest.ms.toFixed(0)} ms, #${r.slowest.index}` : '-').padEnd(19)}  ${r.peakRssMB} MB`,
      );
    }
    console.log(`wall time ${wallSeconds} s on ${report.machine.cpu}; report ${o.out}`);
    if (totalFailures > 0) console.log(`${totalFailures} failures; inputs in ${o.failures}/`);
    return totalFailures > 0 ? 1 : 0;
  } finally {
    pool.close();
  }
}

process.exitCode = await main();
