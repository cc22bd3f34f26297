/**
 * The benchmark. For each input size and network it traces the graph once, exports it to ONNX and
 * computes the reference logits; for each thread count it prepares every engine on that graph, that
 * export and the same input, and checks each engine's logits against the reference. Only then does
 * it time, and it times every case (size × network × threads × engine) round-robin: each round runs
 * every case once, so every ratio, across engines, networks or thread counts, compares timings taken
 * in the same minutes, and a fixed calibration kernel timed between rounds shows whether the
 * machine's speed drifted. Ratios carry a paired bootstrap confidence interval over the rounds.
 *
 * With `int8` (issue 11's `bench --int8`), each case's network is also calibrated and quantized
 * once (`quantizeCase`) and exported as QDQ; the int8 engines run that network or that file and
 * are checked against the int8 reference executor (runQuantized) rather than runGraph.
 *
 * NOTE on memory: every session stays prepared for the whole run (the price of interleaving all
 * cases). With the seven default networks at 224×224 that is about 1.5 GB of weights across the
 * engines (AlexNet's 61 M parameters dominate); the report records the process's resident memory
 * after preparation (`memory`), and every session is disposed at the end.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { basename } from 'node:path';
import { complexity } from '../../analysis/complexity.js';
import { runGraph } from '../../graph/execute.js';
import type { Graph } from '../../graph/graph.js';
import { loadModel } from '../../io/load.js';
import { exportOnnx } from '../../io/onnx/export.js';
import { kernelVariant } from '../../kernels/wasm/module.js';
import { createModel, getModelEntry } from '../../models/registry.js';
import { Calibrator } from '../../runtime/quant/calibrate.js';
import { runQuantized } from '../../runtime/quant/execute.js';
import type { WeightBits } from '../../runtime/quant/network.js';
import { exportQdq } from '../../runtime/quant/qdq.js';
import { Random } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { argmaxRows } from '../../train/evaluate.js';
import { oneLine, ShuffleNetError } from '../../errors.js';
import { calibrationDescription, timeCalibration } from './calibration.js';
import {
  allEngines,
  engines as latencyEngines,
  int8Comparisons,
  int8Engines,
  relaxedRefusedNote,
  ourAutoEngine,
  ourBatchEngine,
  ourEngine,
  throughputEngines,
  type Engine,
  type Int8Case,
  type Precision,
  type PreparedEngine,
} from './engines.js';
import { BenchmarkError } from './errors.js';
import { formatInputSize, square, type InputSize } from './input-size.js';
import {
  assessDrift,
  bootstrapMethod,
  defaultBootstrap,
  defaultDrift,
  interleave,
  median,
  pairedRatio,
  roundRobin,
  summarize,
  type BootstrapSettings,
  type DriftAssessment,
  type DriftSettings,
} from './stats.js';
import { paperMilliseconds, table8Archs, table8Sizes } from './table8.js';

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
/** The networks of `bench --int8`: the pair whose ratio the paper quotes (MobileNet / ShuffleNet, 4.14× in MFLOPs). */
export const int8Archs = ['shufflenet_v1_g3_1.0x', 'mobilenet_v1_1.0'];

export interface BenchConfig {
  /** Registry names of the networks to measure. */
  archs: string[];
  /**
   * Model files to measure beside them (`--model`): ONNX files (the peers run the file itself, at
   * the input size it declares), or our model files and checkpoints (exported for the peers).
   */
  models: string[];
  /** Thread counts; each engine uses min(N, what it supports) and reports it. */
  threads: number[];
  /** Timed runs per engine and case, one per round; the median is over these (≥ 30 for the figures). */
  runs: number;
  /** Untimed runs before timing, per engine and case. */
  warmup: number;
  /**
   * Untimed runs of a case right before each of its timed runs (default 1). The case before it in
   * the round may leave threads spinning (ours spin for SPIN_MS after a run; onnxruntime-node's
   * are told not to) and its own threads asleep, with another engine's data in the caches; a
   * settle run lets all that pass, so the timed run sees what a caller running one model back to
   * back sees. 0 times each case cold after another engine.
   */
  settleRuns: number;
  /** Timed runs and warm-up for our engine (lower them while it is the slow reference executor). */
  oursRuns: number;
  oursWarmup: number;
  /** Square input size (224 for the figures; smaller only for tests); `sizes` overrides it. */
  size: number;
  /** Input sizes, height × width; every case runs at each (null: [size × size]). */
  sizes: InputSize[] | null;
  /** Images per run: 1 measures latency; N > 1 is throughput mode (images per second). */
  batch: number;
  /** Report Table 8's growth with pixels (cost at each size over cost at the first size). */
  table8: boolean;
  /** Engine names to run (null: all of a latency run, or ours both ways and ort-node at batch > 1). */
  engines: string[] | null;
  /** Per-node profiling runs of engines that can (at the first thread count and size); 0 skips it. */
  profileRuns: number;
  /** Largest max|Δ| / max|reference logit| an engine may show before it is refused. */
  tolerance: number;
  /**
   * Issue 11's int8 run: each case's network calibrated on `calibrationImages` random images
   * (minmax), quantized and exported as QDQ once; the int8 engines time it beside our float32 plan.
   * Batch 1, registered networks only.
   */
  int8: boolean;
  /** Images each network is calibrated on with `int8` (deterministic, from `seed`). */
  calibrationImages: number;
  /**
   * With `int8`: the weights' range, 8 bits or 7 (the relaxed-SIMD int8 build multiplies 7-bit
   * weights 16 per instruction; with 8-bit weights it runs the SIMD128 GEMM).
   */
  weightBits: WeightBits;
  /**
   * With `int8`: largest max|Δ| / max|int8 reference logit| of an int8 engine; its top-1 must also
   * be the reference's. Ours computes the reference's integers bit for bit; onnxruntime on the same
   * QDQ file the same integers up to rare one-step roundings (test/quantize.test.ts), which later
   * residual units can grow: on ShuffleNet 1× g3 at 224×224 (this run's seeds) onnxruntime-node
   * rounds 2 of stage3.4's 94,080 values one step the other way, and the logits end 8.5e-3 apart.
   * A wrong scale, layout or kernel is off by far more than 5e-2.
   */
  int8Tolerance: number;
  /** Seed of the weights and the input. */
  seed: number;
  /** Confidence intervals of the ratios. */
  bootstrap: BootstrapSettings;
  /** When the calibration kernel's times flag the run as drifted. */
  drift: DriftSettings;
  /** Progress lines (stderr in the CLI). */
  log: (line: string) => void;
}

