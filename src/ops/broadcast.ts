/** Element-wise add and multiply with NumPy (ONNX multidirectional) broadcasting. */
import { ShapeError } from '../errors.js';
import { broadcastAddReference, broadcastMulReference } from '../kernels/reference/broadcast.js';
import { formatShape, type Shape } from '../tensor/tensor.js';
import type { OpDef } from './op.js';

/** The broadcast shape of two shapes, or an error naming both. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Per output axis, the stride of `shape` (row-major), 0 where it broadcasts. */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    const outAxis = outShape.length - shape.length + k;
    strides[outAxis] = shape[k] === 1 ? 0 : s;
    s *= shape[k]!;
  }
  return strides;
}

function binary<T extends 'broadcastAdd' | 'broadcastMul'>(type: T, kernel: typeof broadcastAddReference): OpDef<T> {
  return {
    type,
    arity: 2,
    inferShape: ([a, b]) => broadcastShapes(type, a!, b!),
    forward([a, b], _attrs, out) {
      kernel(
        a!.data,
        broadcastStrides(a!.shape, out.shape),
        b!.data,
        broadcastStrides(b!.shape, out.shape),
        out.data,
        out.shape,
      );
    },
    macs: () => 0,
  };
}

export const broadcastAddOp = binary('broadcastAdd', broadcastAddReference);
export const broadcastMulOp = binary('broadcastMul', broadcastMulReference);
