/**
 * The engines the benchmark times. Each is `{ name, prepare(context) → { run(input) } }`; the
 * harness owns timing, interleaving and the correctness check, engines only compute.
 *
 * THE SEAM FOR OUR ENGINE is `ourEngine` below: the fused WASM plan (src/runtime/plan.ts). When
 * threads land, raise `maxThreads`. `referenceEngine` (runGraph) stays available for per-node
 * profiling. Everything else (tables, JSON, chart, `--json` contract) follows.
 *
 * Peers are devDependencies, loaded with dynamic import() so the library never needs them; a
 * missing peer is reported as skipped with the install command, never as a failure.
 *
 * `bench --int8` (issue 11): engines of `precision: 'int8'` run the case's quantized network (our
 * int8 plan) or its QDQ export (onnxruntime), and are checked against the int8 reference executor.
 */
import { runGraph } from '../../graph/execute.js';
import { kernelVariant, WasmKernels } from '../../kernels/wasm/module.js';
import { compilePlan } from '../../runtime/plan.js';
import type { QuantizedNetwork } from '../../runtime/quant/network.js';
import { QuantizedPlan } from '../../runtime/quant/plan.js';
import { startHelpers } from '../../runtime/session.js';
import { createNodeSession, spawnNodeWorker } from '../session.js';
import type { Graph } from '../../graph/graph.js';
import { getOp } from '../../ops/index.js';
import { Tensor } from '../../tensor/tensor.js';
import { oneLine } from '../../errors.js';
import { tfjsProgram, tfjsUnsupported } from './tfjs.js';

/**
 * What an engine is given: the traced graph, our ONNX export of it, and the thread count. Both are
 * traced at the benchmark's batch (1 for latency, N for `--batch N`) and input size.
 */
export interface EngineContext {
  readonly graph: Graph;
  readonly onnx: Uint8Array;
  readonly threads: number;
  /** `--int8`: the network quantized (calibrated once per network and size) and its QDQ export. */
  readonly int8?: Int8Case;
}

/** A case's int8 network, as `bench --int8` gives it to the int8 engines. */
export interface Int8Case {
  readonly network: QuantizedNetwork;
  /** exportQdq(network): Q/DQ pairs around float ops, which onnxruntime fuses into its int8 kernels. */
  readonly qdq: Uint8Array;
}

/** What an engine computes, and so which reference checks it (float32: runGraph; int8: runQuantized). */
export type Precision = 'float32' | 'int8';

/** A prepared engine: one call computes the logits of one input. */
export interface PreparedEngine {
  run(input: Tensor): Float32Array | Promise<Float32Array>;
  /** Optional per-node timing of one run (milliseconds by graph node), for GMAC/s per layer type. */
  profile?(input: Tensor): NodeTiming[] | Promise<NodeTiming[]>;
  /** Threads it really uses (a single-threaded engine asked for 2 reports 1). */
  readonly threadsUsed: number;
  /** Which build of our kernels runs (PlanSummary.variant; the int8 plan's: `int8 simd`, `int8 relaxed-simd`). */
  readonly variant?: string;
  /** How it ran, where that needs saying (the int8 plan: why relaxed SIMD was refused); shown as a note. */
  readonly note?: string;
  /** What it chose and why, read after the timed runs (`shufflenet-auto`: threads: 'auto'). */
  choice?(): string;
  dispose?(): void | Promise<void>;
}

export interface NodeTiming {
  /** Index into graph.nodes. */
  readonly node: number;
  readonly ms: number;
}

export interface Engine {
  /** Short name used in tables, JSON keys and `--engines`. */
  readonly name: string;
  readonly kind: 'ours' | 'peer';
  readonly description: string;
  /** Default float32; an int8 engine needs `context.int8` and is checked against the int8 reference. */
  readonly precision?: Precision;
  /** Prepares the engine, or returns the reason it cannot run this case (missing package, op, threads). */
  prepare(context: EngineContext): Promise<PreparedEngine | { skipped: string }>;
}

