import { ShapeError } from '../errors.js';
import { linearReference, softmaxReference } from '../kernels/reference/dense.js';
import { formatShape, shapeSize } from '../tensor/tensor.js';
import { expectRank, type OpDef } from './op.js';

/** Flattens everything after the batch axis: [N, ...] → [N, prod(...)]. */
export const flattenOp: OpDef<'flatten'> = {
  type: 'flatten',
  arity: 1,
  inferShape([x]) {
    if (x!.length < 1) throw new ShapeError('flatten: input must have a batch axis');
    return [x![0]!, shapeSize(x!.slice(1))];
  },
  forward([x], _a, out) {
    out.data.set(x!.data);
  },
  macs: () => 0,
};

/** Fully connected layer. Inputs: x [N, in], weight [out, in], optional bias [out]. */
export const linearOp: OpDef<'linear'> = {
  type: 'linear',
  arity: [2, 3],
  inferShape([x, w, b]) {
    expectRank('linear', 'input', x!, 2);
    expectRank('linear', 'weight', w!, 2);
    if (w![1] !== x![1]) {
      throw new ShapeError(`linear: input has ${x![1]} features but weight ${formatShape(w!)} expects ${w![1]}`);
    }
    if (b !== undefined && (b.length !== 1 || b[0] !== w![0])) {
      throw new ShapeError(`linear: bias must have shape [${w![0]}] but has shape ${formatShape(b)}`);
    }
    return [x![0]!, w![0]!];
  },
  forward([x, w, b], _a, out) {
    const [n, inF] = x!.shape;
    linearReference(x!.data, w!.data, b?.data ?? null, out.data, n!, inF!, w!.shape[0]!);
  },
  macs: ([x, w]) => x![0]! * w![0]! * w![1]!,
};

/** Softmax over the last axis. */
export const softmaxOp: OpDef<'softmax'> = {
  type: 'softmax',
  arity: 1,
  inferShape([x]) {
    if (x!.length < 1) throw new ShapeError('softmax: input must have at least one axis');
    return x!;
  },
  forward([x], _a, out) {
    const width = x!.shape[x!.shape.length - 1]!;
    softmaxReference(x!.data, out.data, width === 0 ? 0 : x!.size / width, width);
  },
  macs: () => 0,
};
