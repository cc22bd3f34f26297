/**
 * Intra-op threads: one sample's steps split over the calling thread and helper workers on one
 * shared memory. The threaded plan must equal the single-threaded plan exactly (every output
 * element is computed by the same kernel code, only by another thread) and the reference forward
 * within 1e-4 of the output's scale, also when channel counts do not divide among the threads.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Graph } from '../src/graph/graph.js';
import { runGraph } from '../src/graph/execute.js';
import { createModel } from '../src/models/registry.js';
import { createNodeSession, spawnNodeWorker } from '../src/node/session.js';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { compilePlan } from '../src/runtime/plan.js';
import { createSession, SessionError, startHelpers, type Session } from '../src/runtime/session.js';
import { Barrier, CONTROL_BYTES, ThreadError } from '../src/runtime/threads/barrier.js';
import type { WorkerPort } from '../src/runtime/threads/ports.js';
import {
  decodeProgram,
  encodeProgram,
  KERNEL_NAMES,
  SCRATCH,
  Team,
  teamBytes,
  type HelperSetup,
} from '../src/runtime/threads/team.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { randomiseRunningStatistics, worstRelative as relativeToScale } from './helpers/compare.js';

/** The output's error over its scale (see helpers/compare.ts), once its shape is right. */
function worstRelative(actual: Tensor, expected: Tensor): number {
  expect(actual.shape).toEqual(expected.shape);
  return relativeToScale(actual, expected);
}

const random = new Random(21);

function randomInput(shape: number[]): Tensor {
  const t = new Tensor(shape);
  t.data.forEach((_, i) => (t.data[i] = random.normal()));
  return t;
}

/** The single-threaded plan on the build the threads run (SIMD128, not relaxed), for bit equality. */
async function singlePlan(graph: Graph): ReturnType<typeof compilePlan> {
  return compilePlan(graph, await WasmKernels.create({ relaxedSimd: false }));
}

/** Index of the first element where two outputs differ bit for bit, or -1. */
const firstDifference = (a: Tensor, b: Tensor): number => a.data.findIndex((v, i) => !Object.is(v, b.data[i]));

const singleOutputs = new Map<string, Tensor>();
/** The single-threaded plan's output for `input` (cached per graph and input). */
async function singleOutput(graph: Graph, input: Tensor): Promise<Tensor> {
  const key = `${graph.nodes.length}/${input.data[0]}`;
  if (!singleOutputs.has(key)) singleOutputs.set(key, (await singlePlan(graph)).run(input));
  return singleOutputs.get(key)!;
}

const sessions: Session[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.dispose()));
});

async function check(
  arch: string,
  shape: number[],
  threads: number[],
  options: Record<string, unknown> = {},
): Promise<void> {
  const graph = createModel(arch, options).trace(shape);
  randomiseRunningStatistics(graph, random);
  const input = randomInput(shape);
  const single = (await singlePlan(graph)).run(input);
  expect(worstRelative(single, runGraph(graph, input))).toBeLessThanOrEqual(1e-4);
  for (const t of threads) {
    const session = await createNodeSession(graph, { threads: t });
    sessions.push(session);
    expect(session.threads).toBe(t);
    expect((await session.stats()).workers).toBe(t - 1);
    const threaded = await session.run(input);
    expect(threaded.shape).toEqual(single.shape);
    const differs = threaded.data.findIndex((v, i) => !Object.is(v, single.data[i]));
    expect(differs, `${arch} at ${t} threads differs from 1 thread at output ${differs}`).toBe(-1);
    await session.dispose();
  }
}

