/**
 * Intra-op threads: a team of T threads (the calling thread and T − 1 helpers) runs one plan over
 * ONE shared WebAssembly memory, each thread instantiating the 'simd-shared' kernels over it.
 * Every step of the plan is split into per-thread kernel calls (ranges of output channels, planes
 * or rows; see ../plan.ts), and the threads meet at a barrier between dependent phases. The
 * control block (run, barrier, quit, failure) lives in the shared memory at the plan's control
 * address; its protocol is ./barrier.ts's.
 *
 * A helper's program crosses to its worker as one Int32Array:
 *   [phases, then per phase: calls, then per call: kernel index, argument count, arguments…]
 * Each run, a helper runs every phase and meets the barrier after it; in a traced run (the run's
 * command names a slot of the plan's trace region, ./trace.ts) it also records each phase. A
 * helper whose kernel call throws marks the run failed (releasing the others, who throw a ThreadError; the leader's from
 * plan.run) and waits for the next run, which the leader refuses.
 */
import { inferenceKernelExportsNames } from '../../kernels/wasm/exports.generated.js';
import { instantiateSharedKernels, type KernelExports } from '../../kernels/wasm/module.js';
import { Barrier, CONTROL_BYTES, ThreadError } from './barrier.js';
import { recordIndex, runTraced, traceClock, type TraceRegion } from './trace.js';

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

/** A barrier that waits this long means a thread died: the run fails instead of hanging. */
const STALL_MS = 20_000;

/** Turns calls into closures over one instance's exports. */
export function bindCalls(exports: KernelExports, calls: readonly KernelCall[]): () => void {
  const fns = KERNEL_NAMES.map((name) => exports[name] as (...args: number[]) => void);
  const bound = calls.map((c) => {
    const fn = fns[c[0]!]!;
    const args = c.slice(1);
    return (): void => fn(...args);
  });
  if (bound.length === 1) return bound[0]!;
  return () => {
    for (const f of bound) f();
  };
}

export function encodeProgram(phases: readonly (readonly KernelCall[])[]): Int32Array {
  const words: number[] = [phases.length];
  for (const calls of phases) {
    words.push(calls.length);
    for (const c of calls) words.push(c[0]!, c.length - 1, ...c.slice(1));
  }
  return Int32Array.from(words);
}

export function decodeProgram(words: Int32Array): KernelCall[][] {
  let at = 0;
  const next = (): number => words[at++]!;
  return Array.from({ length: next() }, () =>
    Array.from({ length: next() }, () => {
      const fn = next();
      const count = next();
      // Addresses above 2 GiB come back negative from an Int32Array; wasm reads the same bits.
      return [fn, ...Array.from({ length: count }, next)];
    }),
  );
}

/** One thread's view of a team's control block (see ./barrier.ts). */
export class Team {
  private readonly control: Barrier;

  constructor(
    memory: WebAssembly.Memory,
    controlAddress: number,
    readonly size: number,
  ) {
    this.control = new Barrier(memory.buffer, controlAddress, size, { label: 'threaded plan', stallMs: STALL_MS });
  }

  /**
   * Leader: starts a run on every helper (throws if an earlier run failed). `command` 0 is an
   * untraced run; k > 0 records the run into trace slot k − 1.
   */
  start(command = 0): void {
    this.control.start(command);
  }

  /** Every thread, after its share of a phase: returns once all `size` threads have arrived. */
  barrier(): void {
    this.control.wait();
  }

  /** Helper: sleeps until the next run and returns its command (see start), or null after dispose. */
  awaitRun(): number | null {
    return this.control.awaitRun();
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
}

/** What a helper needs: the shared memory, the control block and its own program. */
export interface HelperSetup {
  memory: WebAssembly.Memory;
  controlAddress: number;
  threads: number;
  /** This helper's thread index (1 … threads − 1): its rows of the trace region. */
  thread: number;
  program: Int32Array;
  /** The plan's trace region, or null if the plan was compiled without one. */
  trace: TraceRegion | null;
}

/**
 * A helper thread's side: instantiates the kernels over the shared memory, then returns a loop
 * that runs the program once per run (a barrier after each phase) until the leader quits. The loop
 * blocks its thread; call it when nothing else needs that thread's event loop. `report` gets the
 * error of a kernel call that threw (the run has failed by then).
 */
export async function prepareHelper(setup: HelperSetup): Promise<(report?: (error: unknown) => void) => void> {
  const exports = await instantiateSharedKernels(setup.memory);
  const phases = decodeProgram(setup.program).map((calls) => bindCalls(exports, calls));
  const team = new Team(setup.memory, setup.controlAddress, setup.threads);
  const barrier = (): void => team.barrier();
  const { trace, thread, threads } = setup;
  const records =
    trace === null
      ? null
      : new Float64Array(setup.memory.buffer, trace.address, recordIndex(trace.runs, 0, threads, phases.length));
  const now = traceClock(trace?.origin ?? performance.timeOrigin);
  return (report) => {
    for (let command = team.awaitRun(); command !== null; command = team.awaitRun()) {
      try {
        if (command > 0 && records !== null) {
          runTraced(phases, barrier, records, recordIndex(command - 1, thread, threads, phases.length), now);
          continue;
        }
        for (const phase of phases) {
          phase();
          team.barrier();
        }
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
