import { medianTime } from '../src/node/bench/stats.js';

/** Median milliseconds of `fn` over `repeats` runs, after one warm-up run. */
export function medianMs(fn: () => void, repeats: number): number {
  return medianTime(fn, repeats, 1);
}

/**
 * Median wall-clock and CPU milliseconds of `fn` over `repeats` runs, after one warm-up run. On a
 * machine shared with other work, the CPU time (this process only) shows the compute cost that
 * wall time hides behind preemption; single-threaded code cannot use more CPU than wall time.
 */
export function medianWallAndCpuMs(fn: () => void, repeats: number): { wall: number; cpu: number } {
  fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    fn();
    wall.push(performance.now() - start);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  const median = (a: number[]): number => a.sort((x, y) => x - y)[a.length >> 1]!;
  return { wall: median(wall), cpu: median(cpu) };
}
