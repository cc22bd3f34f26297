/**
 * The op registry and a functional API over concrete tensors. Each op validates (in its
 * `inferShape`) and dispatches to a pure reference kernel; no math lives here.
 *
 * @example
 * import { Tensor, ops } from 'shufflenet';
 * const x = Tensor.zeros([1, 6, 5, 5]);
 * const y = ops.channelShuffle(x, 3); // [1, 6, 5, 5], channels AABBCC → ABCABC
 */
import { UnknownNameError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { channelShuffleOp, concatOp } from './channels.js';
import { conv2dOp, type Conv2dAttrs } from './conv2d.js';
import { flattenOp, linearOp, softmaxOp } from './dense.js';
import { addOp, clipOp, hardSigmoidOp, hardSwishOp, mulChannelsOp, reluOp, sigmoidOp } from './elementwise.js';
import { batchNormOp, batchNormTrainingOp } from './normalization.js';
import { runOp, type OpDef, type OpType } from './op.js';
import { reshapeOp, sliceOp, transposeOp } from './layout.js';
import { broadcastAddOp, broadcastMulOp } from './broadcast.js';
import { gemmOp, matmulOp } from './matmul.js';
import { avgPool2dOp, globalAvgPoolOp, maxPool2dOp, type Pool2dAttrs } from './pool2d.js';

export * from './op.js';
export * from './conv2d.js';
export * from './pool2d.js';
export * from './normalization.js';
export * from './elementwise.js';
export * from './channels.js';
export * from './dense.js';
export * from './layout.js';
export * from './broadcast.js';
export * from './matmul.js';

/**
 * The registry, keyed by op type. Its type makes it complete (every key of `OpAttrs` has its op)
 * and each op's `type` match its key.
 */
const registry: { readonly [T in OpType]: OpDef<T> } = {
  conv2d: conv2dOp,
  batchNorm: batchNormOp,
  batchNormTraining: batchNormTrainingOp,
  relu: reluOp,
  clip: clipOp,
  sigmoid: sigmoidOp,
  hardSigmoid: hardSigmoidOp,
  hardSwish: hardSwishOp,
  add: addOp,
  mulChannels: mulChannelsOp,
  maxPool2d: maxPool2dOp,
  avgPool2d: avgPool2dOp,
  globalAvgPool: globalAvgPoolOp,
  channelShuffle: channelShuffleOp,
  concat: concatOp,
  flatten: flattenOp,
  linear: linearOp,
  softmax: softmaxOp,
  reshape: reshapeOp,
  transpose: transposeOp,
  slice: sliceOp,
  broadcastAdd: broadcastAddOp,
  broadcastMul: broadcastMulOp,
  gemm: gemmOp,
  matmul: matmulOp,
};

/** Whether `type` names a registered op. */
export function isOpType(type: string): type is OpType {
  return Object.hasOwn(registry, type);
}

/** Looks up an op by type; for a string that is not an op type, the error lists the known types. */
export function getOp<T extends OpType>(type: T): OpDef<T>;
export function getOp(type: string): OpDef;
export function getOp(type: string): OpDef {
  if (!isOpType(type)) {
    throw new UnknownNameError(`unknown op "${type}"; known ops: ${opTypes().join(', ')}`);
  }
  return registry[type];
}

export function opTypes(): OpType[] {
  return Object.keys(registry) as OpType[]; // Object.keys is typed string[]; the registry's keys are exactly OpType
}

/** A stride, kernel or padding given as one number for both axes or as [h, w]. */
export type Pair = number | readonly [number, number];

export function pair(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** Symmetric padding [h, w] as [top, left, bottom, right]. */
export function symmetricPadding(p: Pair): [number, number, number, number] {
  const [h, w] = pair(p);
  return [h, w, h, w];
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

export function conv2dAttrs(o: Conv2dOptions = {}): Conv2dAttrs {
  return {
    stride: pair(o.stride ?? 1),
    padding: symmetricPadding(o.padding ?? 0),
    dilation: pair(o.dilation ?? 1),
    groups: o.groups ?? 1,
  };
}

export interface Pool2dOptions {
  kernel: Pair;
  stride?: Pair;
  padding?: Pair;
}

export function pool2dAttrs(o: Pool2dOptions): Pool2dAttrs {
  return { kernel: pair(o.kernel), stride: pair(o.stride ?? o.kernel), padding: symmetricPadding(o.padding ?? 0) };
}

export const conv2d = (x: Tensor, weight: Tensor, bias?: Tensor | null, o?: Conv2dOptions): Tensor =>
  runOp(conv2dOp, bias ? [x, weight, bias] : [x, weight], conv2dAttrs(o));
export const batchNorm = (x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, eps = 1e-5): Tensor =>
  runOp(batchNormOp, [x, gamma, beta, mean, variance], { eps });
export const relu = (x: Tensor): Tensor => runOp(reluOp, [x], {});
export const clip = (x: Tensor, min: number, max: number): Tensor => runOp(clipOp, [x], { min, max });
export const sigmoid = (x: Tensor): Tensor => runOp(sigmoidOp, [x], {});
/** ONNX's HardSigmoid; the defaults are PyTorch's Hardsigmoid (ONNX's own default α is 0.2). */
export const hardSigmoid = (x: Tensor, alpha = 1 / 6, beta = 0.5): Tensor => runOp(hardSigmoidOp, [x], { alpha, beta });
export const hardSwish = (x: Tensor): Tensor => runOp(hardSwishOp, [x], { alpha: 1 / 6, beta: 0.5 });
export const add = (a: Tensor, b: Tensor): Tensor => runOp(addOp, [a, b], {});
export const mulChannels = (x: Tensor, scale: Tensor): Tensor => runOp(mulChannelsOp, [x, scale], {});
export const maxPool2d = (x: Tensor, o: Pool2dOptions): Tensor => runOp(maxPool2dOp, [x], pool2dAttrs(o));
export const avgPool2d = (x: Tensor, o: Pool2dOptions & { countIncludePad?: boolean }): Tensor =>
  runOp(avgPool2dOp, [x], { ...pool2dAttrs(o), countIncludePad: o.countIncludePad ?? true });
export const globalAvgPool = (x: Tensor): Tensor => runOp(globalAvgPoolOp, [x], {});
export const channelShuffle = (x: Tensor, groups: number): Tensor => runOp(channelShuffleOp, [x], { groups });
export const concat = (inputs: readonly Tensor[]): Tensor => runOp(concatOp, inputs, {});
export const flatten = (x: Tensor): Tensor => runOp(flattenOp, [x], {});
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor =>
  runOp(linearOp, bias ? [x, weight, bias] : [x, weight], {});
export const softmax = (x: Tensor): Tensor => runOp(softmaxOp, [x], {});
