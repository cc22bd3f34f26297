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
import { addOp, clipOp, mulChannelsOp, reluOp, sigmoidOp } from './elementwise.js';
import { batchNormOp, batchNormTrainingOp } from './normalization.js';
import { runOp, type OpDef } from './op.js';
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

const allOps: readonly OpDef<never>[] = [
  conv2dOp,
  batchNormOp,
  batchNormTrainingOp,
  reluOp,
  clipOp,
  sigmoidOp,
  addOp,
  mulChannelsOp,
  maxPool2dOp,
  avgPool2dOp,
  globalAvgPoolOp,
  channelShuffleOp,
  concatOp,
  flattenOp,
  linearOp,
  softmaxOp,
  reshapeOp,
  transposeOp,
  sliceOp,
  broadcastAddOp,
  broadcastMulOp,
  gemmOp,
  matmulOp,
] as unknown as OpDef<never>[];

const registry = new Map<string, OpDef<unknown>>();
for (const op of allOps) {
  if (registry.has(op.type)) throw new Error(`op registry: duplicate op type "${op.type}"`);
  registry.set(op.type, op as OpDef<unknown>);
}

/** Looks up an op by type; the error lists the known types. */
export function getOp(type: string): OpDef<unknown> {
  const op = registry.get(type);
  if (op === undefined) {
    throw new UnknownNameError(`unknown op "${type}"; known ops: ${[...registry.keys()].join(', ')}`);
  }
  return op;
}

export function opTypes(): string[] {
  return [...registry.keys()];
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
