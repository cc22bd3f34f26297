/**
 * The benchmark's noise-proofing and new modes: paired bootstrap intervals, the round-robin
 * schedule over every case, the drift flag, `--size HxW`, `--table8` (injected at tiny sizes) and
 * `--batch` end to end. Tiny settings; no speed is asserted.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runGraph } from '../src/graph/execute.js';
import { Random } from '../src/tensor/random.js';
import type { Engine } from '../src/node/bench/engines.js';
import { BenchmarkError } from '../src/node/bench/errors.js';
import { checkInputFloats, formatInputSize, parseInputSize, square } from '../src/node/bench/input-size.js';
import { runBenchmark, table8Config, type BenchReport } from '../src/node/bench/run.js';
import { assessDrift, pairedRatio, roundRobin } from '../src/node/bench/stats.js';
import { paperMilliseconds, table8Archs, table8Sizes } from '../src/node/bench/table8.js';

/**
 * Synthetic paired timings: in round r the machine runs at speed factor m_r (shared by both
 * cases, up to 1.5× as on the shared VM), and each timing has its own small noise.
 */
function pairedTimings(rounds: number, ratio: number, seed: number): { num: number[]; den: number[] } {
  const random = new Random(seed);
  const num: number[] = [];
  const den: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const machine = 1 + 0.5 * random.next();
    num.push(ratio * 10 * machine * (1 + 0.03 * random.normal()));
    den.push(10 * machine * (1 + 0.03 * random.normal()));
  }
  return { num, den };
}

describe('paired bootstrap ratio', () => {
  const settings = { resamples: 2000, seed: 7, level: 0.95 };

  it('covers the known ratio, narrows with more rounds and is deterministic with its seed', () => {
    const few = pairedTimings(10, 3, 1);
    const many = pairedTimings(200, 3, 1);
    const a = pairedRatio(few.num, few.den, settings);
    const b = pairedRatio(many.num, many.den, settings);
    for (const r of [a, b]) {
      expect(r.low).toBeLessThanOrEqual(3);
      expect(r.high).toBeGreaterThanOrEqual(3);
      expect(r.low).toBeLessThanOrEqual(r.ratio);
      expect(r.high).toBeGreaterThanOrEqual(r.ratio);
    }
    expect([a.pairs, b.pairs]).toEqual([10, 200]);
    expect(b.high - b.low).toBeLessThan((a.high - a.low) / 2);
    expect(pairedRatio(few.num, few.den, settings)).toEqual(a);
    expect(pairedRatio(few.num, few.den, { ...settings, seed: 8 })).not.toEqual(a);
  });

  it('pairing by round removes the shared machine noise (breaking the pairs widens the interval)', () => {
    const { num, den } = pairedTimings(60, 3, 2);
    const paired = pairedRatio(num, den, settings);
    const unpaired = pairedRatio(num, [...den].reverse(), settings);
    expect(paired.high - paired.low).toBeLessThan((unpaired.high - unpaired.low) / 2);
  });

  it('pairs only the rounds both sides have, and refuses what it cannot compute', () => {
    const r = pairedRatio([2, 4, 6, 100], [1, 2, 3], settings);
    expect(r.pairs).toBe(3);
    expect(r.ratio).toBe(2);
    expect([r.low, r.high]).toEqual([2, 2]);
    expect(() => pairedRatio([], [1], settings)).toThrow(/no paired rounds/);
    expect(() => pairedRatio([1], [1], { ...settings, level: 1 })).toThrow(/level must be in \(0, 1\)/);
    expect(() => pairedRatio([1], [1], { ...settings, resamples: 0 })).toThrow(/resamples must be/);
  });
});

describe('round-robin schedule', () => {
  it('runs every case once per round, rotating the first, each for exactly its runs', () => {
    expect(roundRobin([2, 2, 2])).toEqual([
      [0, 1, 2],
      [1, 2, 0],
    ]);
    const runs = [5, 2, 5, 3];
    const rounds = roundRobin(runs);
    expect(rounds).toHaveLength(5);
    rounds.forEach((round, r) => {
      expect([...round].sort()).toEqual(runs.flatMap((n, i) => (r < n ? [i] : [])));
    });
    // The first case rotates; a finished case is passed over (round 3 would start at case 3, done after 3 runs).
    expect(rounds.map((round) => round[0])).toEqual([0, 1, 2, 0, 0]);
    expect(roundRobin([])).toEqual([]);
  });
});

