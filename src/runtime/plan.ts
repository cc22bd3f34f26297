/**
 * An inference plan: a traced Graph compiled once into a list of fused steps on the WASM SIMD
 * kernels, over NCHW activations in one arena.
 *
 * - Batch norm is folded into the preceding convolution's weights and bias; ReLU, a residual add
 *   and a following channel shuffle are fused into the convolution's epilogue (the shuffle is an
 *   output-channel remap, so it costs nothing).
 * - A concat whose parts are produced by fusable steps is written in place: each part writes at
 *   its channel offset of the concat's buffer, and a ReLU after the concat moves into the parts.
 * - Weights are packed once; activations live in one arena, where buffers whose lifetimes do not
 *   overlap share memory (greedy by size, as TFLite's arena planner does).
 * - Any node without a fast kernel runs on its reference op (correct, slow), so every graph runs.
 *
 * Example:
 *   const plan = await compilePlan(createModel('shufflenet_v1_g3_1.0x').trace([1, 3, 224, 224]));
 *   const logits = plan.run(input); // [N, 1000] for an input [N, 3, 224, 224]
 */
import { ShapeError, ShuffleNetError } from '../errors.js';
import type { Graph, GraphNode } from '../graph/graph.js';
import { withInputShape } from '../graph/reshape.js';
import { WasmKernels, type KernelVariant } from '../kernels/wasm/module.js';
import { packDenseWeights, packGemmWeights, padBias } from '../kernels/wasm/pack.js';
import type { Conv2dAttrs } from '../ops/conv2d.js';
import { getOp } from '../ops/index.js';
import type { BatchNormAttrs } from '../ops/normalization.js';
import type { AvgPool2dAttrs, Pool2dAttrs } from '../ops/pool2d.js';
import { formatShape, shapeSize, Tensor, type Shape } from '../tensor/tensor.js';
import {
  bindCalls,
  call,
  CONTROL_BYTES,
  encodeProgram,
  Team,
  type HelperSetup,
  type KernelCall,
} from './threads/team.js';

type StepKind =
  'pointwise' | 'conv3x3s2' | 'convgemm' | 'dwconv' | 'maxpool' | 'avgpool' | 'gap' | 'fc' | 'concat' | 'reference';

/** A fused step, before memory addresses are known. */
interface Step {
  kind: StepKind;
  /** The graph nodes it covers, main op first. */
  nodes: GraphNode[];
  /** Activation values it reads (parameters excluded). */
  inputs: string[];
  output: string;
  relu: boolean;
  residual: string | null;
  /** Groups of a channel shuffle folded into the output layout, or 0. */
  shuffleGroups: number;
}

/** Where a value lives: `offset` floats into the buffer of value `root`. */
interface Placement {
  root: string;
  offset: number;
}

export interface PlanSummary {
  /** Which build of the kernels runs: plain WASM SIMD128, or relaxed SIMD (fused multiply-add). */
  variant: KernelVariant;
  /** One line per step: kind, module path and what was fused. */
  steps: string[];
  /** The graph nodes (by output value) each step covers, main node first. */
  stepNodes: string[][];
  /** Bytes of the activation arena (after buffer sharing) and of packed weights. */
  arenaBytes: number;
  weightBytes: number;
}

export interface PlanOptions {
  /** The kernels instance to allocate in (default: a new one; a shared one when threads > 1). */
  kernels?: WasmKernels;
  /**
   * Threads each step is split over (default 1). With threads > 1 the plan lives in a shared
   * memory and `helpers` holds what threads − 1 helper threads need (see src/runtime/team.ts):
   * each must run `prepareHelper(setup)`'s loop before the first `run`.
   */
  threads?: number;
}

export class InferencePlan {
  private disposed = false;

  private constructor(
    private readonly kernels: WasmKernels,
    private readonly inputShape: Shape, // batch 1
    private readonly outputShape: Shape, // batch 1
    private readonly inputAddress: number,
    private readonly outputAddress: number,
    private readonly executors: readonly (() => void)[],
    private readonly team: Team | null,
    /** What each helper thread runs (empty for a single-threaded plan). */
    readonly helpers: readonly HelperSetup[],
    readonly summary: PlanSummary,
  ) {}