describe('claiming home units', () => {
  it('each thread claims its own unit first, then the lowest free one; over 12 units, in order', () => {
    // Two views of one team on one thread: the helper's runs first and, alone, takes every unit:
    // its home (unit 1) first. The order in which units ran is the claim order.
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const log: string[] = [];
    const phase = (who: string, units: number) => ({
      leaderOnly: false,
      units: Array.from({ length: units }, (_, u) => () => void log.push(`${who}${u}`)),
    });
    const phases = (who: string) => [phase(who, 2), phase(who, 3), phase(who, 13)];
    expect(teamBytes(3)).toBeLessThan(65536);
    const leader = new Team(memory, 0, 3, phases('L'));
    const helper = new Team(memory, 0, 3, phases('H'), 1);
    leader.start();
    expect(helper.awaitRun()).toBe(0);
    for (let p = 0; p < 3; p++) {
      expect(helper.phase(p)).toBe(true);
      expect(leader.phase(p)).toBe(true); // all claimed: the leader only sees the phase done
    }
    expect(log).toEqual([
      ...['H1', 'H0'], // 2 units: home 1, then 0
      ...['H1', 'H0', 'H2'], // 3 units: home 1, then the lowest free
      ...Array.from({ length: 13 }, (_, u) => `H${u}`), // 13 units: a count, in order
    ]);
    log.length = 0;
    leader.start();
    expect(helper.awaitRun()).toBe(0);
    expect(leader.phase(1)).toBe(true); // the leader first: its home 0, then 1 and 2
    expect(log).toEqual(['L0', 'L1', 'L2']);
  });
});

describe('intra-op threaded plans', () => {
  it('split every step into units that any thread may claim: one program, per-thread scratch', async () => {
    const graph = createModel('shufflenet_v1_g3_0.25x').trace([1, 3, 64, 64]);
    const plan = await compilePlan(graph, { threads: 3 });
    expect(plan.threads).toBe(3);
    expect(plan.summary.variant).toBe('simd-shared');
    expect(plan.helpers.length).toBe(2);
    // Every helper runs the same program on its own areas: a phase per working step, plus the
    // stem's second (pad, then bands), less one per stride-2 unit, whose shortcut pool shares the
    // phase of the last GConv before it (independent neighbours).
    const program = decodeProgram(plan.helpers[0]!.program);
    expect(decodeProgram(plan.helpers[1]!.program)).toEqual(program);
    expect(plan.helpers[0]!.areas).not.toEqual(plan.helpers[1]!.areas);
    const working = plan.summary.steps.filter((s) => !s.startsWith('concat') && !s.startsWith('flatten'));
    const pools = working.filter((s) => s.startsWith('avgpool3x3s2')).length;
    expect(pools).toBe(3);
    expect(program.length).toBe(working.length + 1 - pools);
    for (const phase of program) {
      // A few chunks per thread (6 each at most), each unit non-empty.
      expect(phase.units.length).toBeGreaterThan(0);
      expect(phase.units.length).toBeLessThanOrEqual(6 * 3);
      for (const unit of phase.units) expect(unit.length).toBeGreaterThan(0);
    }
    // Scratch areas are placeholders in the program, never a thread's address.
    const calls = program.flatMap((phase) => phase.units.flat());
    const dw = calls.filter((c) => KERNEL_NAMES[c[0]!] === 'dwconv3x3');
    expect(dw.length).toBeGreaterThan(0);
    for (const c of dw) expect(c[c.length - 1]).toBe(SCRATCH);
    expect(calls.filter((c) => KERNEL_NAMES[c[0]!] === 'gemm4x8').length).toBeGreaterThan(30);
    plan.dispose();
    expect(() => plan.run(new Tensor([1, 3, 64, 64]))).toThrow(/disposed/);
  });

  it('ShuffleNet g3 0.25× (small input) at 2, 3 and 4 threads: uneven splits, threads with nothing to do', async () => {
    // 12 stem channels, bottlenecks of 5 channels per group, 10 classes: nothing divides evenly.
    await check('shufflenet_v1_g3_0.25x', [1, 3, 32, 32], [2, 3, 4], { numClasses: 10, smallInput: true });
  }, 30_000);

  it('ShuffleNet g8 0.5×, MobileNet 0.25, AlexNet (im2col convs) and SE (reference steps on the leader)', async () => {
    await check('shufflenet_v1_g8_0.5x', [1, 3, 64, 64], [2, 3]);
    await check('mobilenet_v1_0.25', [1, 3, 96, 96], [2]);
    await check('alexnet', [1, 3, 67, 67], [2, 3], { inputSize: 67 });
    await check('shufflenet_v1_g2_1.5x_se', [1, 3, 32, 32], [2]);
  }, 60_000);

  it('ShuffleNet V2 (aliased split halves, copies and shuffled writes into one concat) at 2 and 3 threads', async () => {
    await check('shufflenet_v2_1.0x', [1, 3, 96, 96], [2, 3]);
    await check('shufflenet_v2_0.5x', [1, 3, 45, 37], [2], { stride2Split: 'half' });
  }, 60_000);

  it('splits 1×1 GEMMs over large inputs by blocks of pixels, bit-identical to 1 thread (MobileNet 0.5 at 144×144)', async () => {
    const graph = createModel('mobilenet_v1_0.5').trace([1, 3, 144, 144]);
    const plan = await compilePlan(graph, { threads: 2 });
    const axes = plan.summary.splits.map((s) => s.axis);
    plan.dispose();
    expect(axes).toContain('pixel-blocks');
    expect(axes).toContain('channel-blocks');
    // Uneven: 3 threads over blocks that do not divide among them.
    await check('mobilenet_v1_0.5', [1, 3, 144, 144], [2, 3]);
  }, 120_000);

  it('gives 16 concurrent callers (batches 1–3) their own results on 2 threads', async () => {
    const graph = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }).trace([1, 3, 32, 32]);
    randomiseRunningStatistics(graph, random);
    const session = await createNodeSession(graph, { threads: 2 });
    sessions.push(session);
    const inputs = Array.from({ length: 16 }, (_, i) => randomInput([1 + (i % 3), 3, 32, 32]));
    const outputs = await Promise.all(inputs.map((x) => session.run(x)));
    const plan = await singlePlan(graph);
    inputs.forEach((x, i) => {
      // Distinct inputs give distinct logits, so a swapped or mixed result could not pass.
      expect(worstRelative(outputs[i]!, plan.run(x))).toBe(0);
      if (x.shape[0] === 1) expect(worstRelative(outputs[i]!, runGraph(graph, x))).toBeLessThanOrEqual(1e-4);
    });
    await session.dispose();
    await expect(session.run(inputs[0]!)).rejects.toThrow(/disposed/);
  }, 30_000);
});

