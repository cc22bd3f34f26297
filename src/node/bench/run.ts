/**
 * The benchmark: for each network and thread count, prepares every engine on the same traced
 * graph, the same ONNX export and the same input; checks each engine's logits against the reference
 * executor; then times warm-up and measured runs interleaved round-robin across engines.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { complexity } from '../../analysis/complexity.js';
import { runGraph } from '../../graph/execute.js';
import type { Graph } from '../../graph/graph.js';
import { exportOnnx } from '../../io/onnx/export.js';
import { createModel, getModelEntry } from '../../models/registry.js';
import { Random } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { oneLine } from '../../errors.js';
import { engines as allEngines, type Engine, type PreparedEngine } from './engines.js';
import { BenchmarkError } from './errors.js';
import { interleave, median, summarize } from './stats.js';

/** The networks and thread counts of issue 4. */
export const defaultArchs = [
  'shufflenet_v1_g1_1.0x',
  'shufflenet_v1_g3_1.0x',
  'shufflenet_v1_g8_1.0x',
  'shufflenet_v1_g3_0.5x',
  'shufflenet_v1_g3_2.0x',
  'mobilenet_v1_1.0',
  'alexnet',
];
export const defaultThreads = [1, 2];

export interface BenchConfig {
  /** Registry names of the networks to measure. */
  archs: string[];
  /** Thread counts; each engine uses min(N, what it supports) and reports it. */
  threads: number[];
  /** Timed runs per engine and case; the median is over these (≥ 30 for the figures). */
  runs: number;
  /** Untimed runs before timing, per engine and case. */
  warmup: number;
  /** Timed runs and warm-up for our engine (lower them while it is the slow reference executor). */
  oursRuns: number;
  oursWarmup: number;
  /** Square input size; 224 for the figures (smaller only for tests). */
  size: number;
  /** Engine names to run (null: all of them). */
  engines: string[] | null;
  /** Per-node profiling runs of engines that can (at the first thread count); 0 skips it. */
  profileRuns: number;
  /** Largest max|Δ| / max|reference logit| an engine may show before it is refused. */
  tolerance: number;
  /** Seed of the weights and the input. */
  seed: number;
  /** Progress lines (stderr in the CLI). */
  log: (line: string) => void;
}

export const defaultConfig: BenchConfig = {
  archs: defaultArchs,
  threads: defaultThreads,
  runs: 30,
  warmup: 5,
  oursRuns: 30,
  oursWarmup: 5,
  size: 224,
  engines: null,
  profileRuns: 3,
  tolerance: 1e-3,
  seed: 0,
  log: () => {},
};

export interface EngineResult {
  engine: string;
  kind: 'ours' | 'peer';
  /** Why it did not run (missing package, unsupported op or thread count, wrong output). */
  skipped?: string;
  threads_used?: number;
  median_ms?: number;
  q1_ms?: number;
  q3_ms?: number;
  iqr_ms?: number;
  min_ms?: number;
  runs?: number;
  warmup?: number;
  /** max |logits − reference| / max |reference|. */
  max_rel_error?: number;
  samples_ms?: number[];
}

export interface CaseResult {
  arch: string;
  threads: number;
  input: number[];
  mflops: number;
  engines: EngineResult[];
}

export interface LayerTypeRow {
  arch: string;
  engine: string;
  type: string;
  nodes: number;
  mmacs: number;
  ms: number;
  /** MACs per second / 1e9; null for types that do no multiply-adds. */
  gmacs_per_s: number | null;
  share: number;
}

export interface SpeedupRow {
  label: string;
  numerator: string;
  denominator: string;
  theoretical: number;
  /** Measured median ratio per `engine@threads`. */
  actual: Record<string, number>;
}

export interface BenchReport {
  date: string;
  machine: { nproc: number; cpu: string; node: string; loadavg_start: number[]; loadavg_end: number[] };
  settings: Omit<BenchConfig, 'log'> & { our_engine: string };
  results: CaseResult[];
  speedups: SpeedupRow[];
  layers: LayerTypeRow[];
}

/** The paper-style ratios: [numerator, denominator, label]. */
export const speedupPairs: readonly [string, string, string][] = [
  ['mobilenet_v1_1.0', 'shufflenet_v1_g3_1.0x', 'MobileNet 1.0 / ShuffleNet 1× g3'],
  ['alexnet', 'shufflenet_v1_g3_0.5x', 'AlexNet / ShuffleNet 0.5× g3'],
  ['shufflenet_v1_g8_1.0x', 'shufflenet_v1_g3_1.0x', 'ShuffleNet 1× g8 / g3'],
];

