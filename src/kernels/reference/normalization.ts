/**
 * Reference batch normalisation in inference mode over NCHW:
 * y = (x − mean) / sqrt(var + eps) · gamma + beta, per channel.
 */
export function batchNormReference(
  input: Float32Array, // [N, C, H, W]
  output: Float32Array,
  gamma: Float32Array, // [C]
  beta: Float32Array, // [C]
  mean: Float32Array, // [C]
  variance: Float32Array, // [C]
  eps: number,
  batch: number,
  channels: number,
  spatial: number,
): void {
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      const scale = gamma[c]! / Math.sqrt(variance[c]! + eps);
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) {
        output[base + s] = (input[base + s]! - mean[c]!) * scale + beta[c]!;
      }
    }
  }
}
