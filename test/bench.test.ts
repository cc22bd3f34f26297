/**
 * The benchmark harness: its statistics, its round-robin schedule, its correctness gate, the
 * `bench --json` contract and the size budget. Tiny settings (32×32, a few runs); no speed is asserted.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runGraph } from '../src/graph/execute.js';
import { createModel } from '../src/models/registry.js';
import { complexity } from '../src/analysis/complexity.js';
import { Tensor } from '../src/tensor/tensor.js';
import { renderChart } from '../src/node/bench/chart.js';
import { engines, profileGraph, referenceBenchEngine, type Engine } from '../src/node/bench/engines.js';
import { layerType, relativeError, runBenchmark } from '../src/node/bench/run.js';
import { interleave, median, quantile, summarize } from '../src/node/bench/stats.js';
import { budgetBytes, measureSize } from '../src/node/size.js';

describe('benchmark statistics', () => {
  it('median, quartiles and IQR interpolate between order statistics like NumPy', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    // numpy.percentile([1..8], [25, 75]) = 2.75, 6.25
    const s = summarize([8, 3, 1, 7, 2, 6, 5, 4]);
    expect([s.q1, s.median, s.q3, s.iqr, s.min, s.runs]).toEqual([2.75, 4.5, 6.25, 3.5, 1, 8]);
    expect(quantile([10], 0.25)).toBe(10);
    expect(quantile([0, 10], 0.9)).toBeCloseTo(9, 12);
    expect(() => median([])).toThrow(/no values/);
    expect(() => quantile([1], 1.5)).toThrow(/q must be/);
  });

  it('interleaves engines round-robin, rotating who goes first, each getting exactly its runs', () => {
    expect(interleave([2, 2])).toEqual([0, 1, 1, 0]);
    expect(interleave([3, 1, 2])).toEqual([0, 1, 2, 2, 0, 0]);
    const runs = [30, 5, 30, 12];
    const order = interleave(runs);
    expect(runs.map((_, i) => order.filter((e) => e === i).length)).toEqual(runs);
    // No engine's runs are back to back while others still have runs left in that round.
    let position = 0;
    for (let round = 0; round < 30; round++) {
      const active = runs.filter((n) => round < n).length;
      const slice = order.slice(position, position + active);
      expect(new Set(slice).size).toBe(active);
      position += active;
    }
    expect(interleave([])).toEqual([]);
  });

  it('relative error is max |Δ| over max |reference|, and NaN or a length mismatch fails', () => {
    expect(relativeError([1, 2.002], [1, 2])).toBeCloseTo(0.001, 12);
    expect(relativeError([NaN, 2], [1, 2])).toBe(Infinity);
    expect(relativeError([1], [1, 2])).toBe(Infinity);
  });
});

describe('per-node timing and layer types', () => {
  const graph = createModel('shufflenet_v1_g3_0.25x', { smallInput: true, numClasses: 10 }).trace([1, 3, 32, 32]);

  it('profileGraph computes what runGraph computes, timing every node once', () => {
    const input = Tensor.from(
      [1, 3, 32, 32],
      Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i)),
    );
    const { output, timings } = profileGraph(graph, input);
    expect(Array.from(output.data)).toEqual(Array.from(runGraph(graph, input).data));
    expect(timings.map((t) => t.node)).toEqual(graph.nodes.map((_, i) => i));
    for (const t of timings) expect(t.ms).toBeGreaterThanOrEqual(0);
  });

  it("files nodes under the paper's layer types", () => {
    const types = new Map(graph.nodes.map((n, i) => [n.name, layerType(graph, i)]));
    expect(types.get('conv1')).toBe('stem 3×3');
    expect(types.get('stage2.0.gconv1')).toBe('conv 1×1 dense'); // the first unit's gconv1 is not grouped
    expect(types.get('stage2.1.gconv1')).toBe('conv 1×1 grouped');
    expect(types.get('stage2.0.dwconv')).toBe('depthwise 3×3');
    expect(types.get('fc')).toBe('FC');
    const mobile = createModel('mobilenet_v1_0.25', { initialize: false }).trace([1, 3, 64, 64]);
    const mobileTypes = new Set(mobile.nodes.map((_, i) => layerType(mobile, i)));
    expect(mobileTypes).toEqual(
      new Set(['stem 3×3', 'batchNorm', 'relu', 'depthwise 3×3', 'conv 1×1 dense', 'globalAvgPool', 'flatten', 'FC']),
    );
  });
});

/** A fake engine that logs its calls; `wrong` makes its output differ from the reference. */
function fake(name: string, log: string[], wrong = false): Engine {
  return {
    name,
    kind: 'peer',
    description: `fake ${name}`,
    async prepare({ graph }) {
      return {
        threadsUsed: 1,
        run(input) {
          log.push(name);
          const out = runGraph(graph, input).data;
          if (wrong) out[0]! += 1;
          return out;
        },
      };
    },
  };
}

