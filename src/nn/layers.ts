/**
 * The layers the paper's networks are made of. Each one registers PyTorch-named tensors and adds
 * its op(s) to the graph; none does arithmetic itself.
 */
import type { GraphBuilder, Value } from '../graph/builder.js';
import {
  addOp,
  avgPool2dOp,
  batchNormOp,
  batchNormTrainingOp,
  channelShuffleOp,
  concatOp,
  conv2dAttrs,
  conv2dOp,
  flattenOp,
  globalAvgPoolOp,
  linearOp,
  maxPool2dOp,
  mulChannelsOp,
  pool2dAttrs,
  reluOp,
  sigmoidOp,
  sliceOp,
  type Pair,
  pair,
} from '../ops/index.js';
import { ConfigError } from '../errors.js';
import { Random } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

export interface Conv2dConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: Pair;
  stride?: Pair;
  padding?: Pair;
  groups?: number;
  bias?: boolean;
}

/**
 * A tensor of normal random values with standard deviation `std`, or zeros when `rng` is null
 * (models built only to be traced or measured skip the cost of drawing millions of numbers).
 */
function normalTensor(shape: readonly number[], std: number, rng: Random | null): Tensor {
  const t = new Tensor(shape);
  if (rng !== null) for (let i = 0; i < t.size; i++) t.data[i] = rng.normal() * std;
  return t;
}

/** 2-D convolution with weight [C_out, C_in / groups, kH, kW] and optional bias [C_out]. */
export class Conv2d extends Module {
  readonly config: Required<Conv2dConfig>;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(config: Conv2dConfig, rng: Random | null = new Random(0)) {
    super();
    this.config = { stride: 1, padding: 0, groups: 1, bias: false, ...config };
    const { inChannels, outChannels, groups } = this.config;
    if (!Number.isInteger(groups) || groups < 1 || inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new ConfigError(
        `conv2d: ${inChannels} input and ${outChannels} output channels cannot be split into groups=${groups}` +
          ` (both must be multiples of ${groups})`,
      );
    }
    const [kh, kw] = pair(this.config.kernelSize);
    // He initialisation with fan-out, as torchvision does for ShuffleNet and MobileNet.
    const fanOut = (outChannels / groups) * kh * kw;
    this.weight = this.registerParameter(
      'weight',
      normalTensor([outChannels, inChannels / groups, kh, kw], Math.sqrt(2 / fanOut), rng),
    );
    this.bias = this.config.bias ? this.registerParameter('bias', Tensor.zeros([outChannels])) : null;
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const inputs = [x, this.tensorValue(g, 'weight')];
    if (this.bias) inputs.push(this.tensorValue(g, 'bias'));
    return g.apply(conv2dOp, inputs, conv2dAttrs(this.config));
  }
}

/**
 * Batch normalisation: weight, bias, running_mean, running_var. Traced for inference it normalises
 * with the running statistics; traced for training, with the batch's, and a training run updates
 * the running ones with `momentum` (PyTorch's convention: new = (1 − m) · old + m · batch).
 */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;

  constructor(
    readonly channels: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    super();
    this.weight = this.registerParameter('weight', Tensor.filled([channels], 1));
    this.bias = this.registerParameter('bias', Tensor.zeros([channels]));
    this.runningMean = this.registerBuffer('running_mean', Tensor.zeros([channels]));
    this.runningVar = this.registerBuffer('running_var', Tensor.filled([channels], 1));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const inputs = [x, ...['weight', 'bias', 'running_mean', 'running_var'].map((n) => this.tensorValue(g, n))];
    return g.training
      ? g.apply(batchNormTrainingOp, inputs, { eps: this.eps, momentum: this.momentum })
      : g.apply(batchNormOp, inputs, { eps: this.eps });
  }
}

/** Fully connected layer with PyTorch's [out, in] weight. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, bias = true, rng: Random | null = new Random(0)) {
    super();
    // Small normal init, as torchvision does for classifiers (std 0.01).
    this.weight = this.registerParameter('weight', normalTensor([outFeatures, inFeatures], 0.01, rng));
    this.bias = bias ? this.registerParameter('bias', Tensor.zeros([outFeatures])) : null;
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const inputs = [x, this.tensorValue(g, 'weight')];
    if (this.bias) inputs.push(this.tensorValue(g, 'bias'));
    return g.apply(linearOp, inputs, {});
  }
}

/**
 * Squeeze-and-excitation (Hu et al.): global pool, 1×1 conv down to `hidden`, ReLU, 1×1 conv back,
 * sigmoid, and a per-channel rescale. Named `fc1`/`fc2` like torchvision's SqueezeExcitation.
 */
export class SqueezeExcite extends Module {
  readonly fc1: Conv2d;
  readonly fc2: Conv2d;

  constructor(channels: number, hidden: number, rng: Random | null = new Random(0)) {
    super();
    this.fc1 = this.registerModule(
      'fc1',
      new Conv2d({ inChannels: channels, outChannels: hidden, kernelSize: 1, bias: true }, rng),
    );
    this.fc2 = this.registerModule(
      'fc2',
      new Conv2d({ inChannels: hidden, outChannels: channels, kernelSize: 1, bias: true }, rng),
    );
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const squeezed = g.apply(globalAvgPoolOp, [x], {}); // [N, C, 1, 1]
    const hidden = g.apply(reluOp, [this.fc1.call(g, squeezed)], {});
    const scale = g.apply(sigmoidOp, [this.fc2.call(g, hidden)], {});
    return g.apply(mulChannelsOp, [x, scale], {});
  }
}

// Functional helpers for ops without parameters, so model code reads like the paper.
export const relu = (g: GraphBuilder, x: Value): Value => g.apply(reluOp, [x], {});
export const add = (g: GraphBuilder, a: Value, b: Value): Value => g.apply(addOp, [a, b], {});
export const concat = (g: GraphBuilder, ...xs: Value[]): Value => g.apply(concatOp, xs, {});
export const channelShuffle = (g: GraphBuilder, x: Value, groups: number): Value =>
  g.apply(channelShuffleOp, [x], { groups });
export const maxPool = (g: GraphBuilder, x: Value, kernel: Pair, stride: Pair, padding: Pair): Value =>
  g.apply(maxPool2dOp, [x], pool2dAttrs({ kernel, stride, padding }));
/** Average pooling with PyTorch's default count_include_pad=True (the official shortcut). */
export const avgPool = (g: GraphBuilder, x: Value, kernel: Pair, stride: Pair, padding: Pair): Value =>
  g.apply(avgPool2dOp, [x], { ...pool2dAttrs({ kernel, stride, padding }), countIncludePad: true });
export const globalAvgPool = (g: GraphBuilder, x: Value): Value => g.apply(globalAvgPoolOp, [x], {});
export const flatten = (g: GraphBuilder, x: Value): Value => g.apply(flattenOp, [x], {});
/** Channels [start, end) of an NCHW value (ShuffleNet V2's channel split). */
export const sliceChannels = (g: GraphBuilder, x: Value, start: number, end: number): Value =>
  g.apply(sliceOp, [x], { axis: 1, start, end });
