/**
 * Tracing a threaded plan (issue 12): every thread records every phase of every traced run, on one
 * clock, without changing what the plan computes; the bench turns the records into Chrome
 * trace-event JSON and a summary whose numbers add up.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, ShuffleNetError } from '../src/errors.js';
import type { Graph } from '../src/graph/graph.js';
import { createModel } from '../src/models/registry.js';
import { spawnNodeWorker } from '../src/node/session.js';
import {
  runTraces,
  stepLayerTypes,
  summarizeTrace,
  summaryPath,
  traceEvents,
  type TraceCase,
  type TraceEvent,
  type TraceSummary,
} from '../src/node/bench/trace.js';
import { compilePlan, type InferencePlan, type PhaseEvent, type PlanTrace } from '../src/runtime/plan.js';
import { startHelpers } from '../src/runtime/session.js';
import { decodeProgram } from '../src/runtime/threads/team.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';

const shape = [1, 3, 32, 32];
const RUNS = 4;
let graph: Graph;
let input: Tensor;
let threaded: InferencePlan;
let stop: () => Promise<void>;
let dir: string;

beforeAll(async () => {
  graph = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }).trace(shape);
  input = new Tensor(shape);
  const random = new Random(12);
  input.data.forEach((_, i) => (input.data[i] = random.normal()));
  threaded = await compilePlan(graph, { threads: 2, traceRuns: RUNS });
  stop = await startHelpers(threaded, spawnNodeWorker);
  dir = mkdtempSync(join(tmpdir(), 'shufflenet-trace-'));
}, 30_000);

afterAll(async () => {
  await stop?.();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Index of the first element where two outputs differ bit for bit, or -1. */
const firstDifference = (a: Tensor, b: Tensor): number => a.data.findIndex((v, i) => !Object.is(v, b.data[i]));

/** The events of one run and thread, in phase order. */
const row = (trace: PlanTrace, run: number, thread: number): PhaseEvent[] =>
  trace.events.filter((e) => e.run === run && e.thread === thread);

/**
 * Steps that have phases of their own (a concat written in place by its parts, and a flatten, have
 * none; nor has a step whose one phase runs alongside its independent predecessor's).
 */
const workingSteps = (trace: PlanTrace): number[] => {
  const alongside = new Set(trace.events.flatMap((e) => e.alongside));
  return trace.steps.flatMap((description, i) =>
    /^(concat|flatten)\b/.test(description) || alongside.has(i) ? [] : [i],
  );
};

/**
 * Clocks of different threads are compared through the leader's origin; in Node the origins are
 * equal, elsewhere the offset's double rounding is ~0.25 µs. 1 µs covers it.
 */
const CLOCK_MS = 1e-3;

function checkRows(trace: PlanTrace, phases: number): void {
  expect(trace.events.length).toBe(trace.runs * trace.threads * phases);
  const expectedSteps = [...new Set(workingSteps(trace))];
  let previousEnd = -Infinity;
  for (let run = 0; run < trace.runs; run++) {
    const rows = Array.from({ length: trace.threads }, (_, t) => row(trace, run, t));
    for (const own of rows) {
      expect(own.length).toBe(phases);
      // Every working step appears, in plan order, with its phases counted from 0.
      expect([...new Set(own.map((e) => e.step))]).toEqual(expectedSteps);
      own.forEach((e, i) => {
        expect(e.phase).toBe(i > 0 && own[i - 1]!.step === e.step ? own[i - 1]!.phase + 1 : 0);
        expect(e.end).toBeGreaterThanOrEqual(e.start);
        expect(e.waitStart).toBe(e.end); // a thread waits for the phase as its last unit ends
        expect(e.waitEnd).toBeGreaterThanOrEqual(e.waitStart);
        if (i > 0) expect(e.start).toBeGreaterThanOrEqual(own[i - 1]!.waitEnd); // ordered, no overlap
      });
      expect(own[0]!.start).toBeGreaterThanOrEqual(previousEnd - CLOCK_MS); // runs do not overlap
    }
    // Claiming on one clock: every unit of phase p is run exactly once (by some thread), and
    // nobody sees phase p done, or starts phase p + 1, before its last unit ended.
    for (let p = 0; p < phases; p++) {
      const ran = rows.reduce((sum, own) => sum + own[p]!.units, 0);
      expect(ran).toBe(trace.phaseUnits[p]);
      const lastUnitEnd = Math.max(...rows.filter((own) => own[p]!.units > 0).map((own) => own[p]!.end));
      for (const own of rows) {
        expect(own[p]!.waitEnd).toBeGreaterThanOrEqual(lastUnitEnd - CLOCK_MS);
        if (p + 1 < phases) expect(own[p + 1]!.start).toBeGreaterThanOrEqual(lastUnitEnd - CLOCK_MS);
      }
    }
    previousEnd = Math.max(...rows.map((own) => own[phases - 1]!.waitEnd));
  }
}