describe('runBenchmark', () => {
  const tiny = {
    archs: ['shufflenet_v1_g3_0.25x'],
    threads: [1],
    size: 32,
    runs: 4,
    warmup: 1,
    settleRuns: 0,
    profileRuns: 1,
  };

  it('interleaves engines, refuses a wrong one before timing it, and summarizes every case', async () => {
    const log: string[] = [];
    const table = [referenceBenchEngine, fake('a', log), fake('b', log), fake('wrong', log, true)];
    const report = await runBenchmark({ ...tiny, oursRuns: 2, oursWarmup: 0 }, table);
    // The check runs, 1 warm-up each, then 4 timed runs each, interleaved with the reference's 2
    // (order per round: ref a b | a b ref | b a | a b).
    expect(log).toEqual(['a', 'b', 'wrong', 'a', 'b', 'a', 'b', 'a', 'b', 'b', 'a', 'a', 'b']);
    const [only] = report.results;
    expect(only!.engines.map((e) => e.engine)).toEqual(['reference', 'a', 'b', 'wrong']);
    expect(engines[0]!.name).toBe('shufflenet');
    const [ours, a, , wrong] = only!.engines;
    expect(wrong!.skipped).toMatch(/output differs from the reference/);
    expect(wrong!.median_ms).toBeUndefined();
    expect(ours!.samples_ms).toHaveLength(2);
    expect(a!.samples_ms).toHaveLength(4);
    expect(a!.median_ms).toBeCloseTo(median(a!.samples_ms!), 2);
    expect(a!.max_rel_error).toBe(0);
    expect(report.layers.some((l) => l.type === 'conv 1×1 grouped' && l.gmacs_per_s! > 0)).toBe(true);
    expect(report.layers.reduce((s, l) => s + l.share, 0)).toBeCloseTo(1, 9);
    const svg = await renderChart(report);
    expect(typeof svg).toBe('string');
    // One point per measured engine (the wrong one is not drawn), each labelled with its median.
    const points = [
      ...(svg as string).matchAll(/aria-label="network: shufflenet_v1_g3_0\.25x; ms: ([\d.]+)[^"]*" [^>]*"point"/g),
    ];
    const drawn = points.map((m) => Number(m[1])).sort((x, y) => x - y);
    const measured = [ours!, a!, only!.engines[2]!].map((e) => e.median_ms!).sort((x, y) => x - y);
    expect(drawn).toHaveLength(3);
    drawn.forEach((v, i) => expect(v).toBeCloseTo(measured[i]!, 4));
  });

  it("computes theoretical and actual speed-ups for the paper's pairs", async () => {
    const archs = ['shufflenet_v1_g3_1.0x', 'shufflenet_v1_g8_1.0x'];
    const report = await runBenchmark({ ...tiny, archs, runs: 3, profileRuns: 0 }, [fake('a', [])]);
    const macs = archs.map((name) => complexity(createModel(name, { initialize: false }).trace([1, 3, 32, 32])).macs);
    const [g3, g8] = report.results.map((r) => r.engines[0]!.median_ms!);
    expect(report.speedups).toHaveLength(1);
    const [row] = report.speedups;
    expect(row!.label).toBe('ShuffleNet 1× g8 / g3');
    expect(row!.theoretical).toBeCloseTo(macs[1]! / macs[0]!, 12);
    expect(row!.actual).toEqual({ 'a@1': g8! / g3! });
    const names = await runBenchmark({ ...tiny, engines: ['x'] }, [fake('a', [])]).catch((e: Error) => e.message);
    expect(names).toMatch(/unknown engine "x"; known engines: a/);
  });
});

