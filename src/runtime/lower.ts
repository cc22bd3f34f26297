/**
 * The lowering: the one place that decides, for each graph node, which fast kernel runs it, with
 * which fused epilogue, and how its work splits over threads. Every executor reads these decisions
 * and none decides on its own:
 *
 *   Graph ──► lowerNode(graph, node, purpose) ──► NodeLowering (kernel + geometry, or reference + reason)
 *                 │
 *                 ├─► lowerForInference(graph) ──► LoweredStep[]: main node + fused epilogue
 *                 │        (BN fold, residual add, ReLU, shuffle as an output remap) + thread split
 *                 │        └─► runtime/plan.ts: packs weights, places buffers, emits kernel calls
 *                 │            per thread (1 or N), the same calls for every thread count
 *                 └─► src/train/plan.ts: one step per node, forward and backward kernels for the
 *                          same decision (a kernel family without a backward for some geometry is
 *                          lowered to the reference op for training, with the reason)
 *
 * A node the fast kernels cannot run is lowered to `{ kernel: 'reference', reason }`: the executor
 * runs its reference op (correct, slow) and the plan summary says why. A node that no executor may
 * run that way (training-mode batch norm outside NCHW, whose running statistics live in the fast
 * step) is a `LoweringError` that names the node and the reason. Never a plausible wrong answer.
 *
 * Adding an op or an attribute touches four places (docs/architecture.md): the op definition
 * (src/ops), its reference kernel (src/kernels/reference), this lowering, and the fast kernel
 * (src/kernels/wasm/assembly) with its executor cases.
 */
import { ShuffleNetError } from '../errors.js';
import type { Graph, GraphNode, GraphNodeOf } from '../graph/graph.js';
import type { Conv2dGeometry } from '../kernels/reference/conv2d.js';
import { conv2dGeometry } from '../ops/conv2d.js';
import { sliceRange } from '../ops/layout.js';
import type { BatchNormTrainingAttrs } from '../ops/normalization.js';
import { sameShape, shapeSize, type Shape } from '../tensor/tensor.js';

/** A node that no executor can run: names the node and says why. */
export class LoweringError extends ShuffleNetError {
  override name = 'LoweringError';
}

/** Who reads the decision: the inference plan (forward only) or the training plan (and backward). */
export type LoweringPurpose = 'inference' | 'training';

/** A convolution's geometry (the reference kernel's), and whether it has a bias. */
export type ConvGeometry = Conv2dGeometry & { bias: boolean };

export type NodeLowering =
  /** 1×1 convolution, stride 1, no padding, any groups: one GEMM per group (packed [⌈m/4⌉][k][4]). */
  | { kernel: 'gemm1x1'; conv: ConvGeometry }
  /** 3×3 / 2, padding 1, one group (the stems): padded planes, im2col3x3s2 by bands, GEMM. */
  | { kernel: 'stem3x3s2'; conv: ConvGeometry }
  /** Any other convolution: im2col by bands of output rows per group (dilation, any padding), GEMM. */
  | { kernel: 'im2col-gemm'; conv: ConvGeometry }
  /** Depthwise 3×3 (multiplier 1), padding 1, stride 1 or 2. */
  | { kernel: 'dwconv3x3'; conv: ConvGeometry; stride: number }
  /**
   * Depthwise k×k (multiplier 1) with `pad` on every side, stride 1 or 2 (the 5×5 of MnasNet,
   * EfficientNet, MobileNet V3). Inference only: the training plan runs it through im2col + GEMM.
   */
  | { kernel: 'dwconv'; conv: ConvGeometry; stride: number; size: number; pad: number }
  /** 3×3 / 2 pools with padding 0 or 1 on every side; average divides by 9. */
  | { kernel: 'pool3x3s2'; average: boolean; pad: number }
  /** Any other max pool at stride 1 or 2 (ceil_mode's one-sided padding, GoogLeNet's 3×3/1). Inference only. */
  | { kernel: 'max-pool'; stride: number }
  | { kernel: 'global-avg-pool' }
  /** Linear on [N, features]. */
  | { kernel: 'dense' }
  /** Channel concat of NCHW parts (written in place by their producers, or copied). */
  | { kernel: 'concat' }
  /** Channels [start, end) of NCHW: at batch 1, a contiguous run of planes (the plan's alias). */
  | { kernel: 'channel-slice'; start: number; end: number }
  /** [N, C, 1, 1] → [N, C]: the same floats. */
  | { kernel: 'flatten' }
  | { kernel: 'channel-shuffle'; groups: number }
  /** Inference batch norm, folded into the producing convolution (lowerForInference). */
  | { kernel: 'batch-norm' }
  | { kernel: 'batch-norm-training'; attrs: BatchNormTrainingAttrs }
  /** An element-wise activation: in the epilogue of the step that produces its input, or on its own. */
  | { kernel: 'activation'; activation: Activation }
  /** x[N, C, H, W] · s[N, C, 1, 1] (squeeze-and-excitation's rescale). */
  | { kernel: 'scale-channels' }
  | { kernel: 'add' }
  | { kernel: 'reference'; reason: string };

