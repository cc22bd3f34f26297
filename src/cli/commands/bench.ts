import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BenchReport, CaseResult, EngineResult, RatioRow } from '../../node/bench/run.js';
import { BenchmarkError } from '../../node/bench/errors.js';
import { checkInputFloats, parseInputSize, square, type InputSize } from '../../node/bench/input-size.js';
import type { TraceSummary } from '../../node/bench/trace.js';
import { fixed, formatTable } from '../format.js';

/** An integer flag from `min` to `max` (bounded, so that no count can ask for unbounded memory or time). */
const count =
  (min: number, max = 100_000) =>
  (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
const list = (value: string) => value.split(',').filter((s) => s !== '');
const threadList = (value: string) => list(value).map(count(1, 256));
/** `--size N` or `--size HxW`, refused with the parser's typed message (it names the flag). */
const sizeList = (value: string): InputSize[] =>
  list(value).map((item) => {
    try {
      return parseInputSize(item, '--size');
    } catch (e) {
      if (e instanceof BenchmarkError) throw new InvalidArgumentError(e.message);
      throw e;
    }
  });

interface BenchFlags {
  arch?: string[];
  threads?: number[];
  json: boolean;
  runs: number;
  warmup: number;
  settleRuns: number;
  oursRuns?: number;
  oursWarmup?: number;
  engines?: string[];
  model?: string[];
  size?: InputSize[];
  batch: number;
  table8: boolean;
  profileRuns: number;
  out?: string;
  trace?: string;
  traceRuns: number;
  int8: boolean;
  calibrationImages: number;
  weightBits: '7' | '8';
}

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      'latency (or with --batch, throughput) of our engine and its peers (onnxruntime-web, onnxruntime-node, ' +
        'TF.js WASM) on the same ONNX export and input, every case interleaved round-robin: medians and IQR, ' +
        'ratios with bootstrap intervals, a drift check, theoretical vs actual speed-ups, GMAC/s per layer type',
    )
    .option('--arch <names>', 'networks, comma-separated (default: the seven of issue 4, unless --model)', list)
    .option(
      '--model <files>',
      'model files, comma-separated: ONNX files (every engine runs the file itself, at the input size it ' +
        'declares; ours imports it) or our model files and checkpoints (exported to ONNX for the peers)',
      list,
    )
    .option('--threads <n>', 'thread counts, comma-separated (default: 1,2)', threadList)
    .option('--json', 'print one JSON object (with --arch NAME --threads N: median_ms of our engine and peers)', false)
    .option('--runs <n>', 'timed runs per engine and case (the median is over these)', count(1), 30)
    .option('--warmup <n>', 'untimed warm-up runs per engine and case', count(0), 5)
    .option(
      '--settle-runs <n>',
      "untimed runs of a case right before each timed run, so that the previous case's spinning threads have stopped and this one's are awake (0: time each case cold)",
      count(0, 100),
      1,
    )
    .option(
      '--ours-runs <n>',
      'timed runs of our engine (default: --runs; lower it while ours is the reference)',
      count(1),
    )
    .option('--ours-warmup <n>', 'warm-up runs of our engine (default: --warmup)', count(0))
    .option(
      '--engines <names>',
      'engines to run, comma-separated: shufflenet, shufflenet-auto, shufflenet-batch, ort-web, ort-node, tfjs-wasm; ' +
        'with --int8 also shufflenet-simd128, shufflenet-int8, ort-web-int8, ort-node-int8',
      list,
    )
    .option(
      '--size <sizes>',
      "input sizes, comma-separated: N (square) or HxW, height × width as in the paper's Table 8 " +
        '(480x640 is a landscape 480p frame; input [1, 3, H, W]); default 224',
      sizeList,
    )
    .option(
      '--batch <n>',
      'throughput mode: images per second at batch N, ours splitting layers or the batch (the faster, ' +
        'labelled) against onnxruntime-node at the same threads',
      count(1, 4096),
      1,
    )
    .option(
      '--table8',
      "the paper's Table 8: ShuffleNet 0.5×/1×/2× g3, MobileNet 1.0 and AlexNet at 224x224, 480x640 and " +
        "720x1280, 1 thread unless --threads, with the growth of cost with pixels beside the paper's Snapdragon 820",
      false,
    )
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
    .option('--trace-runs <n>', 'traced runs per case (after --ours-warmup warm-up runs)', count(1, 1000), 10)
    .option(
      '--int8',
      'issue 11: batch 1, ShuffleNet 1× g3 and MobileNet 1.0 unless --arch, each calibrated (minmax) and quantized ' +
        'once; in one interleaved run our float32 plan (and its SIMD128 build when relaxed SIMD is on), our int8 ' +
        'plan, and onnxruntime-web and -node on its QDQ export (--engines adds ort-web, ort-node); int8/fp32 ' +
        'ratios, MobileNet/ShuffleNet in int8 beside theory; int8 engines checked against the int8 reference',
      false,
    )
    .option(
      '--calibration-images <n>',
      'with --int8: random images each network is calibrated on (the speed does not depend on the values)',
      count(1, 1000),
      8,
    )
    .addOption(
      new Option(
        '--weight-bits <n>',
        "with --int8: the weights' range, 8 or 7 bits (the relaxed-SIMD int8 build multiplies 7-bit weights 16 per instruction)",
      )
        .choices(['7', '8'])
        .default('8'),
    )
    .action(async (flags: BenchFlags) => {
      if (flags.model !== undefined && flags.trace !== undefined) {
        throw new BenchmarkError('bench: --trace traces registered networks (--arch), not --model files');
      }
      if (flags.int8 && flags.trace !== undefined) {
        throw new BenchmarkError("bench: --int8 does not take --trace (it traces the float plan's threads)");
      }
      const { runBenchmark, defaultConfig, int8Archs, table8Config } = await import('../../node/bench/run.js');
      const preset = flags.table8 ? table8Config : flags.int8 ? { archs: int8Archs } : {};
      for (const size of flags.size ?? preset.sizes ?? [square(224)]) checkInputFloats(flags.batch, size);
      const report = await runBenchmark({
        ...preset,
        archs: flags.arch ?? preset.archs ?? (flags.model ? [] : defaultConfig.archs),
        models: flags.model ?? [],
        threads: flags.threads ?? preset.threads ?? defaultConfig.threads,
        sizes: flags.size ?? preset.sizes ?? null,
        batch: flags.batch,
        runs: flags.runs,
        warmup: flags.warmup,
        settleRuns: flags.settleRuns,
        oursRuns: flags.oursRuns ?? flags.runs,
        oursWarmup: flags.oursWarmup ?? flags.warmup,
        engines: flags.engines ?? null,
        profileRuns: flags.profileRuns,
        int8: flags.int8,
        calibrationImages: flags.calibrationImages,
        weightBits: flags.weightBits === '7' ? 7 : 8,
        log: (line) => console.error(line),
      });
      // In --json mode files are written only when --out asks for them, so tools can call it freely.
      const saved = !flags.json || flags.out !== undefined ? await save(report, flags.out) : [];
      if (flags.json) {
        console.log(JSON.stringify(jsonReport(report)));
        if (flags.trace !== undefined) await trace(flags, report.settings, console.error); // stdout holds one object
      } else {
        printReport(report);
        for (const line of saved) console.log(line);
        if (flags.trace !== undefined) await trace(flags, report.settings, console.log);
      }
      // An int8 engine that disagrees with the int8 reference breaks the run's premise (the same
      // integers everywhere): after the report, fail (exit 1) naming it.
      const int8Failures = report.correctness.failures.filter((f) => f.precision === 'int8');
      if (int8Failures.length > 0) {
        throw new BenchmarkError(
          `bench --int8: ${int8Failures.length} int8 engine case(s) disagree with the int8 reference and were not timed: ` +
            int8Failures.map((f) => `${f.engine} on ${f.arch} @${f.size} @${f.threads} thread(s)`).join('; '),
        );
      }
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
    precision: e.precision,
    variant: e.variant ?? null,
  };
}

