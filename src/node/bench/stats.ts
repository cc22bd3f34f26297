/**
 * Statistics and scheduling for the benchmark. Latencies on a shared machine are skewed by other
 * processes, so we report the median and the interquartile range, never the mean, and we interleave
 * engines so that a burst of noise hits every engine rather than one engine's whole series.
 */

/** The q-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics (NumPy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile: no values');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1] but is ${q}`);
  const sorted = [...values].sort((a, b) => a - b);
  const position = q * (sorted.length - 1);
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
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
  const order: number[] = [];
  const rounds = Math.max(0, ...runs);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < runs.length; k++) {
      const engine = (r + k) % runs.length;
      if (r < runs[engine]!) order.push(engine);
    }
  }
  return order;
}