describe('the control block', () => {
  const block = (threads: number, stallMs = 20_000): Barrier =>
    new Barrier(new SharedArrayBuffer(CONTROL_BYTES), 0, threads, { label: 'test', stallMs });

  it('passes a barrier of one thread at once, and carries a run command', () => {
    const leader = block(1);
    leader.start(7);
    leader.wait();
    leader.wait();
    leader.check();
  });

  it('a failed block throws a ThreadError at every barrier and refuses later runs', () => {
    const leader = block(1);
    leader.fail();
    expect(() => leader.wait()).toThrow(ThreadError);
    expect(() => leader.start()).toThrow(/test: a thread failed/);
  });

  it('a barrier that the other threads never reach throws after the stall limit and fails the block', () => {
    const leader = block(2, 50);
    const start = performance.now();
    expect(() => leader.wait()).toThrow(/test: a thread did not reach a barrier within 0.05 s/);
    expect(performance.now() - start).toBeGreaterThanOrEqual(50);
    expect(() => leader.check()).toThrow(ThreadError);
  });

  it('two views of one block: a start carries its command, the last arrival releases, quit ends the idle wait', () => {
    const buffer = new SharedArrayBuffer(64 + CONTROL_BYTES);
    const options = { label: 'test', stallMs: 20_000 };
    const leader = new Barrier(buffer, 64, 2, options);
    const helper = new Barrier(buffer, 64, 2, options);
    leader.start(3);
    expect(helper.awaitRun()).toBe(3);
    // The helper arrives first (it would wait); the leader's arrival completes the generation.
    const words = new Int32Array(buffer, 64, CONTROL_BYTES / 4);
    const generation = Atomics.load(words, 3 * 16);
    Atomics.add(words, 2 * 16, 1); // the helper's arrival, without its (blocking) wait
    leader.wait();
    expect(Atomics.load(words, 3 * 16)).toBe(generation + 1);
    expect(Atomics.load(words, 2 * 16)).toBe(0);
    leader.quit();
    expect(helper.awaitRun()).toBeNull();
  });
});

