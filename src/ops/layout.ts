/**
 * Generic layout ops, as imported ONNX graphs use them: reshape, transpose and slice. Our own
 * networks never need them (channel shuffle has its own op, which the fused runtime folds away).
 */
import { ShapeError } from '../errors.js';
import { rowMajorStrides, sliceReference, transposeReference } from '../kernels/reference/layout.js';
import { formatShape, shapeSize, type Shape } from '../tensor/tensor.js';
import type { OpDef } from './op.js';

export interface ReshapeAttrs {
  /**
   * Target shape with ONNX Reshape semantics: 0 copies the input's dimension at the same index and
   * one −1 is inferred, so `[0, -1]` flattens any batch.
   */
  shape: readonly number[];
}

/** The output shape of Reshape, or an error naming both shapes. */
export function resolveReshape(input: Shape, target: readonly number[]): number[] {
  const size = shapeSize(input);
  let inferred = -1;
  let known = 1;
  const out = target.map((d, i) => {
    if (!Number.isInteger(d) || d < -1) {
      throw new ShapeError(`reshape: target shape ${formatShape(target)} has an invalid dimension ${d}`);
    }
    if (d === -1) {
      if (inferred >= 0) throw new ShapeError(`reshape: target shape ${formatShape(target)} has more than one -1`);
      inferred = i;
      return -1;
    }
    if (d === 0) {
      if (i >= input.length) {
        throw new ShapeError(`reshape: target ${formatShape(target)} copies dimension ${i} of ${formatShape(input)}`);
      }
      known *= input[i]!;
      return input[i]!;
    }
    known *= d;
    return d;
  });
  if (inferred >= 0) {
    if (known === 0 || size % known !== 0) {
      throw new ShapeError(`reshape: cannot reshape ${formatShape(input)} (${size} values) to ${formatShape(target)}`);
    }
    out[inferred] = size / known;
  } else if (known !== size) {
    throw new ShapeError(`reshape: cannot reshape ${formatShape(input)} (${size} values) to ${formatShape(target)}`);
  }
  return out;
}

export const reshapeOp: OpDef<'reshape'> = {
  type: 'reshape',
  arity: 1,
  inferShape: ([x], a) => resolveReshape(x!, a.shape),
  forward([x], _a, out) {
    out.data.set(x!.data);
  },
  macs: () => 0,
};

export interface TransposeAttrs {
  /** Output axis k is input axis perm[k]. */
  perm: readonly number[];
}

export const transposeOp: OpDef<'transpose'> = {
  type: 'transpose',
  arity: 1,
  inferShape([x], a) {
    const rank = x!.length;
    const seen = new Set(a.perm);
    if (
      a.perm.length !== rank ||
      seen.size !== rank ||
      !a.perm.every((p) => Number.isInteger(p) && p >= 0 && p < rank)
    ) {
      throw new ShapeError(
        `transpose: perm [${a.perm.join(', ')}] is not a permutation of the ${rank} axes of ${formatShape(x!)}`,
      );
    }
    return a.perm.map((p) => x![p]!);
  },
  forward([x], a, out) {
    transposeReference(x!.data, out.data, x!.shape, a.perm);
  },
  macs: () => 0,
};

export interface SliceAttrs {
  axis: number;
  /** First index (negative counts from the end); clamped to the axis like ONNX Slice. */
  start: number;
  /** One past the last index (negative counts from the end); clamped. */
  end: number;
}

/** The [start, length] a slice takes of an axis of `dim` (ONNX clamping). */
export function sliceRange(dim: number, a: SliceAttrs): [number, number] {
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
  const start = clamp(a.start);
  return [start, Math.max(clamp(a.end) - start, 0)];
}

/** A contiguous range along one axis (ONNX Slice with step 1, or one output of Split). */
export const sliceOp: OpDef<'slice'> = {
  type: 'slice',
  arity: 1,
  inferShape([x], a) {
    if (!Number.isInteger(a.axis) || a.axis < 0 || a.axis >= x!.length) {
      throw new ShapeError(`slice: axis ${a.axis} is out of range for ${formatShape(x!)}`);
    }
    if (!Number.isInteger(a.start) || !Number.isInteger(a.end)) {
      throw new ShapeError(`slice: start ${a.start} and end ${a.end} must be integers`);
    }
    const out = [...x!];
    out[a.axis] = sliceRange(x![a.axis]!, a)[1];
    return out;
  },
  forward([x], a, out) {
    const shape = x!.shape;
    const dim = shape[a.axis]!;
    const [start, length] = sliceRange(dim, a);
    const strides = rowMajorStrides(shape);
    const inner = strides[a.axis]!;
    const outer = shapeSize(shape.slice(0, a.axis));
    sliceReference(x!.data, out.data, outer, dim, inner, start, length);
  },
  macs: () => 0,
};
