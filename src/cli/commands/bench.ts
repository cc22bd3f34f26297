import { Command, InvalidArgumentError } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BenchReport, CaseResult, EngineResult } from '../../node/bench/run.js';
import type { TraceSummary } from '../../node/bench/trace.js';
import { fixed, formatTable } from '../format.js';
import { parseSize } from './flops.js';

const count = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
  return n;
};
const list = (value: string) => value.split(',').filter((s) => s !== '');
const threadList = (value: string) => list(value).map(count(1));

interface BenchFlags {
  arch?: string[];
  threads?: number[];
  json: boolean;
  runs: number;
  warmup: number;
  oursRuns?: number;
  oursWarmup?: number;
  engines?: string[];
  size: number;
  profileRuns: number;
  out?: string;
  trace?: string;
  traceRuns: number;
}

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      'batch-1 latency of our engine and its peers (onnxruntime-web, onnxruntime-node, TF.js WASM) on the same ' +
        'ONNX export and input: medians and IQR, ratios, theoretical vs actual speed-ups, GMAC/s per layer type',
    )
    .option('--arch <names>', 'networks, comma-separated (default: the seven of issue 4)', list)
    .option('--threads <n>', 'thread counts, comma-separated (default: 1,2)', threadList)
    .option('--json', 'print one JSON object (with --arch NAME --threads N: median_ms of our engine and peers)', false)
    .option('--runs <n>', 'timed runs per engine and case (the median is over these)', count(1), 30)
    .option('--warmup <n>', 'untimed warm-up runs per engine and case', count(0), 5)
    .option(
      '--ours-runs <n>',
      'timed runs of our engine (default: --runs; lower it while ours is the reference)',
      count(1),
    )
    .option('--ours-warmup <n>', 'warm-up runs of our engine (default: --warmup)', count(0))
    .option('--engines <names>', 'engines to run, comma-separated: shufflenet, ort-web, ort-node, tfjs-wasm', list)
    .option('--size <n>', 'square input size (224 for real figures)', parseSize, 224)
    .option(
      '--profile-runs <n>',
      'per-node profiling runs of our engine at the first thread count (0: none)',
      count(0),
      3,
    )
    .option('--out <path>', 'JSON file to write (the SVG chart goes beside it); default results/bench-<date>.json')
    .option(
      '--trace <file>',
      'also trace our engine at each thread count > 1: Chrome trace-event JSON (Perfetto) to FILE, ' +
        'busy/wait/imbalance per layer type printed and saved beside it (trace.json → trace.summary.json)',
    )
    .option('--trace-runs <n>', 'traced runs per case (after --ours-warmup warm-up runs)', count(1), 10)
    .action(async (flags: BenchFlags) => {
      const { runBenchmark, defaultConfig } = await import('../../node/bench/run.js');
      const report = await runBenchmark({
        archs: flags.arch ?? defaultConfig.archs,
        threads: flags.threads ?? defaultConfig.threads,
        runs: flags.runs,
        warmup: flags.warmup,
        oursRuns: flags.oursRuns ?? flags.runs,
        oursWarmup: flags.oursWarmup ?? flags.warmup,
        engines: flags.engines ?? null,
        size: flags.size,
        profileRuns: flags.profileRuns,
        log: (line) => console.error(line),
      });
      // In --json mode files are written only when --out asks for them, so tools can call it freely.
      const saved = !flags.json || flags.out !== undefined ? await save(report, flags.out) : [];
      if (flags.json) {
        console.log(JSON.stringify(jsonReport(report)));
        if (flags.trace !== undefined) await trace(flags, report.settings, console.error); // stdout holds one object
        return;
      }
      printReport(report);
      for (const line of saved) console.log(line);
      if (flags.trace !== undefined) await trace(flags, report.settings, console.log);
    });
}

