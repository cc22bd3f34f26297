/**
 * The control block: how T threads over one shared memory start a run, meet at barriers, stop, and
 * report a failure. Intra-op inference (./team.ts: one plan split over a team on a shared
 * WebAssembly.Memory) and data-parallel training (src/train/parallel.ts: one training plan per
 * thread over a SharedArrayBuffer) both run through it. Thread 0 is the leader (the caller's
 * thread); threads 1 … T − 1 are helpers (workers).
 *
 * The block is a few Int32 words, each on its own 64-byte line (a thread spinning on one word does
 * not slow down writes to another):
 *
 *   RUN      bumped by the leader to start a run; idle helpers sleep on it between runs
 *   COMMAND  what the run is, written before RUN (the user gives it meaning; the team ignores it)
 *   COUNT    threads arrived at the current barrier
 *   GEN      barrier generation: the last thread to arrive resets COUNT, then bumps GEN
 *   WAITERS  threads asleep in Atomics.wait (whoever bumps RUN or GEN notifies only if > 0)
 *   QUIT     set by the leader's quit(): helpers leave their loop
 *   ERROR    set by a thread that failed (never cleared)
 *
 * Run:      the leader writes the run's inputs and COMMAND, then bumps RUN; each helper, asleep in
 *           awaitRun(), wakes, reads COMMAND, and runs. Quit sets QUIT, then bumps RUN.
 * Barrier:  read GEN, add 1 to COUNT; the thread that brings COUNT to T resets it and bumps GEN,
 *           which releases the others, who wait until GEN changes. Atomics are sequentially
 *           consistent, so whatever a thread wrote before it arrived is visible to every thread
 *           after the barrier.
 * Waiting:  spin on the word first (a phase takes 10–300 µs; waking from a futex costs tens of µs),
 *           then sleep in Atomics.wait where the thread may block; the main thread of a web page
 *           may not, so there it only spins.
 * Failure:  a thread that fails sets ERROR and bumps GEN, releasing every thread waiting at the
 *           current barrier; every thread checks ERROR after each barrier and throws a ThreadError,
 *           so that all of them leave the run and their owners report it. A barrier that waits
 *           longer than the stall limit means a thread died or never came: the waiter sets ERROR
 *           and throws. A failed block refuses later runs (start throws); its owner disposes it.
 *
 * NOTE: every wait here goes through `waitWhile`, and every spin (here and in ./team.ts) through
 * `spin`, whose budget is time (SPIN_MS), not a count of loads.
 */
import { ShuffleNetError } from '../../errors.js';

/** A thread failed or stalled, so the run that met it cannot finish. */
export class ThreadError extends ShuffleNetError {
  override name = 'ThreadError';
}

const LINE = 16; // Int32 words per 64-byte line
const RUN = 0;
const COMMAND = 1 * LINE;
const COUNT = 2 * LINE;
const GEN = 3 * LINE;
const WAITERS = 4 * LINE;
const QUIT = 5 * LINE;
const ERROR = 6 * LINE;

/** Bytes of the control block (a multiple of 64: what follows it starts on a new line). */
export const CONTROL_BYTES = 7 * 64;

/**
 * How long a waiting thread spins before it sleeps, in milliseconds of the clock rather than loop
 * iterations: an Atomics.load loop runs at 1–20 ns per iteration depending on the machine and the
 * JIT's tier (6 ns here once hot, 19 ns before), so a count meant 40–800 µs. 0.2 ms covers a phase
 * (10–300 µs) and the gap between back-to-back runs, so a busy team never sleeps; a thread with
 * nothing to do for longer sleeps and leaves its core to others.
 */
export const SPIN_MS = 0.2;
/** Loads between two clock reads while spinning. */
const SPIN_CHECK = 256;

/**
 * Spins on words[index] until `settled(value)` (returning that value) or until SPIN_MS have
 * passed (returning null): the spin of every wait, in ./team.ts and here.
 */
export function spin(words: Int32Array, index: number, settled: (value: number) => boolean): number | null {
  const deadline = performance.now() + SPIN_MS;
  for (;;) {
    for (let i = 0; i < SPIN_CHECK; i++) {
      const v = Atomics.load(words, index);
      if (settled(v)) return v;
    }
    if (performance.now() > deadline) return null;
  }
}