  /** Compiles `graph` (traced for any batch size; the plan runs one sample at a time). */
  static async compile(graph: Graph, options: PlanOptions | WasmKernels = {}): Promise<InferencePlan> {
    const { kernels, threads = 1 } = options instanceof WasmKernels ? { kernels: options } : options;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new ShuffleNetError(`compilePlan: threads must be a positive integer, got ${threads}`);
    }
    const wasm = kernels ?? (await WasmKernels.create({ shared: threads > 1 }));
    if (threads > 1 && !wasm.shared) {
      throw new ShuffleNetError('compilePlan: a plan for several threads needs kernels over a shared memory');
    }
    const single = graph.input.shape[0] === 1 ? graph : withInputShape(graph, [1, ...graph.input.shape.slice(1)]);
    return build(single, wasm, threads, (...args) => new InferencePlan(...args));
  }

  /** Threads each step is split over. */
  get threads(): number {
    return this.helpers.length + 1;
  }

  /** Bytes of WASM memory the plan holds (weights, arena, scratch); runs never grow it. */
  get memoryBytes(): number {
    return this.kernels.memory.buffer.byteLength;
  }

  /** Runs a batch [N, ...] through the plan; returns a new tensor [N, ...output]. */
  run(input: Tensor): Tensor {
    if (this.disposed) throw new ShuffleNetError('plan.run: the plan was disposed');
    const sample = shapeSize(this.inputShape);
    const fits =
      input.shape.length === this.inputShape.length && input.shape.every((d, i) => i === 0 || d === this.inputShape[i]);
    if (!fits) {
      throw new ShapeError(
        `plan: input has shape ${formatShape(input.shape)} but the plan takes [N, ${this.inputShape.slice(1).join(', ')}]`,
      );
    }
    const batch = input.shape[0]!;
    const outSize = shapeSize(this.outputShape);
    const output = new Tensor([batch, ...this.outputShape.slice(1)]);
    for (let n = 0; n < batch; n++) {
      this.kernels.f32(this.inputAddress, sample).set(input.data.subarray(n * sample, (n + 1) * sample));
      this.team?.start();
      for (const execute of this.executors) execute();
      this.team?.check();
      output.data.set(this.kernels.f32(this.outputAddress, outSize), n * outSize);
    }
    return output;
  }

  /**
   * Median milliseconds of each step over `repeats` runs of one sample (after one warm-up run),
   * beside the step's description: where the time goes.
   */
  profile(input: Tensor, repeats = 30): { step: string; ms: number }[] {
    this.run(input);
    const times = this.executors.map(() => [] as number[]);
    for (let r = 0; r < repeats; r++) {
      this.team?.start();
      this.executors.forEach((execute, i) => {
        const start = performance.now();
        execute();
        times[i]!.push(performance.now() - start);
      });
    }
    return times.map((t, i) => ({ step: this.summary.steps[i]!, ms: t.sort((a, b) => a - b)[t.length >> 1]! }));
  }

  /** Stops the helper threads' loops (they return); later runs throw. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.team?.quit();
  }
}

/** Compiles a graph into an inference plan on the WASM SIMD kernels. */
export function compilePlan(graph: Graph, options?: PlanOptions | WasmKernels): Promise<InferencePlan> {
  return InferencePlan.compile(graph, options);
}