/** `--trace FILE`: traces our engine (src/node/bench/trace.ts) and prints the summary with `print`. */
async function trace(flags: BenchFlags, settings: BenchReport['settings'], print: (line: string) => void) {
  const { runTraces } = await import('../../node/bench/trace.js');
  const { summaries, written } = await runTraces({
    archs: settings.archs,
    threads: settings.threads,
    size: settings.size,
    warmup: settings.oursWarmup,
    runs: flags.traceRuns,
    seed: settings.seed,
    file: flags.trace!,
    log: (line) => console.error(line),
  });
  for (const summary of summaries) printTraceSummary(summary, print);
  print(
    'busy/wait: thread-ms per run summed over threads; imbalance: per phase, the slowest thread minus the mean, ' +
      'summed; gap: between a release and the next start (see docs/engine.md, "Tracing threads").',
  );
  for (const file of written) print(`wrote ${file}`);
}

function printTraceSummary(s: TraceSummary, print: (line: string) => void): void {
  print(`\nTrace of ${s.arch} @${s.threads} thread(s), ${s.runs} runs: ${s.wall_ms.toFixed(3)} ms per run\n`);
  print(
    formatTable(s.perThread, [
      { header: 'thread', value: (t) => (t.thread === 0 ? '0 (leader)' : String(t.thread)) },
      { header: 'busy ms', value: (t) => t.busy_ms.toFixed(3), align: 'right' },
      { header: 'wait ms', value: (t) => t.wait_ms.toFixed(3), align: 'right' },
      { header: 'gap ms', value: (t) => t.gap_ms.toFixed(3), align: 'right' },
      { header: 'wall ms', value: (t) => t.wall_ms.toFixed(3), align: 'right' },
    ]),
  );
  print('');
  print(
    formatTable(s.layers, [
      { header: 'layer type', value: (l) => l.type },
      { header: 'phases', value: (l) => String(l.phases), align: 'right' },
      { header: 'busy ms', value: (l) => l.busy_ms.toFixed(3), align: 'right' },
      { header: 'wait ms', value: (l) => l.wait_ms.toFixed(3), align: 'right' },
      { header: 'imbalance ms', value: (l) => l.imbalance_ms.toFixed(3), align: 'right' },
    ]),
  );
}

/** The one JSON object: with a single case, our engine's median_ms and the peers' at the top level. */
export function jsonReport(report: BenchReport): Record<string, unknown> {
  if (report.results.length !== 1) return { ...report };
  const [only] = report.results as [CaseResult];
  const ours = only.engines.find((e) => e.kind === 'ours');
  const peers = Object.fromEntries(
    only.engines.filter((e) => e.kind === 'peer').map((e) => [e.engine, e.skipped ? { skipped: e.skipped } : pick(e)]),
  );
  return {
    arch: only.arch,
    threads: only.threads,
    engine: ours?.engine ?? null,
    ...(ours ? pick(ours) : { median_ms: null }),
    ...(ours?.skipped ? { skipped: ours.skipped } : {}),
    peers,
    ...report,
  };
}

function pick(e: EngineResult) {
  return {
    median_ms: e.median_ms ?? null,
    iqr_ms: e.iqr_ms ?? null,
    q1_ms: e.q1_ms ?? null,
    q3_ms: e.q3_ms ?? null,
    runs: e.runs ?? null,
    threads_used: e.threads_used ?? null,
    max_rel_error: e.max_rel_error ?? null,
  };
}

async function save(report: BenchReport, out?: string): Promise<string[]> {
  const stamp = report.date.slice(0, 16).replace(':', '');
  const path = out ?? `results/bench-${stamp}.json`;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(report, null, 1) + '\n');
  const lines = [`wrote ${path}`];
  const { renderChart } = await import('../../node/bench/chart.js');
  const svg = await renderChart(report);
  if (typeof svg === 'string') {
    const svgPath = path.replace(/\.json$/, '') + '.svg';
    writeFileSync(svgPath, svg);
    lines.push(`wrote ${svgPath}`);
  } else {
    lines.push(svg.skipped);
  }
  return lines;
}

