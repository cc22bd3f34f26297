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

/**
 * Per-channel mean and biased variance of NCHW input over N, H and W (two passes, float64): the
 * statistics training-mode batch norm normalises with.
 */
export function batchStatisticsReference(
  input: Float32Array, // [N, C, H, W]
  mean: Float32Array | Float64Array, // [C], written
  variance: Float32Array | Float64Array, // [C], written (biased: divided by N·H·W)
  batch: number,
  channels: number,
  spatial: number,
): void {
  const count = batch * spatial;
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) sum += input[base + s]!;
    }
    const m = sum / count;
    let squares = 0;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) squares += (input[base + s]! - m) ** 2;
    }
    mean[c] = m;
    variance[c] = squares / count;
  }
}

/**
 * Training-mode batch normalisation: normalises each channel with the batch's own mean and
 * biased variance, y = (x − μ_B) / sqrt(σ²_B + eps) · gamma + beta.
 */
export function batchNormTrainingReference(
  input: Float32Array, // [N, C, H, W]
  output: Float32Array,
  gamma: Float32Array, // [C]
  beta: Float32Array, // [C]
  eps: number,
  batch: number,
  channels: number,
  spatial: number,
): void {
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  batchStatisticsReference(input, mean, variance, batch, channels, spatial);
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      const scale = gamma[c]! / Math.sqrt(variance[c]! + eps);
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) output[base + s] = (input[base + s]! - mean[c]!) * scale + beta[c]!;
    }
  }
}

/**
 * PyTorch's running-statistics update: running = (1 − m) · running + m · batch, where the variance
 * folded in is the unbiased one (biased · count / (count − 1)).
 */
export function updateRunningStatisticsReference(
  runningMean: Float32Array, // [C]
  runningVariance: Float32Array, // [C]
  batchMean: ArrayLike<number>, // [C]
  batchVariance: ArrayLike<number>, // [C], biased
  count: number,
  momentum: number,
): void {
  const unbias = count / (count - 1);
  for (let c = 0; c < runningMean.length; c++) {
    runningMean[c] = (1 - momentum) * runningMean[c]! + momentum * batchMean[c]!;
    runningVariance[c] = (1 - momentum) * runningVariance[c]! + momentum * batchVariance[c]! * unbias;
  }
}
