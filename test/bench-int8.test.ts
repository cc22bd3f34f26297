/**
 * `shufflenet bench --int8` (issue 11): the int8 engines beside our float32 plan in one interleaved
 * run, their check against the int8 reference, the int8/fp32 and MobileNet/ShuffleNet ratios, and
 * the flags it refuses. Tiny settings (32×32, 2 runs, 2 calibration images); no speed is asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BenchmarkError } from '../src/node/bench/errors.js';
import type { Engine } from '../src/node/bench/engines.js';
import { runBenchmark, sameTopOne, type BenchReport } from '../src/node/bench/run.js';
import { runQuantized } from '../src/runtime/quant/execute.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'bench-int8-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiny = ['--arch', 'shufflenet_v1_g3_0.25x', '--size', '32', '--runs', '2', '--warmup', '0'];
const quick = ['--calibration-images', '2', '--profile-runs', '0', '--settle-runs', '0'];

/** The CLI from source (no build needed), with extra V8 flags. */
function cli(args: string[], v8: string[] = []) {
  return spawnSync(process.execPath, [...v8, '--import', 'tsx', 'src/cli/main.ts', 'bench', ...args], {
    cwd: root,
    encoding: 'utf8',
  });
}

describe('shufflenet bench --int8', () => {
  it('times our int8 plan, onnxruntime on its QDQ export and our float32 plan (both builds) in one run', () => {
    const out = join(dir, 'int8.json');
    // With relaxed SIMD on, so that the float32 plan runs both builds beside the int8 plan, and
    // 7-bit weights, which the int8 plan's relaxed build (where the engine runs it right) multiplies.
    const r = cli(
      ['--int8', ...tiny, ...quick, '--weight-bits', '7', '--out', out],
      ['--experimental-wasm-relaxed-simd'],
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Int8: each network calibrated \(minmax, 7-bit weights\) on 2 deterministic random/);
    expect(r.stdout).toMatch(/Builds: float32 plan: relaxed-simd at 1 thread, .*; int8 plan: int8 (simd|relaxed-simd)/);
    expect(r.stdout).toMatch(/Correctness \(before timing\): all \d+ engine cases agree/);
    expect(r.stdout).toMatch(/Int8 over float32/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
    expect(report.settings.int8).toBe(true);
    expect(report.int8!.relaxed_simd).toBe(true);
    expect(report.int8!.calibration.weight_bits).toBe(7);
    expect(report.int8!.qdq_bytes['shufflenet_v1_g3_0.25x@32×32']).toBeGreaterThan(0);
    expect(report.correctness.failures).toEqual([]);
    const at = (threads: number, engine: string) =>
      report.results.find((c) => c.threads === threads)!.engines.find((e) => e.engine === engine)!;
    for (const threads of [1, 2]) {
      const int8 = at(threads, 'shufflenet-int8');
      expect(int8.precision).toBe('int8');
      // The build the engine ran; SIMD128 under the relaxed flag only with the reason said.
      expect(int8.variant).toMatch(threads === 1 ? /^int8 (simd|relaxed-simd)$/ : /^int8 simd-shared$/);
      if (int8.variant === 'int8 simd') {
        expect(int8.note).toMatch(/^relaxed SIMD refused: /);
        expect(report.int8!.int8_relaxed_refused).toBe(int8.note!.slice('relaxed SIMD refused: '.length));
      }
      expect(int8.threads_used).toBe(threads); // helper workers at 2
      expect(int8.max_rel_error).toBe(0); // bit for bit what runQuantized computes
      expect(int8.top1_agrees).toBe(true);
      expect(int8.median_ms).toBeGreaterThan(0);
      // onnxruntime-node is a devDependency: on the QDQ file it must run, not skip unseen.
      const node = at(threads, 'ort-node-int8');
      expect(node.skipped, 'ort-node-int8 skipped').toBeUndefined();
      expect(node.max_rel_error).toBeLessThanOrEqual(report.settings.int8Tolerance);
      expect(node.median_ms).toBeGreaterThan(0);
      expect(at(threads, 'shufflenet').precision).toBe('float32');
    }
    expect(at(1, 'shufflenet').variant).toBe('relaxed-simd');
    expect(at(2, 'shufflenet').variant).toBe('simd-shared');
    expect(at(1, 'shufflenet-simd128').variant).toBe('simd');
    expect(at(2, 'shufflenet-simd128').skipped).toMatch(/simd-shared/);
    expect(at(1, 'ort-web-int8').median_ms, at(1, 'ort-web-int8').skipped).toBeGreaterThan(0);
    const ratio = (kind: string, label: string, threads: number) =>
      report.ratios.find((x) => x.kind === kind && x.label === label && x.numerator.threads === threads);
    for (const threads of [1, 2]) {
      expect(ratio('precision', 'shufflenet-int8 / shufflenet', threads)!.ratio).toBeGreaterThan(0);
      expect(ratio('peer', 'shufflenet-int8/ort-node-int8', threads)!.ratio).toBeGreaterThan(0);
    }
    expect(ratio('precision', 'shufflenet-int8 / shufflenet-simd128', 1)!.ratio).toBeGreaterThan(0);
    // Peers are compared within a precision only.
    expect(report.ratios.some((x) => x.kind === 'peer' && x.label === 'shufflenet/ort-node-int8')).toBe(false);
    // The int8 plan's own thread gain, as the float plan's.
    expect(report.ratios.some((x) => x.kind === 'threads' && x.numerator.engine === 'shufflenet-int8')).toBe(true);
  });

  it('refuses the flags it does not take, naming them', () => {
    const batch = cli(['--int8', ...tiny, '--batch', '2']);
    expect(batch.status).toBe(1);
    expect(batch.stderr).toMatch(/error: bench: --int8 measures batch 1 .*--batch 2/);
    const trace = cli(['--int8', ...tiny, '--trace', join(dir, 'trace.json')]);
    expect(trace.status).toBe(1);
    expect(trace.stderr).toMatch(/error: bench: --int8 does not take --trace/);
  });
});

describe('runBenchmark with int8', () => {
  const base = { threads: [1], size: 32, runs: 2, warmup: 0, settleRuns: 0, profileRuns: 0, calibrationImages: 2 };

  it('reports MobileNet / ShuffleNet in int8 beside the theory, as the float engines get it', async () => {
    const report = await runBenchmark({
      ...base,
      int8: true,
      archs: ['shufflenet_v1_g3_1.0x', 'mobilenet_v1_1.0'],
      engines: ['shufflenet', 'shufflenet-int8'],
      profileRuns: 1,
    });
    // Per layer type, the int8 plan's steps filed under their main nodes as the float plan's are.
    const layers = (engine: string) =>
      report.layers.filter((l) => l.engine === engine && l.arch === 'shufflenet_v1_g3_1.0x').map((l) => l.type);
    expect(layers('shufflenet-int8')).toContain('conv 1×1 grouped');
    expect(layers('shufflenet-int8').sort()).toEqual(layers('shufflenet').sort());
    const [row] = report.speedups;
    expect(row!.label).toBe('MobileNet 1.0 / ShuffleNet 1× g3');
    expect(row!.theoretical).toBeGreaterThan(1);
    expect(Object.keys(row!.actual).sort()).toEqual(['shufflenet-int8@1', 'shufflenet@1']);
    const int8 = (arch: string) =>
      report.results.find((c) => c.arch === arch)!.engines.find((e) => e.engine === 'shufflenet-int8')!.median_ms!;
    expect(row!.actual['shufflenet-int8@1']).toBeCloseTo(int8('mobilenet_v1_1.0') / int8('shufflenet_v1_g3_1.0x'), 9);
  });

  it('refuses an int8 engine whose output disagrees with the int8 reference, loudly, and does not time it', async () => {
    const log: string[] = [];
    /** Runs the int8 reference, then `spoil`s its logits. */
    const int8Fake = (name: string, spoil: (logits: Float32Array) => void): Engine => ({
      name,
      kind: 'peer',
      precision: 'int8',
      description: `fake ${name}`,
      async prepare({ int8 }) {
        return {
          threadsUsed: 1,
          run: (input) => {
            const logits = runQuantized(int8!.network, input).data;
            spoil(logits);
            return logits;
          },
        };
      },
    });
    const engines = [
      int8Fake('exact', () => {}),
      int8Fake('off', (l) => l.forEach((v, i) => (l[i] = v + 1e3))), // the same top-1, far off
      int8Fake('reversed', (l) => l.forEach((v, i) => (l[i] = -v))),
    ];
    const archs = ['shufflenet_v1_g3_0.25x'];
    const report = await runBenchmark({ ...base, archs, int8: true, log: (l) => log.push(l) }, engines);
    const [exact, off] = report.results[0]!.engines;
    expect(exact!.median_ms).toBeGreaterThan(0);
    expect(off!.median_ms).toBeUndefined();
    expect(off!.skipped).toMatch(/differs from the int8 reference \(runQuantized\): max\|Δ\|\/max\|ref\|/);
    expect(report.correctness.failures.map((f) => f.engine)).toEqual(['off', 'reversed']);
    expect(log.filter((l) => l.includes('MISMATCH'))).toHaveLength(2);
    // With the tolerance out of the way, the top-1 rule alone refuses the reversed logits.
    const loose = await runBenchmark({ ...base, archs, int8: true, int8Tolerance: Infinity }, engines);
    expect(loose.correctness.failures).toEqual([
      expect.objectContaining({
        engine: 'reversed',
        reason: expect.stringMatching(/top-1 class is not the reference/),
      }),
    ]);
  });

  it('refuses what --int8 does not run, and the int8 engines without it, naming the flag', async () => {
    const archs = ['shufflenet_v1_g3_0.25x'];
    const refusals: [object, RegExp][] = [
      [{ int8: true, batch: 2 }, /--int8 measures batch 1 .*--batch 2/],
      [{ int8: true, models: ['x.onnx'] }, /--int8 calibrates registered networks \(--arch\), not --model/],
      [{ int8: true, table8: true }, /--int8 does not run --table8/],
      [{ int8: true, calibrationImages: 0 }, /--calibration-images must be an integer ≥ 1, got 0/],
      [{ int8: true, weightBits: 6 }, /--weight-bits must be 7 or 8, got 6/],
      [{ engines: ['shufflenet', 'ort-node-int8'] }, /ort-node-int8 runs the int8 network: add --int8/],
    ];
    for (const [options, message] of refusals) {
      const error = await runBenchmark({ ...base, archs, ...options }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BenchmarkError);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('sameTopOne compares the top class of every row', () => {
    expect(sameTopOne([1, 3, 2, 5, 4, 0], [0, 9, 1, 7, 6, 2], 2)).toBe(true);
    expect(sameTopOne([1, 3, 2, 5, 4, 0], [0, 9, 1, 6, 7, 2], 2)).toBe(false);
    expect(sameTopOne([NaN, 1], [0, 1], 1)).toBe(false); // a NaN at the top never agrees
    expect(sameTopOne([1, 2], [1, 2, 3], 1)).toBe(false);
  });
});
