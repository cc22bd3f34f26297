/**
 * Reference 2-D convolution (cross-correlation, as in PyTorch and ONNX), NCHW, any kernel, stride,
 * padding, dilation and group count. Weights are [C_out, C_in / groups, kH, kW].
 *
 * NOTE: deliberately the obvious seven-loop form, accumulating in float64. It is the oracle that
 * the fast kernels are tested against, not a kernel to run networks quickly.
 */
export interface Conv2dGeometry {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  outHeight: number;
  outWidth: number;
  kernelHeight: number;
  kernelWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  dilationHeight: number;
  dilationWidth: number;
  groups: number;
}

export function conv2dReference(
  input: Float32Array, // [N, C_in, H, W]
  weight: Float32Array, // [C_out, C_in / groups, kH, kW]
  bias: Float32Array | null, // [C_out]
  output: Float32Array, // [N, C_out, H_out, W_out]
  g: Conv2dGeometry,
): void {
  const inPerGroup = g.inChannels / g.groups;
  const outPerGroup = g.outChannels / g.groups;
  const kernelSize = g.kernelHeight * g.kernelWidth;
  for (let n = 0; n < g.batch; n++) {
    for (let oc = 0; oc < g.outChannels; oc++) {
      const group = Math.floor(oc / outPerGroup);
      for (let oy = 0; oy < g.outHeight; oy++) {
        for (let ox = 0; ox < g.outWidth; ox++) {
          let sum = bias === null ? 0 : bias[oc]!;
          for (let ic = 0; ic < inPerGroup; ic++) {
            const inChannel = group * inPerGroup + ic;
            const inBase = (n * g.inChannels + inChannel) * g.inHeight * g.inWidth;
            const wBase = (oc * inPerGroup + ic) * kernelSize;
            for (let ky = 0; ky < g.kernelHeight; ky++) {
              const iy = oy * g.strideHeight - g.padTop + ky * g.dilationHeight;
              if (iy < 0 || iy >= g.inHeight) continue;
              for (let kx = 0; kx < g.kernelWidth; kx++) {
                const ix = ox * g.strideWidth - g.padLeft + kx * g.dilationWidth;
                if (ix < 0 || ix >= g.inWidth) continue;
                sum += input[inBase + iy * g.inWidth + ix]! * weight[wBase + ky * g.kernelWidth + kx]!;
              }
            }
          }
          output[((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox] = sum;
        }
      }
    }
  }
}