function build<P>(
  graph: Graph,
  wasm: WasmKernels,
  threads: number,
  make: (
    kernels: WasmKernels,
    inputShape: Shape,
    outputShape: Shape,
    inputAddress: number,
    outputAddress: number,
    executors: (() => void)[],
    team: Team | null,
    helpers: HelperSetup[],
    summary: PlanSummary,
  ) => P,
): P {
  const shapeOf = (value: string): Shape => graph.shapes.get(value)!;
  const steps = fuse(graph);
  const placements = placeConcats(graph, steps);
  const place = (value: string): Placement => placements.get(value) ?? { root: value, offset: 0 };

  // Weights first: they live as long as the plan.
  const weightStart = wasm.mark();
  const prepared = steps.map((step) => prepare(graph, step, wasm));
  const weightBytes = wasm.mark() - weightStart;

  // Scratch shared by every 3×3 step: a padded plane, and the stem's im2col matrix.
  let scratchFloats = 16;
  let colFloats = 4;
  for (const step of steps) {
    if (step.kind === 'dwconv' || step.kind === 'maxpool' || step.kind === 'avgpool' || step.kind === 'conv3x3s2') {
      const [, c, h, w] = shapeOf(step.inputs[0]!) as [number, number, number, number];
      const planes = step.kind === 'conv3x3s2' ? c : 1; // the stem pads all its input planes at once
      scratchFloats = Math.max(scratchFloats, planes * wasm.exports.paddedPlaneFloats(h, w));
      if (step.kind === 'conv3x3s2') {
        const ow = shapeOf(step.output)[3]!;
        colFloats = Math.max(colFloats, c * 9 * stemBandRows(c, ow) * ow + 4);
      }
    }
  }
  for (const step of steps) {
    if (step.kind === 'convgemm') {
      const { k, ow } = convGemmShape(graph, step);
      colFloats = Math.max(colFloats, k * convBandRows(k, ow) * ow + 4);
    }
  }
  // One scratch area and patch matrix per thread.
  const scratch = Array.from({ length: threads }, () => wasm.allocFloats(scratchFloats));
  const col = Array.from({ length: threads }, () => wasm.allocFloats(colFloats));

  // Arena: one buffer per root value, alive from its first write to its last read.
  const sizes = new Map<string, number>();
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const touch = (value: string, index: number, write: boolean): void => {
    const { root } = place(value);
    if (!sizes.has(root)) sizes.set(root, bufferFloats(graph, root, steps));
    if (write) first.set(root, Math.min(first.get(root) ?? index, index));
    last.set(root, Math.max(last.get(root) ?? index, index));
  };
  touch(graph.input.name, -1, true);
  steps.forEach((step, i) => {
    for (const value of step.inputs) touch(value, i, false);
    if (step.residual !== null) touch(step.residual, i, false);
    touch(step.output, i, true);
  });
  touch(graph.output, steps.length, false);
  const { offsets, total } = planArena(sizes, first, last);
  const arena = wasm.allocBytes(total);
  const address = (value: string): number => {
    const { root, offset } = place(value);
    return arena + offsets.get(root)! + offset * 4;
  };

  const phases = steps.map((step, i) => phasesOf(graph, step, prepared[i]!, wasm, address, scratch, col));
  const control = threads > 1 ? wasm.allocBytes(CONTROL_BYTES) : 0;
  const team = threads > 1 ? new Team(wasm.memory, control, threads) : null;
  // The leader (thread 0) runs its share of each phase, then meets the others at the barrier.
  const executors = phases.map((stepPhases) => {
    const parts = stepPhases.map((phase) => ('main' in phase ? phase.main : bindCalls(wasm.exports, phase.calls[0]!)));
    if (team !== null) {
      return () => {
        for (const part of parts) {
          part();
          team.barrier();
        }
      };
    }
    return parts.length === 1 ? parts[0]! : () => parts.forEach((part) => part());
  });
  const helpers = Array.from({ length: threads - 1 }, (_, i) => ({
    memory: wasm.memory,
    controlAddress: control,
    threads,
    program: encodeProgram(phases.flat().map((phase) => ('main' in phase ? [] : phase.calls[i + 1]!))),
  }));
  const summary: PlanSummary = {
    variant: wasm.variant,
    steps: steps.map(describe),
    stepNodes: steps.map((step) => step.nodes.map((n) => n.output)),
    arenaBytes: total,
    weightBytes,
  };
  return make(
    wasm,
    graph.input.shape,
    shapeOf(graph.output),
    address(graph.input.name),
    address(graph.output),
    executors,
    team,
    helpers,
    summary,
  );
}

// ---------------------------------------------------------------------------------------------
// Fusion

