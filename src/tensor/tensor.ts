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
export type Shape = readonly number[];

export class Tensor {
  readonly shape: Shape;
  readonly data: Float32Array;

  constructor(shape: Shape, data?: Float32Array) {
    const size = shapeSize(shape);
    if (data !== undefined && data.length !== size) {
      throw new Error(`Tensor: shape ${formatShape(shape)} needs ${size} values but got ${data.length}`);
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
      throw new Error(`invalid shape ${formatShape(shape)}: dimensions must be non-negative integers`);
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) {
    throw new Error(`invalid shape ${formatShape(shape)}: ${size} elements is too many`);
  }
  return size;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
