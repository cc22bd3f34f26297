/** Reference gradients of max, average and global average pooling. */
import { forEachWindow, type Pool2dGeometry } from './pool2d.js';

/**
 * Each window's gradient goes to the input that was its maximum: the first maximum in scan
 * order, as the forward (and PyTorch) picks it. Overlapping windows accumulate.
 */
export function maxPool2dBackwardReference(
  input: Float32Array, // [N, C, H, W]
  gradOutput: Float32Array, // [N, C, H_out, W_out]
  gradInput: Float32Array, // [N, C, H, W], written
  g: Pool2dGeometry,
): void {
  gradInput.fill(0);
  forEachWindow(g, (inBase, outIndex, y0, y1, x0, x1) => {
    let best = -Infinity;
    let at = -1;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const v = input[inBase + y * g.inWidth + x]!;
        if (v > best || Number.isNaN(v)) {
          best = v;
          at = inBase + y * g.inWidth + x;
        }
      }
    }
    if (at >= 0) gradInput[at] += gradOutput[outIndex]!;
  });
}

/** Each window's gradient is shared equally by its pixels, with the forward's divisor. */
export function avgPool2dBackwardReference(
  gradOutput: Float32Array,
  gradInput: Float32Array,
  g: Pool2dGeometry,
  countIncludePad: boolean,
): void {
  gradInput.fill(0);
  forEachWindow(g, (inBase, outIndex, y0, y1, x0, x1, paddedCount) => {
    const count = countIncludePad ? paddedCount : (y1 - y0) * (x1 - x0);
    if (count <= 0) return;
    const share = gradOutput[outIndex]! / count;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) gradInput[inBase + y * g.inWidth + x] += share;
    }
  });
}

/** [N, C, 1, 1] → [N, C, H, W]: every pixel gets its plane's gradient over H·W. */
export function globalAvgPoolBackwardReference(
  gradOutput: Float32Array, // [N·C]
  gradInput: Float32Array, // [N·C, H·W]
  planes: number,
  spatial: number,
): void {
  for (let p = 0; p < planes; p++) gradInput.fill(gradOutput[p]! / spatial, p * spatial, (p + 1) * spatial);
}
