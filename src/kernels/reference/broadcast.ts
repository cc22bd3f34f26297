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

/**
 * The gradients of a broadcast add (`mul` false) or multiply: each operand's gradient sums the
 * output gradient (times the other operand, for a product) over the output elements it reached.
 * Sums run in float64. `gradA`/`gradB` may be null when not needed.
 */
export function broadcastBackwardReference(
  gradOut: Float32Array,
  outShape: readonly number[],
  a: Float32Array,
  aStrides: readonly number[],
  b: Float32Array,
  bStrides: readonly number[],
  gradA: Float32Array | null,
  gradB: Float32Array | null,
  mul: boolean,
): void {
  const sumA = gradA === null ? null : new Float64Array(gradA.length);
  const sumB = gradB === null ? null : new Float64Array(gradB.length);
  broadcastVisit(aStrides, bStrides, gradOut, outShape, (o, i, j) => {
    const g = gradOut[o]!;
    if (sumA !== null) sumA[i]! += mul ? g * b[j]! : g;
    if (sumB !== null) sumB[j]! += mul ? g * a[i]! : g;
  });
  if (sumA !== null) gradA!.set(sumA);
  if (sumB !== null) gradB!.set(sumB);
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