describe('runBenchmark --model', () => {
  it('times model files: an ONNX file at its own input size (the peers get the file itself), our model file at its crop', async () => {
    const onnxPath = fileURLToPath(new URL('./fixtures/onnx/zoo/mobilenet_v3_small_0.25.onnx', import.meta.url));
    const ours = fileURLToPath(new URL('../models/fashion-mnist-shufflenet.safetensors', import.meta.url));
    const given: { graphInput: readonly number[]; onnx: Uint8Array }[] = [];
    const recording: Engine = {
      ...fake('a', []),
      async prepare(context) {
        given.push({ graphInput: context.graph.input.shape, onnx: context.onnx });
        return fake('a', []).prepare(context);
      },
    };
    const report = await runBenchmark(
      {
        archs: [],
        models: [onnxPath, ours],
        threads: [1],
        size: 224,
        runs: 2,
        warmup: 0,
        settleRuns: 0,
        profileRuns: 0,
      },
      [recording],
    );
    expect(report.results.map((r) => [r.arch, r.input])).toEqual([
      ['mobilenet_v3_small_0.25.onnx', [1, 3, 40, 40]],
      ['fashion-mnist-shufflenet.safetensors', [1, 1, 28, 28]],
    ]);
    expect(report.settings.sizes).toEqual(['40×40', '28×28']);
    expect(Buffer.from(given[0]!.onnx).equals(readFileSync(onnxPath))).toBe(true);
    expect(given[1]!.graphInput).toEqual([1, 1, 28, 28]);
    expect(report.results.every((r) => r.engines[0]!.median_ms! > 0)).toBe(true);
    await expect(runBenchmark({ archs: [], models: ['/nonexistent/x.onnx'] }, [recording])).rejects.toThrow(
      /bench: --model \/nonexistent\/x\.onnx: ENOENT/,
    );
  });
});

describe('shufflenet bench --json', () => {
  it('prints exactly one JSON object with our median_ms and the peers', () => {
    const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const args = ['bench', '--arch', 'shufflenet_v1_g3_0.25x', '--threads', '1', '--size', '32'];
    const r = spawnSync(
      process.execPath,
      [main, ...args, '--runs', '3', '--warmup', '1', '--engines', 'shufflenet,ort-node', '--json'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!) as {
      arch: string;
      threads: number;
      median_ms: number;
      iqr_ms: number;
      peers: Record<string, { median_ms?: number | null; skipped?: string }>;
    };
    expect(out.arch).toBe('shufflenet_v1_g3_0.25x');
    expect(out.threads).toBe(1);
    expect(out.median_ms).toBeGreaterThan(0);
    expect(out.iqr_ms).toBeGreaterThanOrEqual(0);
    const peer = out.peers['ort-node']!;
    // onnxruntime-node is a devDependency (the ONNX tests import it), so here the peer must run:
    // a skip would let a broken peer pass unseen.
    expect(peer.skipped, 'the ort-node peer skipped').toBeUndefined();
    expect(peer.median_ms).toBeGreaterThan(0);
  });
});

describe('npm run size', () => {
  it(`keeps the browser runtime bundle (JS + WASM, minified) within ${budgetBytes} bytes`, async () => {
    const report = await measureSize();
    expect(report.js_bytes).toBeGreaterThan(10_000); // the bundle really contains the runtime
    expect(report.total_bytes).toBeLessThanOrEqual(budgetBytes);
  });
});
