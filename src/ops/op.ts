import { ShapeError } from '../errors.js';
import { formatShape, shapeSize, Tensor, type Shape } from '../tensor/tensor.js';
import type { ChannelShuffleAttrs } from './channels.js';
import type { Conv2dAttrs } from './conv2d.js';
import type { ClipAttrs, HardSigmoidAttrs } from './elementwise.js';
import type { ReshapeAttrs, SliceAttrs, TransposeAttrs } from './layout.js';
import type { GemmAttrs } from './matmul.js';
import type { BatchNormAttrs, BatchNormTrainingAttrs } from './normalization.js';
import type { AvgPool2dAttrs, Pool2dAttrs } from './pool2d.js';

/** The attributes of an op that has none: `{}` and nothing else. */
export type NoAttrs = Record<string, never>;

/**
 * Every op type and its attributes. A graph node is keyed by its op type, so
 * `if (node.op === 'conv2d') node.attrs.stride` is typed; an op added to the registry is added here.
 */
export interface OpAttrs {
  conv2d: Conv2dAttrs;
  batchNorm: BatchNormAttrs;
  batchNormTraining: BatchNormTrainingAttrs;
  relu: NoAttrs;
  clip: ClipAttrs;
  sigmoid: NoAttrs;
  hardSigmoid: HardSigmoidAttrs;
  hardSwish: HardSigmoidAttrs;
  add: NoAttrs;
  mulChannels: NoAttrs;
  maxPool2d: Pool2dAttrs;
  avgPool2d: AvgPool2dAttrs;
  globalAvgPool: NoAttrs;
  channelShuffle: ChannelShuffleAttrs;
  concat: NoAttrs;
  flatten: NoAttrs;
  linear: NoAttrs;
  softmax: NoAttrs;
  reshape: ReshapeAttrs;
  transpose: TransposeAttrs;
  slice: SliceAttrs;
  broadcastAdd: NoAttrs;
  broadcastMul: NoAttrs;
  gemm: GemmAttrs;
  matmul: NoAttrs;
}

/** An op type: a key of the op registry (`conv2d`, `batchNorm`, …). */
export type OpType = keyof OpAttrs;

/**
 * An operation, defined once: the graph builder calls `inferShape` (which is where all validation
 * lives), the reference executor calls `forward`, and the complexity counter calls `macs`.
 * `OpDef` without a type argument is any op, taking any op's attributes.
 */
export interface OpDef<T extends OpType = OpType> {
  readonly type: T;
  /** Number of inputs, or [min, max]. */
  readonly arity: number | readonly [number, number];
  /** Validates the input shapes and attributes and returns the output shape. */
  inferShape(inputs: readonly Shape[], attrs: OpAttrs[T]): Shape;
  /** Reference computation; inputs were validated by `inferShape`, `output` has its shape. */
  forward(inputs: readonly Tensor[], attrs: OpAttrs[T], output: Tensor): void;
  /** Multiply-adds: what the paper calls FLOPs. Zero for ops the paper does not count. */
  macs(inputs: readonly Shape[], output: Shape, attrs: OpAttrs[T]): number;
}

/** Validates, allocates and runs one op on concrete tensors. */
export function runOp<T extends OpType>(op: OpDef<T>, inputs: readonly Tensor[], attrs: OpAttrs[T]): Tensor {
  const output = new Tensor(
    inferOutputShape(
      op,
      inputs.map((t) => t.shape),
      attrs,
    ),
  );
  op.forward(inputs, attrs, output);
  return output;
}

/**
 * Most elements of one value of a graph (an activation): 2^27, 512 MiB of float32. It bounds what a
 * plan allocates for an input or a preprocessing crop read from a file (docs/input-safety.md).
 */
export const maxValueElements = 2 ** 27;

/**
 * The one shape rule every executor and tracer applies to a node: its arity, its op's shape
 * inference, and the size limit of the value it makes.
 */
export function inferOutputShape<T extends OpType>(op: OpDef<T>, inputs: readonly Shape[], attrs: OpAttrs[T]): Shape {
  checkArity(op, inputs.length);
  return checkValueSize(op.type, op.inferShape(inputs, attrs));
}

/** Refuses a value of more than `maxValueElements` elements; `what` names it. */
export function checkValueSize(what: string, shape: Shape): Shape {
  const size = shapeSize(shape); // non-negative integer dimensions
  if (size > maxValueElements) {
    throw new ShapeError(
      `${what}: a value of shape ${formatShape(shape)} would hold ${size.toLocaleString('en-US')} elements, ` +
        `over the limit of ${maxValueElements.toLocaleString('en-US')}`,
    );
  }
  return shape;
}

export function checkArity(op: OpDef, count: number): void {
  const [min, max] = typeof op.arity === 'number' ? [op.arity, op.arity] : op.arity;
  if (count < min || count > max) {
    const want = min === max ? `${min}` : `${min} to ${max === Infinity ? 'any number of' : max}`;
    throw new ShapeError(`${op.type}: expected ${want} inputs but got ${count}`);
  }
}

export function expectRank(op: string, what: string, shape: Shape, rank: number): void {
  if (shape.length !== rank) {
    throw new ShapeError(`${op}: ${what} must have rank ${rank} but has shape ${formatShape(shape)}`);
  }
}

export function expectPositiveInts(op: string, what: string, values: readonly number[]): void {
  if (!values.every((v) => Number.isInteger(v) && v > 0)) {
    throw new ShapeError(`${op}: ${what} must be positive integers but is [${values.join(', ')}]`);
  }
}

export function expectNonNegativeInts(op: string, what: string, values: readonly number[]): void {
  if (!values.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new ShapeError(`${op}: ${what} must be non-negative integers but is [${values.join(', ')}]`);
  }
}

/** Output length of a sliding window, or an error if the window does not fit. */
export function windowOutput(
  op: string,
  axis: string,
  input: number,
  kernel: number,
  stride: number,
  padBefore: number,
  padAfter: number,
  dilation = 1,
): number {
  const span = dilation * (kernel - 1) + 1;
  const padded = input + padBefore + padAfter;
  if (padded < span) {
    throw new ShapeError(
      `${op}: the ${axis} is ${input} (+${padBefore + padAfter} padding) but the kernel spans ${span}`,
    );
  }
  return Math.floor((padded - span) / stride) + 1;
}
