/** Reference fully connected layer and softmax. */

/** out[n, o] = Σ_i x[n, i] · weight[o, i] + bias[o], with PyTorch's [out, in] weight layout. */
export function linearReference(
  x: Float32Array, // [N, in]
  weight: Float32Array, // [out, in]
  bias: Float32Array | null, // [out]
  output: Float32Array, // [N, out]
  batch: number,
  inFeatures: number,
  outFeatures: number,
): void {
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias === null ? 0 : bias[o]!;
      for (let i = 0; i < inFeatures; i++) sum += x[n * inFeatures + i]! * weight[o * inFeatures + i]!;
      output[n * outFeatures + o] = sum;
    }
  }
}

/** Softmax over the last axis of [rows, width], stabilised by subtracting each row's maximum. */
export function softmaxReference(x: Float32Array, output: Float32Array, rows: number, width: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let max = -Infinity;
    for (let i = 0; i < width; i++) max = Math.max(max, x[base + i]!);
    let sum = 0;
    for (let i = 0; i < width; i++) sum += Math.exp(x[base + i]! - max);
    for (let i = 0; i < width; i++) output[base + i] = Math.exp(x[base + i]! - max) / sum;
  }
}
