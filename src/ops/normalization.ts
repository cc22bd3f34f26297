import { ShapeError } from '../errors.js';
import { batchNormReference } from '../kernels/reference/normalization.js';
import { formatShape } from '../tensor/tensor.js';
import { expectRank, type OpDef } from './op.js';

export interface BatchNormAttrs {
  eps: number;
}

/** Inference-mode batch norm. Inputs: x [N, C, H, W], gamma, beta, running mean, running var (each [C]). */
export const batchNormOp: OpDef<BatchNormAttrs> = {
  type: 'batchNorm',
  arity: 5,
  inferShape([x, ...stats], a) {
    expectRank('batchNorm', 'input', x!, 4);
    const c = x![1]!;
    const names = ['weight', 'bias', 'running_mean', 'running_var'];
    stats.forEach((s, i) => {
      if (s.length !== 1 || s[0] !== c) {
        throw new ShapeError(`batchNorm: ${names[i]} must have shape [${c}] but has shape ${formatShape(s)}`);
      }
    });
    if (!(a.eps > 0)) throw new ShapeError(`batchNorm: eps must be positive but is ${a.eps}`);
    return x!;
  },
  forward([x, gamma, beta, mean, variance], a, out) {
    const [n, c, h, w] = x!.shape;
    batchNormReference(x!.data, out.data, gamma!.data, beta!.data, mean!.data, variance!.data, a.eps, n!, c!, h! * w!);
  },
  macs: () => 0,
};