export type KernelKind = NodeLowering['kernel'];

/**
 * The activations the fast kernels apply (`activate` in src/kernels/wasm/assembly/common.ts), by
 * their code there. hardswish and hardsigmoid are PyTorch's (x/6 + 1/2); silu is x · sigmoid(x).
 */
export const activationCodes = { relu: 1, relu6: 2, hardswish: 3, hardsigmoid: 4, sigmoid: 5, silu: 6 } as const;
export type Activation = keyof typeof activationCodes;

/** PyTorch's hard sigmoid slope and offset (ONNX HardSwish's fixed ones). */
const isTorchHardSigmoid = (a: { alpha: number; beta: number }): boolean =>
  Math.abs(a.alpha - 1 / 6) < 1e-7 && a.beta === 0.5;

const FAST_CONVS: readonly KernelKind[] = ['gemm1x1', 'stem3x3s2', 'im2col-gemm', 'dwconv3x3', 'dwconv'];

/** The geometry of a conv2d node. */
export function convGeometry(graph: Graph, node: GraphNodeOf<'conv2d'>): ConvGeometry {
  const shape = (value: string): Shape => graph.shapes.get(value)!;
  const geometry = conv2dGeometry(shape(node.inputs[0]!), shape(node.inputs[1]!), shape(node.output), node.attrs);
  return { ...geometry, bias: node.inputs.length === 3 };
}

/**
 * Which fast kernel runs `node`, or the reference op and why. The decision depends on the node's
 * op, attributes and shapes, and on the purpose only where a kernel family lacks a backward pass
 * for some geometry.
 */
