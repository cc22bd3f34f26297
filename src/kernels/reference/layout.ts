/** Reference kernels that only move values: transpose and slice. */

/**
 * Generic N-D transpose: output axis k is input axis perm[k], so
 * out[i_0, …, i_{r-1}] = in[j] with j[perm[k]] = i_k. Shapes are row-major.
 */
export function transposeReference(
  input: Float32Array,
  output: Float32Array,
  inShape: readonly number[],
  perm: readonly number[],
): void {
  const rank = inShape.length;
  const inStrides = rowMajorStrides(inShape);
  const outShape = perm.map((p) => inShape[p]!);
  // The input stride to step when the output index k advances.
  const strides = perm.map((p) => inStrides[p]!);
  const index = new Array<number>(rank).fill(0);
  let from = 0;
  for (let o = 0; o < output.length; o++) {
    output[o] = input[from]!;
    for (let k = rank - 1; k >= 0; k--) {
      index[k]!++;
      from += strides[k]!;
      if (index[k]! < outShape[k]!) break;
      from -= strides[k]! * index[k]!;
      index[k] = 0;
    }
  }
}

/** Copies `length` entries starting at `start` along the middle axis of [outer, dim, inner]. */
export function sliceReference(
  input: Float32Array, // [outer, dim, inner]
  output: Float32Array, // [outer, length, inner]
  outer: number,
  dim: number,
  inner: number,
  start: number,
  length: number,
): void {
  for (let o = 0; o < outer; o++) {
    const from = (o * dim + start) * inner;
    output.set(input.subarray(from, from + length * inner), o * length * inner);
  }
}

/** The gradient of `sliceReference`: the output gradient in its range, zeros elsewhere. */
export function sliceBackwardReference(
  gradOutput: Float32Array, // [outer, length, inner]
  gradInput: Float32Array, // [outer, dim, inner], zeroed by the caller
  outer: number,
  dim: number,
  inner: number,
  start: number,
  length: number,
): void {
  for (let o = 0; o < outer; o++) {
    gradInput.set(gradOutput.subarray(o * length * inner, (o + 1) * length * inner), (o * dim + start) * inner);
  }
}

export function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    strides[k] = s;
    s *= shape[k]!;
  }
  return strides;
}