export interface BarrierOptions {
  /** Names the user of the block in its errors ('threaded plan', 'parallel training'). */
  label: string;
  /** Milliseconds a barrier may wait before it declares a thread lost. */
  stallMs: number;
}

/** Whether this thread may block in Atomics.wait (not on a web page's main thread). */
export function canBlock(words: Int32Array): boolean {
  try {
    Atomics.wait(words, QUIT, 12345, 0); // returns 'not-equal' at once where waiting is allowed
    return true;
  } catch {
    return false;
  }
}

/** One thread's view of a control block at `byteOffset` in a shared buffer. */
export class Barrier {
  private readonly words: Int32Array;
  private readonly blocking: boolean;
  private seenRun: number;

  constructor(
    buffer: ArrayBufferLike,
    byteOffset: number,
    /** Threads that meet at each barrier, the leader included. */
    readonly threads: number,
    private readonly options: BarrierOptions,
  ) {
    this.words = new Int32Array(buffer, byteOffset, CONTROL_BYTES / 4);
    this.blocking = canBlock(this.words);
    this.seenRun = Atomics.load(this.words, RUN);
  }

  /** Leader: the number the next `start` gives its run (RUN after the bump; only the leader bumps it). */
  nextRun(): number {
    return (Atomics.load(this.words, RUN) + 1) | 0;
  }

  /** Helper: the number of the run that `awaitRun` last returned (RUN as it read it). */
  get run(): number {
    return this.seenRun;
  }

  /** Leader: starts a run of `command` on every helper; refuses once a thread has failed. */
  start(command = 0): void {
    this.check();
    Atomics.store(this.words, COMMAND, command);
    this.bump(RUN);
  }

  /** Helper: sleeps until the next run and returns its command, or null once the leader quits. */
  awaitRun(): number | null {
    this.waitWhile(RUN, this.seenRun, true);
    this.seenRun = Atomics.load(this.words, RUN);
    return Atomics.load(this.words, QUIT) === 0 ? Atomics.load(this.words, COMMAND) : null;
  }

  /** Every thread, after its share of a phase: returns once all threads have arrived. */
  wait(): void {
    const w = this.words;
    const gen = Atomics.load(w, GEN);
    if (Atomics.add(w, COUNT, 1) === this.threads - 1) {
      Atomics.store(w, COUNT, 0);
      this.bump(GEN);
    } else {
      this.waitWhile(GEN, gen);
    }
    this.check();
  }

  /** Leader: wakes every helper so that it leaves its loop. */
  quit(): void {
    Atomics.store(this.words, QUIT, 1);
    this.bump(RUN);
  }

  /** Marks the run failed and releases every thread waiting at a barrier (they throw). */
  fail(): void {
    Atomics.store(this.words, ERROR, 1);
    this.bump(GEN);
  }

  /** Throws a ThreadError if a thread has failed. */
  check(): void {
    if (Atomics.load(this.words, ERROR) !== 0) {
      throw new ThreadError(`${this.options.label}: a thread failed, so the run cannot finish`);
    }
  }

  private bump(index: number): void {
    Atomics.add(this.words, index, 1);
    if (Atomics.load(this.words, WAITERS) > 0) Atomics.notify(this.words, index);
  }

  /** Returns once words[index] ≠ value, or (at a barrier) a thread has failed. */
  private waitWhile(index: number, value: number, idle = false): void {
    const w = this.words;
    if (spin(w, index, (v) => v !== value) !== null) return;
    const { stallMs } = this.options;
    const start = performance.now();
    const waiting = (): boolean => {
      if (Atomics.load(w, index) !== value) return false;
      if (!idle && Atomics.load(w, ERROR) !== 0) return false; // a failed thread may never arrive
      // An idle helper sleeps until the next run, however long that takes.
      if (!idle && performance.now() - start > stallMs) this.stalled();
      return true;
    };
    if (!this.blocking) {
      while (waiting());
      return;
    }
    Atomics.add(w, WAITERS, 1);
    try {
      while (waiting()) Atomics.wait(w, index, value, idle ? Infinity : stallMs);
    } finally {
      Atomics.sub(w, WAITERS, 1);
    }
  }

  private stalled(): never {
    this.fail();
    throw new ThreadError(
      `${this.options.label}: a thread did not reach a barrier within ${this.options.stallMs / 1000} s`,
    );
  }
}