function randomInput(shape: readonly number[], seed: number): Tensor {
  const x = new Tensor(shape);
  const random = new Random(seed + 1);
  for (let i = 0; i < x.size; i++) x.data[i] = random.normal();
  return x;
}

export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return Number.isNaN(maxDiff) ? Infinity : maxDiff / (maxRef || 1);
}

/** The layer type a node's time is filed under, for GMAC/s per layer type. */
export function layerType(graph: Graph, index: number): string {
  const node = graph.nodes[index]!;
  if (node.op === 'linear' || node.op === 'gemm' || node.op === 'matmul') return 'FC';
  if (node.op !== 'conv2d') return node.op;
  const [, perGroup, kh, kw] = graph.shapes.get(node.inputs[1]!)! as [number, number, number, number];
  const groups = node.attrs.groups;
  const inChannels = graph.shapes.get(node.inputs[0]!)![1]!;
  if (node.inputs[0] === graph.input.name) return `stem ${kh}×${kw}`;
  if (perGroup === 1 && groups === inChannels) return `depthwise ${kh}×${kw}`;
  return `conv ${kh}×${kw} ${groups > 1 ? 'grouped' : 'dense'}`;
}

/** Runs the benchmark; `available` is the engine table (tests pass their own). */
export async function runBenchmark(
  partial: Partial<BenchConfig> = {},
  available: readonly Engine[] = allEngines,
): Promise<BenchReport> {
  const config: BenchConfig = { ...defaultConfig, ...partial };
  const selected = selectEngines(config.engines, available);
  for (const arch of config.archs) getModelEntry(arch); // unknown names fail before any timing
  const loadStart = loadavg();
  const results: CaseResult[] = [];
  const layers: LayerTypeRow[] = [];
  const macsOf = new Map<string, number>();

  for (const arch of config.archs) {
    const shape = [1, 3, config.size, config.size];
    const graph = createModel(arch, { seed: config.seed, inputSize: config.size }).trace(shape);
    const macs = complexity(graph).macs;
    macsOf.set(arch, macs);
    const onnx = exportOnnx(graph, { docString: arch });
    const input = randomInput(shape, config.seed);
    config.log(`${arch}: ${(macs / 1e6).toFixed(1)} MFLOPs; reference logits…`);
    const reference = runGraph(graph, input).data;

    for (const [threadIndex, threads] of config.threads.entries()) {
      const prepared: { engine: Engine; ready: PreparedEngine; result: EngineResult }[] = [];
      const caseResult: CaseResult = { arch, threads, input: shape, mflops: macs / 1e6, engines: [] };
      for (const engine of selected) {
        const base = { engine: engine.name, kind: engine.kind };
        let ready: PreparedEngine | { skipped: string };
        try {
          ready = await engine.prepare({ graph, onnx, threads });
        } catch (e) {
          ready = { skipped: `failed to prepare: ${oneLine(e instanceof Error ? e.message : String(e))}` };
        }
        if ('skipped' in ready) {
          caseResult.engines.push({ ...base, skipped: ready.skipped });
          config.log(`  ${engine.name} @${threads}: skipped: ${ready.skipped}`);
          continue;
        }
        // Never time a wrong computation: check the logits before any timing.
        const error = relativeError(await ready.run(input), reference);
        if (!(error <= config.tolerance)) {
          await ready.dispose?.();
          const reason = `output differs from the reference: max|Δ|/max|ref| = ${error.toExponential(2)} > ${config.tolerance}`;
          caseResult.engines.push({ ...base, skipped: reason });
          config.log(`  ${engine.name} @${threads}: ${reason}`);
          continue;
        }
        const ours = engine.kind === 'ours';
        const result: EngineResult = {
          ...base,
          threads_used: ready.threadsUsed,
          runs: ours ? config.oursRuns : config.runs,
          warmup: ours ? config.oursWarmup : config.warmup,
          max_rel_error: error,
        };
        prepared.push({ engine, ready, result });
        caseResult.engines.push(result);
      }

      // Warm-up, then timed runs, both interleaved round-robin across engines.
      for (const i of interleave(prepared.map((p) => p.result.warmup!))) await prepared[i]!.ready.run(input);
      const samples = prepared.map((): number[] => []);
      const order = interleave(prepared.map((p) => p.result.runs!));
      config.log(
        `  timing ${prepared.map((p) => p.engine.name).join(', ')} @${threads} thread(s): ${order.length} runs`,
      );
      for (const i of order) {
        const start = performance.now();
        await prepared[i]!.ready.run(input);
        samples[i]!.push(performance.now() - start);
      }
      for (const [i, p] of prepared.entries()) {
        if (samples[i]!.length === 0) continue;
        const s = summarize(samples[i]!);
        Object.assign(p.result, {
          median_ms: s.median,
          q1_ms: s.q1,
          q3_ms: s.q3,
          iqr_ms: s.iqr,
          min_ms: s.min,
          samples_ms: samples[i]!.map((v) => Math.round(v * 1000) / 1000),
        });
        config.log(`  ${p.engine.name} @${threads}: median ${s.median.toFixed(2)} ms (IQR ${s.iqr.toFixed(2)})`);
      }
      if (threadIndex === 0 && config.profileRuns > 0) {
        for (const p of prepared) {
          if (!p.ready.profile) continue;
          layers.push(...(await profileLayers(arch, graph, input, p.engine.name, p.ready, config.profileRuns)));
        }
      }
      for (const p of prepared) await p.ready.dispose?.();
      results.push(caseResult);
    }
  }

  return {
    date: new Date().toISOString(),
    machine: {
      nproc: availableParallelism(),
      cpu: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadavg_start: loadStart,
      loadavg_end: loadavg(),
    },
    settings: { ...withoutLog(config), our_engine: selected.find((e) => e.kind === 'ours')?.description ?? 'none' },
    results,
    speedups: speedups(results, macsOf),
    layers,
  };
}