export const defaultConfig: BenchConfig = {
  archs: defaultArchs,
  models: [],
  threads: defaultThreads,
  runs: 30,
  warmup: 5,
  settleRuns: 1,
  oursRuns: 30,
  oursWarmup: 5,
  size: 224,
  sizes: null,
  batch: 1,
  table8: false,
  engines: null,
  profileRuns: 3,
  tolerance: 1e-3,
  int8: false,
  calibrationImages: 8,
  weightBits: 8,
  int8Tolerance: 5e-2,
  seed: 0,
  bootstrap: defaultBootstrap,
  drift: defaultDrift,
  log: () => {},
};

/** `--table8`: the paper's Table 8 networks and sizes, one thread (as the paper measured). */
export const table8Config: Partial<BenchConfig> = {
  archs: [...table8Archs],
  sizes: [...table8Sizes],
  threads: [1],
  table8: true,
};

export interface EngineResult {
  engine: string;
  kind: 'ours' | 'peer';
  /** What it computes: float32 engines are checked against runGraph, int8 ones against runQuantized. */
  precision: Precision;
  /** Which build of our kernels ran (relaxed-simd, simd, simd-shared; the int8 plan's: int8 simd, …). */
  variant?: string;
  /** How it ran, where that needs saying (the int8 plan: why relaxed SIMD was refused). */
  note?: string;
  /** Why it did not run (missing package, unsupported op or thread count, wrong output). */
  skipped?: string;
  threads_used?: number;
  /** `shufflenet-auto`: what threads: 'auto' chose, after the timed runs (session.notes). */
  choice?: string;
  median_ms?: number;
  q1_ms?: number;
  q3_ms?: number;
  iqr_ms?: number;
  min_ms?: number;
  runs?: number;
  warmup?: number;
  /** Throughput mode: batch ÷ median seconds. */
  images_per_s?: number;
  /** max |logits − reference| / max |reference| (the reference of its precision). */
  max_rel_error?: number;
  /** Whether every sample's top-1 class is the reference's. */
  top1_agrees?: boolean;
  /** Sample k was timed in round k. */
  samples_ms?: number[];
}

export interface CaseResult {
  arch: string;
  threads: number;
  /** [batch, 3, height, width]. */
  input: number[];
  height: number;
  width: number;
  /** Multiply-adds of one image at this size, in millions. */
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
  /** Input size, height × width (e.g. "224×224"). */
  size: string;
  theoretical: number;
  /** Measured median ratio per `engine@threads`. */
  actual: Record<string, number>;
  /** Its confidence interval [low, high] per `engine@threads` (see BenchReport.ratio_ci). */
  actual_ci: Record<string, [number, number]>;
}

/** One side of a ratio: a timed case. */
export interface CaseKey {
  arch: string;
  engine: string;
  threads: number;
  size: string;
}

/** A measured ratio of two cases' medians with its confidence interval. */
export interface RatioRow {
  /**
   * 'pair': the paper's network pairs; 'peer': ours over a peer of the same precision; 'threads':
   * the first thread count over another (Table 8's growth is in `growth`); 'precision': an int8
   * engine over its float32 counterpart (`--int8`).
   */
  kind: 'pair' | 'peer' | 'threads' | 'precision';
  label: string;
  numerator: CaseKey;
  denominator: CaseKey;
  ratio: number;
  ci_low: number;
  ci_high: number;
  /** Rounds in which both were timed. */
  pairs: number;
}

/** Table 8: a case's cost at a size over its cost at the first size, against the pixels ratio. */
export interface GrowthRow {
  arch: string;
  engine: string;
  threads: number;
  size: string;
  base_size: string;
  pixels_ratio: number;
  /** Medians at the first size and at this one. */
  base_median_ms: number;
  median_ms: number;
  ratio: number;
  ci_low: number;
  ci_high: number;
  /** The paper's Snapdragon 820 time at this size and its ratio to 224×224, where Table 8 has them. */
  paper_ms: number | null;
  paper_ratio: number | null;
}

