/** Reference element-wise kernels. */

export function reluReference(input: Float32Array, output: Float32Array): void {
  // NOTE: `x > 0 ? x : 0` would turn NaN into 0 and hide it; PyTorch keeps NaN.
  for (let i = 0; i < input.length; i++) {
    const v = input[i]!;
    output[i] = v < 0 ? 0 : v;
  }
}

/** ReLU6 and friends: clamp to [min, max]. */
export function clipReference(input: Float32Array, output: Float32Array, min: number, max: number): void {
  for (let i = 0; i < input.length; i++) {
    const v = input[i]!;
    output[i] = v < min ? min : v > max ? max : v;
  }
}

/**
 * Hard sigmoid: max(0, min(1, αx + β)), ONNX's HardSigmoid (PyTorch's Hardsigmoid is α = 1/6,
 * β = 1/2: relu6(x + 3) / 6).
 */
export function hardSigmoidReference(input: Float32Array, output: Float32Array, alpha: number, beta: number): void {
  for (let i = 0; i < input.length; i++) {
    const v = alpha * input[i]! + beta;
    output[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}

/** Hard swish: x · hardSigmoid(x) (ONNX's HardSwish and PyTorch's Hardswish: α = 1/6, β = 1/2). */
export function hardSwishReference(input: Float32Array, output: Float32Array, alpha: number, beta: number): void {
  for (let i = 0; i < input.length; i++) {
    const x = input[i]!;
    const v = alpha * x + beta;
    output[i] = x * (v < 0 ? 0 : v > 1 ? 1 : v);
  }
}

export function sigmoidReference(input: Float32Array, output: Float32Array): void {
  for (let i = 0; i < input.length; i++) output[i] = 1 / (1 + Math.exp(-input[i]!));
}

export function addReference(a: Float32Array, b: Float32Array, output: Float32Array): void {
  for (let i = 0; i < a.length; i++) output[i] = a[i]! + b[i]!;
}

/**
 * Scales each channel of x by a per-sample, per-channel factor, as squeeze-and-excitation does:
 * out[n, c, s] = x[n, c, s] · scale[n, c].
 */
export function mulChannelsReference(
  x: Float32Array, // [N, C, H·W]
  scale: Float32Array, // [N, C]
  output: Float32Array,
  planes: number,
  spatial: number,
): void {
  for (let p = 0; p < planes; p++) {
    const f = scale[p]!;
    for (let s = 0; s < spatial; s++) output[p * spatial + s] = x[p * spatial + s]! * f;
  }
}
