/**
 * Phase tracing of a threaded plan: in a traced run, every thread records, for each phase of the
 * plan, when its share starts, when it ends (it arrives at the barrier) and when the barrier
 * releases it. What it shows is where the threads wait for each other: a share that is too small
 * for the barrier it costs, a split that leaves one thread more work, a partner that was late.
 *
 * The records are a Float64 region (allocated by the plan when `PlanOptions.traceRuns` > 0, in
 * the memory its threads share), laid out as
 *
 *   [run slot][thread][phase][start, end, released]
 *
 * so that each thread writes only its own rows and recording allocates nothing: two clock reads
 * and three stores per phase. The leader chooses the slot of a traced run through the control
 * block's COMMAND word (0: untraced, k: slot k − 1; see ./barrier.ts), so an untraced run costs a
 * helper one comparison per run, and reads every row after the run (the barrier has ordered them).
 *
 * Clock: milliseconds on the leader's `performance.now()`. A worker's `performance.timeOrigin`
 * differs from the leader's, so a helper adds the difference of the two origins (taken once; the
 * origins are absolute times whose doubles resolve ~0.25 µs, which is the error of that offset).
 */

/** Float64 words per phase record: start, end (arrival at the barrier), released. */
export const RECORD_WORDS = 3;

/** Where a plan's trace region is and what it holds (crosses to each helper in its setup). */
export interface TraceRegion {
  /** Byte address of the region (8-byte aligned). */
  address: number;
  /** Run slots: how many runs one trace can hold. */
  runs: number;
  /** The leader's `performance.timeOrigin`: every thread's records are on its clock. */
  origin: number;
}

/** Bytes of a region of `runs` slots for `threads` threads and `phases` phases. */
export function traceBytes(runs: number, threads: number, phases: number): number {
  return runs * threads * phases * RECORD_WORDS * 8;
}

/** Index of the first word of thread `thread`'s records in slot `slot`. */
export function recordIndex(slot: number, thread: number, threads: number, phases: number): number {
  return (slot * threads + thread) * phases * RECORD_WORDS;
}

/** This thread's clock for the records: milliseconds on the clock of the leader whose origin is given. */
export function traceClock(leaderOrigin: number): () => number {
  const offset = performance.timeOrigin - leaderOrigin;
  return offset === 0 ? () => performance.now() : () => performance.now() + offset;
}

/**
 * Runs `phases` in order, meeting `barrier` after each (none with one thread: then release =
 * arrival), and records each phase into `records` from index `at`. Every thread of a traced run
 * calls it, so the extra barrier at the end is met by all.
 */
export function runTraced(
  phases: readonly (() => void)[],
  barrier: (() => void) | null,
  records: Float64Array,
  at: number,
  now: () => number,
): void {
  for (const phase of phases) {
    records[at] = now();
    phase();
    const end = now();
    records[at + 1] = end;
    if (barrier !== null) barrier();
    records[at + 2] = barrier === null ? end : now();
    at += RECORD_WORDS;
  }
  // One more meeting, outside the records: a thread writes its last release after the last
  // barrier, so without it the leader could read the run's records before they are all written.
  if (barrier !== null) barrier();
}
