/**
 * A training plan: a graph traced in training mode, compiled once into a forward and a backward
 * list of steps over the WASM SIMD kernels, with every activation, gradient and packed weight at a
 * fixed address of one WASM memory. It computes exactly what the reference tape
 * (src/autograd/tape.ts) computes, which stays its oracle, only faster:
 *
 *   model tensors ─upload─► params ─┐
 *   images ─► x ─► [forward steps: conv/BN/ReLU/shuffle/add/concat/pools/linear] ─► logits ─► loss
 *                                                                                              │
 *   gradients (views) ◄── [backward steps in reverse, each writing or adding into its inputs' ◄─┘
 *                          gradient buffers]
 *
 * - The model's own tensors stay the source of truth: parameters are uploaded at every step (they
 *   are small next to the activations), the optimiser updates the model, and batch norm's running
 *   statistics are updated in the model's buffers, as the tape does.
 * - Where several consumers send a gradient to one value, the first (in backward order) writes its
 *   buffer and the others add into it; this is decided at compile time, so nothing is zeroed.
 * - A node without a fast kernel runs its reference op and gradient rule on views of the same
 *   memory, so every graph trains; the fast ones cover the whole ShuffleNet / MobileNet family.
 *
 * @example
 * const plan = await TrainingPlan.compile(model.trace([64, 1, 28, 28], { training: true }));
 * const { loss, logits, gradients } = plan.forwardBackward(images, labels, { labelSmoothing: 0.1 });
 * sgd.step(gradients, lr);
 */
import { crossEntropy } from '../autograd/loss.js';
import { gradientRuleOf } from '../autograd/rules.js';
import { ShapeError, ShuffleNetError } from '../errors.js';
import type { Graph, GraphNode } from '../graph/graph.js';
import { updateRunningStatisticsReference } from '../kernels/reference/normalization.js';
import { channelShuffleSource } from '../kernels/reference/channels.js';
import { channelSumReference } from '../kernels/reference/conv2d-backward.js';
import { transposeReference } from '../kernels/reference/layout.js';
import { WasmKernels } from '../kernels/wasm/module.js';
import { packGemmWeightsInto } from '../kernels/wasm/pack.js';
import { getOp, type BatchNormTrainingAttrs } from '../ops/index.js';
import { im2colRows, lowerNode, type ConvGeometry } from '../runtime/lower.js';
import { formatShape, sameShape, shapeSize, Tensor, type Shape } from '../tensor/tensor.js';

/**
 * How plans that each train on a part of one batch (one per thread) combine batch norm's
 * per-channel figures, so that together they compute exactly the whole batch's step.
 */
export interface BatchNormExchange {
  /** Samples in the whole batch. */
  readonly totalBatch: number;
  /** Replaces this part's batch mean and biased variance of BN layer `layer` by the whole batch's. */
  statistics(layer: number, mean: Float32Array, variance: Float32Array): void;
  /** Replaces this part's backward sums Σ∂y and Σ∂y·x̂ of BN layer `layer` by the whole batch's. */
  sums(layer: number, sumDy: Float32Array, sumDyXhat: Float32Array): void;
}

export interface TrainingPlanOptions {
  kernels?: WasmKernels;
  /** Set when this plan is one of several training on parts of a batch (src/node/parallel-train.ts). */
  exchange?: BatchNormExchange;
}

/** How training-mode batch norm folds each batch into its running statistics (as the tape's option). */
export type RunningStatistics = 'momentum' | 'frozen' | number;

export interface ForwardBackwardOptions {
  /** ε of the cross-entropy's label smoothing; default 0. */
  labelSmoothing?: number;
  /** Called with the loss before the backward pass; may throw to stop (e.g. on NaN). */
  guard?: (loss: number) => void;
  /**
   * Weight of this batch's mean loss in the loss being minimised, default 1: a thread training on
   * part of a batch passes its share of the samples, so the parts' gradients add up to the whole's.
   */
  lossScale?: number;
}

export interface ForwardBackwardResult {
  loss: number;
  /** The batch's logits (a copy). */
  logits: Tensor;
  /** ∂loss/∂p by parameter name: views of the plan's memory, overwritten by the next step. */
  gradients: ReadonlyMap<string, Tensor>;
}

type Executor = () => void;

/** The plan's view of WASM memory, taken once every buffer is allocated (memory never grows after). */
interface Heap {
  f32: Float32Array;
  u32: Uint32Array;
}

/** Where a gradient goes: a buffer, and whether this contribution overwrites it or adds to it. */
interface GradientTarget {
  address: number;
  accumulate: boolean;
}

/** What trains a batch: a TrainingPlan on one thread, or a ParallelTrainingEngine over several. */
export interface TrainingEngine {
  /** The whole batch's shape. */
  readonly inputShape: Shape;
  /** The training-mode forward; updates batch norm's running statistics as told. */
  forward(images: Tensor, runningStatistics?: RunningStatistics): Tensor;
  /** Forward, cross-entropy and backward of one mini-batch (the caller updates the weights). */
  forwardBackward(images: Tensor, labels: ArrayLike<number>, options?: ForwardBackwardOptions): ForwardBackwardResult;
  /** Frees threads and memory. */
  dispose?(): Promise<void>;
}

/** What compilation produces; the plan only runs it. */
interface PlanParts {
  kernels: WasmKernels;
  graph: Graph;
  heap: Heap;
  inputAddress: number;
  outputAddress: number;
  outputGradAddress: number;
  /** Parameter and buffer tensors of the model, copied in before every forward. */
  uploads: readonly { address: number; tensor: Tensor }[];
  forwardSteps: readonly Executor[];
  backwardSteps: readonly Executor[];
  /** The kernel kind of each forward and backward step, for `profile`. */
  forwardKinds: readonly string[];
  backwardKinds: readonly string[];
  statistics: RunningStatisticsState;
  gradients: ReadonlyMap<string, Tensor>;
  steps: readonly string[];
}