function fuse(graph: Graph): Step[] {
  const uses = new Map<string, GraphNode[]>();
  for (const node of graph.nodes) {
    for (const value of node.inputs) uses.set(value, [...(uses.get(value) ?? []), node]);
  }
  const index = new Map(graph.nodes.map((node, i) => [node.output, i]));
  /** The only consumer of `value`, if it has exactly one and is not the graph's output. */
  const sole = (value: string): GraphNode | null => {
    const consumers = uses.get(value) ?? [];
    return value !== graph.output && consumers.length === 1 ? consumers[0]! : null;
  };
  const isActivation = (value: string): boolean => !graph.params.has(value);
  const absorbed = new Set<GraphNode>();
  const steps: Step[] = [];

  graph.nodes.forEach((node, i) => {
    if (absorbed.has(node)) return;
    const kind = fastKind(graph, node);
    const step: Step = {
      kind,
      nodes: [node],
      inputs: node.inputs.filter(isActivation),
      output: node.output,
      relu: false,
      residual: null,
      shuffleGroups: 0,
    };
    const absorb = (next: GraphNode): void => {
      step.nodes.push(next);
      absorbed.add(next);
      step.output = next.output;
    };
    const conv = kind === 'pointwise' || kind === 'conv3x3s2' || kind === 'convgemm' || kind === 'dwconv';
    let next = sole(step.output);
    if (conv && next?.op === 'batchNorm' && next.inputs[0] === step.output) {
      absorb(next);
      next = sole(step.output);
    }
    if ((kind === 'pointwise' || kind === 'convgemm') && next?.op === 'add' && next.inputs.length === 2) {
      const other = next.inputs[0] === step.output ? next.inputs[1]! : next.inputs[0]!;
      // The residual must already exist when this step runs.
      const producedBefore = other === graph.input.name || (index.get(other) ?? Infinity) < i;
      if (isActivation(other) && producedBefore && other !== step.output) {
        absorb(next);
        step.residual = other;
        next = sole(step.output);
      }
    }
    if (
      (conv || kind === 'fc' || kind === 'maxpool' || kind === 'avgpool' || kind === 'concat') &&
      next?.op === 'relu'
    ) {
      absorb(next);
      step.relu = true;
      next = sole(step.output);
    }
    if (kind === 'pointwise' && next?.op === 'channelShuffle') {
      absorb(next);
      step.shuffleGroups = (next.attrs as { groups: number }).groups;
    }
    steps.push(step);
  });
  return steps;
}

/** Which fast step a node maps to, or 'reference'. */
function fastKind(graph: Graph, node: GraphNode): StepKind {
  const shape = (i: number): Shape => graph.shapes.get(node.inputs[i]!)!;
  switch (node.op) {
    case 'conv2d': {
      const a = node.attrs as unknown as Conv2dAttrs;
      const [, cIn] = shape(0);
      const [cOut, , kh, kw] = shape(1);
      const plain = a.dilation[0] === 1 && a.dilation[1] === 1;
      const pad = (p: number): boolean => a.padding.every((v) => v === p);
      const stride = (s: number): boolean => a.stride[0] === s && a.stride[1] === s;
      if (plain && kh === 1 && kw === 1 && stride(1) && pad(0)) return 'pointwise';
      if (plain && kh === 3 && kw === 3 && pad(1) && a.groups === cIn && cIn === cOut && (stride(1) || stride(2))) {
        return 'dwconv';
      }
      if (plain && kh === 3 && kw === 3 && pad(1) && a.groups === 1 && stride(2)) return 'conv3x3s2';
      return 'convgemm'; // any other conv: im2col by bands of rows, then the GEMM
    }
    case 'maxPool2d':
    case 'avgPool2d': {
      const a = node.attrs as unknown as Pool2dAttrs;
      const pad = a.padding[0];
      const fits =
        a.kernel[0] === 3 &&
        a.kernel[1] === 3 &&
        a.stride[0] === 2 &&
        a.stride[1] === 2 &&
        (pad === 0 || pad === 1) &&
        a.padding.every((p) => p === pad);
      if (!fits) return 'reference';
      if (node.op === 'maxPool2d') return 'maxpool';
      // Without padding, every window is whole, so both divisor conventions give 9.
      return (node.attrs as unknown as AvgPool2dAttrs).countIncludePad || pad === 0 ? 'avgpool' : 'reference';
    }
    case 'globalAvgPool':
      return 'gap';
    case 'linear':
      return shape(0).length === 2 ? 'fc' : 'reference';
    case 'concat':
      return shape(0).length === 4 ? 'concat' : 'reference';
    case 'flatten':
      return 'concat'; // a one-part "concat" of a [N, C, 1, 1] value: an alias, no copy
    default:
      return 'reference';
  }
}

/**
 * Decides which concats are written in place: each part's step writes straight into the concat's
 * buffer at its channel offset. Returns the placement of every aliased value; a concat that cannot
 * be written in place becomes a reference step (a copy).
 */
