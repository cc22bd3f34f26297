/**
 * Statistics and scheduling for the benchmark. Latencies on a shared machine are skewed by other
 * processes, so we report the median and the interquartile range, never the mean, and we interleave
 * engines so that a burst of noise hits every engine rather than one engine's whole series.
 */
import { median, quantile } from '../../analysis/statistics.js';
import { Random } from '../../tensor/random.js';

export { median, quantile };

/** Median milliseconds of `fn` over `repeats` timed runs, after `warmup` untimed ones. */
export function medianTime(fn: () => void, repeats: number, warmup = 0): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

export interface Summary {
  median: number;
  /** First and third quartiles, and their difference (the interquartile range). */
  q1: number;
  q3: number;
  iqr: number;
  min: number;
  runs: number;
}

export function summarize(values: readonly number[]): Summary {
  const q1 = quantile(values, 0.25);
  const q3 = quantile(values, 0.75);
  return { median: median(values), q1, q3, iqr: q3 - q1, min: Math.min(...values), runs: values.length };
}

/**
 * The order of timed runs when engines are interleaved (round-robin): repeat r runs every engine
 * that still needs samples, starting from engine r mod n, so that no engine always runs first (right
 * after the previous repeat's slowest one) and no engine runs all its repeats back to back.
 * `runs[i]` is how many timed runs engine i needs; the result lists engine indices.
 */
export function interleave(runs: readonly number[]): number[] {
  return roundRobin(runs).flat();
}

/** How a ratio's confidence interval is computed (stated in the report and the JSON). */
export interface BootstrapSettings {
  /** Resamples of the rounds (≥ 1000 for a stable 95% interval). */
  resamples: number;
  /** Seed of the resampling, so that a report is reproducible from its samples. */
  seed: number;
  /** Coverage of the interval, e.g. 0.95. */
  level: number;
}

export const defaultBootstrap: BootstrapSettings = { resamples: 2000, seed: 1, level: 0.95 };

export const bootstrapMethod =
  'paired percentile bootstrap: rounds are resampled with replacement (the same rounds for numerator and ' +
  'denominator, since both ran in the same minutes), the ratio of the two medians is recomputed for each ' +
  'resample, and the interval is the (1 − level)/2 and (1 + level)/2 quantiles of those ratios';

export interface RatioEstimate {
  /** median(numerator) / median(denominator) over the paired rounds. */
  ratio: number;
  low: number;
  high: number;
  /** Rounds in which both were timed (the pairs resampled). */
  pairs: number;
}

/**
 * The ratio of two medians with a paired bootstrap confidence interval. `numerator[i]` and
 * `denominator[i]` were timed in the same round i; only the rounds both have are paired.
 */
export function pairedRatio(
  numerator: readonly number[],
  denominator: readonly number[],
  settings: BootstrapSettings = defaultBootstrap,
): RatioEstimate {
  const pairs = Math.min(numerator.length, denominator.length);
  if (pairs === 0) throw new RangeError('pairedRatio: no paired rounds');
  if (!(settings.level > 0 && settings.level < 1)) {
    throw new RangeError(`pairedRatio: level must be in (0, 1) but is ${settings.level}`);
  }
  if (!Number.isInteger(settings.resamples) || settings.resamples < 1) {
    throw new RangeError(`pairedRatio: resamples must be a positive integer but is ${settings.resamples}`);
  }
  const num = numerator.slice(0, pairs);
  const den = denominator.slice(0, pairs);
  const random = new Random(settings.seed);
  const ratios = new Float64Array(settings.resamples);
  const a = new Array<number>(pairs);
  const b = new Array<number>(pairs);
  for (let s = 0; s < settings.resamples; s++) {
    for (let i = 0; i < pairs; i++) {
      const round = random.int(pairs);
      a[i] = num[round]!;
      b[i] = den[round]!;
    }
    ratios[s] = median(a) / median(b);
  }
  const sorted = Array.from(ratios);
  const tail = (1 - settings.level) / 2;
  return {
    ratio: median(num) / median(den),
    low: quantile(sorted, tail),
    high: quantile(sorted, 1 - tail),
    pairs,
  };
}

/**
 * The schedule of a whole benchmark: round r runs every case that still needs samples once,
 * starting from case r mod n. `runs[i]` is case i's timed runs; the result lists the case indices
 * of each round. Case i is timed in rounds 0 … runs[i] − 1, so its k-th sample pairs with every
 * other case's k-th sample (see pairedRatio).
 */
export function roundRobin(runs: readonly number[]): number[][] {
  const rounds: number[][] = [];
  const total = Math.max(0, ...runs);
  for (let r = 0; r < total; r++) {
    const round: number[] = [];
    for (let k = 0; k < runs.length; k++) {
      const index = (r + k) % runs.length;
      if (r < runs[index]!) round.push(index);
    }
    rounds.push(round);
  }
  return rounds;
}

export interface DriftSettings {
  /** Rounds in the rolling median of the calibration times. */
  window: number;
  /** Largest max/min of the rolling medians before the run is flagged (1.15: a 15% change). */
  threshold: number;
}

export const defaultDrift: DriftSettings = { window: 5, threshold: 1.15 };

export interface DriftAssessment {
  /** max/min of the rolling medians of the calibration times (1 when there are too few). */
  spread: number;
  /** Least-squares slope of the calibration times per round, relative to their median. */
  trend_per_round: number;
  flagged: boolean;
  reason: string;
}

/**
 * Whether the machine's speed drifted during a run, from a fixed calibration kernel timed between
 * rounds: the rolling median (over `window` rounds, so that one preempted timing is not drift) of
 * its times must stay within `threshold` (max/min). A flagged run's cross-case ratios may still be
 * fair (every round runs every case), but its absolute times are not comparable with other runs.
 */
export function assessDrift(times: readonly number[], settings: DriftSettings = defaultDrift): DriftAssessment {
  const { window, threshold } = settings;
  const rolling: number[] = [];
  for (let i = 0; i + window <= times.length; i++) rolling.push(median(times.slice(i, i + window)));
  const trend = relativeSlope(times);
  if (rolling.length < 2) {
    return {
      spread: 1,
      trend_per_round: trend,
      flagged: false,
      reason: `too few rounds to judge drift (${times.length} calibration times; a rolling median of ${window} needs ≥ ${window + 1})`,
    };
  }
  const spread = Math.max(...rolling) / Math.min(...rolling);
  const flagged = spread > threshold;
  return {
    spread,
    trend_per_round: trend,
    flagged,
    reason: flagged
      ? `the calibration kernel's rolling median (${window} rounds) moved by ${spread.toFixed(2)}× > ${threshold}×: the machine's speed drifted during the run`
      : `the calibration kernel's rolling median (${window} rounds) stayed within ${spread.toFixed(2)}× ≤ ${threshold}×`,
  };
}

function relativeSlope(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  values.forEach((v, i) => {
    sxy += (i - meanX) * (v - meanY);
    sxx += (i - meanX) ** 2;
  });
  return sxy / sxx / median(values);
}