export interface DriftReport extends DriftAssessment {
  kernel: string;
  window: number;
  threshold: number;
  /** One per round, then one after the last round. */
  calibration_ms: number[];
  loadavg_1m: number[];
}

/** What `--int8` did before timing, for the report. */
export interface Int8Report {
  calibration: { method: 'minmax'; images: number; weight_bits: WeightBits; inputs: string; note: string };
  /** Bytes of each case's QDQ export, by `arch@size`. */
  qdq_bytes: Record<string, number>;
  /** Whether this process runs relaxed SIMD (Node: --experimental-wasm-relaxed-simd). */
  relaxed_simd: boolean;
  /** The builds our plans ran, in words (each engine's is its result's `variant`). */
  builds: string;
  /** Why the int8 plan did not run relaxed SIMD although this process has it (null: it did, or had none). */
  int8_relaxed_refused: string | null;
}

/** The correctness gate that runs before any timing. */
export interface CorrectnessReport {
  /** The rule each precision is held to. */
  rules: Partial<Record<Precision, string>>;
  /** Engine cases checked (prepared engines whose output was compared). */
  checked: number;
  /** Engine cases whose output disagreed: refused, not timed. */
  failures: { arch: string; size: string; threads: number; engine: string; precision: Precision; reason: string }[];
}