function placeConcats(graph: Graph, steps: Step[]): Map<string, Placement> {
  const producer = new Map(steps.map((step) => [step.output, step]));
  const uses = new Map<string, number>();
  for (const step of steps) {
    for (const value of [...step.inputs, ...(step.residual === null ? [] : [step.residual])]) {
      uses.set(value, (uses.get(value) ?? 0) + 1);
    }
  }
  const placements = new Map<string, Placement>();
  const resolve = (value: string): Placement => placements.get(value) ?? { root: value, offset: 0 };
  for (const step of steps) {
    if (step.kind !== 'concat') continue;
    const isFlatten = step.nodes[0]!.op === 'flatten';
    const parts = step.inputs;
    const inPlace = parts.every((part) => {
      const from = producer.get(part);
      // Steps that write whole planes at any address and can take the concat's ReLU.
      const fusable =
        from !== undefined &&
        ['pointwise', 'conv3x3s2', 'convgemm', 'dwconv', 'maxpool', 'avgpool'].includes(from.kind);
      return isFlatten || (fusable && uses.get(part) === 1 && part !== graph.output && !placements.has(part));
    });
    if (!inPlace || (isFlatten && step.relu)) {
      step.kind = 'reference';
      continue;
    }
    let offset = 0;
    for (const part of parts) {
      const [, c, h, w] = graph.shapes.get(part)!;
      const target = resolve(step.output);
      placements.set(part, { root: target.root, offset: target.offset + offset });
      if (step.relu) producer.get(part)!.relu = true;
      offset += c! * (h ?? 1) * (w ?? 1);
    }
    if (isFlatten) {
      // The flattened value is its input: every later reader resolves to the input's buffer.
      placements.delete(parts[0]!);
      placements.set(step.output, resolve(parts[0]!));
    }
  }
  // Later concats may have moved a root: resolve chains once more.
  for (const [value, p] of placements) {
    const outer = placements.get(p.root);
    if (outer !== undefined && outer.root !== p.root)
      placements.set(value, { root: outer.root, offset: outer.offset + p.offset });
  }
  return placements;
}

function bufferFloats(graph: Graph, root: string, steps: Step[]): number {
  const size = shapeSize(graph.shapes.get(root)!);
  const fc = steps.find((s) => s.kind === 'fc' && s.output === root);
  return fc === undefined ? size : Math.ceil(size / 8) * 8;
}

/** Greedy by size: each buffer goes at the lowest offset free during its whole lifetime. */
function planArena(
  sizes: Map<string, number>,
  first: Map<string, number>,
  last: Map<string, number>,
): { offsets: Map<string, number>; total: number } {
  const bytes = (root: string): number => Math.ceil((sizes.get(root)! * 4 + 64) / 16) * 16;
  const order = [...sizes.keys()].sort((a, b) => bytes(b) - bytes(a) || a.localeCompare(b));
  const placed: { root: string; start: number; end: number }[] = [];
  const offsets = new Map<string, number>();
  let total = 0;
  for (const root of order) {
    const lo = first.get(root) ?? -1;
    const hi = last.get(root) ?? lo;
    const clashes = placed
      .filter((p) => (first.get(p.root) ?? -1) <= hi && lo <= (last.get(p.root) ?? -1))
      .sort((a, b) => a.start - b.start);
    let offset = 0;
    for (const p of clashes) {
      if (offset + bytes(root) <= p.start) break;
      offset = Math.max(offset, p.end);
    }
    placed.push({ root, start: offset, end: offset + bytes(root) });
    offsets.set(root, offset);
    total = Math.max(total, offset + bytes(root));
  }
  return { offsets, total };
}

// ---------------------------------------------------------------------------------------------
// Weights

interface Prepared {
  /** Per group: packed weights and bias addresses. */
  groups: { weights: number; bias: number }[];
}

/** Folds batch norm into the convolution: w'[o] = w[o]·s[o], b'[o] = (b[o] − mean[o])·s[o] + beta[o]. */
function foldedConv(graph: Graph, step: Step): { weight: Float32Array; bias: Float32Array; cOut: number } {
  const conv = step.nodes[0]!;
  const param = (name: string): Float32Array => graph.params.get(name)!.tensor.data;
  const weight = param(conv.inputs[1]!).slice();
  const cOut = graph.shapes.get(conv.inputs[1]!)![0]!;
  const bias = conv.inputs[2] !== undefined ? param(conv.inputs[2]).slice() : new Float32Array(cOut);
  const bn = step.nodes.find((n) => n.op === 'batchNorm');
  if (bn !== undefined) {
    const [gamma, beta, mean, variance] = bn.inputs.slice(1).map(param) as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    const eps = (bn.attrs as unknown as BatchNormAttrs).eps;
    const perOut = weight.length / cOut;
    for (let o = 0; o < cOut; o++) {
      const s = gamma[o]! / Math.sqrt(variance[o]! + eps);
      for (let i = 0; i < perOut; i++) weight[o * perOut + i]! *= s;
      bias[o] = (bias[o]! - mean[o]!) * s + beta[o]!;
    }
  }
  return { weight, bias, cOut };
}

