import { ShapeError } from '../errors.js';
import { batchNormReference, batchNormTrainingReference } from '../kernels/reference/normalization.js';
import { formatShape, type Shape } from '../tensor/tensor.js';
import { expectRank, type OpDef } from './op.js';

export interface BatchNormAttrs {
  eps: number;
}

export interface BatchNormTrainingAttrs extends BatchNormAttrs {
  /** Weight of the batch statistics in the running-statistics update (PyTorch's 0.1). */
  momentum: number;
}

function batchNormShape(op: string, [x, ...stats]: readonly Shape[], eps: number): Shape {
  expectRank(op, 'input', x!, 4);
  const c = x![1]!;
  const names = ['weight', 'bias', 'running_mean', 'running_var'];
  stats.forEach((s, i) => {
    if (s.length !== 1 || s[0] !== c) {
      throw new ShapeError(`${op}: ${names[i]} must have shape [${c}] but has shape ${formatShape(s)}`);
    }
  });
  if (!(eps > 0)) throw new ShapeError(`${op}: eps must be positive but is ${eps}`);
  return x!;
}

/** Inference-mode batch norm. Inputs: x [N, C, H, W], gamma, beta, running mean, running var (each [C]). */
export const batchNormOp: OpDef<'batchNorm'> = {
  type: 'batchNorm',
  arity: 5,
  inferShape: (inputs, a) => batchNormShape('batchNorm', inputs, a.eps),
  forward([x, gamma, beta, mean, variance], a, out) {
    const [n, c, h, w] = x!.shape;
    batchNormReference(x!.data, out.data, gamma!.data, beta!.data, mean!.data, variance!.data, a.eps, n!, c!, h! * w!);
  },
  macs: () => 0,
};

/**
 * Training-mode batch norm: the same inputs as `batchNorm`, but the output is normalised with the
 * batch's statistics. The running statistics are inputs so that a training run (src/autograd)
 * can update them with `momentum`; this forward itself leaves them untouched.
 */
export const batchNormTrainingOp: OpDef<'batchNormTraining'> = {
  type: 'batchNormTraining',
  arity: 5,
  inferShape(inputs, a) {
    const x = batchNormShape('batchNormTraining', inputs, a.eps);
    if (!(a.momentum >= 0 && a.momentum <= 1)) {
      throw new ShapeError(`batchNormTraining: momentum must be in [0, 1] but is ${a.momentum}`);
    }
    const perChannel = x[0]! * x[2]! * x[3]!;
    if (perChannel < 2) {
      // One value per channel has no variance (PyTorch refuses it too).
      throw new ShapeError(
        `batchNormTraining: input ${formatShape(x)} has ${perChannel} value per channel; training needs more than 1`,
      );
    }
    return x;
  },
  forward([x, gamma, beta], a, out) {
    const [n, c, h, w] = x!.shape;
    batchNormTrainingReference(x!.data, out.data, gamma!.data, beta!.data, a.eps, n!, c!, h! * w!);
  },
  macs: () => 0,
};