export class TrainingPlan implements TrainingEngine {
  /** ∂loss/∂p by parameter name after `forwardBackward`: views of the plan's memory. */
  readonly gradients: ReadonlyMap<string, Tensor>;
  /** One line per node: which kernel runs it. */
  readonly steps: readonly string[];

  private constructor(private readonly parts: PlanParts) {
    this.gradients = parts.gradients;
    this.steps = parts.steps;
  }

  /** Compiles a graph traced with `{ training: true }` for a fixed batch size. */
  static async compile(graph: Graph, options: TrainingPlanOptions = {}): Promise<TrainingPlan> {
    const kernels = options.kernels ?? (await WasmKernels.create());
    return compileTrainingPlan(graph, kernels, options, (parts) => new TrainingPlan(parts));
  }

  /** The input shape the plan was compiled for, batch included. */
  get inputShape(): Shape {
    return this.parts.graph.input.shape;
  }

  /** Nothing to free: the plan's memory goes with it (here for the TrainingEngine interface). */
  async dispose(): Promise<void> {}

  /** Bytes of WASM memory the plan holds. */
  get memoryBytes(): number {
    return this.parts.kernels.memory.buffer.byteLength;
  }

  /**
   * The training-mode forward pass: batch statistics in every batch norm, whose running
   * statistics are updated as `runningStatistics` says. Returns a copy of the logits.
   */
  forward(images: Tensor, runningStatistics: RunningStatistics = 'momentum'): Tensor {
    const { graph, heap, uploads, inputAddress, outputAddress } = this.parts;
    if (!sameShape(images.shape, graph.input.shape)) {
      throw new ShapeError(
        `training plan: input has shape ${formatShape(images.shape)} but the plan was compiled for ${formatShape(graph.input.shape)}`,
      );
    }
    const { f32 } = heap;
    for (const { address, tensor } of uploads) f32.set(tensor.data, address >> 2);
    f32.set(images.data, inputAddress >> 2);
    this.parts.statistics.mode = runningStatistics;
    for (const step of this.parts.forwardSteps) step();
    const shape = graph.shapes.get(graph.output)!;
    return new Tensor(shape, f32.slice(outputAddress >> 2, (outputAddress >> 2) + shapeSize(shape)));
  }

  /** Forward, cross-entropy and backward for one mini-batch; the caller updates the weights. */
  forwardBackward(
    images: Tensor,
    labels: ArrayLike<number>,
    options: ForwardBackwardOptions = {},
  ): ForwardBackwardResult {
    const logits = this.forward(images);
    const { loss, gradient } = crossEntropy(logits, labels, { labelSmoothing: options.labelSmoothing ?? 0 });
    options.guard?.(loss);
    const scale = options.lossScale ?? 1;
    if (scale !== 1) for (let i = 0; i < gradient.size; i++) gradient.data[i] *= scale;
    this.parts.heap.f32.set(gradient.data, this.parts.outputGradAddress >> 2);
    for (const step of this.parts.backwardSteps) step();
    return { loss, logits, gradients: this.gradients };
  }

  /**
   * Where a step's time goes: milliseconds per op and kernel kind, forward and backward, summed
   * over the nodes of that kind (median of `repeats` steps on `images`, after one warm-up).
   */
  profile(
    images: Tensor,
    labels: ArrayLike<number>,
    repeats = 5,
  ): { kind: string; forwardMs: number; backwardMs: number }[] {
    const { forwardSteps, backwardSteps, forwardKinds, backwardKinds } = this.parts;
    this.forwardBackward(images, labels);
    const runs: Map<string, { f: number; b: number }>[] = [];
    for (let r = 0; r < repeats; r++) {
      const totals = new Map<string, { f: number; b: number }>();
      const time = (steps: readonly Executor[], kinds: readonly string[], field: 'f' | 'b'): void => {
        steps.forEach((step, i) => {
          const start = performance.now();
          step();
          const entry = totals.get(kinds[i]!) ?? { f: 0, b: 0 };
          entry[field] += performance.now() - start;
          totals.set(kinds[i]!, entry);
        });
      };
      this.forward(images, 'frozen'); // uploads and input
      time(forwardSteps, forwardKinds, 'f');
      time(backwardSteps, backwardKinds, 'b');
      runs.push(totals);
    }
    const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1]!;
    return [...runs[0]!.keys()].map((kind) => ({
      kind,
      forwardMs: median(runs.map((t) => t.get(kind)!.f)),
      backwardMs: median(runs.map((t) => t.get(kind)!.b)),
    }));
  }
}

interface RunningStatisticsState {
  mode: RunningStatistics;
}

/** Which values the loss can be differentiated with respect to (as the tape decides). */
function requiringGradient(graph: Graph): Set<string> {
  const requires = new Set<string>();
  for (const [name, p] of graph.params) if (p.trainable) requires.add(name);
  for (const node of graph.nodes) if (node.inputs.some((i) => requires.has(i))) requires.add(node.output);
  return requires;
}