function prepare(graph: Graph, step: Step, wasm: WasmKernels): Prepared {
  switch (step.kind) {
    case 'pointwise':
    case 'convgemm':
    case 'conv3x3s2': {
      const { weight, bias, cOut } = foldedConv(graph, step);
      const groups = step.kind === 'conv3x3s2' ? 1 : (step.nodes[0]!.attrs as unknown as Conv2dAttrs).groups;
      const m = cOut / groups;
      const k = weight.length / cOut;
      return {
        groups: Array.from({ length: groups }, (_, g) => ({
          weights: wasm.upload(packGemmWeights(weight.subarray(g * m * k, (g + 1) * m * k), m, k)),
          bias: wasm.upload(padBias(bias.subarray(g * m, (g + 1) * m), m, 4)),
        })),
      };
    }
    case 'dwconv': {
      const { weight, bias } = foldedConv(graph, step);
      return { groups: [{ weights: wasm.upload(weight), bias: wasm.upload(bias) }] };
    }
    case 'fc': {
      const node = step.nodes[0]!;
      const [outF, inF] = graph.shapes.get(node.inputs[1]!)! as [number, number];
      const weight = graph.params.get(node.inputs[1]!)!.tensor.data;
      const bias = node.inputs[2] === undefined ? null : graph.params.get(node.inputs[2])!.tensor.data;
      return {
        groups: [
          { weights: wasm.upload(packDenseWeights(weight, outF, inF)), bias: wasm.upload(padBias(bias, outF, 8)) },
        ],
      };
    }
    default:
      return { groups: [] };
  }
}

// ---------------------------------------------------------------------------------------------
// Execution

/**
 * A step's work, in phases separated by barriers: each phase holds, per thread, the kernel calls
 * that thread makes (its share of output channels, planes or rows), or runs on the leader only
 * (reference steps).
 */
type Phase = { calls: KernelCall[][] } | { main: () => void };

/** The range [start, end) of `n` units that thread `t` of `threads` takes. */
function share(n: number, t: number, threads: number): [number, number] {
  return [Math.floor((n * t) / threads), Math.floor((n * (t + 1)) / threads)];
}

function perThread(threads: number, make: (t: number) => KernelCall[]): Phase {
  return { calls: Array.from({ length: threads }, (_, t) => make(t)) };
}

