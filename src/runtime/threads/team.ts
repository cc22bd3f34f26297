/**
 * Intra-op threads: a team of T threads (the calling thread and T − 1 helpers) runs one plan over
 * ONE shared WebAssembly memory, each thread instantiating a shared build of the plan's kernel
 * family over it: the float kernels' 'simd-shared' build, or the int8 module's (../quant/plan.ts).
 * Every phase of the plan is a list of units (the lowering's ThreadSplit units, grouped into a few
 * chunks per thread: ranges of output channels, pixel blocks, planes or bands; see ../plan.ts),
 * each a list of kernel calls. Whichever thread gets to a unit first runs it: shares are claimed,
 * not assigned, so a thread that the OS took away (or that sleeps in Atomics.wait) delays nobody
 * but itself, and the others do its work. The run/quit/failure words are ./barrier.ts's control
 * block; the claim words follow it in the shared memory.
 *
 * Claim words (Int32, each on its own 64-byte line, after the control block):
 *
 *   CLAIMED[p]  units of phase p handed out so far in the current run: a count, or, in a phase of
 *               at most 12 units, a mask of the units handed out (each thread claims its home
 *               unit, its thread index, first; then the lowest free one)
 *   DONE[p]     units of phase p finished in the current run
 *   FINISHED    helpers that have written all their records of a traced run
 *   SLEEPERS    threads asleep in Atomics.wait on a DONE or FINISHED word
 *
 * Every CLAIMED, DONE and FINISHED word holds TAG(run) + count, TAG(run) = (run mod 2^19) · 2^12:
 * the run's number (the control block's RUN after the leader's bump) in the high bits, a count
 * (< 2^12 units per phase) in the low ones.
 *
 * Run:      the leader stores TAG(next run) into every CLAIMED, DONE and FINISHED word, then bumps
 *           RUN (./barrier.ts start: COMMAND first). A helper learns the run's number from the
 *           RUN value that woke it, so its tag and the words it reads cannot disagree for long.
 * Phase p:  every thread (leader and helpers, one loop) claims units with a compare-exchange of
 *           CLAIMED[p] from v to v + 1, but only while v's tag is its run's and v's count is below
 *           the phase's units; it runs unit count(v); when nothing is left it adds the number of
 *           units it ran to DONE[p] (one add per thread per phase). It starts phase p + 1 only
 *           once DONE[p] = TAG + units (the data dependency; no thread waits for another thread,
 *           only for work). The thread whose add completes the phase notifies DONE[p] if
 *           SLEEPERS > 0. The leader's run ends when the last phase is done.
 * Reference phases (a `main` step) are one unit only the leader runs; helpers wait for its DONE.
 * Stale:    a helper woken for run r that runs late finds its phases claimed or done and moves on
 *           (an add cannot be taken back, hence compare-exchange: a claim checks the tag in the
 *           same atomic step). Once the leader has started run r + 1, every word carries the new
 *           tag: the stale helper's compare-exchange fails and its wait on DONE sees a foreign tag,
 *           so it leaves run r and picks up r + 1 from RUN. Its DONE adds are always its own run's:
 *           run r cannot end before they land. A tag repeats after 2^19 runs; a helper would have
 *           to stay descheduled for all of them between two of its atomics.
 * Waiting:  for DONE[p], spin (./barrier.ts SPIN_MS), then Atomics.wait on the word with a short timeout,
 *           counted in SLEEPERS; a web page's main thread (the leader there) only spins.
 * Failure:  a unit that throws sets the control block's ERROR (./barrier.ts fail); every waiter
 *           checks ERROR after its spin and every timeout and throws a ThreadError, so nobody
 *           waits for work that will never be done; the leader's `run` throws it and later runs
 *           are refused. A wait longer than the stall limit means a thread died holding a unit:
 *           the waiter fails the run and throws.
 * Tracing:  in a traced run (COMMAND k > 0: slot k − 1 of ./trace.ts's region) each thread records
 *           per phase the start of its first claim attempt, the end of its last unit, when it saw
 *           the phase done, and how many units it ran; each helper then adds 1 to FINISHED
 *           (compare-exchange, same tag rule), and the leader waits for T − 1 before it reads the
 *           records. Only traced runs wait for helpers.
 *
 * A program crosses to a helper as one Int32Array:
 *   [phases, then per phase: leader-only flag, units, then per unit: calls, then per call: kernel
 *    index, argument count, arguments…]
 * Arguments SCRATCH and COL stand for the executing thread's scratch area and patch matrix,
 * substituted once when the thread binds its calls (a unit may run on any thread).
 */