function compileTrainingPlan(
  graph: Graph,
  kernels: WasmKernels,
  options: TrainingPlanOptions,
  create: (parts: PlanParts) => TrainingPlan,
): TrainingPlan {
  const heap: Heap = { f32: new Float32Array(0), u32: new Uint32Array(0) };
  const shapeOf = (name: string): Shape => graph.shapes.get(name)!;
  const requires = requiringGradient(graph);
  if (!requires.has(graph.output)) {
    throw new ShuffleNetError('training plan: the graph has no trainable parameter that its output depends on');
  }

  // Every value and parameter gets a buffer; every value or trainable parameter that needs a
  // gradient gets a gradient buffer.
  const address = new Map<string, number>();
  const gradAddress = new Map<string, number>();
  const allocValue = (name: string): void => {
    address.set(name, kernels.allocFloats(shapeSize(shapeOf(name))));
    if (requires.has(name)) gradAddress.set(name, kernels.allocFloats(shapeSize(shapeOf(name))));
  };
  allocValue(graph.input.name);
  const uploads: { address: number; tensor: Tensor }[] = [];
  for (const [name, p] of graph.params) {
    allocValue(name);
    uploads.push({ address: address.get(name)!, tensor: p.tensor });
  }
  for (const node of graph.nodes) allocValue(node.output);

  const statistics: RunningStatisticsState = { mode: 'momentum' };
  const context: CompileContext = {
    graph,
    kernels,
    heap,
    statistics,
    address: (name) => address.get(name)!,
    floats: (at, count) => heap.f32.subarray(at >> 2, (at >> 2) + count),
    view: (name) => new Tensor(shapeOf(name), context.floats(address.get(name)!, shapeSize(shapeOf(name)))),
    scratch: 0,
    scratchFloats: 0,
    batchNorms: 0,
    exchange: options.exchange ?? null,
  };

  // Gradient targets, in backward order: the first contribution to a buffer writes it.
  const written = new Set<string>();
  const target = (name: string): GradientTarget | null => {
    if (!requires.has(name)) return null;
    const accumulate = written.has(name);
    written.add(name);
    return { address: gradAddress.get(name)!, accumulate };
  };

  const compiled = graph.nodes.map((node) => compileNode(context, node));
  const forwardSteps = compiled.map((c) => c.forward);
  const forwardKinds = compiled.map((c, i) => `${graph.nodes[i]!.op} (${c.kind})`);
  const steps = compiled.map((c, i) => `${graph.nodes[i]!.name} ${graph.nodes[i]!.op}: ${c.kind}`);
  const backwardKinds: string[] = [];
  written.add(graph.output);
  const backwardSteps: Executor[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i]!;
    if (!requires.has(node.output) || !written.has(node.output)) continue; // no gradient reaches it
    const targets = node.inputs.map(target);
    backwardSteps.push(compiled[i]!.backward(gradAddress.get(node.output)!, targets));
    backwardKinds.push(forwardKinds[i]!);
  }

  // Scratch last (its size is the maximum any step asked for), then the views.
  context.scratch = kernels.allocFloats(context.scratchFloats + 16);
  heap.f32 = new Float32Array(kernels.memory.buffer);
  heap.u32 = new Uint32Array(kernels.memory.buffer);
  const gradients = new Map<string, Tensor>();
  for (const [name, p] of graph.params) {
    if (p.trainable && written.has(name)) {
      const at = gradAddress.get(name)! >> 2;
      gradients.set(name, new Tensor(p.tensor.shape, heap.f32.subarray(at, at + p.tensor.size)));
    }
  }
  for (const c of compiled) c.initialise?.();
  return create({
    kernels,
    graph,
    heap,
    inputAddress: address.get(graph.input.name)!,
    outputAddress: address.get(graph.output)!,
    outputGradAddress: gradAddress.get(graph.output)!,
    uploads,
    forwardSteps,
    backwardSteps,
    forwardKinds,
    backwardKinds,
    statistics,
    gradients,
    steps,
  });
}

interface CompileContext {
  graph: Graph;
  kernels: WasmKernels;
  heap: Heap;
  statistics: RunningStatisticsState;
  address(name: string): number;
  /** A tensor over a value's buffer (take it when running, not when compiling). */
  view(name: string): Tensor;
  /** `count` floats of the memory at byte `address` (take it when running, not when compiling). */
  floats(address: number, count: number): Float32Array;
  /** Address of the shared scratch area (known after compilation) and its size so far. */
  scratch: number;
  scratchFloats: number;
  /** Batch norm layers compiled so far (their index in the exchange). */
  batchNorms: number;
  exchange: BatchNormExchange | null;
}

interface CompiledNode {
  /** Which kernels run it, for the plan's summary. */
  kind: string;
  forward: Executor;
  /** The backward step, given the output's gradient buffer and a target per input (null: none). */
  backward(gradOutput: number, targets: readonly (GradientTarget | null)[]): Executor;
  /** Runs once the heap views exist (e.g. to fill constant tables). */
  initialise?: () => void;
}

