/**
 * `npm run bench:train` in a tiny mode (one step of batch 2 at 32×32, PyTorch switched off): the
 * table it prints and the JSON it writes. No speed is asserted. The PyTorch comparison needs torch
 * in /usr/bin/python3: without it that test says why it skipped, and SHUFFLENET_REQUIRE_TORCH=1
 * makes it fail instead.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { pythonModuleMissing, requirement } from './helpers/requirements.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'bench-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('times our training step per thread count and writes the report, PyTorch skipped when asked', () => {
  const out = join(dir, 'bench-train.json');
  const tiny = ['--steps', '1', '--warmup', '1', '--batch', '4', '--size', '32', '--out', out];
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/train.ts', ...tiny], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, BENCH_TRAIN_NO_TORCH: '1' },
  });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/Training step of shufflenet_v1_g3_0.5x, batch 4 × 3×32×32/);
  expect(r.stdout).toMatch(/^ {6}1 \| +\d+\.\d \(\d+ ms\) \| +n\/a \| +n\/a$/m);
  expect(r.stdout).toMatch(/note: skipped \(BENCH_TRAIN_NO_TORCH is set\)/);

  const report = JSON.parse(readFileSync(out, 'utf8')) as {
    date: string;
    machine: { nproc: number };
    settings: { arch: string; batch: number; size: number; steps: number; warmup: number };
    results: {
      threads: number;
      ours: { median_ms?: number; images_per_second?: number; skipped?: string };
      pytorch: { skipped?: string };
      ratio: number | null;
    }[];
  };
  expect(Number.isNaN(Date.parse(report.date))).toBe(false);
  expect(report.settings).toMatchObject({ arch: 'shufflenet_v1_g3_0.5x', batch: 4, size: 32, steps: 1, warmup: 1 });
  expect(report.results.map((x) => x.threads)).toEqual([1, 2]);
  const [one, two] = report.results;
  expect(one!.ours.median_ms).toBeGreaterThan(0);
  expect(one!.ours.images_per_second).toBeCloseTo(4 / (one!.ours.median_ms! / 1000), 6);
  expect(two!.ours.median_ms).toBeGreaterThan(0); // two threads: the data-parallel engine
  for (const x of report.results) {
    expect(x.pytorch.skipped).toMatch(/BENCH_TRAIN_NO_TORCH/);
    expect(x.ratio).toBeNull();
  }
});

const needTorch = requirement(
  'TORCH',
  'the PyTorch training benchmark (test/bench-train.test.ts)',
  pythonModuleMissing('torch', 'pip install torch'),
);

it.skipIf(needTorch.skip)('times PyTorch on the same network in the same run, and the ratio is ours / PyTorch', () => {
  needTorch.check();
  const out = join(dir, 'bench-train-torch.json');
  const tiny = ['--steps', '1', '--warmup', '0', '--batch', '4', '--size', '32', '--threads', '1', '--out', out];
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/train.ts', ...tiny, '--json'], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as {
    results: {
      ours: { images_per_second: number };
      pytorch: { images_per_second: number; torch: string };
      ratio: number;
    }[];
  };
  const [one] = report.results;
  expect(one!.pytorch.images_per_second).toBeGreaterThan(0);
  expect(one!.pytorch.torch).toMatch(/^1\./);
  expect(one!.ratio).toBeCloseTo(one!.ours.images_per_second / one!.pytorch.images_per_second, 9);
});
