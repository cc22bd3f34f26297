/** Reference gradients of the element-wise ops. */

/** ReLU passes the gradient where the input was positive (PyTorch: where the output is > 0). */
export function reluBackwardReference(input: Float32Array, gradOutput: Float32Array, gradInput: Float32Array): void {
  for (let i = 0; i < input.length; i++) gradInput[i] = input[i]! > 0 ? gradOutput[i]! : 0;
}

/** Clip passes the gradient where min ≤ x ≤ max (PyTorch's clamp, bounds included). */
export function clipBackwardReference(
  input: Float32Array,
  gradOutput: Float32Array,
  gradInput: Float32Array,
  min: number,
  max: number,
): void {
  for (let i = 0; i < input.length; i++) {
    const v = input[i]!;
    gradInput[i] = v >= min && v <= max ? gradOutput[i]! : 0;
  }
}

/** σ'(x) = σ(x)(1 − σ(x)), read from the forward output. */
export function sigmoidBackwardReference(
  output: Float32Array,
  gradOutput: Float32Array,
  gradInput: Float32Array,
): void {
  for (let i = 0; i < output.length; i++) {
    const y = output[i]!;
    gradInput[i] = gradOutput[i]! * y * (1 - y);
  }
}

/**
 * out[n, c, s] = x[n, c, s] · scale[n, c]:
 * ∂x = ∂out · scale, ∂scale[n, c] = Σ_s ∂out[n, c, s] · x[n, c, s]. Either output may be null.
 */
export function mulChannelsBackwardReference(
  x: Float32Array, // [N, C, H·W]
  scale: Float32Array, // [N, C]
  gradOutput: Float32Array, // [N, C, H·W]
  gradX: Float32Array | null,
  gradScale: Float32Array | null,
  planes: number,
  spatial: number,
): void {
  for (let p = 0; p < planes; p++) {
    let sum = 0;
    for (let s = 0; s < spatial; s++) {
      const i = p * spatial + s;
      sum += gradOutput[i]! * x[i]!;
      if (gradX !== null) gradX[i] = gradOutput[i]! * scale[p]!;
    }
    if (gradScale !== null) gradScale[p] = sum;
  }
}

/** ∂ hardSigmoid: α where 0 < αx + β < 1, else 0 (PyTorch's: 1/6 inside (−3, 3)). */
export function hardSigmoidBackwardReference(
  x: Float32Array,
  gradOut: Float32Array,
  gradIn: Float32Array,
  alpha: number,
  beta: number,
): void {
  for (let i = 0; i < x.length; i++) {
    const v = alpha * x[i]! + beta;
    gradIn[i] = v > 0 && v < 1 ? gradOut[i]! * alpha : 0;
  }
}

/** ∂ x·hardSigmoid(x): 0 below the ramp, 1 above it, 2αx + β on it (PyTorch's x/3 + 1/2). */
export function hardSwishBackwardReference(
  x: Float32Array,
  gradOut: Float32Array,
  gradIn: Float32Array,
  alpha: number,
  beta: number,
): void {
  for (let i = 0; i < x.length; i++) {
    const v = alpha * x[i]! + beta;
    gradIn[i] = v < 0 ? 0 : v > 1 ? gradOut[i]! : gradOut[i]! * (2 * alpha * x[i]! + beta);
  }
}
