/**
 * `shufflenet bench --trace FILE`: where a threaded run of our engine spends its time, thread by
 * thread and phase by phase. For each network and thread count it compiles the plan with a trace
 * region, warms it up, records `runs` runs (`InferencePlan.trace`, src/runtime/threads/trace.ts)
 * and writes
 *
 *   FILE                Chrome trace-event JSON (Perfetto, chrome://tracing): one process per
 *                       case, one track per thread, a slice per phase (named by its step, filed
 *                       under its layer type; a phase shared by independent steps is named
 *                       after all of them and filed under the first's type) and one per wait
 *                       for a phase's other units;
 *   FILE.summary.json   per case and layer type: busy, waiting and imbalance time.
 *
 * Definitions (all in milliseconds per run, the mean over the traced runs):
 *   busy        a thread's time inside its share of a phase (summed over threads: thread-ms)
 *   wait        a thread's time from arriving at the barrier to being released (thread-ms)
 *   imbalance   per phase, the slowest thread's busy time minus the threads' mean, summed: the
 *               wall time an ideal split of the same work would save
 *   gap         a thread's time between one phase's release and the next phase's start (loop
 *               and call overhead; large only where the OS took the thread away right there)
 *   wall        per thread, from its first phase's start to its last release: busy + wait + gap
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Graph } from '../../graph/graph.js';
import { createModel } from '../../models/registry.js';
import { compilePlan, type PlanTrace } from '../../runtime/plan.js';
import { startHelpers } from '../../runtime/session.js';
import { Random } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { spawnNodeWorker } from '../session.js';
import { BenchmarkError } from './errors.js';
import { layerType } from './run.js';

export interface TraceConfig {
  /** Registry names of the networks to trace. */
  archs: string[];
  /** Thread counts; each one above 1 is traced (1 only when no other count is given). */
  threads: number[];
  /** Square input size. */
  size: number;
  /** Untraced runs before the traced ones. */
  warmup: number;
  /** Traced runs per case. */
  runs: number;
  /** Seed of the weights and the input. */
  seed: number;
  /** The trace-event JSON file to write; the summary goes beside it. */
  file: string;
  /** Progress lines. */
  log: (line: string) => void;
}

/** One traced case: a network at a thread count, with each step's layer type. */
export interface TraceCase {
  arch: string;
  trace: PlanTrace;
  /** Per step of the plan: the layer type of its main node (the bench's per-layer table's names). */
  layerTypes: string[];
}

export interface ThreadTime {
  thread: number;
  busy_ms: number;
  wait_ms: number;
  gap_ms: number;
  wall_ms: number;
}

export interface LayerTime {
  type: string;
  /** Phases of this type in one run. */
  phases: number;
  busy_ms: number;
  wait_ms: number;
  imbalance_ms: number;
}

export interface TraceSummary {
  arch: string;
  threads: number;
  runs: number;
  /** From the first thread's first start to the last thread's last release, per run. */
  wall_ms: number;
  /** Per thread (0: the leader). */
  perThread: ThreadTime[];
  /** Per layer type, by busy time, largest first. */
  layers: LayerTime[];
}

/** The layer type of each step of a plan compiled from `graph`: its main node's (see layerType). */
export function stepLayerTypes(graph: Graph, stepNodes: readonly (readonly string[])[]): string[] {
  const index = new Map(graph.nodes.map((node, i) => [node.output, i]));
  return stepNodes.map((nodes) => {
    const main = index.get(nodes[0]!);
    if (main === undefined) throw new BenchmarkError(`trace: step node ${nodes[0]} is not a node of the graph`);
    return layerType(graph, main);
  });
}

/** Busy, wait and imbalance per thread and layer type, in milliseconds per run. */
export function summarizeTrace({ arch, trace, layerTypes }: TraceCase): TraceSummary {
  const { threads, runs, events } = trace;
  const perThread = Array.from({ length: threads }, (_, thread) => ({ thread, busy: 0, wait: 0, wall: 0 }));
  const byType = new Map<string, { phases: number; busy: number; wait: number; imbalance: number }>();
  let wall = 0;
  // Events come ordered by run, thread, phase: each run holds `threads` rows of `phases` events.
  const phases = events.length / (runs * threads);
  for (let run = 0; run < runs; run++) {
    const row = (thread: number): typeof events => {
      const at = (run * threads + thread) * phases;
      return events.slice(at, at + phases);
    };
    const rows = Array.from({ length: threads }, (_, t) => row(t));
    for (const [t, own] of rows.entries()) {
      const totals = perThread[t]!;
      for (const e of own) {
        totals.busy += e.end - e.start;
        totals.wait += e.waitEnd - e.waitStart;
      }
      if (own.length > 0) totals.wall += own[own.length - 1]!.waitEnd - own[0]!.start;
    }
    if (phases > 0) {
      const first = Math.min(...rows.map((own) => own[0]!.start));
      const last = Math.max(...rows.map((own) => own[phases - 1]!.waitEnd));
      wall += last - first;
    }
    for (let p = 0; p < phases; p++) {
      const shares = rows.map((own) => own[p]!);
      const type = layerTypes[shares[0]!.step]!;
      const entry = byType.get(type) ?? { phases: 0, busy: 0, wait: 0, imbalance: 0 };
      const busy = shares.map((e) => e.end - e.start);
      const sum = busy.reduce((s, b) => s + b, 0);
      if (run === 0) entry.phases += 1;
      entry.busy += sum;
      entry.wait += shares.reduce((s, e) => s + (e.waitEnd - e.waitStart), 0);
      entry.imbalance += Math.max(...busy) - sum / threads;
      byType.set(type, entry);
    }
  }
  return {
    arch,
    threads,
    runs,
    wall_ms: wall / runs,
    perThread: perThread.map(({ thread, busy, wait, wall: own }) => ({
      thread,
      busy_ms: busy / runs,
      wait_ms: wait / runs,
      gap_ms: (own - busy - wait) / runs,
      wall_ms: own / runs,
    })),
    layers: [...byType.entries()]
      .map(([type, e]) => ({
        type,
        phases: e.phases,
        busy_ms: e.busy / runs,
        wait_ms: e.wait / runs,
        imbalance_ms: e.imbalance / runs,
      }))
      .sort((a, b) => b.busy_ms - a.busy_ms),
  };
}