export function lowerNode(graph: Graph, node: GraphNode, purpose: LoweringPurpose): NodeLowering {
  const rank = (value: string): number => graph.shapes.get(value)!.length;
  switch (node.op) {
    case 'conv2d': {
      const a = node.attrs;
      const conv = convGeometry(graph, node);
      const undilated = a.dilation[0] === 1 && a.dilation[1] === 1;
      const pad = (p: number): boolean => a.padding.every((v) => v === p);
      const stride = (s: number): boolean => a.stride[0] === s && a.stride[1] === s;
      if (undilated && conv.kernelHeight === 1 && conv.kernelWidth === 1 && stride(1) && pad(0))
        return { kernel: 'gemm1x1', conv };
      const threeByThree = undilated && conv.kernelHeight === 3 && conv.kernelWidth === 3 && pad(1);
      const depthwise = a.groups === conv.inChannels && conv.inChannels === conv.outChannels;
      if (threeByThree && depthwise && (stride(1) || stride(2))) {
        return { kernel: 'dwconv3x3', conv, stride: a.stride[0] };
      }
      if (threeByThree && a.groups === 1 && stride(2)) return { kernel: 'stem3x3s2', conv };
      const size = conv.kernelHeight;
      const square = conv.kernelWidth === size && a.padding.every((p) => p === a.padding[0]) && a.padding[0]! < size;
      if (undilated && square && depthwise && (stride(1) || stride(2))) {
        return { kernel: 'dwconv', conv, stride: a.stride[0], size, pad: a.padding[0]! };
      }
      return { kernel: 'im2col-gemm', conv };
    }
    case 'maxPool2d':
    case 'avgPool2d': {
      const a = node.attrs;
      const pad = a.padding[0];
      const geometry =
        a.kernel[0] === 3 &&
        a.kernel[1] === 3 &&
        a.stride[0] === 2 &&
        a.stride[1] === 2 &&
        (pad === 0 || pad === 1) &&
        a.padding.every((p) => p === pad);
      const strides = a.stride[0] === a.stride[1] && (a.stride[0] === 1 || a.stride[0] === 2);
      if (!geometry && node.op === 'maxPool2d' && strides && purpose === 'inference') {
        return { kernel: 'max-pool', stride: a.stride[0] };
      }
      if (!geometry) {
        return reference(
          'the fast pools are 3×3/2 with padding 0 or 1 on every side, and max pools at stride 1 or 2 (inference)',
        );
      }
      const average = node.op === 'avgPool2d';
      // Without padding every window is whole, so both divisor conventions give 9.
      if (node.op === 'avgPool2d' && !node.attrs.countIncludePad && pad !== 0) {
        return reference('the fast average pool divides by 9 (count_include_pad)');
      }
      if (purpose === 'training' && pad !== 1) {
        return reference('the fast pool backward kernels take padding 1 only');
      }
      return { kernel: 'pool3x3s2', average, pad };
    }
    case 'globalAvgPool':
      return { kernel: 'global-avg-pool' };
    case 'linear':
      return rank(node.inputs[0]!) === 2 ? { kernel: 'dense' } : reference('the fast linear takes [N, features]');
    case 'concat':
      return rank(node.output) === 4 ? { kernel: 'concat' } : reference('the fast concat joins NCHW channels');
    case 'flatten':
      return { kernel: 'flatten' };
    case 'slice': {
      if (node.attrs.axis !== 1 || rank(node.output) !== 4) return reference('the fast slice takes NCHW channels');
      const [start, length] = sliceRange(graph.shapes.get(node.inputs[0]!)![1]!, node.attrs);
      return { kernel: 'channel-slice', start, end: start + length };
    }
    case 'channelShuffle':
      return rank(node.output) === 4
        ? { kernel: 'channel-shuffle', groups: node.attrs.groups }
        : reference('the fast shuffle permutes NCHW planes');
    case 'batchNorm':
      return { kernel: 'batch-norm' };
    case 'batchNormTraining':
      if (purpose === 'inference') {
        throw new LoweringError(
          `${describeNode(node)}: training-mode batch norm in an inference plan (trace the model without { training: true })`,
        );
      }
      if (rank(node.inputs[0]!) !== 4) {
        throw new LoweringError(
          `${describeNode(node)}: training-mode batch norm runs on NCHW only (its running statistics live in the fast step), got rank ${rank(node.inputs[0]!)}`,
        );
      }
      return { kernel: 'batch-norm-training', attrs: node.attrs };
    case 'relu':
      return { kernel: 'activation', activation: 'relu' };
    case 'clip': {
      const { min, max } = node.attrs;
      if (min === 0 && max === 6) return { kernel: 'activation', activation: 'relu6' };
      if (min === 0 && max === Infinity) return { kernel: 'activation', activation: 'relu' };
      return reference('the fast clip is ReLU6 or ReLU (min 0, max 6 or none)');
    }
    case 'hardSwish':
    case 'hardSigmoid':
      return isTorchHardSigmoid(node.attrs)
        ? { kernel: 'activation', activation: node.op === 'hardSwish' ? 'hardswish' : 'hardsigmoid' }
        : reference("the fast hard sigmoid is PyTorch's (alpha 1/6, beta 1/2)");
    case 'sigmoid':
      return { kernel: 'activation', activation: 'sigmoid' };
    case 'mulChannels':
      return rank(node.inputs[0]!) === 4 && !graph.params.has(node.inputs[1]!)
        ? { kernel: 'scale-channels' }
        : reference('the fast channel scale takes NCHW values and a computed scale');
    case 'add': {
      const [a, b] = node.inputs.map((v) => graph.shapes.get(v)!);
      const same = node.inputs.length === 2 && sameShape(a!, b!);
      return same ? { kernel: 'add' } : reference('the fast add takes two inputs of one shape');
    }
    default:
      return reference(`no fast kernel for ${node.op}`);
  }
}

function reference(reason: string): NodeLowering {
  return { kernel: 'reference', reason };
}

