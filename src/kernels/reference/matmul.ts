/** Reference matrix products: ONNX Gemm and batched MatMul. Sums accumulate in float64. */

export interface GemmGeometry {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  /** Strides of C over the rows and columns of the [m, n] output (0 where C broadcasts). */
  cRowStride: number;
  cColStride: number;
}

/** out = alpha · op(A) · op(B) + beta · C, with op(X) = Xᵀ when trans. */
export function gemmReference(
  a: Float32Array, // [m, k] or [k, m]
  b: Float32Array, // [k, n] or [n, k]
  c: Float32Array | null,
  output: Float32Array, // [m, n]
  g: GemmGeometry,
): void {
  for (let i = 0; i < g.m; i++) {
    for (let j = 0; j < g.n; j++) {
      let sum = 0;
      for (let p = 0; p < g.k; p++) {
        const av = g.transA ? a[p * g.m + i]! : a[i * g.k + p]!;
        const bv = g.transB ? b[j * g.k + p]! : b[p * g.n + j]!;
        sum += av * bv;
      }
      let value = g.alpha * sum;
      if (c !== null) value += g.beta * c[i * g.cRowStride + j * g.cColStride]!;
      output[i * g.n + j] = value;
    }
  }
}

/**
 * `batches` independent products [m, k] · [k, n]; `aOffsets[t]` and `bOffsets[t]` are where the
 * t-th pair of matrices starts (the op resolves batch broadcasting into these offsets).
 */
export function matmulReference(
  a: Float32Array,
  b: Float32Array,
  output: Float32Array, // [batches, m, n]
  m: number,
  k: number,
  n: number,
  aOffsets: readonly number[],
  bOffsets: readonly number[],
): void {
  for (let t = 0; t < aOffsets.length; t++) {
    const aBase = aOffsets[t]!;
    const bBase = bOffsets[t]!;
    const outBase = t * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += a[aBase + i * k + p]! * b[bBase + p * n + j]!;
        output[outBase + i * n + j] = sum;
      }
    }
  }
}