describe('plan.trace', () => {
  it('records every phase of every thread and run, in order, on one clock', () => {
    const trace = threaded.trace(input, RUNS);
    expect(trace.threads).toBe(2);
    expect(trace.runs).toBe(RUNS);
    expect(trace.steps).toEqual(threaded.summary.steps);
    // The phase count and units come from the helper's own program.
    const program = decodeProgram(threaded.helpers[0]!.program);
    expect(trace.phaseUnits).toEqual(program.map((phase) => (phase.leaderOnly ? 1 : phase.units.length)));
    checkRows(trace, program.length);
    // Each stride-2 unit's shortcut pool shares the phase of its main branch's last GConv: both read
    // only their own inputs and write their own halves of the concat.
    const shared = trace.events.filter((e) => e.run === 0 && e.thread === 0 && e.alongside.length > 0);
    expect(shared.map((e) => [trace.steps[e.step]!.split(' ')[0], ...e.alongside.map((s) => trace.steps[s])])).toEqual(
      ['stage2.0', 'stage3.0', 'stage4.0'].map((unit) => ['gemm1x1', `avgpool3x3s2 ${unit} +relu`]),
    );
  });

  it('leaves the logits bit-identical, before, during and after tracing', () => {
    const before = threaded.run(input);
    const traced = threaded.trace(input, 2).output;
    const after = threaded.run(input);
    expect(firstDifference(traced, before)).toBe(-1);
    expect(firstDifference(after, before)).toBe(-1);
  });

  it('traces one thread: every phase, and no barrier waits', async () => {
    const single = await compilePlan(graph, { traceRuns: 2 });
    const trace = single.trace(input, 2);
    expect(trace.threads).toBe(1);
    const phases = trace.events.length / 2;
    expect(phases).toBeGreaterThanOrEqual(workingSteps(trace).length);
    checkRows(trace, phases);
    for (const e of trace.events) expect(e.waitEnd).toBe(e.waitStart);
    // One thread runs every phase whole: one unit each (a chunk covering the split).
    expect(trace.phaseUnits.every((u) => u === 1)).toBe(true);
    expect(firstDifference(trace.output, single.run(input))).toBe(-1);
  });

  it('refuses a plan without a trace region, too many runs, and a batch', async () => {
    const plain = await compilePlan(graph);
    expect(() => plain.trace(input)).toThrow(/no trace region \(compile it with PlanOptions.traceRuns > 0\)/);
    expect(() => threaded.trace(input, RUNS + 1)).toThrow(/runs must be an integer from 1 to 4 .*got 5/);
    expect(() => threaded.trace(input, 0)).toThrow(ShuffleNetError);
    const batch = new Tensor([2, 3, 32, 32]);
    expect(() => threaded.trace(batch)).toThrow(ShapeError);
    await expect(compilePlan(graph, { traceRuns: -1 })).rejects.toThrow(
      /traceRuns must be a non-negative integer, got -1/,
    );
  });
});