function phasesOf(
  graph: Graph,
  step: Step,
  prepared: Prepared,
  wasm: WasmKernels,
  address: (value: string) => number,
  scratch: readonly number[],
  col: readonly number[],
): Phase[] {
  const threads = scratch.length;
  const relu = step.relu ? 1 : 0;
  const [, c, h, w] = graph.shapes.get(step.inputs[0] ?? step.nodes[0]!.inputs[0]!)! as [
    number,
    number,
    number,
    number,
  ];
  const input = step.inputs.length > 0 ? address(step.inputs[0]!) : 0;
  const output = address(step.output);
  switch (step.kind) {
    case 'pointwise':
    case 'convgemm':
    case 'conv3x3s2': {
      const [, cOut, oh, ow] = graph.shapes.get(step.nodes[0]!.output)! as [number, number, number, number];
      const pixels = oh * ow;
      const groups = prepared.groups.length;
      const m = cOut / groups;
      const kPerGroup =
        step.kind === 'pointwise' ? c / groups : step.kind === 'conv3x3s2' ? c * 9 : convGemmShape(graph, step).k;
      const n = step.shuffleGroups > 0 ? cOut / step.shuffleGroups : 0;
      // Output channel o lands on plane o, or on its shuffled position: i·n + j → j·g + i.
      const plane = (o: number): number => (n > 0 ? (o % n) * step.shuffleGroups + Math.floor(o / n) : o);
      const residual = step.residual === null ? 0 : address(step.residual);
      const tables = prepared.groups.map((_, g) => ({
        out: wasm.upload(Uint32Array.from({ length: m }, (_, r) => output + plane(g * m + r) * pixels * 4)),
        res:
          residual === 0
            ? 0
            : wasm.upload(Uint32Array.from({ length: m }, (_, r) => residual + (g * m + r) * pixels * 4)),
      }));
      if (step.kind === 'conv3x3s2') {
        // Pad the input planes once (split by planes) into thread 0's scratch, then the bands of
        // output rows (split by bands), each thread with its own patch matrix.
        const only = prepared.groups[0]!;
        const table = tables[0]!;
        const band = stemBandRows(c, ow);
        const bands = Math.ceil(oh / band);
        const planeFloats = wasm.exports.paddedPlaneFloats(h, w);
        const pad = perThread(threads, (t) => {
          const [c0, c1] = share(c, t, threads);
          return c1 > c0
            ? [call('padPlanes', c1 - c0, h, w, input + c0 * h * w * 4, scratch[0]! + c0 * planeFloats * 4)]
            : [];
        });
        const gemm = perThread(threads, (t) => {
          const calls: KernelCall[] = [];
          const [b0, b1] = share(bands, t, threads);
          for (let b = b0; b < b1; b++) {
            const oy = b * band;
            const rows = Math.min(band, oh - oy);
            const bandPixels = rows * ow;
            calls.push(
              call('im2col3x3s2', c, h, w, scratch[0]!, oy, oy + rows, col[t]!),
              // prettier-ignore
              call('gemm4x8', kPerGroup, cOut, bandPixels, only.weights, only.bias, col[t]!, bandPixels * 4, table.out, 0, oy * ow * 4, relu),
            );
          }
          return calls;
        });
        return [pad, gemm];
      }
      if (step.kind === 'convgemm') {
        // Units of (band of output rows, group), split among threads; each has its own patch matrix.
        const a = step.nodes[0]!.attrs as unknown as Conv2dAttrs;
        const [, , kh, kw] = graph.shapes.get(step.nodes[0]!.inputs[1]!)! as [number, number, number, number];
        const cPerGroup = c / groups;
        const band = convBandRows(kPerGroup, ow);
        const bands = Math.ceil(oh / band);
        const [sh, sw] = a.stride;
        const [padTop, padLeft] = a.padding;
        const [dh, dw] = a.dilation;
        return [
          perThread(threads, (t) => {
            const calls: KernelCall[] = [];
            const [u0, u1] = share(bands * groups, t, threads);
            for (let u = u0; u < u1; u++) {
              const oy = Math.floor(u / groups) * band;
              const g = u % groups;
              const rows = Math.min(band, oh - oy);
              const bandPixels = rows * ow;
              const p = prepared.groups[g]!;
              const tb = tables[g]!;
              calls.push(
                // prettier-ignore
                call('im2col', cPerGroup, h, w, kh, kw, sh, sw, padTop, padLeft, dh, dw, ow, oy, oy + rows, input + g * cPerGroup * h * w * 4, col[t]!),
                // prettier-ignore
                call('gemm4x8', kPerGroup, m, bandPixels, p.weights, p.bias, col[t]!, bandPixels * 4, tb.out, tb.res, oy * ow * 4, relu),
              );
            }
            return calls;
          }),
        ];
      }
      // Pointwise: the blocks of 4 output channels of all groups, in order, split among threads;
      // a thread's run of blocks within one group is one GEMM call.
      const blocksPerGroup = Math.ceil(m / 4);
      return [
        perThread(threads, (t) => {
          const calls: KernelCall[] = [];
          const [u0, u1] = share(blocksPerGroup * groups, t, threads);
          for (let u = u0; u < u1;) {
            const g = Math.floor(u / blocksPerGroup);
            const b0 = u % blocksPerGroup;
            const b1 = Math.min(blocksPerGroup, b0 + (u1 - u));
            const r0 = b0 * 4;
            const rows = Math.min(m, b1 * 4) - r0;
            const p = prepared.groups[g]!;
            const tb = tables[g]!;
            calls.push(
              // prettier-ignore
              call('gemm4x8', kPerGroup, rows, pixels, p.weights + r0 * kPerGroup * 4, p.bias + r0 * 4, input + g * kPerGroup * pixels * 4, pixels * 4, tb.out + r0 * 4, tb.res === 0 ? 0 : tb.res + r0 * 4, 0, relu),
            );
            u += b1 - b0;
          }
          return calls;
        }),
      ];
    }
    case 'dwconv': {
      const stride = (step.nodes[0]!.attrs as unknown as Conv2dAttrs).stride[0];
      const [, , oh, ow] = graph.shapes.get(step.nodes[0]!.output)! as [number, number, number, number];
      const p = prepared.groups[0]!;
      return [
        perThread(threads, (t) => {
          const [c0, c1] = share(c, t, threads);
          if (c1 === c0) return [];
          // prettier-ignore
          return [call('dwconv3x3', c1 - c0, h, w, stride, input + c0 * h * w * 4, p.weights + c0 * 36, p.bias + c0 * 4, output + c0 * oh * ow * 4, relu, scratch[t]!)];
        }),
      ];
    }
    case 'maxpool':
    case 'avgpool': {
      const average = step.kind === 'avgpool' ? 1 : 0;
      const pad = (step.nodes[0]!.attrs as unknown as Pool2dAttrs).padding[0];
      const [, , oh, ow] = graph.shapes.get(step.nodes[0]!.output)! as [number, number, number, number];
      return [
        perThread(threads, (t) => {
          const [c0, c1] = share(c, t, threads);
          if (c1 === c0) return [];
          // prettier-ignore
          return [call('pool3x3s2', c1 - c0, h, w, pad, average, input + c0 * h * w * 4, output + c0 * oh * ow * 4, relu, scratch[t]!)];
        }),
      ];
    }
    case 'gap':
      return [
        perThread(threads, (t) => {
          const [c0, c1] = share(c, t, threads);
          return c1 > c0 ? [call('globalAvgPool', c1 - c0, h * w, input + c0 * h * w * 4, output + c0 * 4)] : [];
        }),
      ];
    case 'fc': {
      // Blocks of 8 outputs (dense8 writes whole blocks; the buffer is padded to a multiple of 8).
      const [outF, inF] = graph.shapes.get(step.nodes[0]!.inputs[1]!)! as [number, number];
      const p = prepared.groups[0]!;
      return [
        perThread(threads, (t) => {
          const [b0, b1] = share(Math.ceil(outF / 8), t, threads);
          if (b1 === b0) return [];
          const o0 = b0 * 8;
          const count = Math.min(outF, b1 * 8) - o0;
          return [call('dense8', inF, count, input, p.weights + o0 * inF * 4, p.bias + o0 * 4, output + o0 * 4, relu)];
        }),
      ];
    }
    case 'concat':
      return []; // written in place by the parts
    case 'reference':
      return [{ main: referenceExecutor(graph, step, wasm, address) }];
  }
}