export interface BenchReport {
  date: string;
  machine: { nproc: number; cpu: string; node: string; loadavg_start: number[]; loadavg_end: number[] };
  settings: Omit<BenchConfig, 'log' | 'sizes'> & { sizes: string[]; our_engine: string };
  results: CaseResult[];
  speedups: SpeedupRow[];
  layers: LayerTypeRow[];
  /** Every quoted ratio with its confidence interval. */
  ratios: RatioRow[];
  /** How the intervals are computed. */
  ratio_ci: BootstrapSettings & { method: string };
  /** Table 8 growth with pixels (empty unless `table8`). */
  growth: GrowthRow[];
  /** Throughput mode (batch > 1): our best split against onnxruntime-node. */
  throughput: ThroughputRow[];
  /** Networks that cannot be built at a size, with the reason. */
  skipped_cases: { arch: string; size: string; reason: string }[];
  /** The calibration kernel between rounds, and whether the run drifted. */
  drift: DriftReport;
  /** Rounds of the interleaved schedule, and cases timed per round (at most). */
  schedule: { rounds: number; cases: number; order: string };
  memory: { rss_after_prepare_bytes: number; weights_bytes: number; sessions: number };
  /** Every engine checked against its reference before timing, and which disagreed. */
  correctness: CorrectnessReport;
  /** `--int8`: calibration, QDQ sizes and builds (null otherwise). */
  int8: Int8Report | null;
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

/** Whether every row's largest logit is at the same class in both ([rows, classes], row-major). */
export function sameTopOne(actual: ArrayLike<number>, expected: ArrayLike<number>, rows: number): boolean {
  if (actual.length !== expected.length || rows < 1 || expected.length % rows !== 0) return false;
  const classes = expected.length / rows;
  const top = (a: ArrayLike<number>): Int32Array => argmaxRows(new Tensor([rows, classes], Float32Array.from(a)));
  const expectedTop = top(expected);
  // A NaN at the top never agrees.
  return Array.from(top(actual)).every(
    (best, r) => !Number.isNaN(actual[r * classes + best]!) && best === expectedTop[r],
  );
}

/** How each precision is checked, in words (the report's `correctness.rules`). */
function correctnessRules(config: BenchConfig): Partial<Record<Precision, string>> {
  return {
    float32: `against the reference executor (runGraph): max|Δ|/max|ref| ≤ ${config.tolerance}`,
    ...(config.int8
      ? {
          int8: `against the int8 reference executor (runQuantized) on the same input: top-1 equal and max|Δ|/max|ref| ≤ ${config.int8Tolerance}`,
        }
      : {}),
  };
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

/** A prepared case of the interleaved schedule. */
interface TimedCase {
  key: CaseKey;
  result: EngineResult;
  ready: PreparedEngine;
  input: Tensor;
  /** Sample k is the time of round k. */
  samples: number[];
}

/** Why `arch` cannot be built at `size` here, or null when it can. */
export function inputUnfit(arch: string, size: InputSize): string | null {
  if (getModelEntry(arch).family === 'alexnet' && size.height !== size.width) {
    return (
      `alexnet at ${formatInputSize(size)}: its fc6 is sized for a square input, so a non-square one needs a ` +
      'fully-convolutional AlexNet (fc layers as convolutions), which src/models/alexnet.ts does not build'
    );
  }
  return null;
}

/**
 * A network to time: a registered name, or a model file. Cases are keyed by `label` (the name, or
 * the file's base name).
 */
interface BenchNetwork {
  label: string;
  /** Image channels of its input. */
  channels: number;
  /** The input size an ONNX file declares, at which every engine runs it; null: the run's sizes. */
  size: InputSize | null;
  /** The network traced at `shape`, or why it cannot be built at that size. */
  trace(size: InputSize, shape: number[]): Graph | { skipped: string };
  /** What the peers run: our export of the graph, or the ONNX file itself. */
  onnx(graph: Graph): Uint8Array;
}

function registryNetwork(arch: string, seed: number): BenchNetwork {
  getModelEntry(arch); // unknown names fail before any timing
  return {
    label: arch,
    channels: 3,
    size: null,
    trace(size, shape) {
      const unfit = inputUnfit(arch, size);
      if (unfit !== null) return { skipped: unfit };
      return traced(() => createModel(arch, { seed, inputSize: size.height }).trace(shape));
    },
    onnx: (graph) => exportOnnx(graph, { docString: arch }),
  };
}

function fileNetwork(path: string): BenchNetwork {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new BenchmarkError(`bench: --model ${path}: ${oneLine(e instanceof Error ? e.message : String(e))}`);
  }
  const loaded = loadModel(bytes, path);
  const label = basename(path);
  // An ONNX file (imported, or one of our networks exported with its architecture): the peers run
  // the file itself, at the input size it declares.
  if (loaded.inputShape !== undefined) {
    const [, channels, height, width] = loaded.inputShape as [number, number, number, number];
    return {
      label,
      channels,
      size: { height, width },
      trace: (_size, shape) => traced(() => loaded.graphFor(shape)),
      onnx: () => bytes,
    };
  }
  const crop = loaded.info?.preprocessing?.crop;
  const config = loaded.info?.architecture?.config as { inputChannels?: number } | undefined;
  return {
    label,
    channels: config?.inputChannels ?? 3,
    size: crop === undefined ? null : square(crop),
    trace: (_size, shape) => traced(() => loaded.graphFor(shape)),
    onnx: (graph) => exportOnnx(graph, { docString: label }),
  };
}

/** `--int8`: calibration image i has seed `seed + CALIBRATION_SEED + i` (the timed input has `seed`). */
const CALIBRATION_SEED = 1000;

/** `--int8`: how the networks are calibrated, in words (the report's and the CLI's). */
export function calibrationInputs(config: Pick<BenchConfig, 'calibrationImages' | 'seed'>): string {
  return (
    `${config.calibrationImages} deterministic random N(0, 1) images (seeds ${config.seed + CALIBRATION_SEED}…` +
    `${config.seed + CALIBRATION_SEED + config.calibrationImages - 1}), not the timed input`
  );
}

/**
 * `--int8`: the case's network calibrated (minmax) on random images, quantized and exported as
 * QDQ. The weights are random too: the time does not depend on the values, only the shapes.
 */
function quantizeCase(graph: Graph, shape: number[], config: BenchConfig): Int8Case | { skipped: string } {
  try {
    const calibrator = new Calibrator(graph, {
      method: 'minmax',
      images: config.calibrationImages,
      weightBits: config.weightBits,
    });
    for (let i = 0; i < config.calibrationImages; i++) {
      calibrator.observe(randomInput(shape, config.seed + CALIBRATION_SEED + i));
    }
    const network = calibrator.finish();
    return { network, qdq: exportQdq(network) };
  } catch (e) {
    if (!(e instanceof ShuffleNetError)) throw e;
    return { skipped: `cannot quantize: ${oneLine(e.message)}` };
  }
}

/** `--int8` runs what it can compare: refuses the options it does not take, naming the flag. */
function checkInt8Config(config: BenchConfig): void {
  if (!config.int8) return;
  if (config.batch !== 1) {
    throw new BenchmarkError(
      `bench: --int8 measures batch 1 (the int8 plan runs one sample at a time), got --batch ${config.batch}`,
    );
  }
  if (config.models.length > 0) {
    throw new BenchmarkError('bench: --int8 calibrates registered networks (--arch), not --model files');
  }
  if (config.table8) throw new BenchmarkError("bench: --int8 does not run --table8 (the paper's Table 8 is float32)");
  if (!Number.isInteger(config.calibrationImages) || config.calibrationImages < 1) {
    throw new BenchmarkError(`bench: --calibration-images must be an integer ≥ 1, got ${config.calibrationImages}`);
  }
  if (config.weightBits !== 7 && config.weightBits !== 8) {
    throw new BenchmarkError(`bench: --weight-bits must be 7 or 8, got ${String(config.weightBits)}`);
  }
}

/** A configuration error (e.g. a stem that leaves nothing of a tiny input) skips this case only. */
function traced(trace: () => Graph): Graph | { skipped: string } {
  try {
    return trace();
  } catch (e) {
    if (!(e instanceof ShuffleNetError)) throw e;
    return { skipped: oneLine(e.message) };
  }
}

/** Runs the benchmark; `available` is the engine table (tests pass their own). */
export async function runBenchmark(
  partial: Partial<BenchConfig> = {},
  available?: readonly Engine[],
): Promise<BenchReport> {
  const config: BenchConfig = { ...defaultConfig, ...partial };
  if (!Number.isInteger(config.batch) || config.batch < 1) {
    throw new BenchmarkError(`bench: --batch must be an integer ≥ 1, got ${config.batch}`);
  }
  const sizes = config.sizes ?? [square(config.size)];
  if (sizes.length === 0) throw new BenchmarkError('bench: no input sizes to run');
  checkInt8Config(config);
  const table =
    available ??
    (config.engines !== null
      ? allEngines
      : config.int8
        ? int8Engines
        : config.batch > 1
          ? throughputEngines
          : latencyEngines);
  const selected = selectEngines(config.engines, table);
  const int8Selected = selected.filter((e) => e.precision === 'int8');
  if (!config.int8 && int8Selected.length > 0) {
    throw new BenchmarkError(
      `bench: ${int8Selected.map((e) => e.name).join(', ')} run${int8Selected.length === 1 ? 's' : ''} the int8 network: add --int8`,
    );
  }
  const networks = [
    ...config.archs.map((arch) => registryNetwork(arch, config.seed)),
    ...config.models.map(fileNetwork),
  ];
  // A network with an input size of its own runs at that size only, with the first size's cases.
  const runSizes = (network: BenchNetwork, sizeIndex: number): InputSize[] =>
    network.size === null ? [sizes[sizeIndex]!] : sizeIndex === 0 ? [network.size] : [];
  const allSizes = [...sizes, ...networks.flatMap((n) => (n.size === null ? [] : [n.size]))].filter(
    (size, i, all) => all.findIndex((o) => formatInputSize(o) === formatInputSize(size)) === i,
  );
  const loadStart = loadavg();
  const results: CaseResult[] = [];
  const skippedCases: { arch: string; size: string; reason: string }[] = [];
  const timed: TimedCase[] = [];
  const macsOf = new Map<string, number>(); // by `arch|size`, per image
  const profiled: { arch: string; graph: Graph; input: Tensor; cases: TimedCase[] }[] = [];
  const failures: CorrectnessReport['failures'] = [];
  const qdqBytes: Record<string, number> = {};
  let checked = 0;
  let weightsBytes = 0;

  try {
    // 1. Prepare and check every case before any timing.
    for (const sizeIndex of sizes.keys()) {
      for (const network of networks) {
        for (const size of runSizes(network, sizeIndex)) {
          const sizeLabel = formatInputSize(size);
          const arch = network.label;
          const shape = [config.batch, network.channels, size.height, size.width]; // [N, C, H, W]
          const graph = network.trace(size, shape);
          if ('skipped' in graph) {
            skippedCases.push({ arch, size: sizeLabel, reason: graph.skipped });
            config.log(`${arch} @${sizeLabel}: skipped: ${graph.skipped}`);
            continue;
          }
          const macs = complexity(graph).macs / config.batch;
          macsOf.set(`${arch}|${sizeLabel}`, macs);
          for (const { tensor } of graph.params.values()) weightsBytes += tensor.size * 4;
          const onnx = network.onnx(graph);
          const input = randomInput(shape, config.seed);
          config.log(`${arch} @${sizeLabel}: ${(macs / 1e6).toFixed(1)} MFLOPs per image; reference logits…`);
          const reference = runGraph(graph, input).data;
          let int8: Int8Case | undefined;
          let int8Skipped: string | undefined;
          let int8Reference: Float32Array | undefined;
          if (config.int8) {
            config.log(
              `${arch} @${sizeLabel}: calibrating on ${config.calibrationImages} images (minmax), int8 reference logits…`,
            );
            const quantized = quantizeCase(graph, shape, config);
            if ('skipped' in quantized) {
              int8Skipped = quantized.skipped;
              config.log(`  int8 engines: skipped: ${int8Skipped}`);
            } else {
              int8 = quantized;
              qdqBytes[`${arch}@${sizeLabel}`] = int8.qdq.length;
              int8Reference = runQuantized(int8.network, input).data;
            }
          }
          for (const [threadIndex, threads] of config.threads.entries()) {
            const caseResult: CaseResult = {
              arch,
              threads,
              input: shape,
              height: size.height,
              width: size.width,
              mflops: macs / 1e6,
              engines: [],
            };
            const prepared: TimedCase[] = [];
            for (const engine of selected) {
              const precision = engine.precision ?? 'float32';
              const base = { engine: engine.name, kind: engine.kind, precision };
              let ready: PreparedEngine | { skipped: string };
              try {
                ready =
                  precision === 'int8' && int8Skipped !== undefined
                    ? { skipped: int8Skipped }
                    : await engine.prepare({ graph, onnx, threads, ...(int8 ? { int8 } : {}) });
              } catch (e) {
                ready = { skipped: `failed to prepare: ${oneLine(e instanceof Error ? e.message : String(e))}` };
              }
              if ('skipped' in ready) {
                caseResult.engines.push({ ...base, skipped: ready.skipped });
                config.log(`  ${engine.name} @${threads}: skipped: ${ready.skipped}`);
                continue;
              }
              // Never time a wrong computation: check the logits before any timing, an int8
              // engine's against the int8 reference (top-1 too), a float one's against runGraph's.
              const output = await ready.run(input);
              const expected = precision === 'int8' ? int8Reference! : reference;
              const error = relativeError(output, expected);
              const top1 = sameTopOne(output, expected, config.batch);
              const tolerance = precision === 'int8' ? config.int8Tolerance : config.tolerance;
              checked++;
              const mismatch = !(error <= tolerance)
                ? `max|Δ|/max|ref| = ${error.toExponential(2)} > ${tolerance}`
                : precision === 'int8' && !top1
                  ? "its top-1 class is not the reference's"
                  : null;
              if (mismatch !== null) {
                await ready.dispose?.();
                const reason = `output differs from the ${precision === 'int8' ? 'int8 reference (runQuantized)' : 'reference'}: ${mismatch}`;
                caseResult.engines.push({
                  ...base,
                  skipped: reason,
                  max_rel_error: error,
                  top1_agrees: top1,
                  ...(ready.variant ? { variant: ready.variant } : {}),
                  ...(ready.note ? { note: ready.note } : {}),
                });
                failures.push({ arch, size: sizeLabel, threads, engine: engine.name, precision, reason });
                config.log(`  MISMATCH ${arch} @${sizeLabel} ${engine.name} @${threads}: ${reason}; not timed`);
                continue;
              }
              const ours = engine.kind === 'ours';
              const result: EngineResult = {
                ...base,
                ...(ready.variant ? { variant: ready.variant } : {}),
                ...(ready.note ? { note: ready.note } : {}),
                threads_used: ready.threadsUsed,
                runs: ours ? config.oursRuns : config.runs,
                warmup: ours ? config.oursWarmup : config.warmup,
                max_rel_error: error,
                top1_agrees: top1,
              };
              caseResult.engines.push(result);
              const key = { arch, engine: engine.name, threads, size: sizeLabel };
              prepared.push({ key, result, ready, input, samples: [] });
            }
            timed.push(...prepared);
            results.push(caseResult);
            if (threadIndex === 0 && sizeIndex === 0 && config.profileRuns > 0) {
              profiled.push({ arch, graph, input, cases: prepared.filter((p) => p.ready.profile) });
            }
          }
        }
      }
    }
    const rss = process.memoryUsage().rss;
    config.log(
      `prepared ${timed.length} sessions (${(weightsBytes / 2 ** 20).toFixed(0)} MiB of weights per copy; ` +
        `resident ${(rss / 2 ** 20).toFixed(0)} MiB)`,
    );

    // 2. Warm-up, then rounds: each round times every case once, with the calibration kernel before it.
    for (const i of interleave(timed.map((t) => t.result.warmup!))) await timed[i]!.ready.run(timed[i]!.input);
    const rounds = roundRobin(timed.map((t) => t.result.runs!));
    config.log(`timing ${timed.length} cases round-robin: ${rounds.length} rounds`);
    const calibration: number[] = [];
    const loads: number[] = [];
    const calibrate = (): void => {
      calibration.push(timeCalibration());
      loads.push(loadavg()[0]!);
    };
    for (const [r, round] of rounds.entries()) {
      calibrate();
      for (const i of round) {
        const c = timed[i]!;
        for (let s = 0; s < config.settleRuns; s++) await c.ready.run(c.input);
        const start = performance.now();
        await c.ready.run(c.input);
        c.samples.push(performance.now() - start);
      }
      if ((r + 1) % 10 === 0)
        config.log(`  round ${r + 1}/${rounds.length}: calibration ${calibration.at(-1)!.toFixed(3)} ms`);
    }
    calibrate();

    for (const c of timed) {
      if (c.samples.length === 0) continue;
      const s = summarize(c.samples);
      Object.assign(c.result, {
        median_ms: s.median,
        q1_ms: s.q1,
        q3_ms: s.q3,
        iqr_ms: s.iqr,
        min_ms: s.min,
        ...(config.batch > 1 ? { images_per_s: (config.batch * 1000) / s.median } : {}),
        ...(c.ready.choice ? { choice: c.ready.choice() } : {}),
        samples_ms: c.samples.map((v) => Math.round(v * 1000) / 1000),
      });
      config.log(
        `  ${c.key.arch} @${c.key.size} ${c.key.engine} @${c.key.threads}: median ${s.median.toFixed(2)} ms (IQR ${s.iqr.toFixed(2)})` +
          (c.result.choice ? `; ${c.result.choice}` : ''),
      );
    }

    // 3. Per-node profiles, after the rounds so that they do not disturb them.
    const layers: LayerTypeRow[] = [];
    for (const p of profiled) {
      for (const c of p.cases) {
        layers.push(...(await profileLayers(p.arch, p.graph, p.input, c.key.engine, c.ready, config.profileRuns)));
      }
    }

    const drift = assessDrift(calibration, config.drift);
    if (drift.flagged) config.log(`DRIFT: ${drift.reason}`);
    const { log: _log, sizes: _sizes, ...settings } = config;
    void _log;
    void _sizes;
    const ratios = measuredRatios(
      timed,
      config,
      allSizes,
      networks.map((n) => n.label),
    );
    return {
      date: new Date().toISOString(),
      machine: {
        nproc: availableParallelism(),
        cpu: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        loadavg_start: loadStart,
        loadavg_end: loadavg(),
      },
      settings: {
        ...settings,
        // Kept for readers of the one-size report (bench/markdown.mjs, the chart); `sizes` lists every size.
        size: sizes[0]!.height,
        // The sizes that ran (a model file runs at its own), or the requested ones if none did.
        sizes: (results.length > 0
          ? allSizes.filter((z) => results.some((r) => r.height === z.height && r.width === z.width))
          : sizes
        ).map(formatInputSize),
        // --int8 runs two plans of ours (float32 and int8): name both.
        our_engine:
          selected
            .filter((e) => e.kind === 'ours')
            .slice(0, config.int8 ? undefined : 1)
            .map((e) => e.description)
            .join('; ') || 'none',
      },
      results,
      skipped_cases: skippedCases,
      speedups: speedups(ratios, macsOf),
      layers,
      ratios,
      ratio_ci: { method: bootstrapMethod, ...config.bootstrap },
      growth: config.table8 ? growth(timed, sizes, config.bootstrap) : [],
      throughput: config.batch > 1 ? throughput(timed, config) : [],
      drift: {
        kernel: calibrationDescription,
        window: config.drift.window,
        threshold: config.drift.threshold,
        ...drift,
        calibration_ms: calibration.map((v) => Math.round(v * 1e4) / 1e4),
        loadavg_1m: loads,
      },
      schedule: {
        rounds: rounds.length,
        cases: timed.length,
        order:
          'every case (size × network × threads × engine) once per round, the first case rotating by one each ' +
          `round, each timed run right after ${config.settleRuns} untimed run(s) of the same case; the ` +
          'calibration kernel before each round and after the last',
      },
      memory: { rss_after_prepare_bytes: rss, weights_bytes: weightsBytes, sessions: timed.length },
      correctness: { rules: correctnessRules(config), checked, failures },
      int8: config.int8 ? int8Report(config, results, qdqBytes) : null,
    };
  } finally {
    for (const c of timed) await c.ready.dispose?.();
  }
}

/** `--int8`'s report: calibration, QDQ sizes, and the builds our plans ran (read from the results). */
function int8Report(config: BenchConfig, results: CaseResult[], qdqBytes: Record<string, number>): Int8Report {
  const int8Plans = results.flatMap((r) => r.engines).filter((e) => e.precision === 'int8' && e.kind === 'ours');
  const int8Builds = [...new Set(int8Plans.flatMap((e) => (e.variant ? [e.variant] : [])))];
  const refused = int8Plans.find((e) => e.note?.startsWith(relaxedRefusedNote))?.note ?? null;
  return {
    calibration: {
      method: 'minmax',
      images: config.calibrationImages,
      weight_bits: config.weightBits,
      inputs: calibrationInputs(config),
      note: 'weights and images are random: the time does not depend on the values, only on the shapes',
    },
    qdq_bytes: qdqBytes,
    relaxed_simd: kernelVariant() === 'relaxed-simd',
    builds:
      `float32 plan: ${kernelVariant()} at 1 thread, simd-shared at 2+ threads (no relaxed form); ` +
      `int8 plan: ${int8Builds.length > 0 ? int8Builds.join(', ') : 'not run'}` +
      (config.weightBits === 8 ? ' (its relaxed build adds qgemm7, for 7-bit weights: --weight-bits 7)' : ''),
    int8_relaxed_refused: refused === null ? null : refused.slice(relaxedRefusedNote.length),
  };
}

const keyString = (k: CaseKey): string => `${k.arch}|${k.engine}|${k.threads}|${k.size}`;

/** Every ratio the README and docs quote, with its paired bootstrap interval. */
function measuredRatios(
  timed: TimedCase[],
  config: BenchConfig,
  sizes: readonly InputSize[],
  labels: readonly string[],
): RatioRow[] {
  const byKey = new Map(timed.filter((c) => c.samples.length > 0).map((c) => [keyString(c.key), c]));
  const rows: RatioRow[] = [];
  const add = (kind: RatioRow['kind'], label: string, numerator: CaseKey, denominator: CaseKey): void => {
    const n = byKey.get(keyString(numerator));
    const d = byKey.get(keyString(denominator));
    if (!n || !d) return;
    const r = pairedRatio(n.samples, d.samples, config.bootstrap);
    rows.push({ kind, label, numerator, denominator, ratio: r.ratio, ci_low: r.low, ci_high: r.high, pairs: r.pairs });
  };
  const engineNames = [...new Set(timed.map((c) => c.key.engine))];
  const oursNames = [...new Set(timed.filter((c) => c.result.kind === 'ours').map((c) => c.key.engine))];
  const peerNames = engineNames.filter((e) => !oursNames.includes(e));
  const precisionOf = new Map(timed.map((c) => [c.key.engine, c.result.precision]));
  for (const size of sizes.map(formatInputSize)) {
    for (const threads of config.threads) {
      for (const engine of engineNames) {
        for (const [numerator, denominator, label] of speedupPairs) {
          add('pair', label, { arch: numerator, engine, threads, size }, { arch: denominator, engine, threads, size });
        }
      }
      for (const arch of labels) {
        for (const ours of oursNames) {
          // int8 against int8, float32 against float32: a cross-precision ratio is the int8 table's.
          for (const peer of peerNames.filter((p) => precisionOf.get(p) === precisionOf.get(ours))) {
            add(
              'peer',
              `${ours}/${peer}`,
              { arch, engine: ours, threads, size },
              { arch, engine: peer, threads, size },
            );
          }
        }
        for (const [int8, float32] of int8Comparisons) {
          add(
            'precision',
            `${int8} / ${float32}`,
            { arch, engine: int8, threads, size },
            { arch, engine: float32, threads, size },
          );
        }
      }
    }
    const [first, ...others] = config.threads;
    for (const arch of labels) {
      for (const engine of engineNames) {
        // shufflenet-auto has no case at 1 thread (nothing to choose): its gain is over our plan's.
        const atFirst = { arch, engine, threads: first!, size };
        const base = engine === ourAutoEngine.name && !byKey.has(keyString(atFirst)) ? ourEngine.name : engine;
        for (const threads of others) {
          // An engine that ran as many threads at both counts (the int8 plan: one) gained nothing to report.
          const used = (t: number, e: string) => byKey.get(keyString({ arch, engine: e, threads: t, size }))?.result;
          if (used(first!, base)?.threads_used === used(threads, engine)?.threads_used) continue;
          add(
            'threads',
            base === engine
              ? `${engine} ${first} / ${threads} threads`
              : `${base} ${first} / ${engine} ${threads} threads`,
            { ...atFirst, engine: base },
            { arch, engine, threads, size },
          );
        }
      }
    }
  }
  return rows;
}

function speedups(ratios: RatioRow[], macsOf: Map<string, number>): SpeedupRow[] {
  const rows = new Map<string, SpeedupRow>();
  for (const r of ratios.filter((x) => x.kind === 'pair')) {
    const { arch: numerator, size } = r.numerator;
    const denominator = r.denominator.arch;
    const id = `${numerator}|${denominator}|${size}`;
    let row = rows.get(id);
    if (!row) {
      row = {
        label: r.label,
        numerator,
        denominator,
        size,
        theoretical: macsOf.get(`${numerator}|${size}`)! / macsOf.get(`${denominator}|${size}`)!,
        actual: {},
        actual_ci: {},
      };
      rows.set(id, row);
    }
    const key = `${r.numerator.engine}@${r.numerator.threads}`;
    row.actual[key] = r.ratio;
    row.actual_ci[key] = [r.ci_low, r.ci_high];
  }
  return [...rows.values()];
}

/** Table 8: each case's median at every size over its median at the first size. */
function growth(timed: TimedCase[], sizes: readonly InputSize[], bootstrap: BootstrapSettings): GrowthRow[] {
  const [base, ...others] = sizes as [InputSize, ...InputSize[]];
  const baseLabel = formatInputSize(base);
  const rows: GrowthRow[] = [];
  for (const b of timed.filter((c) => c.key.size === baseLabel && c.samples.length > 0)) {
    for (const size of others) {
      const label = formatInputSize(size);
      const c = timed.find((x) => keyString(x.key) === keyString({ ...b.key, size: label }));
      if (!c || c.samples.length === 0) continue;
      const r = pairedRatio(c.samples, b.samples, bootstrap);
      const paper = paperMilliseconds(b.key.arch, size);
      const paperBase = paperMilliseconds(b.key.arch, base);
      rows.push({
        arch: b.key.arch,
        engine: b.key.engine,
        threads: b.key.threads,
        size: label,
        base_size: baseLabel,
        pixels_ratio: (size.height * size.width) / (base.height * base.width),
        base_median_ms: median(b.samples),
        median_ms: median(c.samples),
        ratio: r.ratio,
        ci_low: r.low,
        ci_high: r.high,
        paper_ms: paper,
        paper_ratio: paper !== null && paperBase !== null ? paper / paperBase : null,
      });
    }
  }
  return rows;
}

/** Throughput mode: our best split against onnxruntime-node, per network, size and thread count. */
export interface ThroughputRow {
  arch: string;
  size: string;
  threads: number;
  batch: number;
  /** The winning engine of ours and what its threads split. */
  ours_engine: string;
  ours_split: 'layers' | 'batch';
  ours_images_per_s: number;
  /** The other split's images per second (null when it did not run). */
  other_split_images_per_s: number | null;
  peer: string;
  peer_images_per_s: number | null;
  /** ours ÷ peer images per second, with its interval (null without the peer). */
  ratio: number | null;
  ci_low: number | null;
  ci_high: number | null;
}

export const throughputPeer = 'ort-node';

function throughput(timed: TimedCase[], config: BenchConfig): ThroughputRow[] {
  const rows: ThroughputRow[] = [];
  const measured = timed.filter((c) => c.samples.length > 0);
  const groups = new Map<string, TimedCase[]>();
  for (const c of measured) {
    const id = `${c.key.arch}|${c.key.size}|${c.key.threads}`;
    groups.set(id, [...(groups.get(id) ?? []), c]);
  }
  for (const cases of groups.values()) {
    const ours = cases.filter((c) => c.result.kind === 'ours').sort((a, b) => median(a.samples) - median(b.samples));
    const [best, other] = ours;
    if (!best) continue;
    const peer = cases.find((c) => c.key.engine === throughputPeer);
    const r = peer ? pairedRatio(peer.samples, best.samples, config.bootstrap) : null;
    const perSecond = (c: TimedCase): number => (config.batch * 1000) / median(c.samples);
    rows.push({
      arch: best.key.arch,
      size: best.key.size,
      threads: best.key.threads,
      batch: config.batch,
      ours_engine: best.key.engine,
      ours_split: best.key.engine === ourBatchEngine.name ? 'batch' : 'layers',
      ours_images_per_s: perSecond(best),
      other_split_images_per_s: other ? perSecond(other) : null,
      peer: throughputPeer,
      peer_images_per_s: peer ? perSecond(peer) : null,
      ratio: r?.ratio ?? null,
      ci_low: r?.low ?? null,
      ci_high: r?.high ?? null,
    });
  }
  return rows;
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
