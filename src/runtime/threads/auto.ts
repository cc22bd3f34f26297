/**
 * `threads: 'auto'`: per sample, whether a threaded plan runs on its whole team or on the leader
 * alone (a solo run: the same units, in order, with the helpers asleep; bit-identical output).
 * Pure policy: the plan asks `next()` before each sample and reports the sample's time with
 * `record()`. The protocol (docs/engine.md, "Choosing threads"):
 *
 *   probe:   one warm-up run each way (first probe only), then pairs of blocks, BLOCK solo runs and
 *            BLOCK team runs, the order flipping every pair. A block's first SWITCH runs are not
 *            counted: they pay for the switch. A helper asleep since the last team run takes tens
 *            of µs to wake, which back-to-back team runs do not pay; and with another process on
 *            a core, the team's runs push it onto the leader's core for a while afterwards, so the
 *            first solo runs after a team block are slower than a steady solo run. The team wins
 *            only if its median is below MARGIN × the solo median overall AND in at least
 *            PAIRS_TO_WIN of the pairs of blocks: when the machine is too noisy to tell, one thread
 *            is the safe choice (it cannot be slower than one thread). Every pair would be too
 *            strict: one preempted block on a shared VM then keeps a 1.6× team off.
 *   steady:  the chosen way runs; its last WINDOW times are watched. A median above SLOWDOWN × the
 *            probe's median (the machine's load changed), or REPROBE_EVERY samples, starts a short
 *            probe (REPROBE_PAIRS pairs) and the choice is made again.
 *
 * Example:
 *   const auto = new AutoThreads(2);
 *   const team = auto.next(); // true: run on the team
 *   auto.record(team, ms);
 */

import { median } from '../../analysis/statistics.js';

/** The team must beat one thread by this factor to be chosen (a tie leaves the other core free). */
export const MARGIN = 0.97;
/** …and do so in at least this fraction of the probe's pairs of blocks (rounded up). */
export const PAIRS_TO_WIN = 0.75;
/** A steady median this much above the probe's starts a new probe. */
export const SLOWDOWN = 1.3;
/** Steady samples watched (the median of the last WINDOW). */
export const WINDOW = 9;
/** Steady samples between two probes, whatever happens. */
export const REPROBE_EVERY = 200;
/** Runs of one way in a row within a probe, of which the first SWITCH are not counted. */
export const BLOCK = 5;
export const SWITCH = 2;
/** Pairs of a probe after the first. */
export const REPROBE_PAIRS = 3;
/** Pairs of the first probe: as many as fit in this many milliseconds, within [MIN_PAIRS, MAX_PAIRS]. */
export const FIRST_PROBE_MS = 1000;
export const MIN_PAIRS = 2;
export const MAX_PAIRS = 5;
/** Probe outcomes kept. */
const HISTORY = 100;

/** One probe's outcome. */
export interface AutoChoice {
  /** Threads of the chosen way (1 or the team's size). */
  threads: number;
  /** Median milliseconds per sample of each way in the probe. */
  soloMs: number;
  teamMs: number;
  /** Pairs of blocks the probe ran (each way's median is over pairs × (BLOCK − SWITCH) runs). */
  pairs: number;
  /** Pairs whose team block's median was below MARGIN × the solo block's (PAIRS_TO_WIN of them needed). */
  teamWon: number;
  /** Samples run before the probe began (0 for the first). */
  atSample: number;
  /** Why the probe ran. */
  reason: 'first' | 'periodic' | 'slowdown';
}

export class AutoThreads {
  /** The current probe's remaining runs (read from the end), or empty when steady. */
  private schedule: { team: boolean; counted: boolean }[] = [
    { team: true, counted: false },
    { team: false, counted: false }, // solo warm-up first, then team
  ];
  private warmups = 2;
  /** The warm-up runs' total: it sizes the first probe. */
  private warmupMs = 0;
  private solo: number[] = [];
  private team: number[] = [];
  private steady: number[] = [];
  private sinceProbe = 0;
  private samples = 0;
  private probeStart = 0;
  private reason: AutoChoice['reason'] = 'first';
  private ended = 0;
  /** The latest probes' outcomes (at most HISTORY), oldest first. */
  readonly history: AutoChoice[] = [];

  constructor(readonly teamThreads: number) {
    if (!Number.isInteger(teamThreads) || teamThreads < 2) {
      throw new RangeError(`AutoThreads: a team has at least 2 threads, got ${teamThreads}`);
    }
  }

  /** Probes ended so far. */
  get probes(): number {
    return this.ended;
  }