/** How a network runs in our engine: `prepare(graph)` → `run(input)`. */
export interface OurEngine {
  readonly name: string;
  readonly description: string;
  /** Largest thread count it uses; asked for more, it runs with this many (and the JSON says so). */
  readonly maxThreads: number;
  prepare(
    graph: Graph,
    threads: number,
  ): Promise<{
    run: (input: Tensor) => Tensor;
    /** Which build of the kernels runs (PlanSummary.variant). */
    variant?: string;
    dispose?: () => Promise<void>;
    profile?: (input: Tensor) => NodeTiming[];
  }>;
  /** Optional per-node timing (see profileReference). */
  profile?(graph: Graph, input: Tensor): NodeTiming[];
}

export const ourEngine: OurEngine = {
  name: 'shufflenet',
  description: 'our fused inference plan on the WASM SIMD kernels (src/runtime/plan.ts; intra-op threads)',
  maxThreads: 16,
  prepare: async (graph, threads) => {
    const plan = await compilePlan(graph, { threads });
    const dispose = threads > 1 ? await startHelpers(plan, spawnNodeWorker) : undefined;
    const nodeIndex = new Map(graph.nodes.map((n, i) => [n.output, i]));
    // A fused step's time is filed under its main node (a conv's includes its BN, ReLU, shuffle).
    const profile = (input: Tensor): NodeTiming[] =>
      plan.profile(input, 1).flatMap(({ ms }, i) => {
        const main = nodeIndex.get(plan.summary.stepNodes[i]![0]!);
        return main === undefined ? [] : [{ node: main, ms }];
      });
    return {
      run: (input) => plan.run(input),
      variant: plan.summary.variant,
      ...(threads === 1 ? { profile } : {}),
      ...(dispose ? { dispose } : {}),
    };
  },
};

/** The reference executor, for comparison runs (`--engines reference`) and per-node timing. */
export const referenceEngine: OurEngine = {
  name: 'reference',
  description: 'our reference executor (runGraph on the pure reference kernels; single-threaded)',
  maxThreads: 1,
  prepare: async (graph) => ({ run: (input) => runGraph(graph, input) }),
  profile: profileReference,
};

/**
 * Runs the graph like runGraph, timing each node, and returns the output too (a test checks it
 * equals runGraph's). NOTE: kept beside the benchmark rather than as a hook in runGraph, so the
 * executor stays minimal and untimed.
 */
export function profileGraph(graph: Graph, input: Tensor): { output: Tensor; timings: NodeTiming[] } {
  const values = new Map<string, Tensor>([[graph.input.name, input]]);
  const lookup = (name: string): Tensor => values.get(name) ?? graph.params.get(name)!.tensor;
  const timings: NodeTiming[] = [];
  graph.nodes.forEach((node, index) => {
    const output = new Tensor(graph.shapes.get(node.output)!);
    const inputs = node.inputs.map(lookup);
    const start = performance.now();
    getOp(node.op).forward(inputs, node.attrs, output);
    timings.push({ node: index, ms: performance.now() - start });
    values.set(node.output, output);
  });
  return { output: lookup(graph.output), timings };
}

export function profileReference(graph: Graph, input: Tensor): NodeTiming[] {
  return profileGraph(graph, input).timings;
}

function ours(engine: OurEngine): Engine {
  return {
    name: engine.name,
    kind: 'ours',
    description: engine.description,
    async prepare({ graph, threads }) {
      const threadsUsed = Math.min(threads, engine.maxThreads);
      const prepared = await engine.prepare(graph, threadsUsed);
      const profile = prepared.profile ?? (engine.profile && ((input: Tensor) => engine.profile!(graph, input)));
      return {
        threadsUsed,
        run: (input) => prepared.run(input).data,
        ...(prepared.variant ? { variant: prepared.variant } : {}),
        ...(prepared.dispose ? { dispose: prepared.dispose } : {}),
        ...(profile ? { profile } : {}),
      };
    },
  };
}