/** "stage2.0.gconv1 (conv2d)" */
export function describeNode(node: GraphNode): string {
  return node.name ? `${node.name} (${node.op})` : `${node.op} → ${node.output}`;
}

// ---------------------------------------------------------------------------------------------
// Inference: fusion into steps, and each step's thread split.

/**
 * How a step's work divides among threads: `units` interchangeable pieces, each thread taking a
 * contiguous range (`share`). Units are blocks of 4 output channels of one group (GEMMs whose
 * input fits the cache), blocks of pixels of one group (GEMMs whose input does not: see
 * `gemmPixelBlock`), planes (depthwise, pools), bands of output rows per group (im2col), blocks of
 * 8 outputs (dense).
 */
export interface ThreadSplit {
  axis: 'channel-blocks' | 'pixel-blocks' | 'planes' | 'row-bands' | 'output-blocks' | 'none';
  units: number;
  /** Output rows per band (row-bands only). */
  bandRows: number;
  /** Pixels per block (pixel-blocks only): a multiple of 8, the GEMM's tile width. */
  blockPixels: number;
}

/**
 * A 1×1 GEMM streams its whole input [K, P] once per block of 4 output channels. When one group's
 * input exceeds this many bytes (about a core's L2), it runs by blocks of pixels instead, each
 * block's input read from cache by every channel block: split by channels, every thread would
 * stream the whole input from memory, and two threads would share the memory bandwidth (MobileNet's
 * early layers: 1.6 MB inputs).
 */
const GEMM_STREAM_BYTES = 256 * 1024;
/** Bytes of input per pixel block (a block's K rows stay in L1/L2 while all channel blocks pass). */
const GEMM_BLOCK_BYTES = 64 * 1024;

/** Pixels per block of a 1×1 GEMM with `k` input channels per group over `pixels`, or 0 (no blocks). */
export function gemmPixelBlock(k: number, pixels: number): number {
  if (k * pixels * 4 <= GEMM_STREAM_BYTES) return 0;
  return Math.max(8, Math.floor(GEMM_BLOCK_BYTES / (k * 4) / 8) * 8);
}

/** A fused inference step, before memory addresses are known. */
export interface LoweredStep {
  lowering: NodeLowering;
  /** The graph nodes it covers, main node first. */
  nodes: GraphNode[];
  /** Activation values it reads (parameters excluded). */
  inputs: string[];
  output: string;
  /** Epilogue: batch norm folded into the weights and bias (convolutions). */
  foldedBatchNorm: GraphNodeOf<'batchNorm'> | null;
  /**
   * Epilogue: a residual added before the activation (GEMM convolutions). An add that no GEMM takes
   * is a step of its own (with its activation).
   */
  residual: string | null;
  /**
   * Epilogue: an activation after everything else (or, for an activation step, the one it applies):
   * a ReLU, ReLU6, hard swish or sigmoid node, or x · sigmoid(x) / x · hardsigmoid(x) (SiLU, hard
   * swish) written as two nodes.
   */
  activation: Activation | null;
  /**
   * Epilogue: groups of a channel shuffle folded into the output layout (an output remap of a 1×1
   * convolution, or of a concat's parts), or 0.
   */
  shuffleGroups: number;
  split: ThreadSplit;
}

/** Epilogue ops, and why one that no producer absorbed runs on its reference op. */
const EPILOGUE_ONLY: Partial<Record<KernelKind, string>> = {
  'batch-norm': 'batch norm folds only into the convolution that produces its input',
  'channel-shuffle': 'a shuffle fuses only into a 1×1 convolution or a concat as an output remap',
};

/**
 * Lowers a graph (batch 1) into fused inference steps: every node is the main node of one step or
 * folded into the epilogue of an earlier one.
 */
