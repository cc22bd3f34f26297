import { ShapeError } from '../errors.js';
import {
  addReference,
  clipReference,
  hardSigmoidReference,
  hardSwishReference,
  mulChannelsReference,
  reluReference,
  sigmoidReference,
} from '../kernels/reference/elementwise.js';
import { formatShape, sameShape, type Shape } from '../tensor/tensor.js';
import { expectRank, type OpDef } from './op.js';

const same = ([x]: readonly Shape[]): Shape => x!;

export const reluOp: OpDef<'relu'> = {
  type: 'relu',
  arity: 1,
  inferShape: same,
  forward: ([x], _a, out) => reluReference(x!.data, out.data),
  macs: () => 0,
};

export interface ClipAttrs {
  min: number;
  max: number;
}

export const clipOp: OpDef<'clip'> = {
  type: 'clip',
  arity: 1,
  inferShape(inputs, a) {
    if (!(a.min <= a.max)) throw new ShapeError(`clip: min ${a.min} must not exceed max ${a.max}`);
    return same(inputs);
  },
  forward: ([x], a, out) => clipReference(x!.data, out.data, a.min, a.max),
  macs: () => 0,
};

/** The line of a hard sigmoid, max(0, min(1, αx + β)); hard swish multiplies it by x. */
export interface HardSigmoidAttrs {
  alpha: number;
  beta: number;
}

function hardSigmoidShape(op: string, inputs: readonly Shape[], a: HardSigmoidAttrs): Shape {
  if (!(Number.isFinite(a.alpha) && Number.isFinite(a.beta))) {
    throw new ShapeError(`${op}: alpha ${a.alpha} and beta ${a.beta} must be finite`);
  }
  return same(inputs);
}

export const hardSigmoidOp: OpDef<'hardSigmoid'> = {
  type: 'hardSigmoid',
  arity: 1,
  inferShape: (inputs, a) => hardSigmoidShape('hardSigmoid', inputs, a),
  forward: ([x], a, out) => hardSigmoidReference(x!.data, out.data, a.alpha, a.beta),
  macs: () => 0,
};

export const hardSwishOp: OpDef<'hardSwish'> = {
  type: 'hardSwish',
  arity: 1,
  inferShape: (inputs, a) => hardSigmoidShape('hardSwish', inputs, a),
  forward: ([x], a, out) => hardSwishReference(x!.data, out.data, a.alpha, a.beta),
  macs: () => 0,
};

export const sigmoidOp: OpDef<'sigmoid'> = {
  type: 'sigmoid',
  arity: 1,
  inferShape: same,
  forward: ([x], _a, out) => sigmoidReference(x!.data, out.data),
  macs: () => 0,
};

/** Element-wise sum of two tensors of the same shape (the residual add). */
export const addOp: OpDef<'add'> = {
  type: 'add',
  arity: 2,
  inferShape([a, b]) {
    if (!sameShape(a!, b!)) {
      throw new ShapeError(`add: shapes ${formatShape(a!)} and ${formatShape(b!)} differ`);
    }
    return a!;
  },
  forward: ([a, b], _a, out) => addReference(a!.data, b!.data, out.data),
  macs: () => 0,
};

/** x [N, C, H, W] times a per-channel factor s [N, C, 1, 1]: the excitation step of SE. */
export const mulChannelsOp: OpDef<'mulChannels'> = {
  type: 'mulChannels',
  arity: 2,
  inferShape([x, s]) {
    expectRank('mulChannels', 'input', x!, 4);
    if (!sameShape(s!, [x![0]!, x![1]!, 1, 1])) {
      throw new ShapeError(
        `mulChannels: scale must have shape ${formatShape([x![0]!, x![1]!, 1, 1])} but has shape ${formatShape(s!)}`,
      );
    }
    return x!;
  },
  forward([x, s], _a, out) {
    const [n, c, h, w] = x!.shape;
    mulChannelsReference(x!.data, s!.data, out.data, n! * c!, h! * w!);
  },
  macs: () => 0,
};