describe('drift flag', () => {
  const steady = (n: number, seed: number) => {
    const random = new Random(seed);
    return Array.from({ length: n }, () => 1 + 0.02 * random.next());
  };

  it('passes a steady machine and flags a sustained slowdown, but not one preempted round', () => {
    const calm = steady(30, 1);
    expect(assessDrift(calm).flagged).toBe(false);
    const spike = [...calm];
    spike[12] = 3; // one preempted timing is not drift
    expect(assessDrift(spike).flagged).toBe(false);
    const slowed = calm.map((t, i) => (i >= 15 ? t * 1.3 : t)); // the whole machine 1.3× slower from round 15
    const flagged = assessDrift(slowed);
    expect(flagged.flagged).toBe(true);
    expect(flagged.spread).toBeGreaterThan(1.25);
    expect(flagged.trend_per_round).toBeGreaterThan(0);
    expect(flagged.reason).toMatch(/drifted/);
    expect(assessDrift(slowed, { window: 5, threshold: 1.5 }).flagged).toBe(false);
  });

  it('says when there are too few rounds to judge', () => {
    const r = assessDrift([1, 2, 3], { window: 5, threshold: 1.15 });
    expect(r.flagged).toBe(false);
    expect(r.reason).toMatch(/too few rounds/);
  });
});

