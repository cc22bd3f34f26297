/**
 * Phase tracing of a threaded plan: in a traced run, every thread records, for each phase of the
 * plan, when it started claiming the phase's units, when its last unit ended, when it saw the
 * phase done (every unit finished, by whichever thread: ./team.ts), and how many units it ran.
 * What it shows is where the threads wait for work: a phase too short for the claiming it costs,
 * a unit held by a thread the OS took away, a helper that woke late (it runs nothing).
 *
 * The records are a Float64 region (allocated by the plan when `PlanOptions.traceRuns` > 0, in
 * the memory its threads share), laid out as
 *
 *   [run slot][thread][phase][start, end, released, units]
 *
 * so that each thread writes only its own rows and recording allocates nothing: three clock reads
 * and four stores per phase. The leader chooses the slot of a traced run through the control
 * block's COMMAND word (0: untraced, k: slot k − 1; see ./barrier.ts), so an untraced run costs a
 * helper one comparison per run. A traced run ends when every helper has written its rows (the
 * FINISHED count of ./team.ts); then the leader reads them.
 *
 * Clock: milliseconds on the leader's `performance.now()`. A worker's `performance.timeOrigin`
 * differs from the leader's, so a helper adds the difference of the two origins (taken once; the
 * origins are absolute times whose doubles resolve ~0.25 µs, which is the error of that offset).
 */

/** Float64 words per phase record: start, end (of the thread's last unit), released (phase seen done), units run. */
export const RECORD_WORDS = 4;

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
 * One thread alone (no team): runs `phases` in order and records each into `records` from index
 * `at`; every unit is this thread's, and a phase is done as it ends (release = end).
 */
export function runTraced(
  phases: readonly (() => void)[],
  units: readonly number[],
  records: Float64Array,
  at: number,
  now: () => number,
): void {
  phases.forEach((phase, p) => {
    records[at] = now();
    phase();
    const end = now();
    records[at + 1] = end;
    records[at + 2] = end;
    records[at + 3] = units[p]!;
    at += RECORD_WORDS;
  });
}