/** Imports an optional peer, or explains how to install it. */
async function importPeer<T>(name: string, load: () => Promise<T>): Promise<T | { skipped: string }> {
  try {
    return await load();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      return { skipped: `${name} is not installed (npm install --save-dev ${name})` };
    }
    return { skipped: `${name} failed to load: ${oneLine(e instanceof Error ? e.message : String(e))}` };
  }
}

type Ort = typeof import('onnxruntime-node');

/** An ONNX Runtime session over `model` (our float export, or the int8 network's QDQ export), as a PreparedEngine. */
async function ortSession(ort: Ort, model: Uint8Array, options: object, threadsUsed: number) {
  const session = await ort.InferenceSession.create(model, options);
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  return {
    threadsUsed,
    async run(input: Tensor): Promise<Float32Array> {
      const feeds = { [inputName!]: new ort.Tensor('float32', input.data, [...input.shape]) };
      const result = await session.run(feeds);
      return result[outputName!]!.data as Float32Array;
    },
    dispose: () => session.release(),
  } satisfies PreparedEngine;
}

/** The file onnxruntime runs: our float export, or for an int8 engine the int8 network's QDQ export. */
function ortModel(precision: Precision, context: EngineContext): Uint8Array | { skipped: string } {
  if (precision === 'float32') return context.onnx;
  return context.int8?.qdq ?? { skipped: 'runs the int8 network: needs bench --int8' };
}

const onWhat = (precision: Precision): string =>
  precision === 'int8' ? "on the int8 network's QDQ export (its int8 kernels)" : 'on our ONNX export';

function onnxruntimeWebEngine(name: string, precision: Precision): Engine {
  return {
    name,
    kind: 'peer',
    precision,
    description: `onnxruntime-web, WASM backend (SIMD), 1 thread, ${onWhat(precision)}`,
    async prepare(context) {
      if (context.threads !== 1) return { skipped: 'onnxruntime-web is measured at 1 thread only (as the issue asks)' };
      const model = ortModel(precision, context);
      if ('skipped' in model) return model;
      const ort = await importPeer('onnxruntime-web', () => import('onnxruntime-web'));
      if ('skipped' in ort) return ort;
      ort.env.wasm.numThreads = 1;
      // onnxruntime-web and -node ship separate typings of the same InferenceSession API.
      return ortSession(ort as unknown as Ort, model, { executionProviders: ['wasm'] }, 1);
    },
  };
}

function onnxruntimeNodeEngine(name: string, precision: Precision): Engine {
  return {
    name,
    kind: 'peer',
    precision,
    description: `onnxruntime-node, native CPU provider, intraOpNumThreads = N (no spin-waiting between runs), ${onWhat(precision)}`,
    async prepare(context) {
      const model = ortModel(precision, context);
      if ('skipped' in model) return model;
      const ort = await importPeer('onnxruntime-node', () => import('onnxruntime-node'));
      if ('skipped' in ort) return ort;
      // ORT's pool threads spin after each run by default; with engines interleaved run by run in one
      // process, that spinning takes the cores from the next engine (ours at 2 threads ran at half
      // speed behind it). Without spinning each engine gets the machine to itself while it runs.
      const options = {
        executionProviders: ['cpu'],
        intraOpNumThreads: context.threads,
        interOpNumThreads: 1,
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      };
      return ortSession(ort, model, options, context.threads);
    },
  };
}

const onnxruntimeWeb = onnxruntimeWebEngine('ort-web', 'float32');
const onnxruntimeNode = onnxruntimeNodeEngine('ort-node', 'float32');
const onnxruntimeWebInt8 = onnxruntimeWebEngine('ort-web-int8', 'int8');
const onnxruntimeNodeInt8 = onnxruntimeNodeEngine('ort-node-int8', 'int8');