describe('trace summary', () => {
  it('computes busy, wait, gap and imbalance as defined, on a hand-made trace', () => {
    // Two threads, one run, two one-phase steps of types A and B. Thread 1 starts B 0.5 late.
    const e = (thread: number, step: number, start: number, end: number, waitEnd: number): PhaseEvent => ({
      run: 0,
      thread,
      step,
      alongside: [],
      phase: 0,
      start,
      end,
      waitStart: end,
      waitEnd,
      units: 1,
    });
    const trace = {
      threads: 2,
      runs: 1,
      steps: ['a', 'b'],
      stepNodes: [['a'], ['b']],
      phaseUnits: [2, 2],
      events: [e(0, 0, 0, 3, 5), e(0, 1, 5, 6, 9), e(1, 0, 0, 5, 5), e(1, 1, 5.5, 9, 9)],
      output: new Tensor([1]),
    };
    const s = summarizeTrace({ arch: 'x', trace, layerTypes: ['A', 'B'] });
    expect(s.wall_ms).toBe(9);
    expect(s.perThread).toEqual([
      { thread: 0, busy_ms: 4, wait_ms: 5, gap_ms: 0, wall_ms: 9 },
      { thread: 1, busy_ms: 8.5, wait_ms: 0, gap_ms: 0.5, wall_ms: 9 },
    ]);
    expect(s.layers).toEqual([
      // A: busy 3 + 5, waits 2 + 0, slowest 5 − mean 4; B: busy 1 + 3.5, waits 3 + 0, 3.5 − 2.25.
      { type: 'A', phases: 1, busy_ms: 8, wait_ms: 2, imbalance_ms: 1 },
      { type: 'B', phases: 1, busy_ms: 4.5, wait_ms: 3, imbalance_ms: 1.25 },
    ]);
  });

  it('adds up on a real trace: threads and layer types agree, and nearly all time is busy or waiting', () => {
    const trace = threaded.trace(input, RUNS);
    const layerTypes = stepLayerTypes(graph, trace.stepNodes);
    const s = summarizeTrace({ arch: 'g3', trace, layerTypes });
    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
    const close = (a: number, b: number): void => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * Math.max(1, b));
    close(sum(s.layers.map((l) => l.busy_ms)), sum(s.perThread.map((t) => t.busy_ms)));
    close(sum(s.layers.map((l) => l.wait_ms)), sum(s.perThread.map((t) => t.wait_ms)));
    expect(sum(s.layers.map((l) => l.phases))).toBe(trace.events.length / (RUNS * 2));
    for (const t of s.perThread) {
      close(t.busy_ms + t.wait_ms + t.gap_ms, t.wall_ms);
      expect(t.gap_ms).toBeGreaterThanOrEqual(-1e-9);
      expect(t.wall_ms).toBeLessThanOrEqual(s.wall_ms + 1e-9);
    }
    for (const l of s.layers) expect(l.imbalance_ms).toBeGreaterThanOrEqual(0);
    // Between a release and the next start a thread only reads the clock and stores: the median
    // gap is well under 10 µs (a mean would not be: now and then the OS takes a thread away right
    // there, on a busy machine for milliseconds).
    for (let thread = 0; thread < 2; thread++) {
      const gaps = trace.events
        .filter((e) => e.thread === thread)
        .flatMap((e, i, own) => (i > 0 && own[i - 1]!.run === e.run ? [e.start - own[i - 1]!.waitEnd] : []))
        .sort((a, b) => a - b);
      expect(gaps[gaps.length >> 1]!).toBeLessThan(0.01);
    }
    // The layer types are the bench's per-layer table's (src/node/bench/run.ts layerType).
    expect(new Set(s.layers.map((l) => l.type))).toEqual(
      // The shortcut pools (avgPool2d) share their phases with a GConv and are filed under it.
      new Set(['stem 3×3', 'conv 1×1 grouped', 'conv 1×1 dense', 'depthwise 3×3', 'globalAvgPool', 'FC']),
    );
  });
});