async function save(report: BenchReport, out?: string): Promise<string[]> {
  const stamp = report.date.slice(0, 16).replace(':', '');
  const path = out ?? `results/bench-${report.settings.int8 ? 'int8-' : ''}${stamp}.json`;
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

/** `3.61× [3.50, 3.72]`: a ratio and its confidence interval. */
const withInterval = (ratio: number, low: number, high: number): string =>
  `${ratio.toFixed(2)}× [${low.toFixed(2)}, ${high.toFixed(2)}]`;

function printReport(report: BenchReport): void {
  const { machine, settings, drift } = report;
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  console.log(
    `Benchmark ${report.date}: ${machine.cpu}, ${machine.nproc} CPUs, Node ${machine.node}, ` +
      `load ${load(machine.loadavg_start)} at the start, ${load(machine.loadavg_end)} at the end`,
  );
  console.log(
    `Batch ${settings.batch}, ${settings.sizes.join(', ')}; median and IQR of ${settings.runs} runs after ` +
      `${settings.warmup} warm-up (our engine: ${settings.oursRuns} after ${settings.oursWarmup}); ` +
      `${report.schedule.cases} cases interleaved round-robin over ${report.schedule.rounds} rounds ` +
      `(every network, thread count and engine once per round` +
      `${settings.settleRuns > 0 ? `, each timed run right after ${settings.settleRuns} untimed run(s) of the same case` : ', each timed cold after the previous case'}).`,
  );
  console.log(`Our engine: ${settings.our_engine}.`);
  if (report.int8 !== null) {
    const { calibration, qdq_bytes, relaxed_simd, builds, int8_relaxed_refused } = report.int8;
    const sizes = Object.entries(qdq_bytes).map(([c, bytes]) => `${c} ${(bytes / 1024).toFixed(0)} KiB`);
    console.log(
      `Int8: each network calibrated (${calibration.method}, ${calibration.weight_bits}-bit weights) on ` +
        `${calibration.inputs}; ${calibration.note}. ` +
        `onnxruntime-web and -node run the same QDQ export${sizes.length ? ` (${sizes.join(', ')})` : ''}.`,
    );
    console.log(
      `Builds: ${builds}. Relaxed SIMD in this process: ${relaxed_simd ? 'yes' : 'no (npm run bench:int8:relaxed runs with it)'}` +
        `${int8_relaxed_refused !== null ? `; the int8 plan refused it: ${int8_relaxed_refused}` : ''}.`,
    );
  }
  const cal = drift.calibration_ms;
  console.log(
    `Machine drift: calibration kernel ${cal.length ? `${Math.min(...cal).toFixed(3)}–${Math.max(...cal).toFixed(3)} ms` : 'not timed'}` +
      ` over the rounds, trend ${(drift.trend_per_round * 100).toFixed(2)}%/round, 1-min load ` +
      `${drift.loadavg_1m.length ? `${Math.min(...drift.loadavg_1m).toFixed(2)}–${Math.max(...drift.loadavg_1m).toFixed(2)}` : '—'}: ` +
      `${drift.flagged ? 'FLAGGED: ' : 'ok: '}${drift.reason}.`,
  );
  console.log(
    `Intervals: ${(report.ratio_ci.level * 100).toFixed(0)}% ${report.ratio_ci.method} (B = ${report.ratio_ci.resamples}, seed ${report.ratio_ci.seed}).\n`,
  );

  const peerRatio = new Map(
    report.ratios
      .filter((x) => x.kind === 'peer')
      .map((x) => [`${x.numerator.arch}|${x.numerator.size}|${x.numerator.threads}|${x.label}`, x]),
  );
  const multipleSizes = settings.sizes.length > 1;
  // Each row's "ours" is our first measured engine of its precision (int8 rows: the int8 plan).
  const rows = report.results.flatMap((r) =>
    r.engines.map((e) => ({
      r,
      e,
      ours: r.engines.find((o) => o.kind === 'ours' && o.precision === e.precision && o.median_ms !== undefined),
    })),
  );
  const anyVariant = rows.some(({ e }) => e.variant !== undefined);
  const sizeOf = (r: CaseResult) => `${r.height}×${r.width}`;
  const oursOver = (r: CaseResult, e: EngineResult, ours: EngineResult | undefined) =>
    ours && e !== ours ? peerRatio.get(`${r.arch}|${sizeOf(r)}|${r.threads}|${ours.engine}/${e.engine}`) : undefined;
  console.log(
    formatTable(rows, [
      { header: 'network', value: ({ r }) => r.arch },
      ...(multipleSizes ? [{ header: 'size', value: ({ r }: (typeof rows)[number]) => sizeOf(r) }] : []),
      { header: 'MFLOPs', value: ({ r }) => r.mflops.toFixed(1), align: 'right' },
      {
        header: 'threads',
        value: ({ r, e }) =>
          `${r.threads}${e.threads_used && e.threads_used !== r.threads ? ` (uses ${e.threads_used})` : ''}`,
      },
      { header: 'engine', value: ({ e }) => e.engine },
      ...(anyVariant ? [{ header: 'build', value: ({ e }: (typeof rows)[number]) => e.variant ?? '' }] : []),
      { header: 'median ms', value: ({ e }) => fixed(2)(e.median_ms), align: 'right' },
      { header: 'IQR ms', value: ({ e }) => fixed(2)(e.iqr_ms), align: 'right' },
      ...(settings.batch > 1
        ? [
            {
              header: 'img/s',
              value: ({ e }: (typeof rows)[number]) => fixed(1)(e.images_per_s),
              align: 'right' as const,
            },
          ]
        : []),
      { header: 'runs', value: ({ e }) => (e.runs === undefined ? '' : String(e.runs)), align: 'right' },
      {
        header: 'ours/this [95% CI]',
        value: ({ r, e, ours }) => {
          const x = oursOver(r, e, ours);
          return x ? withInterval(x.ratio, x.ci_low, x.ci_high) : '';
        },
        align: 'right',
      },
      {
        header: 'GMAC/s',
        value: ({ r, e }) => fixed(2)(e.median_ms && (r.mflops * settings.batch) / e.median_ms),
        align: 'right',
      },
      {
        header: 'rel. error',
        value: ({ e }) => (e.max_rel_error === undefined ? '' : e.max_rel_error.toExponential(1)),
        align: 'right',
      },
      {
        header: 'note',
        value: ({ e }) => e.skipped ?? e.note ?? '',
      },
    ]),
  );
  console.log(
    "\nours/this: our median over this engine's, paired by round (below 1: ours is faster)" +
      `${settings.int8 ? '; int8 rows against our int8 plan, float32 rows against our float32 plan' : ''}. ` +
      'GMAC/s: MFLOPs × batch / median.',
  );
  for (const c of report.skipped_cases) console.log(`skipped ${c.arch} at ${c.size}: ${c.reason}`);
  printCorrectness(report);

  const precision = report.ratios.filter((x) => x.kind === 'precision');
  if (precision.length > 0) printPrecisionRatios(report, precision, multipleSizes);

  if (report.speedups.length > 0 && settings.int8) {
    // One row per engine and thread count: int8 runs have too many engines for a column each.
    const long = report.speedups.flatMap((s) =>
      Object.keys(s.actual).map((key) => ({ s, key, actual: s.actual[key]!, ci: s.actual_ci[key]! })),
    );
    console.log('\nTheoretical (complexity counter) vs actual (measured medians) speed-ups, [95% CI]:\n');
    console.log(
      formatTable(long, [
        { header: 'ratio', value: ({ s }) => (multipleSizes ? `${s.label} @${s.size}` : s.label) },
        { header: 'theory', value: ({ s }) => `${s.theoretical.toFixed(2)}×`, align: 'right' },
        { header: 'engine@threads', value: ({ key }) => key },
        { header: 'actual', value: ({ actual, ci }) => withInterval(actual, ...ci), align: 'right' },
      ]),
    );
  } else if (report.speedups.length > 0) {
    const keys = [...new Set(report.speedups.flatMap((s) => Object.keys(s.actual)))];
    console.log('\nTheoretical (complexity counter) vs actual (measured medians) speed-ups, [95% CI]:\n');
    console.log(
      formatTable(report.speedups, [
        { header: 'ratio', value: (s) => (multipleSizes ? `${s.label} @${s.size}` : s.label) },
        { header: 'theory', value: (s) => `${s.theoretical.toFixed(2)}×`, align: 'right' },
        ...keys.map((k) => ({
          header: k,
          value: (s: (typeof report.speedups)[number]) =>
            s.actual[k] === undefined ? '—' : withInterval(s.actual[k]!, ...s.actual_ci[k]!),
          align: 'right' as const,
        })),
      ]),
    );
  }

  const gains = report.ratios.filter((x) => x.kind === 'threads');
  if (gains.length > 0) {
    console.log('\nThread gain (median at the first thread count ÷ median at this one), [95% CI]:\n');
    console.log(
      formatTable(gains, [
        {
          header: 'network',
          value: (g) => (multipleSizes ? `${g.numerator.arch} @${g.numerator.size}` : g.numerator.arch),
        },
        {
          header: 'engine',
          value: (g) =>
            g.numerator.engine === g.denominator.engine
              ? g.numerator.engine
              : `${g.denominator.engine} (from ${g.numerator.engine})`,
        },
        { header: 'threads', value: (g) => `${g.numerator.threads} → ${g.denominator.threads}` },
        { header: 'gain', value: (g) => withInterval(g.ratio, g.ci_low, g.ci_high), align: 'right' },
        { header: 'rounds', value: (g) => String(g.pairs), align: 'right' },
      ]),
    );
  }

  const choices = report.results.flatMap((r) => r.engines.filter((e) => e.choice !== undefined).map((e) => ({ r, e })));
  if (choices.length > 0) {
    console.log("\nWhat threads: 'auto' chose, after the timed runs:\n");
    for (const { r, e } of choices) {
      console.log(`  ${r.arch}${multipleSizes ? ` @${sizeOf(r)}` : ''} @${r.threads} threads: ${e.choice}`);
    }
  }

  if (report.growth.length > 0) {
    console.log(
      `\nGrowth with pixels (Table 8): median at a size ÷ median at ${report.growth[0]!.base_size}, ` +
        "[95% CI], against the pixels ratio and the paper's Snapdragon 820 (1 thread):\n",
    );
    console.log(
      formatTable(report.growth, [
        { header: 'network', value: (g) => g.arch },
        { header: 'size', value: (g) => g.size },
        { header: 'pixels ×', value: (g) => g.pixels_ratio.toFixed(2), align: 'right' },
        { header: 'paper ms', value: (g) => fixed(1)(g.paper_ms), align: 'right' },
        { header: 'paper ×', value: (g) => fixed(2)(g.paper_ratio), align: 'right' },
        { header: 'engine', value: (g) => `${g.engine}@${g.threads}` },
        { header: `ms @${report.growth[0]!.base_size}`, value: (g) => g.base_median_ms.toFixed(2), align: 'right' },
        { header: 'ms', value: (g) => g.median_ms.toFixed(2), align: 'right' },
        { header: 'ms ×', value: (g) => withInterval(g.ratio, g.ci_low, g.ci_high), align: 'right' },
      ]),
    );
  }

  if (report.throughput.length > 0) {
    console.log(
      `\nThroughput at batch ${settings.batch} (images per second; ours: the faster of threads splitting the ` +
        'layers or the batch), against onnxruntime-node at the same threads, [95% CI]:\n',
    );
    console.log(
      formatTable(report.throughput, [
        { header: 'network', value: (t) => (multipleSizes ? `${t.arch} @${t.size}` : t.arch) },
        { header: 'threads', value: (t) => String(t.threads), align: 'right' },
        { header: 'ours img/s', value: (t) => t.ours_images_per_s.toFixed(1), align: 'right' },
        { header: 'split', value: (t) => t.ours_split },
        { header: 'other split', value: (t) => fixed(1)(t.other_split_images_per_s), align: 'right' },
        { header: `${report.throughput[0]!.peer} img/s`, value: (t) => fixed(1)(t.peer_images_per_s), align: 'right' },
        {
          header: 'ours/peer',
          value: (t) => (t.ratio === null ? '—' : withInterval(t.ratio, t.ci_low!, t.ci_high!)),
          align: 'right',
        },
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

/** The correctness gate's outcome: one line when every engine agreed, every disagreement loudly. */
function printCorrectness(report: BenchReport): void {
  const { rules, checked, failures } = report.correctness;
  const ruleText = Object.entries(rules)
    .map(([precision, rule]) => `${precision} engines ${rule}`)
    .join('; ');
  if (failures.length === 0) {
    console.log(`Correctness (before timing): all ${checked} engine cases agree (${ruleText}).`);
    return;
  }
  console.log(`\nCORRECTNESS: ${failures.length} of ${checked} engine cases DISAGREE (${ruleText}); not timed:`);
  for (const f of failures)
    console.log(`  MISMATCH ${f.engine} on ${f.arch} @${f.size} @${f.threads} thread(s): ${f.reason}`);
}

/** `--int8`: each int8 engine over its float32 counterpart, and the speed-up that makes. */
function printPrecisionRatios(report: BenchReport, ratios: RatioRow[], multipleSizes: boolean): void {
  const engineOf = (k: RatioRow['numerator']): EngineResult | undefined =>
    report.results
      .find((r) => r.arch === k.arch && r.threads === k.threads && `${r.height}×${r.width}` === k.size)
      ?.engines.find((e) => e.engine === k.engine);
  // The engine with its build and, where it ran fewer threads than the case's, how many it used.
  const named = (k: RatioRow['numerator']): string => {
    const e = engineOf(k);
    const uses = e?.threads_used !== undefined && e.threads_used !== k.threads ? `uses ${e.threads_used}` : '';
    const notes = [e?.variant ?? '', uses].filter((n) => n !== '');
    return notes.length > 0 ? `${k.engine} (${notes.join(', ')})` : k.engine;
  };
  console.log('\nInt8 over float32: median ÷ median, paired by round (below 1: int8 is faster), [95% CI]:\n');
  console.log(
    formatTable(ratios, [
      {
        header: 'network',
        value: (x) => (multipleSizes ? `${x.numerator.arch} @${x.numerator.size}` : x.numerator.arch),
      },
      { header: 'threads', value: (x) => String(x.numerator.threads), align: 'right' },
      { header: 'int8', value: (x) => named(x.numerator) },
      { header: 'float32', value: (x) => named(x.denominator) },
      { header: 'int8/fp32', value: (x) => withInterval(x.ratio, x.ci_low, x.ci_high), align: 'right' },
      { header: 'speed-up', value: (x) => `${(1 / x.ratio).toFixed(2)}×`, align: 'right' },
    ]),
  );
}
