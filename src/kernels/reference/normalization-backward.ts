/** Reference gradients of batch normalisation, in inference and in training mode. */
import { batchStatisticsReference } from './normalization.js';

/**
 * Inference mode (running statistics are constants):
 * ∂x = ∂y · gamma / sqrt(var + eps), ∂gamma = Σ ∂y · x̂, ∂beta = Σ ∂y.
 * Any of the three outputs may be null when it is not needed.
 */
export function batchNormBackwardReference(
  input: Float32Array, // [N, C, H, W]
  gradOutput: Float32Array, // [N, C, H, W]
  gamma: Float32Array, // [C]
  mean: Float32Array, // [C] running mean
  variance: Float32Array, // [C] running variance
  eps: number,
  gradInput: Float32Array | null,
  gradGamma: Float32Array | null,
  gradBeta: Float32Array | null,
  batch: number,
  channels: number,
  spatial: number,
): void {
  for (let c = 0; c < channels; c++) {
    const invStd = 1 / Math.sqrt(variance[c]! + eps);
    let sumGrad = 0;
    let sumGradXhat = 0;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) {
        const dy = gradOutput[base + s]!;
        sumGrad += dy;
        sumGradXhat += dy * (input[base + s]! - mean[c]!) * invStd;
        if (gradInput !== null) gradInput[base + s] = dy * gamma[c]! * invStd;
      }
    }
    if (gradGamma !== null) gradGamma[c] = sumGradXhat;
    if (gradBeta !== null) gradBeta[c] = sumGrad;
  }
}

/**
 * Training mode: the batch statistics depend on x, so with M = N·H·W values per channel
 * ∂x = gamma / (M · σ) · (M · ∂y − Σ ∂y − x̂ · Σ ∂y · x̂), σ = sqrt(σ²_B + eps).
 * The statistics are recomputed from x, which keeps the kernel a pure function of its inputs.
 */
export function batchNormTrainingBackwardReference(
  input: Float32Array, // [N, C, H, W]
  gradOutput: Float32Array, // [N, C, H, W]
  gamma: Float32Array, // [C]
  eps: number,
  gradInput: Float32Array | null,
  gradGamma: Float32Array | null,
  gradBeta: Float32Array | null,
  batch: number,
  channels: number,
  spatial: number,
): void {
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  batchStatisticsReference(input, mean, variance, batch, channels, spatial);
  const count = batch * spatial;
  for (let c = 0; c < channels; c++) {
    const invStd = 1 / Math.sqrt(variance[c]! + eps);
    let sumGrad = 0;
    let sumGradXhat = 0;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) {
        const dy = gradOutput[base + s]!;
        sumGrad += dy;
        sumGradXhat += dy * (input[base + s]! - mean[c]!) * invStd;
      }
    }
    if (gradGamma !== null) gradGamma[c] = sumGradXhat;
    if (gradBeta !== null) gradBeta[c] = sumGrad;
    if (gradInput === null) continue;
    const factor = (gamma[c]! * invStd) / count;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) {
        const xhat = (input[base + s]! - mean[c]!) * invStd;
        gradInput[base + s] = factor * (count * gradOutput[base + s]! - sumGrad - xhat * sumGradXhat);
      }
    }
  }
}