import { inferenceKernelExportsNames, int8KernelExportsNames } from '../../kernels/wasm/exports.generated.js';
import { instantiateSharedKernels } from '../../kernels/wasm/module.js';
import { ShuffleNetError } from '../../errors.js';
import { Barrier, canBlock, CONTROL_BYTES, spin, ThreadError } from './barrier.js';
import { RECORD_WORDS, recordIndex, traceClock, type TraceRegion } from './trace.js';

export { CONTROL_BYTES };

/** Inference exports that are not kernels a helper calls (they answer the leader's questions). */
const NOT_CALLED = ['paddedPlaneFloats', 'heapBase'] as const;
export type KernelName = Exclude<(typeof inferenceKernelExportsNames)[number], (typeof NOT_CALLED)[number]>;

/** The kernels a call may name, by index: the shared build's exports, in their generated order. */
export const KERNEL_NAMES: readonly KernelName[] = inferenceKernelExportsNames.filter(
  (name): name is KernelName => !(NOT_CALLED as readonly string[]).includes(name),
);

/** One kernel call: the kernel's index in KERNEL_NAMES, then its arguments. */
export type KernelCall = number[];

export function call(name: KernelName, ...args: number[]): KernelCall {
  return [KERNEL_NAMES.indexOf(name), ...args];
}

/** Int8 exports that are not kernels a helper calls. */
const INT8_NOT_CALLED = ['heapBase', 'qdwPaddedWidth', 'qdot4Probe'] as const;
export type Int8KernelName = Exclude<(typeof int8KernelExportsNames)[number], (typeof INT8_NOT_CALLED)[number]>;

/** The int8 kernels a call may name (a threaded int8 plan's program), by index. */
export const INT8_KERNEL_NAMES: readonly Int8KernelName[] = int8KernelExportsNames.filter(
  (name): name is Int8KernelName => !(INT8_NOT_CALLED as readonly string[]).includes(name),
);

export function int8Call(name: Int8KernelName, ...args: number[]): KernelCall {
  return [INT8_KERNEL_NAMES.indexOf(name), ...args];
}

/**
 * Which kernels a program calls: the float inference kernels (KERNEL_NAMES, the 'simd-shared'
 * build) or the int8 kernels (INT8_KERNEL_NAMES, the int8 module's shared build).
 */
export type KernelFamily = 'float' | 'int8';

const familyNames: Record<KernelFamily, readonly string[]> = { float: KERNEL_NAMES, int8: INT8_KERNEL_NAMES };

/**
 * How a helper instantiates each family's shared build over the plan's memory. The int8 family
 * registers itself when its plan's module loads (src/runtime/quant/plan.ts), so that a program
 * (or a page's worker) that never runs int8 does not carry the int8 kernels.
 */
const familyBuilds = new Map<KernelFamily, (memory: WebAssembly.Memory) => Promise<WebAssembly.Exports>>([
  ['float', instantiateSharedKernels],
]);

export function registerKernelFamily(
  family: KernelFamily,
  instantiate: (memory: WebAssembly.Memory) => Promise<WebAssembly.Exports>,
): void {
  familyBuilds.set(family, instantiate);
}

/**
 * Argument placeholders for the executing thread's scratch area and patch matrix. Real arguments
 * are never negative (addresses lie below the shared memory's 1 GiB maximum, counts are ≥ 0).
 */
export const SCRATCH = -1;
export const COL = -2;

/** The per-thread areas a thread substitutes for SCRATCH and COL. */
export interface ThreadAreas {
  scratch: number;
  col: number;
}

/** One phase of a program: units of kernel calls, or (leader only) a reference step. */
export interface ProgramPhase {
  /** Run by the leader alone (a reference step: `units` is empty in the program). */
  leaderOnly: boolean;
  units: KernelCall[][];
}