describe('a helper that fails', () => {
  it('fails the run with a ThreadError at once, then the session reports its message and refuses', async () => {
    const graph = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }).trace([1, 3, 32, 32]);
    // Every GEMM of the helper reads its weights from an address beyond the memory: a wasm trap.
    const spawnWorker = (): WorkerPort => {
      const port = spawnNodeWorker();
      return {
        ...port,
        postMessage(message) {
          const { setup } = message as { type: 'helper'; setup: HelperSetup };
          const program = decodeProgram(setup.program);
          for (const phase of program) {
            for (const c of phase.units.flat()) if (KERNEL_NAMES[c[0]!] === 'gemm4x8') c[4] = -64;
          }
          port.postMessage({ type: 'helper', setup: { ...setup, program: encodeProgram(program) } });
        },
      };
    };
    const session = await createSession(graph, { threads: 2, spawnWorker });
    sessions.push(session);
    expect(session.threads).toBe(2);
    const input = randomInput([1, 3, 32, 32]);
    // Units are claimed, so a run in which the helper claimed no GEMM succeeds (the leader did them
    // all, correctly); the first run in which it claimed one fails with a ThreadError.
    let failure: unknown = null;
    for (let i = 0; i < 200 && failure === null; i++) {
      const out = await session.run(input).catch((e: unknown) => {
        failure = e;
        return null;
      });
      if (out !== null) expect(firstDifference(out, await singleOutput(graph, input))).toBe(-1);
    }
    expect(failure).toBeInstanceOf(ThreadError);
    await expect
      .poll(() => session.run(input).catch((e: Error) => e.message))
      .toMatch(/session worker: .*out of bounds/);
    await expect(session.run(input)).rejects.toThrow(SessionError);
    await session.dispose();
  }, 30_000);
});

describe('a helper that the OS took away', () => {
  it('does not stall the run: the leader claims every unit and finishes in far less than one nap', async () => {
    const graph = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }).trace([1, 3, 32, 32]);
    randomiseRunningStatistics(graph, random);
    const input = randomInput([1, 3, 32, 32]);
    const expected = await singleOutput(graph, input);
    const NAP_MS = 200;
    // The helper sleeps NAP_MS after every wake-up before its first claim (a descheduled thread).
    const spawnWorker = (): WorkerPort => {
      const port = spawnNodeWorker();
      return {
        ...port,
        postMessage(message) {
          const { setup } = message as { type: 'helper'; setup: HelperSetup };
          port.postMessage({ type: 'helper', setup: { ...setup, testDelayMs: NAP_MS } });
        },
      };
    };
    const plan = await compilePlan(graph, { threads: 2, traceRuns: 3 });
    const stop = await startHelpers(plan, spawnWorker);
    try {
      const phases = decodeProgram(plan.helpers[0]!.program).length;
      expect(phases).toBeGreaterThan(20);
      // With a barrier after every phase each run would wait for the nap (≥ 50 ms); claiming
      // leaves the sleeper behind: 10 runs take less than one nap (≪ 200 ms × phases).
      const start = performance.now();
      for (let r = 0; r < 10; r++) expect(firstDifference(plan.run(input), expected)).toBe(-1);
      expect(performance.now() - start).toBeLessThan(NAP_MS);
      // A traced run waits for the helper's records at its end (only traced runs do), but the
      // leader's phases are done long before: it ran every unit, the sleeper none.
      const trace = plan.trace(input, 3);
      expect(firstDifference(trace.output, expected)).toBe(-1);
      for (let run = 0; run < 3; run++) {
        const leader = trace.events.filter((e) => e.run === run && e.thread === 0);
        const helper = trace.events.filter((e) => e.run === run && e.thread === 1);
        expect(leader.map((e) => e.units)).toEqual(trace.phaseUnits);
        expect(helper.map((e) => e.units)).toEqual(trace.phaseUnits.map(() => 0));
        expect(leader[leader.length - 1]!.waitEnd - leader[0]!.start).toBeLessThan(NAP_MS / 2);
        // The helper woke after the nap and found every phase done.
        expect(helper[0]!.start).toBeGreaterThanOrEqual(leader[leader.length - 1]!.waitEnd - 1e-3); // 1 µs: clocks
      }
    } finally {
      plan.dispose();
      await stop();
    }
  }, 30_000);
});