export function lowerForInference(graph: Graph): LoweredStep[] {
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
  /**
   * x · sigmoid(x) or x · hardsigmoid(x) read from `gate` (the sigmoid of x): its one consumer is a
   * product of x and it, of one shape, so the pair is SiLU or hard swish of x.
   */
  const gatedBy = (gate: GraphNode): { mul: GraphNode; activation: Activation } | null => {
    const g = lowerNode(graph, gate, 'inference');
    if (g.kernel !== 'activation' || (g.activation !== 'sigmoid' && g.activation !== 'hardsigmoid')) return null;
    const x = gate.inputs[0]!;
    const mul = sole(gate.output);
    // (A product of two [N, C, 1, 1] values, as in an SE block's SiLU, is imported as mulChannels.)
    const product = mul?.op === 'broadcastMul' || mul?.op === 'mulChannels';
    if (!product || !mul.inputs.includes(x) || !mul.inputs.includes(gate.output)) return null;
    if (!sameShape(graph.shapes.get(x)!, graph.shapes.get(mul.output)!)) return null;
    return { mul, activation: g.activation === 'sigmoid' ? 'silu' : 'hardswish' };
  };
  /** The activation that `value`'s consumers apply to it alone, and the nodes that apply it. */
  const activationOf = (value: string): { nodes: GraphNode[]; activation: Activation } | null => {
    if (value === graph.output) return null;
    const consumers = uses.get(value) ?? [];
    if (consumers.length === 1) {
      const l = lowerNode(graph, consumers[0]!, 'inference');
      return l.kernel === 'activation' ? { nodes: [consumers[0]!], activation: l.activation } : null;
    }
    if (consumers.length !== 2) return null;
    for (const [gate, other] of [consumers, [...consumers].reverse()] as [GraphNode, GraphNode][]) {
      const gated = gatedBy(gate);
      if (gated?.mul === other) return { nodes: [gate, other], activation: gated.activation };
    }
    return null;
  };
  const absorbed = new Set<GraphNode>();
  const steps: LoweredStep[] = [];

  graph.nodes.forEach((node, i) => {
    if (absorbed.has(node)) return;
    let lowering = lowerNode(graph, node, 'inference');
    const unfused = EPILOGUE_ONLY[lowering.kernel];
    if (unfused !== undefined) lowering = reference(unfused);
    const kind = lowering.kernel;
    const step: LoweredStep = {
      lowering,
      nodes: [node],
      inputs: node.inputs.filter(isActivation),
      output: node.output,
      foldedBatchNorm: null,
      residual: null,
      activation: null,
      shuffleGroups: 0,
      split: { axis: 'none', units: 1, bandRows: 0, blockPixels: 0 },
    };
    const absorb = (next: GraphNode): void => {
      step.nodes.push(next);
      absorbed.add(next);
      step.output = next.output;
    };
    const conv = FAST_CONVS.includes(kind);
    const gemm = kind === 'gemm1x1' || kind === 'im2col-gemm';
    let next = sole(step.output);
    if (conv && next?.op === 'batchNorm' && next.inputs[0] === step.output) {
      absorb(next);
      step.foldedBatchNorm = next;
      next = sole(step.output);
    }
    if (gemm && next?.op === 'add' && next.inputs.length === 2) {
      const other = next.inputs[0] === step.output ? next.inputs[1]! : next.inputs[0]!;
      // The residual must already exist when this step runs.
      const producedBefore = other === graph.input.name || (index.get(other) ?? Infinity) < i;
      const sameShape = lowerNode(graph, next, 'inference').kernel === 'add';
      if (isActivation(other) && producedBefore && other !== step.output && sameShape) {
        absorb(next);
        step.residual = other;
        next = sole(step.output);
      }
    }
    if (lowering.kernel === 'activation') {
      // On its own (its producer could not take it): the gated forms still apply as one.
      const gated = gatedBy(node);
      if (gated !== null) absorb(gated.mul);
      step.activation = gated?.activation ?? lowering.activation;
      step.inputs = [node.inputs[0]!];
      next = sole(step.output);
    } else if (conv || ['dense', 'pool3x3s2', 'max-pool', 'concat', 'add'].includes(kind)) {
      const fused = activationOf(step.output);
      if (fused !== null) {
        fused.nodes.forEach(absorb);
        step.activation = fused.activation;
        next = sole(step.output);
      }
    }
    if ((kind === 'gemm1x1' || kind === 'concat') && next !== null) {
      const shuffle = lowerNode(graph, next, 'inference');
      if (shuffle.kernel === 'channel-shuffle') {
        absorb(next);
        step.shuffleGroups = shuffle.groups;
      }
    }
    step.split = threadSplit(graph, step);
    steps.push(step);
  });
  return steps;
}

