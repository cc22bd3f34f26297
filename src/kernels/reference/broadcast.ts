/**
 * Reference element-wise binary kernels with NumPy broadcasting. The op computes, for each output
 * axis, the stride to step in each input (0 where that input has size 1 or lacks the axis).
 */
export function broadcastAddReference(
  a: Float32Array,
  aStrides: readonly number[],
  b: Float32Array,
  bStrides: readonly number[],
  output: Float32Array,
  outShape: readonly number[],
): void {
  broadcastVisit(aStrides, bStrides, output, outShape, (o, i, j) => (output[o] = a[i]! + b[j]!));
}

export function broadcastMulReference(
  a: Float32Array,
  aStrides: readonly number[],
  b: Float32Array,
  bStrides: readonly number[],
  output: Float32Array,
  outShape: readonly number[],
): void {
  broadcastVisit(aStrides, bStrides, output, outShape, (o, i, j) => (output[o] = a[i]! * b[j]!));
}

function broadcastVisit(
  aStrides: readonly number[],
  bStrides: readonly number[],
  output: Float32Array,
  outShape: readonly number[],
  visit: (o: number, i: number, j: number) => void,
): void {
  const rank = outShape.length;
  const index = new Array<number>(rank).fill(0);
  let i = 0;
  let j = 0;
  for (let o = 0; o < output.length; o++) {
    visit(o, i, j);
    for (let k = rank - 1; k >= 0; k--) {
      index[k]!++;
      i += aStrides[k]!;
      j += bStrides[k]!;
      if (index[k]! < outShape[k]!) break;
      i -= aStrides[k]! * index[k]!;
      j -= bStrides[k]! * index[k]!;
      index[k] = 0;
    }
  }
}