/** A waiter that waits this long means a thread died: the run fails instead of hanging. */
const STALL_MS = 20_000;
/** Longest sleep on a DONE word before the waiter looks at ERROR and the stall limit again. */
const SLEEP_MS = 1;

const LINE = 16; // Int32 words per 64-byte line
const FINISHED = 0;
const SLEEPERS = LINE;
const PHASE_WORDS = 2 * LINE;
const COUNT_BITS = 12;
const COUNT_MASK = (1 << COUNT_BITS) - 1;
const RUN_MASK = (1 << 19) - 1;
/** Units a phase may hold (the count field of a claim word). */
export const MAX_UNITS = COUNT_MASK;

const claimedWord = (p: number): number => PHASE_WORDS + 2 * p * LINE;
const doneWord = (p: number): number => PHASE_WORDS + (2 * p + 1) * LINE;
const tagOf = (run: number): number => (run & RUN_MASK) << COUNT_BITS;

/** Bytes of a team's control block and claim words for a plan of `phases` phases. */
export function teamBytes(phases: number): number {
  return CONTROL_BYTES + (PHASE_WORDS / LINE + 2 * phases) * 64;
}

/** Turns calls into one closure over one instance's exports, with this thread's areas substituted. */
export function bindCalls(
  exports: WebAssembly.Exports,
  calls: readonly KernelCall[],
  areas: ThreadAreas,
  family: KernelFamily = 'float',
): () => void {
  const fns = familyNames[family].map((name) => exports[name] as (...args: number[]) => void);
  const bound = calls.map((c) => {
    const fn = fns[c[0]!]!;
    const args = c.slice(1).map((a) => (a === SCRATCH ? areas.scratch : a === COL ? areas.col : a));
    return (): void => fn(...args);
  });
  if (bound.length === 1) return bound[0]!;
  return () => {
    for (const f of bound) f();
  };
}

export function encodeProgram(phases: readonly ProgramPhase[]): Int32Array {
  const words: number[] = [phases.length];
  for (const { leaderOnly, units } of phases) {
    words.push(leaderOnly ? 1 : 0, units.length);
    for (const calls of units) {
      words.push(calls.length);
      for (const c of calls) words.push(c[0]!, c.length - 1, ...c.slice(1));
    }
  }
  return Int32Array.from(words);
}

export function decodeProgram(words: Int32Array): ProgramPhase[] {
  let at = 0;
  const next = (): number => words[at++]!;
  const many = <T>(make: () => T): T[] => Array.from({ length: next() }, make);
  return many(() => ({
    leaderOnly: next() === 1,
    units: many(() =>
      many(() => {
        const fn = next();
        const count = next();
        // Addresses above 2 GiB would come back negative from an Int32Array; wasm reads the same bits.
        return [fn, ...Array.from({ length: count }, next)];
      }),
    ),
  }));
}

/** One phase as a thread runs it: its units bound to that thread (the leader's reference step is one unit). */
export interface BoundPhase {
  leaderOnly: boolean;
  units: (() => void)[];
}

/** Where a traced run's records go (./trace.ts), for one thread. */
export interface Recorder {
  records: Float64Array;
  /** Index of this thread's first record of the run. */
  at: number;
  now: () => number;
}

/** One thread's view of a team: the control block, the claim words, and its bound phases. */
export class Team {
  private readonly control: Barrier;
  private readonly words: Int32Array;
  private readonly blocking: boolean;
  /** Tag of the run this thread is in (see the header). */
  private tag = 0;

  constructor(
    memory: WebAssembly.Memory,
    controlAddress: number,
    readonly size: number,
    private readonly phases: readonly BoundPhase[],
    /** This thread's index (0: the leader): its home unit in phases of few units. */
    private readonly thread = 0,
  ) {
    this.control = new Barrier(memory.buffer, controlAddress, size, { label: 'threaded plan', stallMs: STALL_MS });
    this.words = new Int32Array(
      memory.buffer,
      controlAddress + CONTROL_BYTES,
      (teamBytes(phases.length) - CONTROL_BYTES) / 4,
    );
    this.blocking = canBlock(this.words);
  }

