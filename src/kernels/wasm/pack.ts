/**
 * Weight packing for the WASM kernels, done once per network: the layouts the micro-kernels read
 * (see ./assembly/gemm.ts). Pure functions over typed arrays.
 */

/**
 * Packs the weights of a 1×1 convolution group, w[m, k] (row-major, m output channels, k inputs),
 * for gemm4x8: blocks of 4 output channels as [k][4], zero-padded to ⌈m/4⌉·4 rows. A batch norm
 * is folded into `w` and the bias before packing (see src/runtime/plan.ts).
 */
export function packGemmWeights(
  w: Float32Array, // [m, k]
  m: number,
  k: number,
): Float32Array {
  const packed = new Float32Array(Math.ceil(m / 4) * k * 4);
  packGemmWeightsInto(packed, 0, w, m, k, false);
  return packed;
}

/**
 * Packs w[m, k] (or, with `transpose`, its transpose [k, m]: the weights of the input-gradient
 * GEMM) into `dst` at float `offset`, in gemm4x8's layout. Rows past the last are not written:
 * `dst` must be zero there (training repacks every step into the same zeroed area).
 */
export function packGemmWeightsInto(
  dst: Float32Array,
  offset: number,
  w: Float32Array, // [m, k]
  m: number,
  k: number,
  transpose: boolean,
): void {
  const rows = transpose ? k : m;
  const depth = transpose ? m : k;
  for (let row = 0; row < rows; row++) {
    const base = offset + Math.floor(row / 4) * depth * 4 + (row % 4);
    if (transpose) for (let d = 0; d < depth; d++) dst[base + d * 4] = w[d * k + row]!;
    else for (let d = 0; d < depth; d++) dst[base + d * 4] = w[row * k + d]!;
  }
}

/** Zero-pads a bias (or null: zeros) to `multiple` entries. */
export function padBias(bias: Float32Array | null, count: number, multiple: number): Float32Array {
  const padded = new Float32Array(Math.ceil(count / multiple) * multiple);
  if (bias !== null) padded.set(bias.subarray(0, count));
  return padded;
}

/** Packs a fully connected layer's weights w[out, in] for dense8: blocks of 8 outputs as [in][8]. */
export function packDenseWeights(w: Float32Array, outFeatures: number, inFeatures: number): Float32Array {
  const blocks = Math.ceil(outFeatures / 8);
  const packed = new Float32Array(blocks * inFeatures * 8);
  for (let o = 0; o < outFeatures; o++) {
    const base = Math.floor(o / 8) * inFeatures * 8 + (o % 8);
    for (let i = 0; i < inFeatures; i++) packed[base + i * 8] = w[o * inFeatures + i]!;
  }
  return packed;
}