function withoutLog(config: BenchConfig): Omit<BenchConfig, 'log'> {
  const { log: _log, ...rest } = config;
  void _log;
  return rest;
}

function selectEngines(names: string[] | null, available: readonly Engine[]): Engine[] {
  if (names === null) return [...available];
  const known = available.map((e) => e.name);
  for (const name of names) {
    if (!known.includes(name)) {
      throw new BenchmarkError(`bench: unknown engine "${name}"; known engines: ${known.join(', ')}`);
    }
  }
  return available.filter((e) => names.includes(e.name));
}

async function profileLayers(
  arch: string,
  graph: Graph,
  input: Tensor,
  engine: string,
  ready: PreparedEngine,
  runs: number,
): Promise<LayerTypeRow[]> {
  const perNode: number[][] = graph.nodes.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (const t of await ready.profile!(input)) perNode[t.node]!.push(t.ms);
  }
  const costs = complexity(graph).layers;
  const byType = new Map<string, { nodes: number; macs: number; ms: number }>();
  perNode.forEach((times, index) => {
    if (times.length === 0) return;
    const type = layerType(graph, index);
    const row = byType.get(type) ?? { nodes: 0, macs: 0, ms: 0 };
    row.nodes += 1;
    row.macs += costs[index]!.macs;
    row.ms += median(times);
    byType.set(type, row);
  });
  const total = [...byType.values()].reduce((s, r) => s + r.ms, 0);
  return [...byType.entries()]
    .map(([type, r]) => ({
      arch,
      engine,
      type,
      nodes: r.nodes,
      mmacs: r.macs / 1e6,
      ms: r.ms,
      gmacs_per_s: r.macs > 0 ? r.macs / (r.ms * 1e6) : null,
      share: r.ms / total,
    }))
    .sort((a, b) => b.ms - a.ms);
}

function speedups(results: CaseResult[], macsOf: Map<string, number>): SpeedupRow[] {
  const rows: SpeedupRow[] = [];
  for (const [numerator, denominator, label] of speedupPairs) {
    if (!macsOf.has(numerator) || !macsOf.has(denominator)) continue;
    const actual: Record<string, number> = {};
    for (const num of results.filter((r) => r.arch === numerator)) {
      const den = results.find((r) => r.arch === denominator && r.threads === num.threads);
      for (const e of num.engines) {
        const d = den?.engines.find((x) => x.engine === e.engine);
        if (e.median_ms !== undefined && d?.median_ms !== undefined) {
          actual[`${e.engine}@${num.threads}`] = e.median_ms / d.median_ms;
        }
      }
    }
    rows.push({
      label,
      numerator,
      denominator,
      theoretical: macsOf.get(numerator)! / macsOf.get(denominator)!,
      actual,
    });
  }
  return rows;
}