/** How a step's work splits among threads (see ThreadSplit). */
function threadSplit(graph: Graph, step: LoweredStep): ThreadSplit {
  const split = (axis: ThreadSplit['axis'], units: number, bandRows = 0, blockPixels = 0): ThreadSplit => ({
    axis,
    units,
    bandRows,
    blockPixels,
  });
  const lowering = step.lowering;
  switch (lowering.kernel) {
    case 'gemm1x1': {
      const { inChannels, outChannels, outHeight, outWidth, groups } = lowering.conv;
      const pixels = outHeight * outWidth;
      const block = gemmPixelBlock(inChannels / groups, pixels);
      if (block > 0) return split('pixel-blocks', groups * Math.ceil(pixels / block), 0, block);
      return split('channel-blocks', groups * Math.ceil(outChannels / groups / 4));
    }
    case 'im2col-gemm': {
      const { outHeight, outWidth, groups } = lowering.conv;
      const bandRows = convBandRows(im2colRows(lowering.conv), outWidth);
      return split('row-bands', Math.ceil(outHeight / bandRows) * groups, bandRows);
    }
    case 'stem3x3s2': {
      const { outHeight, outWidth, inChannels } = lowering.conv;
      const bandRows = stemBandRows(inChannels, outWidth);
      return split('row-bands', Math.ceil(outHeight / bandRows), bandRows);
    }
    case 'dwconv3x3':
    case 'dwconv':
    case 'pool3x3s2':
    case 'max-pool':
    case 'global-avg-pool':
      return split('planes', graph.shapes.get(step.inputs[0]!)![1]!);
    case 'dense':
      return split('output-blocks', Math.ceil(graph.shapes.get(step.nodes[0]!.output)![1]! / 8));
    case 'activation':
    case 'add':
    case 'scale-channels': {
      // Planes of NCHW; blocks of 8 values of anything else.
      const shape = graph.shapes.get(step.output)!;
      return shape.length === 4 ? split('planes', shape[1]!) : split('output-blocks', Math.ceil(shapeSize(shape) / 8));
    }
    case 'concat':
      // Planes of the parts that the plan copies (those their producers cannot write in place).
      return split('planes', graph.shapes.get(step.nodes[0]!.output)![1]!);
    default:
      return split('none', 1);
  }
}

/** Rows of an im2col patch matrix for one group: K = C_in/groups · kH · kW. */
export function im2colRows(conv: ConvGeometry): number {
  return (conv.inChannels / conv.groups) * conv.kernelHeight * conv.kernelWidth;
}

/** Output rows per im2col band of a general convolution: a patch matrix of at most ~256 KB. */
export function convBandRows(k: number, outWidth: number): number {
  return Math.max(1, Math.floor(65536 / (k * outWidth)));
}

/**
 * Output rows per im2col band of the stem: the band's patch matrix (C·9 rows of band·OW floats)
 * stays within ~48 KB, so the GEMM's passes over it hit the cache.
 */
export function stemBandRows(channels: number, outWidth: number): number {
  return Math.max(1, Math.floor(12288 / (channels * 9 * outWidth)));
}

/** The range [start, end) of `n` units that thread `t` of `threads` takes. */
export function share(n: number, t: number, threads: number): [number, number] {
  return [Math.floor((n * t) / threads), Math.floor((n * (t + 1)) / threads)];
}

/** One line per step: kernel, module path, what was fused, or why it runs on the reference op. */
export function describeStep(step: LoweredStep): string {
  const fused = [
    step.foldedBatchNorm !== null ? 'bn' : '',
    step.residual !== null ? 'add' : '',
    step.activation ?? '',
    step.shuffleGroups > 0 ? `shuffle(${step.shuffleGroups})` : '',
  ].filter((s) => s !== '');
  const main = step.nodes[0]!;
  const lowering = step.lowering;
  const why = lowering.kernel === 'reference' ? ` (${lowering.reason})` : '';
  const kernel = lowering.kernel === 'pool3x3s2' ? `${lowering.average ? 'avg' : 'max'}pool3x3s2` : lowering.kernel;
  return `${kernel} ${main.name || main.op}${fused.length > 0 ? ` +${fused.join('+')}` : ''}${why}`;
}