describe('--size', () => {
  it('takes N or HxW (height × width, as the tensor [N, 3, H, W])', () => {
    expect(parseInputSize('224')).toEqual({ height: 224, width: 224 });
    expect(parseInputSize('480x640')).toEqual({ height: 480, width: 640 });
    expect(parseInputSize('720X1280')).toEqual({ height: 720, width: 1280 });
    expect(parseInputSize('720×1280')).toEqual({ height: 720, width: 1280 });
    expect(formatInputSize(parseInputSize('480x640'))).toBe('480×640');
  });

  it.each(['0', '8193', '480x', 'x640', '1x2x3', '-5', '2.5', '1e3', 'abc', '', '224x0'])(
    'refuses "%s" with a typed error naming the flag',
    (value) => {
      const error = (() => {
        try {
          parseInputSize(value, '--size');
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(error).toBeInstanceOf(BenchmarkError);
      expect((error as Error).message).toMatch(new RegExp(`^--size: expected N or HxW .* got "${value}"$`));
    },
  );

  it('bounds --batch × --size and every count flag before anything is allocated', () => {
    expect(() => checkInputFloats(1024, parseInputSize('224'))).not.toThrow(); // 154,140,672 floats ≤ 2^28
    expect(() => checkInputFloats(4096, parseInputSize('224'))).toThrow(BenchmarkError); // 616,562,688
    expect(() => checkInputFloats(1, parseInputSize('8192'))).not.toThrow();
    expect(() => checkInputFloats(4096, parseInputSize('720x1280'))).toThrow(BenchmarkError);
    expect(() => checkInputFloats(4096, parseInputSize('720x1280'))).toThrow(
      /^--batch 4096 at --size 720×1280: .*1 GiB/,
    );
    const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    for (const [flag, value, bound] of [
      ['--batch', '100000000', 'from 1 to 4096'],
      ['--trace-runs', '100000000', 'from 1 to 1000'],
      ['--threads', '1,100000', 'from 1 to 256'],
      ['--runs', '1e9', 'from 1 to 100000'],
    ] as const) {
      const r = spawnSync(process.execPath, [main, 'bench', flag, value], { encoding: 'utf8' });
      expect(r.status, flag).not.toBe(0);
      expect(r.stderr).toContain(`'${flag} <n>'`);
      expect(r.stderr).toContain(bound);
      expect(r.stderr).not.toMatch(/internal error/);
    }
  });

  it('the CLI refuses a bad --size before any work', () => {
    const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const r = spawnSync(process.execPath, [main, 'bench', '--size', '480x'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--size.*expected N or HxW \(height × width\).*got "480x"/);
  });
});

/** A fake peer that logs which case (engine and input shape) it ran. */
function fake(name: string, log: string[]): Engine {
  return {
    name,
    kind: 'peer',
    description: `fake ${name}`,
    async prepare({ graph }) {
      return {
        threadsUsed: 1,
        run(input) {
          log.push(`${name} ${input.shape.join('x')}`);
          return runGraph(graph, input).data;
        },
      };
    },
  };
}

describe('runBenchmark across cases', () => {
  it('runs each case settleRuns times, untimed, right before each of its timed runs', async () => {
    const log: string[] = [];
    const report = await runBenchmark(
      { archs: ['shufflenet_v1_g3_0.25x'], threads: [1], size: 32, runs: 2, warmup: 0, settleRuns: 2, profileRuns: 0 },
      [fake('a', log), fake('b', log)],
    );
    const [a, b] = ['a 1x3x32x32', 'b 1x3x32x32'];
    // The checks, then per round each case three times in a row: two settle runs and the timed one.
    expect(log).toEqual([a, b, a, a, a, b, b, b, b, b, b, a, a, a]);
    expect(report.results[0]!.engines.map((e) => e.samples_ms!.length)).toEqual([2, 2]);
    expect(report.settings.settleRuns).toBe(2);
  });

  it('times every case (size × network × engine) once per round, with the calibration kernel between rounds', async () => {
    const log: string[] = [];
    const report = await runBenchmark(
      {
        archs: ['shufflenet_v1_g3_0.25x'],
        threads: [1],
        sizes: [square(32), { height: 24, width: 40 }],
        runs: 3,
        warmup: 0,
        settleRuns: 0,
        profileRuns: 0,
      },
      [fake('a', log), fake('b', log)],
    );
    const cases = ['a 1x3x32x32', 'b 1x3x32x32', 'a 1x3x24x40', 'b 1x3x24x40'];
    expect(log.slice(0, 4)).toEqual(cases); // the checks, in preparation order
    const timedRounds = [log.slice(4, 8), log.slice(8, 12), log.slice(12, 16)];
    expect(log).toHaveLength(16);
    for (const round of timedRounds) expect([...round].sort()).toEqual([...cases].sort());
    expect(timedRounds.map((round) => round[0])).toEqual([cases[0], cases[1], cases[2]]);
    expect(report.schedule).toMatchObject({ rounds: 3, cases: 4 });
    expect(report.drift.calibration_ms).toHaveLength(4);
    expect(report.drift.loadavg_1m).toHaveLength(4);
    expect(report.settings.sizes).toEqual(['32×32', '24×40']);
    expect(report.results.map((r) => [r.height, r.width, r.input])).toEqual([
      [32, 32, [1, 3, 32, 32]],
      [24, 40, [1, 3, 24, 40]],
    ]);
    // MFLOPs at each size (the complexity counter on the graph traced at that size).
    expect(report.results[1]!.mflops).toBeGreaterThan(report.results[0]!.mflops);
    // Ours-vs-peer ratios are not there (no engine of ours); a/b are both peers.
    expect(report.ratios.filter((r) => r.kind === 'peer')).toEqual([]);
    expect(report.ratio_ci).toMatchObject({ resamples: 2000, level: 0.95 });
  });

  it('--table8 (injected at tiny sizes): growth with pixels per case, and AlexNet refused off-square with why', async () => {
    expect(table8Config.archs).toEqual([...table8Archs]);
    expect(table8Config.sizes).toEqual([...table8Sizes]);
    expect(table8Sizes.map(formatInputSize)).toEqual(['224×224', '480×640', '720×1280']);
    expect(paperMilliseconds('shufflenet_v1_g3_1.0x', { height: 480, width: 640 })).toBe(222.2);
    expect(paperMilliseconds('alexnet', { height: 720, width: 1280 })).toBe(3633.9);
    expect(paperMilliseconds('alexnet', square(32))).toBeNull();
    const report = await runBenchmark(
      {
        ...table8Config,
        archs: ['shufflenet_v1_g3_0.25x', 'alexnet'],
        sizes: [square(32), { height: 32, width: 48 }],
        runs: 2,
        warmup: 0,
        profileRuns: 0,
      },
      [fake('a', [])],
    );
    // AlexNet at 32×32 cannot be built without the small-input stem, and off-square not at all:
    // both cases are reported with the reason, and the run goes on.
    expect(report.skipped_cases.map((c) => c.size)).toEqual(['32×32', '32×48']);
    expect(report.skipped_cases[0]!.reason).toMatch(/alexnet: input size 32 is too small/);
    expect(report.skipped_cases[1]!.reason).toMatch(/fully-convolutional AlexNet/);
    expect(report.growth).toHaveLength(1);
    const [g] = report.growth;
    expect(g).toMatchObject({ arch: 'shufflenet_v1_g3_0.25x', engine: 'a', size: '32×48', base_size: '32×32' });
    expect(g!.pixels_ratio).toBeCloseTo(1.5, 12);
    expect(g!.ratio).toBeCloseTo(g!.median_ms / g!.base_median_ms, 12);
    expect(g!.paper_ms).toBeNull();
    expect(g!.ci_low).toBeLessThanOrEqual(g!.ratio);
    expect(g!.ci_high).toBeGreaterThanOrEqual(g!.ratio);
  });
});

/** The built CLI's `bench … --json` (no warm-up, no profile), its exit checked; the report it printed. */
function benchJson(args: string[]): BenchReport {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const r = spawnSync(process.execPath, [main, 'bench', ...args, '--warmup', '0', '--profile-runs', '0', '--json'], {
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as BenchReport;
}

describe('shufflenet bench --batch', () => {
  it('reports images per second, ours both splits against onnxruntime-node, with intervals', () => {
    const archs = 'shufflenet_v1_g3_0.25x,shufflenet_v1_g8_0.25x';
    const report = benchJson(['--arch', archs, '--threads', '1,2', '--size', '32', '--batch', '2', '--runs', '2']);
    expect(report.settings.batch).toBe(2);
    expect(report.results.map((c) => c.engines.map((e) => e.engine))).toEqual(
      Array(4).fill(['shufflenet', 'shufflenet-batch', 'ort-node']),
    );
    for (const c of report.results) {
      expect(c.input).toEqual([2, 3, 32, 32]);
      for (const e of c.engines.filter((x) => !x.skipped)) {
        expect(e.images_per_s).toBeCloseTo((2 * 1000) / e.median_ms!, 6);
        expect(e.samples_ms).toHaveLength(2);
      }
      const batch = c.engines.find((e) => e.engine === 'shufflenet-batch')!;
      expect(batch.skipped === undefined).toBe(c.threads === 2);
      expect(c.engines.find((e) => e.engine === 'ort-node')!.skipped, 'the ort-node peer skipped').toBeUndefined();
    }
    expect(report.throughput).toHaveLength(4);
    for (const t of report.throughput) {
      expect(t.batch).toBe(2);
      expect(t.peer).toBe('ort-node');
      expect(t.peer_images_per_s).toBeGreaterThan(0);
      expect(t.ours_split).toBe(t.ours_engine === 'shufflenet-batch' ? 'batch' : 'layers');
      if (t.threads === 1) expect(t.other_split_images_per_s).toBeNull();
      else expect(t.other_split_images_per_s).toBeLessThanOrEqual(t.ours_images_per_s);
      expect(t.ci_low!).toBeLessThanOrEqual(t.ratio!);
      expect(t.ci_high!).toBeGreaterThanOrEqual(t.ratio!);
    }
    const gains = report.ratios.filter((x) => x.kind === 'threads');
    expect(gains.map((g) => `${g.numerator.arch} ${g.numerator.engine}`).sort()).toEqual(
      archs
        .split(',')
        .flatMap((a) => [`${a} ort-node`, `${a} shufflenet`])
        .sort(),
    );
    expect(report.speedups.map((s) => s.label)).toEqual([]); // g8/g3 needs the 1.0× networks
    expect(report.drift.calibration_ms).toHaveLength(3);
  });
});

describe('shufflenet bench, engine shufflenet-auto', () => {
  it("times threads: 'auto' beside fixed threads, reports its choice and its gain over our 1-thread plan", () => {
    const arch = 'shufflenet_v1_g3_0.25x';
    const engines = 'shufflenet,shufflenet-auto';
    const report = benchJson(['--arch', arch, '--threads', '1,2', '--size', '32', '--engines', engines, '--runs', '3']);
    const [one, two] = report.results;
    const auto1 = one!.engines.find((e) => e.engine === 'shufflenet-auto')!;
    expect(auto1.skipped).toBe("at 1 thread 'auto' has nothing to choose (the same as shufflenet)");
    const auto2 = two!.engines.find((e) => e.engine === 'shufflenet-auto')!;
    expect(auto2.skipped).toBeUndefined();
    expect(auto2.threads_used).toBe(2);
    expect(auto2.samples_ms).toHaveLength(3);
    expect(auto2.choice).toMatch(
      /^threads: 'auto' runs (1 thread|2 threads): [\d.]+ ms per sample on 2 threads against [\d.]+ ms on 1/,
    );
    const gains = report.ratios.filter((x) => x.kind === 'threads');
    expect(gains.map((g) => g.label).sort()).toEqual([
      'shufflenet 1 / 2 threads',
      'shufflenet 1 / shufflenet-auto 2 threads',
    ]);
    const autoGain = gains.find((g) => g.denominator.engine === 'shufflenet-auto')!;
    expect(autoGain.numerator).toEqual({ arch, engine: 'shufflenet', threads: 1, size: '32×32' });
  });
});