/** The GEMM shape of a general convolution: K = C_in/groups · kH · kW, and the output width. */
function convGemmShape(graph: Graph, step: Step): { k: number; ow: number } {
  const [, cPerGroup, kh, kw] = graph.shapes.get(step.nodes[0]!.inputs[1]!)!;
  return { k: cPerGroup! * kh! * kw!, ow: graph.shapes.get(step.nodes[0]!.output)![3]! };
}

/** Output rows per im2col band of a general convolution: a patch matrix of at most ~256 KB. */
function convBandRows(k: number, outWidth: number): number {
  return Math.max(1, Math.floor(65536 / (k * outWidth)));
}

/**
 * Output rows per im2col band of the stem: the band's patch matrix (C·9 rows of band·OW floats)
 * stays within ~48 KB, so the GEMM's passes over it hit the cache.
 */
function stemBandRows(channels: number, outWidth: number): number {
  return Math.max(1, Math.floor(12288 / (channels * 9 * outWidth)));
}

/** Runs the step's nodes on the reference ops, reading and writing the arena. */
function referenceExecutor(
  graph: Graph,
  step: Step,
  wasm: WasmKernels,
  address: (value: string) => number,
): () => void {
  const external = step.inputs.map((value) => ({ value, at: address(value), shape: graph.shapes.get(value)! }));
  const output = address(step.output);
  return () => {
    const values = new Map<string, Tensor>();
    for (const { value, at, shape } of external)
      values.set(value, new Tensor(shape, wasm.f32(at, shapeSize(shape)).slice()));
    for (const node of step.nodes) {
      const out = new Tensor(graph.shapes.get(node.output)!);
      const inputs = node.inputs.map((name) => values.get(name) ?? graph.params.get(name)!.tensor);
      getOp(node.op).forward(inputs, node.attrs, out);
      values.set(node.output, out);
    }
    const result = values.get(step.output)!;
    wasm.f32(output, result.size).set(result.data);
  };
}

function describe(step: Step): string {
  const fused = [
    step.nodes.some((n) => n.op === 'batchNorm') ? 'bn' : '',
    step.residual !== null ? 'add' : '',
    step.relu ? 'relu' : '',
    step.shuffleGroups > 0 ? `shuffle(${step.shuffleGroups})` : '',
  ].filter((s) => s !== '');
  const main = step.nodes[0]!;
  return `${step.kind} ${main.name || main.op}${fused.length > 0 ? ` +${fused.join('+')}` : ''}`;
}