const tfjsWasm: Engine = {
  name: 'tfjs-wasm',
  kind: 'peer',
  description: 'TF.js WASM backend (SIMD), our graph in TF.js ops, groups by split + concat',
  async prepare(context) {
    if (context.threads !== 1) return { skipped: 'TF.js WASM has no multithreading in Node (1 thread only)' };
    const unsupported = tfjsUnsupported(context.graph);
    if (unsupported) return { skipped: unsupported };
    const tf = await importPeer('@tensorflow/tfjs-core', () => import('@tensorflow/tfjs-core'));
    if ('skipped' in tf) return tf;
    const backend = await importPeer('@tensorflow/tfjs-backend-wasm', () => import('@tensorflow/tfjs-backend-wasm'));
    if ('skipped' in backend) return backend;
    if (tf.getBackend() !== 'wasm' && !(await tf.setBackend('wasm'))) {
      return { skipped: 'TF.js could not initialise its WASM backend' };
    }
    const program = tfjsProgram(tf, context.graph);
    return { threadsUsed: 1, run: (input) => program.run(input), dispose: () => program.dispose() };
  },
};

/**
 * Our engine with threads splitting the batch rather than the layers (`parallelism: 'batch'`: each
 * worker compiles its own plan and runs a contiguous slice of the batch). Throughput mode
 * (`bench --batch N`) times it beside `shufflenet` (layers split) and reports whichever wins.
 */
export const ourBatchEngine: Engine = {
  name: 'shufflenet-batch',
  kind: 'ours',
  description: "our fused inference plan, threads splitting the batch (createNodeSession, parallelism: 'batch')",
  async prepare({ graph, threads }) {
    const batch = graph.input.shape[0]!;
    if (threads === 1) return { skipped: 'at 1 thread there is no batch to split (the same as shufflenet)' };
    if (batch < threads) return { skipped: `batch ${batch} is smaller than ${threads} threads: nothing to split` };
    const session = await createNodeSession(graph, { threads, parallelism: 'batch' });
    return {
      threadsUsed: session.threads,
      variant: session.variant,
      run: async (input) => (await session.run(input)).data,
      dispose: () => session.dispose(),
    };
  },
};

/**
 * Our engine with `threads: 'auto'`: one plan for the case's thread count, calibrated when it is
 * prepared; each sample then runs on all threads or on one, whichever it measures faster
 * (src/runtime/threads/auto.ts). The plan is run directly, as `shufflenet`'s is, so the two
 * differ only by the choice.
 */
export const ourAutoEngine: Engine = {
  name: 'shufflenet-auto',
  kind: 'ours',
  description:
    "our fused inference plan with threads: 'auto' (each sample on all the case's threads or on one, whichever its calibration and later runs measure faster)",
  async prepare({ graph, threads }) {
    if (threads === 1) return { skipped: "at 1 thread 'auto' has nothing to choose (the same as shufflenet)" };
    const plan = await compilePlan(graph, { threads });
    const stop = await startHelpers(plan, spawnNodeWorker);
    const auto = plan.useAuto();
    plan.calibrate();
    return {
      threadsUsed: threads,
      variant: plan.summary.variant,
      run: (input) => plan.run(input).data,
      choice: () => auto.describe(),
      dispose: stop,
    };
  },
};

/**
 * Our float32 plan on the plain SIMD128 build in a process that could run the relaxed one (Node
 * with --experimental-wasm-relaxed-simd), so that one interleaved run times the float plan with
 * and without relaxed SIMD beside the int8 plan. At 2+ threads the plan runs the 'simd-shared'
 * build, which has no relaxed form, so there it is `shufflenet` itself.
 */
export const ourSimd128Engine: Engine = {
  name: 'shufflenet-simd128',
  kind: 'ours',
  description: 'our fused inference plan on the plain WASM SIMD128 build (relaxed SIMD off), 1 thread',
  async prepare({ graph, threads }) {
    if (threads !== 1) {
      return { skipped: 'at 2+ threads our plan runs the simd-shared build (no relaxed form): the same as shufflenet' };
    }
    if (kernelVariant() !== 'relaxed-simd') {
      return {
        skipped:
          'this process has no relaxed SIMD, so shufflenet runs SIMD128 already (add --experimental-wasm-relaxed-simd)',
      };
    }
    const plan = await compilePlan(graph, { kernels: await WasmKernels.create({ relaxedSimd: false }) });
    return { threadsUsed: 1, variant: plan.summary.variant, run: (input) => plan.run(input).data };
  },
};

