/** Reference gradients of the fully connected layer, softmax, and the cross-entropy loss. */

/**
 * out = x · Wᵀ + b with W [out, in]:
 * ∂x = ∂out · W, ∂W = ∂outᵀ · x, ∂b = Σ_n ∂out. Any output may be null when it is not needed.
 */
export function linearBackwardReference(
  x: Float32Array, // [N, in]
  weight: Float32Array, // [out, in]
  gradOutput: Float32Array, // [N, out]
  gradX: Float32Array | null, // [N, in]
  gradWeight: Float32Array | null, // [out, in]
  gradBias: Float32Array | null, // [out]
  batch: number,
  inFeatures: number,
  outFeatures: number,
): void {
  if (gradX !== null) {
    for (let n = 0; n < batch; n++) {
      for (let i = 0; i < inFeatures; i++) {
        let sum = 0;
        for (let o = 0; o < outFeatures; o++) sum += gradOutput[n * outFeatures + o]! * weight[o * inFeatures + i]!;
        gradX[n * inFeatures + i] = sum;
      }
    }
  }
  if (gradWeight !== null) {
    for (let o = 0; o < outFeatures; o++) {
      for (let i = 0; i < inFeatures; i++) {
        let sum = 0;
        for (let n = 0; n < batch; n++) sum += gradOutput[n * outFeatures + o]! * x[n * inFeatures + i]!;
        gradWeight[o * inFeatures + i] = sum;
      }
    }
  }
  if (gradBias !== null) {
    for (let o = 0; o < outFeatures; o++) {
      let sum = 0;
      for (let n = 0; n < batch; n++) sum += gradOutput[n * outFeatures + o]!;
      gradBias[o] = sum;
    }
  }
}

/** Softmax over rows: ∂x = y ⊙ (∂y − Σ ∂y ⊙ y), read from the forward output y. */
export function softmaxBackwardReference(
  output: Float32Array, // [rows, width]
  gradOutput: Float32Array,
  gradInput: Float32Array,
  rows: number,
  width: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let dot = 0;
    for (let i = 0; i < width; i++) dot += gradOutput[base + i]! * output[base + i]!;
    for (let i = 0; i < width; i++) gradInput[base + i] = output[base + i]! * (gradOutput[base + i]! - dot);
  }
}

/**
 * Mean cross-entropy of logits against integer labels with label smoothing ε, as PyTorch's
 * CrossEntropyLoss(label_smoothing=ε): the target is q = (1 − ε) · onehot(label) + ε / K, the
 * loss −Σ_k q_k log softmax(z)_k averaged over the batch, and ∂z = (softmax(z) − q) / N.
 * Returns the loss; writes the gradient when `gradLogits` is given.
 */
export function crossEntropyReference(
  logits: Float32Array, // [N, K]
  labels: ArrayLike<number>, // [N], integers in [0, K)
  gradLogits: Float32Array | null, // [N, K]
  batch: number,
  classes: number,
  smoothing: number,
): number {
  let total = 0;
  for (let n = 0; n < batch; n++) {
    const base = n * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[base + k]!);
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += Math.exp(logits[base + k]! - max);
    const logSum = Math.log(sum) + max;
    for (let k = 0; k < classes; k++) {
      const target = (k === labels[n] ? 1 - smoothing : 0) + smoothing / classes;
      const logProbability = logits[base + k]! - logSum;
      total -= target * logProbability;
      if (gradLogits !== null) gradLogits[base + k] = (Math.exp(logProbability) - target) / batch;
    }
  }
  return total / batch;
}
