/**
 * Intra-op threads: a team of T threads (the calling thread and T − 1 workers) runs one plan over
 * ONE shared WebAssembly memory, each thread instantiating the 'simd-shared' kernels over it.
 * Every step of the plan is split into per-thread kernel calls (ranges of output channels, planes
 * or rows; see plan.ts), and the threads meet at a barrier between dependent phases.
 *
 * Synchronisation is a few Int32 words in the shared memory (the control block), each on its own
 * 64-byte line:
 *
 *   RUN      bumped by the leader to start a run (helpers sleep on it between runs)
 *   COUNT    threads arrived at the current barrier
 *   GEN      barrier generation: the last thread to arrive resets COUNT and bumps GEN
 *   WAITERS  threads asleep in Atomics.wait on GEN (the releaser notifies only if > 0)
 *   QUIT     set by dispose: helpers leave their loop
 *   ERROR    set by a helper whose kernel call threw; the leader raises it after the run
 *
 * A waiting thread spins on GEN for a while (a phase takes 10–300 µs; waking from a futex costs
 * tens of µs), then sleeps in Atomics.wait. The main thread of a web page may not Atomics.wait:
 * there the leader only spins.
 *
 * A thread's program crosses to a worker as one Int32Array:
 *   [phases, then per phase: calls, then per call: kernel index, argument count, arguments…]
 */
import { ShuffleNetError } from '../errors.js';
import { instantiateSharedKernels, type KernelExports } from '../kernels/wasm/module.js';

/** The kernels a call may name, by index. */
export const KERNEL_NAMES = [
  'gemm4x8',
  'dense8',
  'dwconv3x3',
  'pool3x3s2',
  'padPlanes',
  'im2col3x3s2',
  'im2col',
  'globalAvgPool',
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

/** One kernel call: the kernel's index in KERNEL_NAMES, then its arguments. */
export type KernelCall = number[];

export function call(name: KernelName, ...args: number[]): KernelCall {
  return [KERNEL_NAMES.indexOf(name), ...args];
}

/** Bytes of the control block. */
export const CONTROL_BYTES = 6 * 64;
const RUN = 0;
const COUNT = 16;
const GEN = 32;
const WAITERS = 48;
const QUIT = 64;
const ERROR = 80;

/** Spins on a barrier before sleeping (iterations of an Atomics.load loop, ~1–2 ns each). */
const SPINS = 40000;
/** A barrier that waits this long means a thread died: the run fails instead of hanging. */
const STALL_MS = 20000;

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

/** Whether this thread may block in Atomics.wait (not on a web page's main thread). */
function canBlock(control: Int32Array): boolean {
  try {
    Atomics.wait(control, QUIT, 12345, 0); // returns 'not-equal' at once where waiting is allowed
    return true;
  } catch {
    return false;
  }
}

/** One thread's view of the control block. */
export class Team {
  private readonly control: Int32Array;
  private readonly blocking: boolean;
  private seenRun = 0;

  constructor(
    memory: WebAssembly.Memory,
    controlAddress: number,
    readonly size: number,
  ) {
    this.control = new Int32Array(memory.buffer, controlAddress, CONTROL_BYTES / 4);
    this.blocking = canBlock(this.control);
    this.seenRun = Atomics.load(this.control, RUN);
  }

  /** Leader: starts a run on every helper. */
  start(): void {
    Atomics.add(this.control, RUN, 1);
    Atomics.notify(this.control, RUN);
  }

  /** Every thread, after its share of a phase: returns once all `size` threads have arrived. */
  barrier(): void {
    const c = this.control;
    const gen = Atomics.load(c, GEN);
    if (Atomics.add(c, COUNT, 1) === this.size - 1) {
      Atomics.store(c, COUNT, 0);
      Atomics.add(c, GEN, 1);
      if (Atomics.load(c, WAITERS) > 0) Atomics.notify(c, GEN);
      return;
    }
    this.waitWhile(GEN, gen);
  }

  /** Helper: sleeps until the next run (true) or dispose (false). */
  awaitRun(): boolean {
    this.waitWhile(RUN, this.seenRun, true);
    this.seenRun = Atomics.load(this.control, RUN);
    return Atomics.load(this.control, QUIT) === 0;
  }

  /** Leader: wakes every helper so that it leaves its loop. */
  quit(): void {
    Atomics.store(this.control, QUIT, 1);
    this.start();
  }

  fail(): void {
    Atomics.store(this.control, ERROR, 1);
  }

  /** Leader, after a run: throws if a helper failed. */
  check(): void {
    if (Atomics.load(this.control, ERROR) !== 0) {
      throw new ShuffleNetError('threaded plan: a worker thread failed during the run');
    }
  }

  private waitWhile(index: number, value: number, idle = false): void {
    const c = this.control;
    for (let i = 0; i < SPINS; i++) if (Atomics.load(c, index) !== value) return;
    if (!this.blocking) {
      const start = performance.now();
      while (Atomics.load(c, index) === value) {
        if (performance.now() - start > STALL_MS) this.stalled();
      }
      return;
    }
    Atomics.add(c, WAITERS, 1);
    try {
      const start = performance.now();
      while (Atomics.load(c, index) === value) {
        // An idle helper sleeps until the next run, however long that takes.
        Atomics.wait(c, index, value, idle ? Infinity : STALL_MS);
        if (!idle && Atomics.load(c, index) === value && performance.now() - start > STALL_MS) this.stalled();
      }
    } finally {
      Atomics.sub(c, WAITERS, 1);
    }
  }

  private stalled(): never {
    this.fail();
    throw new ShuffleNetError(`threaded plan: a thread did not reach a barrier within ${STALL_MS / 1000} s`);
  }
}

/** What a helper needs: the shared memory, the control block and its own program. */
export interface HelperSetup {
  memory: WebAssembly.Memory;
  controlAddress: number;
  threads: number;
  program: Int32Array;
}

/**
 * A helper thread's side: instantiates the kernels over the shared memory, then returns a loop
 * that runs the program once per run (a barrier after each phase) until the leader quits. The loop
 * blocks its thread; call it when nothing else needs that thread's event loop.
 */
export async function prepareHelper(setup: HelperSetup): Promise<() => void> {
  const exports = await instantiateSharedKernels(setup.memory);
  const phases = decodeProgram(setup.program).map((calls) => bindCalls(exports, calls));
  const team = new Team(setup.memory, setup.controlAddress, setup.threads);
  return () => {
    while (team.awaitRun()) {
      for (const phase of phases) {
        try {
          phase();
        } catch {
          team.fail(); // keep meeting the barriers so that the leader finishes and reports it
        }
        team.barrier();
      }
    }
  };
}