/** A Chrome trace-event ("X" complete events and "M" metadata), as Perfetto and chrome://tracing read it. */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M';
  pid: number;
  tid: number;
  /** Microseconds (X events only). */
  ts?: number;
  dur?: number;
  cat?: string;
  args?: Record<string, string | number>;
}

/** Microseconds, to the nanosecond. */
const micro = (ms: number): number => Math.round(ms * 1e6) / 1e3;

/**
 * The cases as Chrome trace events: one process per case, one track per thread, a slice per
 * phase and one per barrier wait (none with one thread). Times start at the earliest event.
 */
export function traceEvents(cases: readonly TraceCase[]): { traceEvents: TraceEvent[]; displayTimeUnit: 'ms' } {
  const origin = Math.min(...cases.flatMap((c) => c.trace.events.map((e) => e.start)));
  const out: TraceEvent[] = [];
  cases.forEach(({ arch, trace, layerTypes }, index) => {
    const pid = index + 1;
    const label = `${arch} @ ${trace.threads} thread${trace.threads > 1 ? 's' : ''}`;
    out.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: label } });
    out.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
    for (let t = 0; t < trace.threads; t++) {
      const name = t === 0 ? 'thread 0 (leader)' : `thread ${t} (helper)`;
      out.push({ name: 'thread_name', ph: 'M', pid, tid: t, args: { name } });
      out.push({ name: 'thread_sort_index', ph: 'M', pid, tid: t, args: { sort_index: t } });
    }
    for (const e of trace.events) {
      const args = { run: e.run, step: e.step, phase: e.phase, layer_type: layerTypes[e.step]! };
      const common = { ph: 'X' as const, pid, tid: e.thread };
      out.push({
        name: [e.step, ...e.alongside].map((s) => trace.steps[s]!).join(' ‖ '),
        cat: layerTypes[e.step]!,
        ...common,
        ts: micro(e.start - origin),
        dur: micro(e.end - e.start),
        args,
      });
      if (trace.threads > 1) {
        out.push({
          // With claiming a thread waits for the phase's other units, not for the other threads.
          name: 'wait for the phase',
          cat: 'barrier',
          ...common,
          ts: micro(e.waitStart - origin),
          dur: micro(e.waitEnd - e.waitStart),
          args: { ...args, after: trace.steps[e.step]! },
        });
      }
    }
  });
  return { traceEvents: out, displayTimeUnit: 'ms' };
}

function randomInput(shape: readonly number[], seed: number): Tensor {
  const x = new Tensor(shape);
  const random = new Random(seed + 1);
  for (let i = 0; i < x.size; i++) x.data[i] = random.normal();
  return x;
}

/** Traces one network at one thread count on our engine (helpers on worker_threads). */
export async function traceCase(
  arch: string,
  threads: number,
  options: Pick<TraceConfig, 'size' | 'warmup' | 'runs' | 'seed'>,
): Promise<TraceCase> {
  const shape = [1, 3, options.size, options.size];
  const graph = createModel(arch, { seed: options.seed, inputSize: options.size }).trace(shape);
  const plan = await compilePlan(graph, { threads, traceRuns: options.runs });
  const stop = threads > 1 ? await startHelpers(plan, spawnNodeWorker) : () => plan.dispose();
  try {
    const input = randomInput(shape, options.seed);
    for (let i = 0; i < options.warmup; i++) plan.run(input);
    const trace = plan.trace(input, options.runs);
    return { arch, trace, layerTypes: stepLayerTypes(graph, trace.stepNodes) };
  } finally {
    await stop();
  }
}

/** Where the summary of a trace written to `file` goes. */
export function summaryPath(file: string): string {
  return file.replace(/\.json$/, '') + '.summary.json';
}

/** Traces every case, writes the trace and its summary, and returns the summaries and what was written. */
export async function runTraces(config: TraceConfig): Promise<{ summaries: TraceSummary[]; written: string[] }> {
  if (!Number.isInteger(config.runs) || config.runs < 1) {
    throw new BenchmarkError(`bench --trace: traced runs must be a positive integer, got ${config.runs}`);
  }
  const above = config.threads.filter((t) => t > 1);
  const counts = [...new Set(above.length > 0 ? above : [1])];
  const cases: TraceCase[] = [];
  for (const arch of config.archs) {
    for (const threads of counts) {
      config.log(`tracing ${arch} @${threads} thread(s): ${config.runs} runs after ${config.warmup} warm-up`);
      cases.push(await traceCase(arch, threads, config));
    }
  }
  const summaries = cases.map(summarizeTrace);
  const summaryFile = summaryPath(config.file);
  mkdirSync(dirname(config.file), { recursive: true });
  writeFileSync(config.file, JSON.stringify(traceEvents(cases)) + '\n');
  writeFileSync(summaryFile, JSON.stringify({ size: config.size, warmup: config.warmup, summaries }, null, 1) + '\n');
  return { summaries, written: [config.file, summaryFile] };
}