function printReport(report: BenchReport): void {
  const { machine, settings } = report;
  console.log(
    `Benchmark ${report.date}: ${machine.cpu}, ${machine.nproc} CPUs, Node ${machine.node}, load ${machine.loadavg_start
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `Batch 1, ${settings.size}×${settings.size}; median and IQR of ${settings.runs} runs after ${settings.warmup} warm-up ` +
      `(our engine: ${settings.oursRuns} after ${settings.oursWarmup}), engines interleaved round-robin.`,
  );
  console.log(`Our engine: ${settings.our_engine}.\n`);

  const rows = report.results.flatMap((r) => {
    const ours = r.engines.find((e) => e.kind === 'ours' && e.median_ms !== undefined);
    return r.engines.map((e) => ({ r, e, ours }));
  });
  console.log(
    formatTable(rows, [
      { header: 'network', value: ({ r }) => r.arch },
      { header: 'MFLOPs', value: ({ r }) => r.mflops.toFixed(1), align: 'right' },
      {
        header: 'threads',
        value: ({ r, e }) =>
          `${r.threads}${e.threads_used && e.threads_used !== r.threads ? ` (uses ${e.threads_used})` : ''}`,
      },
      { header: 'engine', value: ({ e }) => e.engine },
      { header: 'median ms', value: ({ e }) => fixed(2)(e.median_ms), align: 'right' },
      { header: 'IQR ms', value: ({ e }) => fixed(2)(e.iqr_ms), align: 'right' },
      { header: 'runs', value: ({ e }) => (e.runs === undefined ? '' : String(e.runs)), align: 'right' },
      {
        header: 'ours/this',
        value: ({ e, ours }) =>
          ours && e.median_ms !== undefined && e !== ours ? (ours.median_ms! / e.median_ms).toFixed(2) : '',
        align: 'right',
      },
      { header: 'GMAC/s', value: ({ r, e }) => fixed(2)(e.median_ms && r.mflops / e.median_ms), align: 'right' },
      {
        header: 'rel. error',
        value: ({ e }) => (e.max_rel_error === undefined ? '' : e.max_rel_error.toExponential(1)),
        align: 'right',
      },
      { header: 'note', value: ({ e }) => e.skipped ?? '' },
    ]),
  );
  console.log("\nours/this: our median over this engine's (below 1: ours is faster). GMAC/s: MFLOPs / median.");

  if (report.speedups.length > 0) {
    const keys = [...new Set(report.speedups.flatMap((s) => Object.keys(s.actual)))];
    console.log('\nTheoretical (complexity counter) vs actual (measured medians) speed-ups:\n');
    console.log(
      formatTable(report.speedups, [
        { header: 'ratio', value: (s) => s.label },
        { header: 'theory', value: (s) => `${s.theoretical.toFixed(2)}×`, align: 'right' },
        ...keys.map((k) => ({
          header: k,
          value: (s: (typeof report.speedups)[number]) =>
            s.actual[k] === undefined ? '—' : `${s.actual[k]!.toFixed(2)}×`,
          align: 'right' as const,
        })),
      ]),
    );
  }

  if (report.layers.length > 0) {
    console.log(`\nPer layer type (median of ${settings.profileRuns} profiled runs, node by node):\n`);
    console.log(
      formatTable(report.layers, [
        { header: 'network', value: (l) => l.arch },
        { header: 'engine', value: (l) => l.engine },
        { header: 'layer type', value: (l) => l.type },
        { header: 'nodes', value: (l) => String(l.nodes), align: 'right' },
        { header: 'MMACs', value: (l) => (l.mmacs ? l.mmacs.toFixed(1) : ''), align: 'right' },
        { header: 'ms', value: (l) => l.ms.toFixed(2), align: 'right' },
        { header: 'share', value: (l) => `${(l.share * 100).toFixed(1)}%`, align: 'right' },
        { header: 'GMAC/s', value: (l) => fixed(2)(l.gmacs_per_s), align: 'right' },
      ]),
    );
  }
  console.log('');
}
