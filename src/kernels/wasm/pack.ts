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

/**
 * Packs int8 weights w[m, k] of a 1×1 convolution group for qgemm (./assembly/int8.ts): blocks of
 * 4 output channels as [⌈k/2⌉][4] i32 words, each word the pair (w[o][2j], w[o][2j+1]) as two i16
 * (low half first; an odd k's last pair and the padding rows hold 0).
 */
export function packQgemmWeights(w: Int8Array, m: number, k: number): Int32Array {
  const pairs = Math.ceil(k / 2);
  const packed = new Int32Array(Math.ceil(m / 4) * pairs * 4);
  for (let o = 0; o < m; o++) {
    const base = Math.floor(o / 4) * pairs * 4 + (o % 4);
    for (let j = 0; j < pairs; j++) {
      const lo = w[o * k + 2 * j]!;
      const hi = 2 * j + 1 < k ? w[o * k + 2 * j + 1]! : 0;
      packed[base + j * 4] = (lo & 0xffff) | (hi << 16);
    }
  }
  return packed;
}

/** Whether int8 weights are 7-bit, within [−64, 63]: what qgemm7's 8-bit dot product needs. */
export function sevenBitWeights(w: Int8Array): boolean {
  return w.every((v) => v >= -64 && v <= 63);
}

/**
 * Packs 7-bit weights w[m, k] (in [−64, 63]) of a 1×1 convolution group for qgemm7: blocks of 4
 * output channels as [⌈k/4⌉][4 outputs][4 bytes], each byte w + 64 (in [0, 127]; 64, the weight 0,
 * where padded). Also the bias qgemm7 adds, folded with the input's zero point z:
 * bias[o] + (128 − z) · Σ_i w[o][i] (qpack4 stores x − 128).
 */
export function packQgemm7Weights(
  w: Int8Array,
  bias: ArrayLike<number>,
  m: number,
  k: number,
  zero: number,
): { weights: Uint8Array; bias: Int32Array } {
  const quads = Math.ceil(k / 4);
  const packed = new Uint8Array(Math.ceil(m / 4) * quads * 16).fill(64);
  const folded = new Int32Array(Math.ceil(m / 4) * 4);
  for (let o = 0; o < m; o++) {
    const base = Math.floor(o / 4) * quads * 16 + (o % 4) * 4;
    let sum = 0;
    for (let i = 0; i < k; i++) {
      const v = w[o * k + i]!;
      packed[base + Math.floor(i / 4) * 16 + (i % 4)] = v + 64;
      sum += v;
    }
    folded[o] = bias[o]! + (128 - zero) * sum;
  }
  return { weights: packed, bias: folded };
}

/** Bytes between the pair rows that qpack writes for `pixels` pixels: ⌈pixels/8⌉ · 8 pixels of 4 bytes. */
export function qpackPairStride(pixels: number): number {
  return Math.ceil(pixels / 8) * 32;
}

/** Packs int8 fully connected weights w[out, in] for qdense: i16, rows zero-padded to ⌈in/8⌉·8. */
export function packQdenseWeights(w: Int8Array, outFeatures: number, inFeatures: number): Int16Array {
  const padded = Math.ceil(inFeatures / 8) * 8;
  const packed = new Int16Array(outFeatures * padded);
  for (let o = 0; o < outFeatures; o++) packed.set(w.subarray(o * inFeatures, (o + 1) * inFeatures), o * padded);
  return packed;
}