describe('bench --trace output', () => {
  /** Chrome's trace-event format: the fields Perfetto and chrome://tracing require. */
  function checkTraceEvents(json: { traceEvents: TraceEvent[]; displayTimeUnit: string }): TraceEvent[] {
    expect(Array.isArray(json.traceEvents)).toBe(true);
    for (const event of json.traceEvents) {
      expect(typeof event.name).toBe('string');
      expect(['X', 'M']).toContain(event.ph);
      expect(Number.isInteger(event.pid)).toBe(true);
      expect(Number.isInteger(event.tid)).toBe(true);
      if (event.ph === 'X') {
        expect(event.ts).toBeGreaterThanOrEqual(0);
        expect(event.dur).toBeGreaterThanOrEqual(0);
      } else {
        expect(['process_name', 'process_sort_index', 'thread_name', 'thread_sort_index']).toContain(event.name);
      }
    }
    const complete = json.traceEvents.filter((e) => e.ph === 'X');
    // Every track has a name, and a track's slices never overlap (a phase, then its wait).
    const tracks = new Set(complete.map((e) => `${e.pid}/${e.tid}`));
    const named = new Set(json.traceEvents.filter((e) => e.name === 'thread_name').map((e) => `${e.pid}/${e.tid}`));
    expect(named).toEqual(tracks);
    for (const track of tracks) {
      const slices = complete.filter((e) => `${e.pid}/${e.tid}` === track);
      slices.forEach((e, i) => {
        if (i > 0) expect(e.ts!).toBeGreaterThanOrEqual(slices[i - 1]!.ts! + slices[i - 1]!.dur! - 1e-3);
      });
    }
    return complete;
  }

  it('writes trace-event JSON with a slice per phase and per wait, and the summary beside it', async () => {
    const file = join(dir, 'two.json');
    const { summaries, written } = await runTraces({
      archs: ['shufflenet_v1_g3_0.25x'],
      threads: [1, 2],
      size: 32,
      warmup: 1,
      runs: 2,
      seed: 0,
      file,
      log: () => {},
    });
    expect(written).toEqual([file, join(dir, 'two.summary.json')]);
    expect(summaries.map((s) => s.threads)).toEqual([2]); // one thread is traced only when asked alone
    const complete = checkTraceEvents(JSON.parse(readFileSync(file, 'utf8')));
    const phases = complete.filter((e) => e.cat !== 'barrier');
    const waits = complete.filter((e) => e.cat === 'barrier');
    expect(waits.length).toBe(phases.length);
    expect(phases.length % (2 * 2)).toBe(0); // per run and thread
    expect(new Set(complete.map((e) => e.tid))).toEqual(new Set([0, 1]));
    for (const e of phases) {
      expect(e.args!.layer_type).toBe(e.cat);
      expect(typeof e.args!.step).toBe('number');
    }
    const saved = JSON.parse(readFileSync(summaryPath(file), 'utf8')) as { summaries: TraceSummary[] };
    expect(saved.summaries).toEqual(summaries);
  }, 60_000);

  it('traces one thread when only one is asked for: no barrier waits', async () => {
    const file = join(dir, 'one.json');
    const { summaries } = await runTraces({
      archs: ['shufflenet_v1_g3_0.25x'],
      threads: [1],
      size: 32,
      warmup: 1,
      runs: 2,
      seed: 0,
      file,
      log: () => {},
    });
    expect(summaries.map((s) => s.threads)).toEqual([1]);
    expect(summaries[0]!.perThread.map((t) => t.wait_ms)).toEqual([0]);
    const complete = checkTraceEvents(JSON.parse(readFileSync(file, 'utf8')));
    expect(complete.some((e) => e.cat === 'barrier')).toBe(false);
    expect(new Set(complete.map((e) => e.tid))).toEqual(new Set([0]));
  }, 60_000);

  it('names each case as a process and each thread as a track', () => {
    const trace = threaded.trace(input, 1);
    const cases: TraceCase[] = [{ arch: 'g3', trace, layerTypes: stepLayerTypes(graph, trace.stepNodes) }];
    const { traceEvents: events } = traceEvents(cases);
    const names = events.filter((e) => e.ph === 'M' && e.name.endsWith('_name')).map((e) => e.args!.name);
    expect(names).toEqual(['g3 @ 2 threads', 'thread 0 (leader)', 'thread 1 (helper)']);
    expect(Math.min(...events.filter((e) => e.ph === 'X').map((e) => e.ts!))).toBe(0);
  });
});