  /**
   * Leader: starts a run on every helper (throws if an earlier run failed). `command` 0 is an
   * untraced run; k > 0 records the run into trace slot k − 1.
   */
  start(command = 0): void {
    this.control.check();
    const w = this.words;
    this.tag = tagOf(this.control.nextRun());
    for (let p = 0; p < this.phases.length; p++) {
      Atomics.store(w, claimedWord(p), this.tag);
      Atomics.store(w, doneWord(p), this.tag);
    }
    Atomics.store(w, FINISHED, this.tag);
    this.control.start(command);
  }

  /** Helper: sleeps until the next run and returns its command (see start), or null after dispose. */
  awaitRun(): number | null {
    const command = this.control.awaitRun();
    this.tag = tagOf(this.control.run);
    return command;
  }

  /**
   * Every thread: claims and runs units of phase p until none is left, then waits until the
   * phase is done. Returns false if this thread's run is over (a helper that fell behind by a run).
   */
  phase(p: number, recorder: Recorder | null = null): boolean {
    const w = this.words;
    const tag = this.tag;
    const { leaderOnly, units } = this.phases[p]!;
    const start = recorder === null ? 0 : recorder.now();
    let ran = 0;
    let total = units.length;
    if (leaderOnly) {
      total = 1;
      if (units.length > 0) {
        units[0]!(); // only the leader's bound phase has the step
        ran = 1;
      }
    } else if (total <= COUNT_BITS) {
      // Few units (one per thread, as today): CLAIMED's count bits are a mask of the units
      // claimed, and each thread claims its home unit (unit = its thread index) first, then the
      // lowest free one. A thread then keeps the same share of consecutive phases, so what it
      // wrote in one phase is what it reads in the next, from its own core's cache.
      const word = claimedWord(p);
      const full = (1 << total) - 1;
      const home = this.thread < total ? 1 << this.thread : 0;
      for (;;) {
        const v = Atomics.load(w, word);
        const mask = v - tag;
        if (mask < 0 || mask > full) return false; // another run's word: this thread's run is over
        if (mask === full) break;
        const free = full & ~mask;
        const bit = (free & home) !== 0 ? home : free & -free;
        if (Atomics.compareExchange(w, word, v, v + bit) !== v) continue;
        units[31 - Math.clz32(bit)]!();
        ran++;
      }
    } else {
      const word = claimedWord(p);
      for (;;) {
        const v = Atomics.load(w, word);
        if (v - tag < 0 || v - tag >= total) {
          if (v - tag === total) break;
          return false; // another run's word: this thread's run is over
        }
        if (Atomics.compareExchange(w, word, v, v + 1) !== v) continue;
        units[v - tag]!();
        ran++;
      }
    }
    const end = recorder === null ? 0 : recorder.now();
    const done = doneWord(p);
    if (ran > 0 && Atomics.add(w, done, ran) + ran === tag + total && Atomics.load(w, SLEEPERS) > 0) {
      Atomics.notify(w, done);
    }
    if (!this.waitFor(done, tag + total)) return false;
    if (recorder !== null) {
      const { records, at, now } = recorder;
      const i = at + p * RECORD_WORDS;
      records[i] = start;
      records[i + 1] = end;
      records[i + 2] = now();
      records[i + 3] = ran;
    }
    return true;
  }

  /** Leader: runs every phase of a started run (recording it if `recorder` is given). */
  runAll(recorder: Recorder | null = null): void {
    for (let p = 0; p < this.phases.length; p++) this.phase(p, recorder);
    if (recorder !== null) this.waitFor(FINISHED, this.tag + this.size - 1);
  }

  /** Helper: runs every phase of its current run; in a traced run, then counts itself finished. */
  runHelper(recorder: Recorder | null): void {
    for (let p = 0; p < this.phases.length; p++) if (!this.phase(p, recorder)) return;
    if (recorder === null) return;
    const w = this.words;
    for (;;) {
      const v = Atomics.load(w, FINISHED);
      if (v - this.tag < 0 || v - this.tag >= this.size - 1) return; // another run's word
      if (Atomics.compareExchange(w, FINISHED, v, v + 1) !== v) continue;
      if (Atomics.load(w, SLEEPERS) > 0) Atomics.notify(w, FINISHED);
      return;
    }
  }

