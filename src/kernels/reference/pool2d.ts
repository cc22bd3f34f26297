/**
 * Reference max and average pooling over NCHW, with PyTorch's semantics: padding is never chosen
 * by a max, and an average either divides by the window clipped to the padded input
 * (`countIncludePad`, PyTorch's default and what ShuffleNet's 3×3/2 shortcut uses) or by the number
 * of real input pixels it covers.
 */
export interface Pool2dGeometry {
  batch: number;
  channels: number;
  inHeight: number;
  inWidth: number;
  outHeight: number;
  outWidth: number;
  kernelHeight: number;
  kernelWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
}

export function maxPool2dReference(input: Float32Array, output: Float32Array, g: Pool2dGeometry): void {
  forEachWindow(g, (inBase, outIndex, y0, y1, x0, x1) => {
    let best = -Infinity;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const v = input[inBase + y * g.inWidth + x]!;
        // NaN propagates, as in PyTorch.
        if (v > best || Number.isNaN(v)) best = v;
      }
    }
    output[outIndex] = best;
  });
}

export function avgPool2dReference(
  input: Float32Array,
  output: Float32Array,
  g: Pool2dGeometry,
  countIncludePad: boolean,
): void {
  forEachWindow(g, (inBase, outIndex, y0, y1, x0, x1, paddedCount) => {
    let sum = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) sum += input[inBase + y * g.inWidth + x]!;
    }
    const count = countIncludePad ? paddedCount : (y1 - y0) * (x1 - x0);
    output[outIndex] = count > 0 ? sum / count : 0;
  });
}

/** Global average pooling: [N, C, H, W] → [N, C]. */
export function globalAvgPoolReference(
  input: Float32Array,
  output: Float32Array,
  batch: number,
  channels: number,
  spatial: number,
): void {
  for (let i = 0; i < batch * channels; i++) {
    let sum = 0;
    for (let s = 0; s < spatial; s++) sum += input[i * spatial + s]!;
    output[i] = sum / spatial;
  }
}

/** Calls `visit` for every output position with its window clipped to the input. */
export function forEachWindow(
  g: Pool2dGeometry,
  visit: (
    inBase: number,
    outIndex: number,
    y0: number,
    y1: number,
    x0: number,
    x1: number,
    paddedCount: number,
  ) => void,
): void {
  let outIndex = 0;
  for (let plane = 0; plane < g.batch * g.channels; plane++) {
    const inBase = plane * g.inHeight * g.inWidth;
    for (let oy = 0; oy < g.outHeight; oy++) {
      const yStart = oy * g.strideHeight - g.padTop;
      const yEnd = Math.min(yStart + g.kernelHeight, g.inHeight + g.padBottom);
      for (let ox = 0; ox < g.outWidth; ox++) {
        const xStart = ox * g.strideWidth - g.padLeft;
        const xEnd = Math.min(xStart + g.kernelWidth, g.inWidth + g.padRight);
        const paddedCount = (yEnd - yStart) * (xEnd - xStart);
        visit(
          inBase,
          outIndex++,
          Math.max(yStart, 0),
          Math.min(yEnd, g.inHeight),
          Math.max(xStart, 0),
          Math.min(xEnd, g.inWidth),
          paddedCount,
        );
      }
    }
  }
}