  /** The latest choice, or null before the first probe has ended. */
  get choice(): AutoChoice | null {
    return this.history.at(-1) ?? null;
  }

  /** Threads the next sample runs on. */
  get threads(): number {
    return this.next() ? this.teamThreads : 1;
  }

  /** Whether the next sample runs on the team (true) or the leader alone (false). */
  next(): boolean {
    if (this.schedule.length > 0) return this.schedule.at(-1)!.team;
    return this.choice!.threads > 1;
  }

  /** Reports how long the sample that `next()` chose took. */
  record(onTeam: boolean, ms: number): void {
    this.samples++;
    if (this.schedule.length > 0) {
      const { counted } = this.schedule.pop()!;
      if (this.warmups > 0) {
        this.warmupMs += ms;
        this.warmups--;
        if (this.warmups === 0) this.schedule = this.pairs(this.firstPairs());
        return;
      }
      if (counted) (onTeam ? this.team : this.solo).push(ms);
      if (this.schedule.length === 0) this.choose();
      return;
    }
    this.steady.push(ms);
    if (this.steady.length > WINDOW) this.steady.shift();
    this.sinceProbe++;
    const choice = this.choice!;
    const expected = choice.threads > 1 ? choice.teamMs : choice.soloMs;
    if (this.steady.length === WINDOW && median(this.steady) > SLOWDOWN * expected) this.probe('slowdown');
    else if (this.sinceProbe >= REPROBE_EVERY) this.probe('periodic');
  }

  /** What was chosen and why, in one sentence (for session.notes and bench). */
  describe(): string {
    const c = this.choice;
    if (c === null) return `threads: 'auto' (up to ${this.teamThreads}) has not calibrated yet`;
    const on = c.threads > 1 ? `${c.threads} threads` : '1 thread';
    return (
      `threads: 'auto' runs ${on}: ${c.teamMs.toFixed(2)} ms per sample on ${this.teamThreads} threads against ` +
      `${c.soloMs.toFixed(2)} ms on 1 (medians of ${c.pairs * (BLOCK - SWITCH)} runs each, in alternating blocks; ` +
      `the team faster in ${c.teamWon} of ${c.pairs} pairs; ` +
      `${c.reason === 'first' ? 'first calibration' : `re-checked at sample ${c.atSample} (${c.reason})`}; ` +
      `${this.probes} probe${this.probes === 1 ? '' : 's'} so far)`
    );
  }

  /** Pairs for the first probe, from the warm-up times: about FIRST_PROBE_MS in all. */
  private firstPairs(): number {
    const pair = BLOCK * this.warmupMs; // a block of solo runs and one of team runs
    const fit = Math.floor(FIRST_PROBE_MS / Math.max(pair, 1e-3));
    return Math.min(MAX_PAIRS, Math.max(MIN_PAIRS, fit));
  }

  /** `count` pairs of blocks, solo and team, the order flipping every pair. */
  private pairs(count: number): { team: boolean; counted: boolean }[] {
    const runs: { team: boolean; counted: boolean }[] = [];
    for (let i = 0; i < count; i++) {
      for (const team of i % 2 === 0 ? [false, true] : [true, false]) {
        for (let r = 0; r < BLOCK; r++) runs.push({ team, counted: r >= SWITCH });
      }
    }
    return runs.reverse(); // popped from the end
  }

  private probe(reason: AutoChoice['reason']): void {
    this.reason = reason;
    this.probeStart = this.samples;
    this.solo = [];
    this.team = [];
    this.steady = [];
    this.schedule = this.pairs(REPROBE_PAIRS);
  }

  private choose(): void {
    const soloMs = median(this.solo);
    const teamMs = median(this.team);
    const kept = BLOCK - SWITCH;
    const pairs = this.solo.length / kept;
    let teamWon = 0;
    for (let i = 0; i < pairs; i++) {
      const block = (xs: number[]): number => median(xs.slice(i * kept, (i + 1) * kept));
      if (block(this.team) < MARGIN * block(this.solo)) teamWon++;
    }
    this.history.push({
      threads: teamMs < MARGIN * soloMs && teamWon >= Math.ceil(PAIRS_TO_WIN * pairs) ? this.teamThreads : 1,
      soloMs,
      teamMs,
      pairs,
      teamWon,
      atSample: this.probeStart,
      reason: this.reason,
    });
    if (this.history.length > HISTORY) this.history.shift();
    this.ended++;
    this.steady = [];
    this.sinceProbe = 0;
  }
}