  /** Leader: wakes every helper so that it leaves its loop. */
  quit(): void {
    this.control.quit();
  }

  fail(): void {
    this.control.fail();
  }

  /** Leader, after a run: throws if a thread failed. */
  check(): void {
    this.control.check();
  }

  /**
   * Returns true once words[index] = target, false if the word carries another run's tag (the
   * thread's run is over); throws a ThreadError once a thread has failed or after the stall limit.
   */
  private waitFor(index: number, target: number): boolean {
    const w = this.words;
    const tag = this.tag;
    const settled = (v: number): boolean => v === target || v - tag < 0 || v - tag > COUNT_MASK;
    const spun = spin(w, index, settled);
    if (spun !== null) return spun === target;
    const start = performance.now();
    for (;;) {
      const v = Atomics.load(w, index);
      if (settled(v)) return v === target;
      this.control.check();
      if (performance.now() - start > STALL_MS) {
        this.control.fail();
        throw new ThreadError(`threaded plan: a phase was not done within ${STALL_MS / 1000} s (a thread stopped)`);
      }
      if (this.blocking) {
        Atomics.add(w, SLEEPERS, 1);
        Atomics.wait(w, index, v, SLEEP_MS);
        Atomics.sub(w, SLEEPERS, 1);
      }
    }
  }
}

/** What a helper needs: the shared memory, the control block, the program and its own areas. */
export interface HelperSetup {
  memory: WebAssembly.Memory;
  controlAddress: number;
  threads: number;
  /** This helper's thread index (1 … threads − 1): its rows of the trace region. */
  thread: number;
  /** The plan's program (the same for every thread; see the header). */
  program: Int32Array;
  /** The kernels its calls name (default 'float'). */
  family?: KernelFamily;
  /** This thread's scratch area and patch matrix (what SCRATCH and COL stand for). */
  areas: ThreadAreas;
  /** The plan's trace region, or null if the plan was compiled without one. */
  trace: TraceRegion | null;
  /**
   * Test only: milliseconds this helper sleeps after each wake-up, before its first claim (a
   * thread the OS took away). Absent in real setups.
   */
  testDelayMs?: number;
}

/**
 * A helper thread's side: instantiates the kernels over the shared memory, then returns a loop
 * that joins every run until the leader quits. The loop blocks its thread; call it when nothing
 * else needs that thread's event loop. `report` gets the error of a kernel call that threw (the
 * run has failed by then).
 */
export async function prepareHelper(setup: HelperSetup): Promise<(report?: (error: unknown) => void) => void> {
  const family = setup.family ?? 'float';
  const instantiate = familyBuilds.get(family);
  if (instantiate === undefined) {
    throw new ShuffleNetError(
      `threaded plan: this worker has no ${family} kernels (its entry must import the ${family} plan's module)`,
    );
  }
  const exports = await instantiate(setup.memory);
  const phases = decodeProgram(setup.program).map(({ leaderOnly, units }) => ({
    leaderOnly,
    units: leaderOnly ? [] : units.map((calls) => bindCalls(exports, calls, setup.areas, family)),
  }));
  const team = new Team(setup.memory, setup.controlAddress, setup.threads, phases, setup.thread);
  const { trace, thread, threads, testDelayMs = 0 } = setup;
  const records =
    trace === null
      ? null
      : new Float64Array(setup.memory.buffer, trace.address, recordIndex(trace.runs, 0, threads, phases.length));
  const now = traceClock(trace?.origin ?? performance.timeOrigin);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  return (report) => {
    for (let command = team.awaitRun(); command !== null; command = team.awaitRun()) {
      try {
        if (testDelayMs > 0) Atomics.wait(nap, 0, 0, testDelayMs);
        const at = recordIndex(command - 1, thread, threads, phases.length);
        team.runHelper(command > 0 && records !== null ? { records, at, now } : null);
      } catch (error) {
        // This helper's call failed (tell the others), or another thread did (it already has):
        // either way this run is over, and the leader refuses the next one.
        if (error instanceof ThreadError) continue;
        team.fail();
        report?.(error);
      }
    }
  };
}
