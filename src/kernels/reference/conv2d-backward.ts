/**
 * Reference gradients of 2-D convolution (any stride, padding, dilation, groups), with the same
 * geometry and index arithmetic as `conv2dReference`. Each walks the forward loops and moves the
 * product the other way; sums accumulate in float64.
 *
 * NOTE: obvious loops, the oracle for fast kernels, not fast kernels themselves.
 */
import type { Conv2dGeometry } from './conv2d.js';

/** ∂L/∂x: every output gradient is scattered back through the weights that produced it. */
export function conv2dInputGradReference(
  gradOutput: Float32Array, // [N, C_out, H_out, W_out]
  weight: Float32Array, // [C_out, C_in / groups, kH, kW]
  gradInput: Float32Array, // [N, C_in, H, W], written
  g: Conv2dGeometry,
): void {
  const inPerGroup = g.inChannels / g.groups;
  const outPerGroup = g.outChannels / g.groups;
  const kernelSize = g.kernelHeight * g.kernelWidth;
  const sums = new Float64Array(gradInput.length);
  for (let n = 0; n < g.batch; n++) {
    for (let oc = 0; oc < g.outChannels; oc++) {
      const group = Math.floor(oc / outPerGroup);
      for (let oy = 0; oy < g.outHeight; oy++) {
        for (let ox = 0; ox < g.outWidth; ox++) {
          const go = gradOutput[((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox]!;
          if (go === 0) continue;
          for (let ic = 0; ic < inPerGroup; ic++) {
            const inBase = (n * g.inChannels + group * inPerGroup + ic) * g.inHeight * g.inWidth;
            const wBase = (oc * inPerGroup + ic) * kernelSize;
            for (let ky = 0; ky < g.kernelHeight; ky++) {
              const iy = oy * g.strideHeight - g.padTop + ky * g.dilationHeight;
              if (iy < 0 || iy >= g.inHeight) continue;
              for (let kx = 0; kx < g.kernelWidth; kx++) {
                const ix = ox * g.strideWidth - g.padLeft + kx * g.dilationWidth;
                if (ix < 0 || ix >= g.inWidth) continue;
                sums[inBase + iy * g.inWidth + ix] += go * weight[wBase + ky * g.kernelWidth + kx]!;
              }
            }
          }
        }
      }
    }
  }
  gradInput.set(sums);
}

/** ∂L/∂w[oc, ic, ky, kx] = Σ over batch and output positions of gradOutput · the input it saw. */
export function conv2dWeightGradReference(
  input: Float32Array, // [N, C_in, H, W]
  gradOutput: Float32Array, // [N, C_out, H_out, W_out]
  gradWeight: Float32Array, // [C_out, C_in / groups, kH, kW], written
  g: Conv2dGeometry,
): void {
  const inPerGroup = g.inChannels / g.groups;
  const outPerGroup = g.outChannels / g.groups;
  for (let oc = 0; oc < g.outChannels; oc++) {
    const group = Math.floor(oc / outPerGroup);
    for (let ic = 0; ic < inPerGroup; ic++) {
      for (let ky = 0; ky < g.kernelHeight; ky++) {
        for (let kx = 0; kx < g.kernelWidth; kx++) {
          let sum = 0;
          for (let n = 0; n < g.batch; n++) {
            const inBase = (n * g.inChannels + group * inPerGroup + ic) * g.inHeight * g.inWidth;
            const outBase = (n * g.outChannels + oc) * g.outHeight * g.outWidth;
            for (let oy = 0; oy < g.outHeight; oy++) {
              const iy = oy * g.strideHeight - g.padTop + ky * g.dilationHeight;
              if (iy < 0 || iy >= g.inHeight) continue;
              for (let ox = 0; ox < g.outWidth; ox++) {
                const ix = ox * g.strideWidth - g.padLeft + kx * g.dilationWidth;
                if (ix < 0 || ix >= g.inWidth) continue;
                sum += gradOutput[outBase + oy * g.outWidth + ox]! * input[inBase + iy * g.inWidth + ix]!;
              }
            }
          }
          gradWeight[((oc * inPerGroup + ic) * g.kernelHeight + ky) * g.kernelWidth + kx] = sum;
        }
      }
    }
  }
}

/** ∂L/∂b[c] = Σ over batch and positions of gradOutput[:, c]. Also the gradient of a per-channel shift. */
export function channelSumReference(
  gradOutput: Float32Array, // [N, C, H·W]
  gradBias: Float32Array, // [C], written
  batch: number,
  channels: number,
  spatial: number,
): void {
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let n = 0; n < batch; n++) {
      const base = (n * channels + c) * spatial;
      for (let s = 0; s < spatial; s++) sum += gradOutput[base + s]!;
    }
    gradBias[c] = sum;
  }
}