/** The note's prefix where the int8 plan runs SIMD128 although the process has relaxed SIMD. */
export const relaxedRefusedNote = 'relaxed SIMD refused: ';

/**
 * Our int8 plan (src/runtime/quant/plan.ts) on the case's quantized network, on the build of the
 * int8 kernels the engine runs right: relaxed SIMD where its 8-bit dot product passes the load-time
 * probe (its qgemm7 serves 7-bit weights: `--weight-bits 7`), SIMD128 otherwise, and the reason
 * when relaxed SIMD was refused. At 2+ threads it runs the int8 kernels' shared build (SIMD128, no
 * relaxed form) with helper workers, as the float plan does.
 */
export const ourInt8Engine: Engine = {
  name: 'shufflenet-int8',
  kind: 'ours',
  precision: 'int8',
  description:
    'our int8 plan on the WASM int8 kernels (src/runtime/quant/plan.ts; intra-op threads on their shared build)',
  async prepare({ graph, int8, threads }) {
    if (int8 === undefined) return { skipped: 'runs the int8 network: needs bench --int8' };
    const plan = await QuantizedPlan.create(int8.network, { threads });
    const stop = threads > 1 ? await startHelpers(plan, spawnNodeWorker) : undefined;
    const { build, relaxedRefused } = plan.variant;
    // A step's time is filed under its main node, as for the float plan (the int8 steps are its steps).
    const nodeIndex = new Map(graph.nodes.map((n, i) => [n.output, i]));
    const steps = int8.network.steps;
    const profile = (input: Tensor): NodeTiming[] =>
      plan.profile(input, 1).flatMap(({ ms }, i) => {
        const main = nodeIndex.get(steps[i]!.nodes[0]!.output);
        return main === undefined ? [] : [{ node: main, ms }];
      });
    return {
      threadsUsed: threads,
      variant: `int8 ${build}`,
      ...(relaxedRefused !== null ? { note: `${relaxedRefusedNote}${relaxedRefused}` } : {}),
      run: (input) => plan.run(input).data,
      ...(threads === 1 ? { profile } : {}),
      ...(stop ? { dispose: stop } : {}),
    };
  },
};

/** Every engine of a latency run, ours first. `--engines a,b` selects by name. */
export const engines: readonly Engine[] = [ours(ourEngine), ourAutoEngine, onnxruntimeWeb, onnxruntimeNode, tfjsWasm];

/** The engines of throughput mode (`--batch N`): ours both ways against onnxruntime-node. */
export const throughputEngines: readonly Engine[] = [ours(ourEngine), ourBatchEngine, onnxruntimeNode];

/**
 * The engines of `--int8`: our float32 plan (and its SIMD128 build when relaxed SIMD is on), our
 * int8 plan, and onnxruntime-web and -node on the same QDQ file. Their float32 runs (ort-web,
 * ort-node) join by `--engines`.
 */
export const int8Engines: readonly Engine[] = [
  ours(ourEngine),
  ourSimd128Engine,
  ourInt8Engine,
  onnxruntimeWebInt8,
  onnxruntimeNodeInt8,
];

/** The int8/fp32 ratios of `--int8`: an int8 engine over its float32 counterpart, where both ran. */
export const int8Comparisons: readonly (readonly [int8: string, float32: string])[] = [
  [ourInt8Engine.name, ourEngine.name],
  [ourInt8Engine.name, ourSimd128Engine.name],
  [onnxruntimeWebInt8.name, onnxruntimeWeb.name],
  [onnxruntimeNodeInt8.name, onnxruntimeNode.name],
];

/** Every engine by name, for `--engines` in any mode (the int8 ones need `--int8`). */
export const allEngines: readonly Engine[] = [
  ...engines,
  ourBatchEngine,
  ourSimd128Engine,
  ourInt8Engine,
  onnxruntimeWebInt8,
  onnxruntimeNodeInt8,
];

/** The reference executor as a benchmark engine: slow, but it can time every node. */
export const referenceBenchEngine: Engine = ours(referenceEngine);
