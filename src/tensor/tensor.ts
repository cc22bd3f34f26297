/**
 * A dense Float32 tensor in row-major order. Image tensors are NCHW.
 *
 * The tensor owns no behaviour beyond its shape and storage: ops live in `src/ops`, kernels in
 * `src/kernels`. That keeps the same storage usable by the reference kernels, the fused runtime
 * and the file readers.
 *
 * @example
 * const x = Tensor.zeros([1, 3, 4, 4]); // [N, C, H, W]
 * x.data[0] = 1;
 */
import { ShapeError } from '../errors.js';

export type Shape = readonly number[];

/** Most elements of one tensor: 2^28, 1 GiB of float32 (docs/input-safety.md). */
export const maxTensorElements = 2 ** 28;

/**
 * While a budget is set (`withElementBudget`), every tensor allocated without data spends its
 * elements from it, and the allocation that would overdraw it throws instead of allocating.
 */
let budget: { remaining: number; limit: number; what: string } | null = null;

/**
 * Runs `build` allowing it to allocate at most `elements` tensor elements, e.g. a model rebuilt from
 * a file may not allocate more than the file stores. `what` says in errors whose budget it was.
 */
export function withElementBudget<T>(elements: number, what: string, build: () => T): T {
  const outer = budget;
  budget = { remaining: elements, limit: elements, what };
  try {
    return build();
  } finally {
    budget = outer;
  }
}

export class Tensor {
  readonly shape: Shape;
  readonly data: Float32Array;

  constructor(shape: Shape, data?: Float32Array) {
    const size = shapeSize(shape);
    if (data !== undefined && data.length !== size) {
      throw new Error(`Tensor: shape ${formatShape(shape)} needs ${size} values but got ${data.length}`);
    }
    if (data === undefined) {
      if (size > maxTensorElements) {
        throw new ShapeError(
          `tensor of shape ${formatShape(shape)} has ${size} elements, over the limit of ${maxTensorElements}`,
        );
      }
      if (budget !== null && (budget.remaining -= size) < 0) {
        throw new ShapeError(
          `${budget.what}: needs more than ${budget.limit.toLocaleString('en-US')} tensor elements ` +
            `(a tensor of shape ${formatShape(shape)} overdrew it)`,
        );
      }
    }
    this.shape = Object.freeze([...shape]);
    this.data = data ?? new Float32Array(size);
  }

  static zeros(shape: Shape): Tensor {
    return new Tensor(shape);
  }

  static filled(shape: Shape, value: number): Tensor {
    return new Tensor(shape, new Float32Array(shapeSize(shape)).fill(value));
  }

  static from(shape: Shape, values: ArrayLike<number>): Tensor {
    return new Tensor(shape, Float32Array.from(values));
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A view with another shape over the same storage. */
  reshape(shape: Shape): Tensor {
    return new Tensor(shape, this.data);
  }

  clone(): Tensor {
    return new Tensor(this.shape, this.data.slice());
  }

  toString(): string {
    return `Tensor${formatShape(this.shape)}`;
  }
}

/** Number of elements of a shape; rejects negative, fractional or non-finite dimensions. */
export function shapeSize(shape: Shape): number {
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`invalid shape ${formatShape(shape)}: dimensions must be non-negative integers`);
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) {
    throw new ShapeError(`invalid shape ${formatShape(shape)}: ${size} elements is too many`);
  }
  return size;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
