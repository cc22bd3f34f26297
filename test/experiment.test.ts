/**
 * `shufflenet experiment`: the real command end to end on a tiny config (two networks, two seeds,
 * 16 training images), its files, the mean ± std arithmetic against runs.json, resume, and the
 * refusal to mix settings; plus the pure parts (networks, paper figures, statistics).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  experimentNetworks,
  meanStd,
  normalizeScale,
  paperError,
  summarize,
  type RunRecord,
  type RunsFile,
  type ExperimentSettings,
} from '../src/node/experiment/experiment.js';
import { renderExperimentChart } from '../src/node/experiment/chart.js';
import { renderTable } from '../src/node/experiment/report.js';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

describe('experiment plans', () => {
  it('Table 2 is g = 1, 2, 3, 4, 8 with shuffle; Table 3 pairs no-shuffle and shuffle per g', () => {
    expect(experimentNetworks('groups', '0.25').map((n) => n.arch)).toEqual([
      'shufflenet_v1_g1_0.25x',
      'shufflenet_v1_g2_0.25x',
      'shufflenet_v1_g3_0.25x',
      'shufflenet_v1_g4_0.25x',
      'shufflenet_v1_g8_0.25x',
    ]);
    expect(experimentNetworks('shuffle', '0.5').map((n) => n.arch)).toEqual([
      'shufflenet_v1_g3_0.5x_noshuffle',
      'shufflenet_v1_g3_0.5x',
      'shufflenet_v1_g8_0.5x_noshuffle',
      'shufflenet_v1_g8_0.5x',
    ]);
    expect(() => experimentNetworks('shuffle', '0.5', [1])).toThrow(/nothing to shuffle/);
    expect(() => experimentNetworks('groups', '0.5', [5])).toThrow(/g = 5 is not one of 1, 2, 3, 4, 8/);
  });

  it("carries the paper's Table 2 and Table 3 errors, and none where the paper prints none", () => {
    const g8 = { arch: '', groups: 8, shuffle: true };
    expect(paperError('0.25', g8)).toBe(52.7);
    expect(paperError('1', g8)).toBe(32.4);
    expect(paperError('0.5', { ...g8, shuffle: false })).toBe(48.1);
    expect(paperError('0.5', { ...g8, groups: 2, shuffle: false })).toBeUndefined();
    expect(paperError('2.0', g8)).toBeUndefined();
    expect(normalizeScale('.25')).toBe('0.25');
    expect(normalizeScale('1')).toBe('1.0');
    expect(() => normalizeScale('big')).toThrow(/--scale/);
  });

  it('mean ± sample standard deviation', () => {
    expect(meanStd([2, 4, 4, 4, 5, 5, 7, 9])).toEqual({ mean: 5, std: Math.sqrt(32 / 7) });
    expect(meanStd([3])).toEqual({ mean: 3, std: 0 });
    expect(() => meanStd([])).toThrow(/no values/);
  });
});

describe('the shuffle table and chart', () => {
  const run = (arch: string, groups: number, shuffle: boolean, seed: number, errorPercent: number): RunRecord => ({
    arch,
    groups,
    shuffle,
    seed,
    errorPercent,
    testImages: 100,
    trainLoss: 1,
    trainAccuracy: 0.5,
    trainSeconds: 10,
    evalSeconds: 1,
    finishedAt: '2026-11-28T00:00:00Z',
  });
  const networks = experimentNetworks('shuffle', '0.25');
  const runs = [
    run(networks[0]!.arch, 3, false, 0, 20),
    run(networks[0]!.arch, 3, false, 1, 22),
    run(networks[1]!.arch, 3, true, 0, 18),
    run(networks[1]!.arch, 3, true, 1, 19),
    run(networks[2]!.arch, 8, false, 0, 30),
    run(networks[3]!.arch, 8, true, 0, 31),
    run(networks[3]!.arch, 8, true, 2, 99), // seed 2 is not asked for: left out
  ];
  const rows = summarize('0.25', networks, [0, 1], runs, () => ({ params: 1000, mflops: 2.5 }));
  const settings = { kind: 'shuffle', scale: '0.25', data: 'fashion-mnist', maxTrain: 100 } as ExperimentSettings;

  it('pairs no shuffle and shuffle per g with our Δ beside the Table 3 of the paper', () => {
    expect(rows.map((r) => [r.groups, r.shuffle, r.errorMean, r.seeds.length])).toEqual([
      [3, false, 21, 2],
      [3, true, 18.5, 2],
      [8, false, 30, 1],
      [8, true, 31, 1],
    ]);
    const table = renderTable({
      settings,
      rows,
      seeds: [0, 1],
      testImages: 100,
      imageSize: '1×28×28',
      wallSeconds: 75,
      trainedNow: 6,
      resumed: 0,
      command: 'shufflenet experiment shuffle',
      date: '2026-11-28',
    });
    expect(table).toContain('| 3 | 1,000 | 2.50 | 21.00 ± 1.41 | 18.50 ± 0.71 | +2.50 | 56.3 | 55.0 | 1.3 |');
    expect(table).toContain('| 8 | 1,000 | 2.50 | 30.00 ± 0.00 | 31.00 ± 0.00 | −1.00 | 56.5 | 52.7 | 3.8 |');
    expect(table).toContain('Wall time of this invocation: 1 min 15 s');
  });

  it('draws grouped bars with error bars as SVG', async () => {
    const svg = await renderExperimentChart('shuffle', 'test', rows, runs);
    expect(typeof svg).toBe('string');
    expect(svg as string).toContain('no shuffle');
    expect(svg as string).toContain('g = 8');
  });
});

describe('shufflenet experiment groups, end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'experiment-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const tiny = ['--max-train', '16', '--max-test', '20', '--epochs', '1', '--seeds', '2', '--batch', '8'];
  const args = ['experiment', 'groups', ...tiny, '--groups', '1,3', '--bn-batches', '1', '--out', dir];

  it('trains every network × seed, writes runs.json, table.md and chart.svg, and reports mean ± std', () => {
    const r = cli(...args, '--json');
    expect(r.status, r.stderr).toBe(0);
    // One progress line per run, with an ETA while runs remain.
    const progress = r.stderr.split('\n').filter((l) => /^\[\d\/4\]/.test(l));
    expect(progress).toHaveLength(4);
    expect(progress[0]).toMatch(/ETA .* for 3 remaining run/);
    expect(progress[3]).not.toMatch(/ETA/);

    const summary = JSON.parse(r.stdout) as {
      rows: {
        arch: string;
        errorMean: number;
        errorStd: number;
        seeds: number[];
        paperError: number;
        mflops: number;
      }[];
      trained: number;
      resumed: number;
      wallSeconds: number;
    };
    expect([summary.trained, summary.resumed]).toEqual([4, 0]);
    expect(summary.wallSeconds).toBeGreaterThan(0);
    const file = JSON.parse(readFileSync(join(dir, 'runs.json'), 'utf8')) as RunsFile;
    expect(file.runs.map((x) => `${x.arch}/${x.seed}`).sort()).toEqual([
      'shufflenet_v1_g1_0.25x/0',
      'shufflenet_v1_g1_0.25x/1',
      'shufflenet_v1_g3_0.25x/0',
      'shufflenet_v1_g3_0.25x/1',
    ]);
    for (const run of file.runs) {
      expect(run.testImages).toBe(20);
      // 20 test images: the error is a multiple of 5%.
      expect(Math.round(run.errorPercent / 5) * 5).toBeCloseTo(run.errorPercent, 9);
    }
    expect(summary.rows.map((x) => x.arch)).toEqual(['shufflenet_v1_g1_0.25x', 'shufflenet_v1_g3_0.25x']);
    for (const row of summary.rows) {
      const errors = file.runs.filter((x) => x.arch === row.arch).map((x) => x.errorPercent);
      const mean = (errors[0]! + errors[1]!) / 2;
      expect(row.errorMean).toBeCloseTo(mean, 9);
      expect(row.errorStd).toBeCloseTo(Math.abs(errors[0]! - errors[1]!) / Math.SQRT2, 9);
      expect(row.seeds).toEqual([0, 1]);
    }
    expect(summary.rows.map((x) => x.paperError)).toEqual([57.1, 55.0]);
    // Fixed complexity: the paper's point of Table 2; at 28×28 both are about 2.5 MFLOPs.
    expect(summary.rows[0]!.mflops).toBeCloseTo(summary.rows[1]!.mflops, 0);

    const table = readFileSync(join(dir, 'table.md'), 'utf8');
    const g1 = summary.rows[0]!;
    expect(table).toContain(`| shufflenet_v1_g1_0.25x | 1 |`);
    expect(table).toContain(`${g1.errorMean.toFixed(2)} ± ${g1.errorStd.toFixed(2)}`);
    expect(table).toMatch(/Wall time of this invocation: \d+ s \(4 run\(s\) trained, 0 taken from runs.json\)/);
    const svg = readFileSync(join(dir, 'chart.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('g = 3');
  });

  it('resumes: a second run with the same flags skips the finished runs', () => {
    const before = readFileSync(join(dir, 'runs.json'), 'utf8');
    const r = cli(...args);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/4 of 4 run\(s\) already finished, skipping them; nothing left to train/);
    expect(r.stderr).not.toMatch(/^\[\d\/4\]/m);
    expect(readFileSync(join(dir, 'runs.json'), 'utf8')).toBe(before);
    expect(r.stdout).toMatch(/0 run\(s\) trained, 4 taken from runs.json/);
  });

  it('refuses to mix runs of other settings into the same folder', () => {
    const r = cli(...args.map((a) => (a === '16' ? '24' : a)));
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /runs.json holds runs with other settings \(maxTrain: 16 → 24\); use the same flags/,
    );
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