/** Compiles a node onto the kernels that the lowering chose for it (src/runtime/lower.ts). */
function compileNode(ctx: CompileContext, node: GraphNode): CompiledNode {
  const lowering = lowerNode(ctx.graph, node, 'training');
  switch (lowering.kernel) {
    case 'gemm1x1':
      return compilePointwise(ctx, node, lowering.conv);
    case 'dwconv3x3':
      return compileDepthwise(ctx, node, lowering.conv, lowering.stride);
    case 'stem3x3s2':
    case 'im2col-gemm':
    case 'dwconv': // no k×k depthwise backward: im2col + GEMM per channel
      return compileIm2col(ctx, node, lowering.conv);
    case 'batch-norm-training':
      return compileBatchNorm(ctx, node, lowering.attrs);
    case 'activation':
      return lowering.activation === 'relu'
        ? compileRelu(ctx, node)
        : compileReference(ctx, node, `no fast training kernel for ${lowering.activation}`);
    case 'scale-channels':
      return compileReference(ctx, node, 'no fast training kernel for the channel scale');
    case 'add':
      return compileAdd(ctx, node);
    case 'channel-shuffle':
      return compileShuffle(ctx, node, lowering.groups);
    case 'concat':
      return compileConcat(ctx, node);
    case 'channel-slice':
      return compileChannelSlice(ctx, node, lowering.start, lowering.end);
    case 'pool3x3s2':
      return compilePool(ctx, node, lowering.average);
    case 'max-pool': // lowered for inference only
      return compileReference(ctx, node, 'no fast training kernel for this pool');
    case 'global-avg-pool':
      return compileGlobalAvgPool(ctx, node);
    case 'dense':
      return compileLinear(ctx, node);
    case 'flatten':
      return compileFlatten(ctx, node);
    case 'batch-norm':
      return compileReference(ctx, node, 'inference batch norm (running statistics) in a training graph');
    case 'reference':
      return compileReference(ctx, node, lowering.reason);
  }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

const FLOAT = 4;

/** Adds `count` floats at `from` into `to`, or copies them. */
function writeOrAdd(ctx: CompileContext, from: number, to: number, count: number, accumulate: boolean): void {
  if (accumulate) ctx.kernels.exports.accumulate(count, from, to);
  else ctx.heap.f32.copyWithin(to >> 2, from >> 2, (from >> 2) + count);
}

/** Asks for at least `floats` of scratch. */
function needScratch(ctx: CompileContext, floats: number): void {
  ctx.scratchFloats = Math.max(ctx.scratchFloats, floats);
}

function dims4(shape: Shape): [number, number, number, number] {
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

// ---------------------------------------------------------------------------------------------
// Any op: the reference forward and gradient rule on views of the plan's memory.

function compileReference(ctx: CompileContext, node: GraphNode, reason: string): CompiledNode {
  const { graph } = ctx;
  const op = getOp(node.op);
  const inputs = (): Tensor[] => node.inputs.map((name) => ctx.view(name));
  return {
    kind: `reference (${reason})`,
    forward: () => op.forward(inputs(), node.attrs, ctx.view(node.output)),
    backward: (gradOutput, targets) => () => {
      const shape = graph.shapes.get(node.output)!;
      const gy = new Tensor(shape, ctx.heap.f32.slice(gradOutput >> 2, (gradOutput >> 2) + shapeSize(shape)));
      const grads = gradientRuleOf(node).backward(
        { inputs: inputs(), output: ctx.view(node.output), attrs: node.attrs, needs: targets.map((t) => t !== null) },
        gy,
      );
      targets.forEach((t, i) => {
        const g = grads[i];
        if (t === null || !g) return;
        const at = t.address >> 2;
        if (t.accumulate) {
          const dst = ctx.heap.f32;
          for (let j = 0; j < g.size; j++) dst[at + j] += g.data[j]!;
        } else {
          ctx.heap.f32.set(g.data, at);
        }
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Convolutions: 1×1 (grouped) as GEMMs, depthwise 3×3 on its own kernels, any other conv as
// im2col + GEMM per group, as the lowering decides.

/** 1×1 convolution with `groups` groups over [N, cIn, P] → [N, cOut, P]. */
function compilePointwise(ctx: CompileContext, node: GraphNode, conv: ConvGeometry): CompiledNode {
  const { kernels, heap } = ctx;
  const { batch: n, inChannels: cIn, outChannels: cOut, groups } = conv;
  const pixels = conv.inHeight * conv.inWidth;
  const k = kernels.exports;
  const [xName, wName, bName] = node.inputs;
  const kg = cIn / groups;
  const mg = cOut / groups;
  const x = ctx.address(xName!);
  const weight = ctx.address(wName!);
  const y = ctx.address(node.output);
  // Packed W per group ([⌈mg/4⌉][kg][4]) and Wᵀ per group ([⌈kg/4⌉][mg][4]), repacked every step.
  const packedBlock = Math.ceil(mg / 4) * 4 * kg;
  const packedTBlock = Math.ceil(kg / 4) * 4 * mg;
  const packed = kernels.allocFloats(packedBlock * groups);
  const packedT = kernels.allocFloats(packedTBlock * groups);
  const bias = kernels.allocFloats(Math.ceil(mg / 4) * 4 * groups); // the conv's bias per group, or zeros
  const zeros = kernels.allocFloats(Math.ceil(kg / 4) * 4);
  const outTable = kernels.allocBytes(n * cOut * 4);
  const inTable = kernels.allocBytes(n * cIn * 4);
  const rowBytes = pixels * FLOAT;
  return {
    kind: 'gemm4x8',
    initialise: () => {
      for (let i = 0; i < n * cOut; i++) heap.u32[(outTable >> 2) + i] = y + i * rowBytes;
    },
    forward: () => {
      const w = heap.f32.subarray(weight >> 2, (weight >> 2) + cOut * kg);
      for (let g = 0; g < groups; g++) {
        packGemmWeightsInto(
          heap.f32,
          (packed >> 2) + g * packedBlock,
          w.subarray(g * mg * kg, (g + 1) * mg * kg),
          mg,
          kg,
          false,
        );
      }
      const b =
        bName === undefined ? null : heap.f32.subarray(ctx.address(bName) >> 2, (ctx.address(bName) >> 2) + cOut);
      for (let g = 0; g < groups; g++) {
        if (b) heap.f32.set(b.subarray(g * mg, (g + 1) * mg), (bias >> 2) + g * Math.ceil(mg / 4) * 4);
        for (let s = 0; s < n; s++) {
          k.gemm4x8(
            kg,
            mg,
            pixels,
            packed + g * packedBlock * FLOAT,
            bias + (b ? g * Math.ceil(mg / 4) * 4 * FLOAT : 0),
            x + (s * cIn + g * kg) * rowBytes,
            rowBytes,
            outTable + (s * cOut + g * mg) * 4,
            0,
            0,
            0,
          );
        }
      }
    },
    backward: (gy, [dx, dw, db]) => {
      const biasGrad = db ? biasGradient(ctx, cOut) : null;
      return () => {
        if (dx) {
          const w = heap.f32.subarray(weight >> 2, (weight >> 2) + cOut * kg);
          for (let g = 0; g < groups; g++) {
            packGemmWeightsInto(
              heap.f32,
              (packedT >> 2) + g * packedTBlock,
              w.subarray(g * mg * kg, (g + 1) * mg * kg),
              mg,
              kg,
              true,
            );
          }
          for (let i = 0; i < n * cIn; i++) heap.u32[(inTable >> 2) + i] = dx.address + i * rowBytes;
          for (let g = 0; g < groups; g++) {
            for (let s = 0; s < n; s++) {
              const table = inTable + (s * cIn + g * kg) * 4;
              k.gemm4x8(
                mg,
                kg,
                pixels,
                packedT + g * packedTBlock * FLOAT,
                zeros,
                gy + (s * cOut + g * mg) * rowBytes,
                rowBytes,
                table,
                dx.accumulate ? table : 0,
                0,
                0,
              );
            }
          }
        }
        if (dw) {
          for (let g = 0; g < groups; g++) {
            k.convWeightGrad(
              mg,
              kg,
              pixels,
              n,
              gy + g * mg * rowBytes,
              cOut * rowBytes,
              x + g * kg * rowBytes,
              cIn * rowBytes,
              dw.address + g * mg * kg * FLOAT,
              dw.accumulate ? 1 : 0,
            );
          }
        }
        if (db) biasGrad!(gy, db, n, pixels);
      };
    },
  };
}

/** A backward step's bias gradient: the reference channel sums of ∂y, written or added. */
function biasGradient(
  ctx: CompileContext,
  channels: number,
): (gy: number, db: GradientTarget, n: number, pixels: number) => void {
  const sums = ctx.kernels.allocFloats(channels);
  return (gy, db, n, pixels) => {
    channelSumReference(ctx.floats(gy, n * channels * pixels), ctx.floats(sums, channels), n, channels, pixels);
    writeOrAdd(ctx, sums, db.address, channels, db.accumulate);
  };
}

function compileDepthwise(ctx: CompileContext, node: GraphNode, conv: ConvGeometry, stride: number): CompiledNode {
  const { kernels, heap } = ctx;
  const k = kernels.exports;
  const { batch: n, inChannels: c, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow } = conv;
  const [xName, wName, bName] = node.inputs;
  const x = ctx.address(xName!);
  const weight = ctx.address(wName!);
  const y = ctx.address(node.output);
  const bias = bName === undefined ? kernels.allocFloats(c) : ctx.address(bName); // zeros without one
  needScratch(ctx, k.paddedPlaneFloats(h, w) + 16);
  const inSample = c * h * w * FLOAT;
  const outSample = c * oh * ow * FLOAT;
  return {
    kind: 'dwconv3x3',
    forward: () => {
      for (let s = 0; s < n; s++)
        k.dwconv3x3(c, h, w, stride, x + s * inSample, weight, bias, y + s * outSample, 0, ctx.scratch);
    },
    backward: (gy, [dx, dw, db]) => {
      const biasGrad = db ? biasGradient(ctx, c) : null;
      return () => {
        if (db) biasGrad!(gy, db, n, oh * ow);
        if (dx) {
          for (let s = 0; s < n; s++) {
            k.dwconv3x3BackwardInput(
              c,
              h,
              w,
              stride,
              gy + s * outSample,
              weight,
              dx.address + s * inSample,
              dx.accumulate ? 1 : 0,
              ctx.scratch,
            );
          }
        }
        if (dw) {
          const at = dw.address >> 2;
          // The kernel adds; a first contribution starts from zero.
          if (!dw.accumulate) heap.f32.fill(0, at, at + c * 9);
          for (let s = 0; s < n; s++) {
            k.dwconv3x3BackwardWeight(c, h, w, stride, x + s * inSample, gy + s * outSample, dw.address, ctx.scratch);
          }
        }
      };
    },
  };
}

/**
 * Any other convolution (the stems, dilated, strided, padded, grouped): im2col per sample and
 * group, then the GEMM. The patch matrices are kept for the weight gradient; the input gradient
 * (which stems never need) runs the reference rule.
 */
function compileIm2col(ctx: CompileContext, node: GraphNode, conv: ConvGeometry): CompiledNode {
  const { kernels, heap } = ctx;
  const k = kernels.exports;
  const { batch: n, inChannels: cIn, inHeight: h, inWidth: w, outChannels: cOut, groups } = conv;
  const { outHeight: oh, outWidth: ow, kernelHeight: kh, kernelWidth: kw } = conv;
  const [xName, wName, bName] = node.inputs;
  const x = ctx.address(xName!);
  const weight = ctx.address(wName!);
  const y = ctx.address(node.output);
  const cPerGroup = cIn / groups;
  const mg = cOut / groups;
  const kg = im2colRows(conv);
  const pixels = oh * ow;
  const rowBytes = pixels * FLOAT;
  const col = kernels.allocFloats(n * groups * kg * pixels); // [N][groups][kg][pixels]
  const colAt = (s: number, g: number): number => col + (s * groups + g) * kg * rowBytes;
  const packedBlock = Math.ceil(mg / 4) * 4 * kg;
  const biasBlock = Math.ceil(mg / 4) * 4;
  const packed = kernels.allocFloats(packedBlock * groups);
  const bias = kernels.allocFloats(biasBlock * groups); // the conv's bias per group, or zeros
  const outTable = kernels.allocBytes(n * cOut * 4);
  const reference = compileReference(ctx, node, 'input gradient of an im2col convolution');
  return {
    kind: `im2col+gemm4x8${groups > 1 ? ` ×${groups} groups` : ''}`,
    initialise: () => {
      for (let i = 0; i < n * cOut; i++) heap.u32[(outTable >> 2) + i] = y + i * rowBytes;
    },
    forward: () => {
      const wAll = heap.f32.subarray(weight >> 2, (weight >> 2) + cOut * kg);
      const b = bName === undefined ? null : ctx.floats(ctx.address(bName), cOut);
      for (let g = 0; g < groups; g++) {
        const wg = wAll.subarray(g * mg * kg, (g + 1) * mg * kg);
        packGemmWeightsInto(heap.f32, (packed >> 2) + g * packedBlock, wg, mg, kg, false);
        if (b) heap.f32.set(b.subarray(g * mg, (g + 1) * mg), (bias >> 2) + g * biasBlock);
      }
      for (let s = 0; s < n; s++) {
        for (let g = 0; g < groups; g++) {
          const input = x + (s * cIn + g * cPerGroup) * h * w * FLOAT;
          // prettier-ignore
          k.im2col(cPerGroup, h, w, kh, kw, conv.strideHeight, conv.strideWidth, conv.padTop, conv.padLeft, conv.dilationHeight, conv.dilationWidth, ow, 0, oh, input, colAt(s, g));
          // prettier-ignore
          k.gemm4x8(kg, mg, pixels, packed + g * packedBlock * FLOAT, bias + g * biasBlock * FLOAT, colAt(s, g), rowBytes, outTable + (s * cOut + g * mg) * 4, 0, 0, 0);
        }
      }
    },
    backward: (gy, [dx, dw, db]) => {
      const inputGrad = dx ? reference.backward(gy, [dx, null, null]) : null;
      const biasGrad = db ? biasGradient(ctx, cOut) : null;
      return () => {
        inputGrad?.();
        if (dw) {
          for (let g = 0; g < groups; g++) {
            // prettier-ignore
            k.convWeightGrad(mg, kg, pixels, n, gy + g * mg * rowBytes, cOut * rowBytes, colAt(0, g), groups * kg * rowBytes, dw.address + g * mg * kg * FLOAT, dw.accumulate ? 1 : 0);
          }
        }
        if (db) biasGrad!(gy, db, n, pixels);
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Batch norm (training mode), ReLU, add

function compileBatchNorm(ctx: CompileContext, node: GraphNode, attrs: BatchNormTrainingAttrs): CompiledNode {
  const { kernels, graph } = ctx;
  const k = kernels.exports;
  const [xName, gName, bName, rmName, rvName] = node.inputs;
  const [n, c, h, w] = dims4(graph.shapes.get(xName!)!);
  const pixels = h * w;
  const layer = ctx.batchNorms++;
  const x = ctx.address(xName!);
  const gamma = ctx.address(gName!);
  const beta = ctx.address(bName!);
  const y = ctx.address(node.output);
  // [C] each: the batch mean and variance, and the backward's sums (∂β, ∂γ).
  const [mean, variance, sumDy, sumDyXhat] = [0, 0, 0, 0].map(() => kernels.allocFloats(c)) as [
    number,
    number,
    number,
    number,
  ];
  const floats = (address: number): Float32Array => ctx.floats(address, c);
  const runningMean = graph.params.get(rmName!)!.tensor;
  const runningVar = graph.params.get(rvName!)!.tensor;
  // One kernel family (assembly/batchnorm.ts): statistics → [exchange] → apply, sums → [exchange]
  // → backward apply. One part has no exchange and runs each pair fused per block of channels,
  // which gives bit for bit the two passes' results, so one thread is the N = 1 case.
  const exchange = ctx.exchange;
  const totalBatch = exchange?.totalBatch ?? n;
  return {
    kind: 'batchNorm',
    forward: () => {
      if (exchange) {
        k.batchNormStatistics(n, c, pixels, x, mean, variance);
        exchange.statistics(layer, floats(mean), floats(variance));
        k.batchNormApply(n, c, pixels, x, gamma, beta, mean, variance, attrs.eps, y);
      } else {
        k.batchNormTrainForward(n, c, pixels, x, gamma, beta, mean, variance, attrs.eps, y);
      }
      const mode = ctx.statistics.mode;
      if (mode === 'frozen') return;
      updateRunningStatisticsReference(
        runningMean.data,
        runningVar.data,
        floats(mean),
        floats(variance),
        totalBatch * pixels,
        mode === 'momentum' ? attrs.momentum : mode,
      );
    },
    backward: (gy, [dx, dGamma, dBeta]) => {
      const dxScratch = dx ? 0 : kernels.allocFloats(n * c * pixels);
      const target = dx ? dx.address : dxScratch;
      const accumulate = dx?.accumulate ? 1 : 0;
      return () => {
        const statistics = [mean, variance, attrs.eps] as const;
        if (exchange) {
          k.batchNormBackwardSums(n, c, pixels, x, gy, ...statistics, sumDy, sumDyXhat);
        } else {
          k.batchNormTrainBackward(n, c, pixels, x, gy, gamma, ...statistics, sumDy, sumDyXhat, target, accumulate);
        }
        // ∂γ = Σ ∂y·x̂ and ∂β = Σ ∂y of this part (the parts' parameter gradients are summed).
        if (dGamma) writeOrAdd(ctx, sumDyXhat, dGamma.address, c, dGamma.accumulate);
        if (dBeta) writeOrAdd(ctx, sumDy, dBeta.address, c, dBeta.accumulate);
        if (!exchange) return;
        exchange.sums(layer, floats(sumDy), floats(sumDyXhat));
        k.batchNormBackwardApply(
          n,
          c,
          pixels,
          x,
          gy,
          gamma,
          ...statistics,
          sumDy,
          sumDyXhat,
          totalBatch * pixels,
          target,
          accumulate,
        );
      };
    },
  };
}

function compileRelu(ctx: CompileContext, node: GraphNode): CompiledNode {
  const k = ctx.kernels.exports;
  const count = shapeSize(ctx.graph.shapes.get(node.output)!);
  const x = ctx.address(node.inputs[0]!);
  const y = ctx.address(node.output);
  return {
    kind: 'relu',
    forward: () => k.relu(count, x, y),
    backward:
      (gy, [dx]) =>
      () => {
        if (dx) k.reluBackward(count, y, gy, dx.address, dx.accumulate ? 1 : 0);
      },
  };
}

function compileAdd(ctx: CompileContext, node: GraphNode): CompiledNode {
  const [aName, bName] = node.inputs; // two inputs of one shape (the lowering checked)
  const k = ctx.kernels.exports;
  const count = shapeSize(ctx.graph.shapes.get(node.output)!);
  const a = ctx.address(aName!);
  const b = ctx.address(bName!);
  const y = ctx.address(node.output);
  return {
    kind: 'add',
    forward: () => k.add(count, a, b, y),
    backward: (gy, targets) => () => {
      for (const t of targets) if (t) writeOrAdd(ctx, gy, t.address, count, t.accumulate);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Channel moves: shuffle (a permutation of planes) and concat.

function compileShuffle(ctx: CompileContext, node: GraphNode, groups: number): CompiledNode {
  const [n, c, h, w] = dims4(ctx.graph.shapes.get(node.output)!);
  const pixels = h * w;
  const from = channelShuffleSource(c, groups); // output channel j holds input channel from[j]
  const x = ctx.address(node.inputs[0]!) >> 2;
  const y = ctx.address(node.output) >> 2;
  return {
    kind: 'plane copies',
    forward: () => {
      const f = ctx.heap.f32;
      for (let s = 0; s < n; s++) {
        for (let j = 0; j < c; j++) {
          const src = x + (s * c + from[j]!) * pixels;
          f.copyWithin(y + (s * c + j) * pixels, src, src + pixels);
        }
      }
    },
    backward:
      (gy, [dx]) =>
      () => {
        if (!dx) return;
        for (let s = 0; s < n; s++) {
          for (let j = 0; j < c; j++) {
            const to = dx.address + (s * c + from[j]!) * pixels * FLOAT;
            writeOrAdd(ctx, gy + (s * c + j) * pixels * FLOAT, to, pixels, dx.accumulate);
          }
        }
      },
  };
}

function compileConcat(ctx: CompileContext, node: GraphNode): CompiledNode {
  const [n, c, h, w] = dims4(ctx.graph.shapes.get(node.output)!);
  const pixels = h * w;
  const parts = node.inputs.map((name) => ({ at: ctx.address(name), channels: ctx.graph.shapes.get(name)![1]! }));
  const y = ctx.address(node.output);
  const offsets = parts.map((_, i) => parts.slice(0, i).reduce((sum, p) => sum + p.channels, 0));
  return {
    kind: 'copies',
    forward: () => {
      const f = ctx.heap.f32;
      for (let s = 0; s < n; s++) {
        parts.forEach((p, i) => {
          const src = (p.at >> 2) + s * p.channels * pixels;
          f.copyWithin((y >> 2) + (s * c + offsets[i]!) * pixels, src, src + p.channels * pixels);
        });
      }
    },
    backward: (gy, targets) => () => {
      for (let s = 0; s < n; s++) {
        parts.forEach((p, i) => {
          const t = targets[i];
          if (!t) return;
          const from = gy + (s * c + offsets[i]!) * pixels * FLOAT;
          writeOrAdd(ctx, from, t.address + s * p.channels * pixels * FLOAT, p.channels * pixels, t.accumulate);
        });
      }
    },
  };
}

/** Channels [start, end) of NCHW (ShuffleNet V2's split): a copy per sample; its gradient, zeros around. */
function compileChannelSlice(ctx: CompileContext, node: GraphNode, start: number, end: number): CompiledNode {
  const [n, c, h, w] = dims4(ctx.graph.shapes.get(node.inputs[0]!)!);
  const pixels = h * w;
  const taken = (end - start) * pixels;
  const x = ctx.address(node.inputs[0]!);
  const y = ctx.address(node.output);
  return {
    kind: 'copies',
    forward: () => {
      for (let s = 0; s < n; s++) {
        const src = (x >> 2) + (s * c + start) * pixels;
        ctx.heap.f32.copyWithin((y >> 2) + s * taken, src, src + taken);
      }
    },
    backward:
      (gy, [t]) =>
      () => {
        if (!t) return;
        for (let s = 0; s < n; s++) {
          const sample = (t.address >> 2) + s * c * pixels;
          if (!t.accumulate) {
            ctx.heap.f32.fill(0, sample, sample + start * pixels);
            ctx.heap.f32.fill(0, sample + end * pixels, sample + c * pixels);
          }
          writeOrAdd(ctx, gy + s * taken * FLOAT, (sample + start * pixels) * FLOAT, taken, t.accumulate);
        }
      },
  };
}

// ---------------------------------------------------------------------------------------------
// Pools

/**
 * 3×3 / 2 pools with padding 1; an average one divides by 9 (the lowering sends any other pool to
 * the reference op).
 */
function compilePool(ctx: CompileContext, node: GraphNode, average: boolean): CompiledNode {
  const k = ctx.kernels.exports;
  const [n, c, h, w] = dims4(ctx.graph.shapes.get(node.inputs[0]!)!);
  const x = ctx.address(node.inputs[0]!);
  const y = ctx.address(node.output);
  needScratch(ctx, k.paddedPlaneFloats(h, w) + 16);
  return {
    kind: average ? 'avgpool3x3s2' : 'maxpool3x3s2',
    forward: () => k.pool3x3s2(n * c, h, w, 1, average ? 1 : 0, x, y, 0, ctx.scratch),
    backward:
      (gy, [dx]) =>
      () => {
        if (!dx) return;
        if (average) k.avgPool3x3s2Backward(n * c, h, w, 1, gy, dx.address, dx.accumulate ? 1 : 0);
        else k.maxPool3x3s2Backward(n * c, h, w, x, gy, dx.address, dx.accumulate ? 1 : 0);
      },
  };
}

function compileGlobalAvgPool(ctx: CompileContext, node: GraphNode): CompiledNode {
  const k = ctx.kernels.exports;
  const [n, c, h, w] = dims4(ctx.graph.shapes.get(node.inputs[0]!)!);
  const x = ctx.address(node.inputs[0]!);
  const y = ctx.address(node.output);
  return {
    kind: 'globalAvgPool',
    forward: () => k.globalAvgPool(n * c, h * w, x, y),
    backward:
      (gy, [dx]) =>
      () => {
        if (dx) k.globalAvgPoolBackward(n * c, h * w, gy, dx.address, dx.accumulate ? 1 : 0);
      },
  };
}

// ---------------------------------------------------------------------------------------------
// The classifier: y[N, O] = x[N, I] · Wᵀ + b as one GEMM over the batch, on transposed copies
// (features × samples), so that the samples are the GEMM's contiguous "pixels".

function compileLinear(ctx: CompileContext, node: GraphNode): CompiledNode {
  const { kernels, heap, graph } = ctx;
  const k = kernels.exports;
  const [xName, wName, bName] = node.inputs;
  const [n, inF] = graph.shapes.get(xName!)! as [number, number];
  const outF = graph.shapes.get(node.output)![1]!;
  const x = ctx.address(xName!);
  const weight = ctx.address(wName!);
  const y = ctx.address(node.output);
  const xT = kernels.allocFloats(inF * n);
  const yT = kernels.allocFloats(outF * n);
  const dyT = kernels.allocFloats(outF * n);
  const dxT = kernels.allocFloats(inF * n);
  const dxRows = kernels.allocFloats(n * inF);
  const packed = kernels.allocFloats(Math.ceil(outF / 4) * 4 * inF);
  const packedT = kernels.allocFloats(Math.ceil(inF / 4) * 4 * outF);
  const bias = kernels.allocFloats(Math.ceil(outF / 4) * 4);
  const zeros = kernels.allocFloats(Math.ceil(inF / 4) * 4);
  const yTable = kernels.allocBytes(outF * 4);
  const dxTable = kernels.allocBytes(inF * 4);
  const rows = n * FLOAT;
  /** dst = srcᵀ for src [r, c] (byte addresses). */
  const transpose = (src: number, dst: number, r: number, c: number): void =>
    transposeReference(ctx.floats(src, r * c), ctx.floats(dst, r * c), [r, c], [1, 0]);
  return {
    kind: 'gemm4x8 (samples as pixels)',
    initialise: () => {
      for (let o = 0; o < outF; o++) heap.u32[(yTable >> 2) + o] = yT + o * rows;
      for (let i = 0; i < inF; i++) heap.u32[(dxTable >> 2) + i] = dxT + i * rows;
    },
    forward: () => {
      const w = heap.f32.subarray(weight >> 2, (weight >> 2) + outF * inF);
      packGemmWeightsInto(heap.f32, packed >> 2, w, outF, inF, false);
      if (bName !== undefined)
        heap.f32.copyWithin(bias >> 2, ctx.address(bName) >> 2, (ctx.address(bName) >> 2) + outF);
      transpose(x, xT, n, inF);
      k.gemm4x8(inF, outF, n, packed, bias, xT, rows, yTable, 0, 0, 0);
      transpose(yT, y, outF, n);
    },
    backward: (gy, [dx, dw, db]) => {
      const biasGrad = db ? biasGradient(ctx, outF) : null;
      return () => {
        transpose(gy, dyT, n, outF);
        if (dx) {
          const w = heap.f32.subarray(weight >> 2, (weight >> 2) + outF * inF);
          packGemmWeightsInto(heap.f32, packedT >> 2, w, outF, inF, true);
          k.gemm4x8(outF, inF, n, packedT, zeros, dyT, rows, dxTable, 0, 0, 0);
          transpose(dxT, dxRows, inF, n);
          writeOrAdd(ctx, dxRows, dx.address, n * inF, dx.accumulate);
        }
        if (dw) k.convWeightGrad(outF, inF, n, 1, dyT, 0, xT, 0, dw.address, dw.accumulate ? 1 : 0);
        if (db) biasGrad!(dyT, db, 1, n);
      };
    },
  };
}

/** [N, C, 1, 1] → [N, C]: the same floats, copied (the classifier's input is small). */
function compileFlatten(ctx: CompileContext, node: GraphNode): CompiledNode {
  const count = shapeSize(ctx.graph.shapes.get(node.output)!);
  const x = ctx.address(node.inputs[0]!);
  const y = ctx.address(node.output);
  return {
    kind: 'copy',
    forward: () => ctx.heap.f32.copyWithin(y >> 2, x >> 2, (x >> 2) + count),
    backward:
      (gy, [dx]) =>
      () => {
        if (dx) writeOrAdd(ctx, gy, dx.address, count, dx.accumulate);
      },
  };
}
