// AssemblyScript: NHWC variants of the hot kernels, compiled only by bench/layout.ts to measure
// the activation layout. Not part of the library.

/**
 * NHWC 1×1 convolution group: out[p, n] = bias[n] + Σ_k in[p, k] · w[k, n]. Tiles of 4 pixels ×
 * 8 output channels: per k, 4 broadcast input loads and 2 packed weight vectors ([N/8][K][8]).
 * Rows (pixels) have strides inRow / outRow bytes; the group's first channel is at input/output.
 */
export function gemmNhwc4x8(
  k: i32,
  n: i32,
  pixels: i32,
  weights: usize,
  bias: usize,
  input: usize,
  inRow: usize,
  output: usize,
  outRow: usize,
): void {
  const zero = f32x4.splat(0);
  for (let p = 0; p < pixels; p += 4) {
    const rows = min(pixels - p, 4);
    const a0 = input + <usize>p * inRow;
    const a1 = rows > 1 ? a0 + inRow : a0;
    const a2 = rows > 2 ? a1 + inRow : a1;
    const a3 = rows > 3 ? a2 + inRow : a2;
    for (let nb = 0; nb < n; nb += 8) {
      let w = weights + (<usize>(nb * k) << 2);
      const b0 = v128.load(bias + (<usize>nb << 2));
      const b1 = v128.load(bias + (<usize>nb << 2), 16);
      let c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
      for (let kk = 0; kk < k; kk++) {
        const off = <usize>kk << 2;
        const w0 = v128.load(w);
        const w1 = v128.load(w, 16);
        const s0 = v128.load32_splat(a0 + off);
        const s1 = v128.load32_splat(a1 + off);
        const s2 = v128.load32_splat(a2 + off);
        const s3 = v128.load32_splat(a3 + off);
        c00 = f32x4.add(c00, f32x4.mul(s0, w0));
        c01 = f32x4.add(c01, f32x4.mul(s0, w1));
        c10 = f32x4.add(c10, f32x4.mul(s1, w0));
        c11 = f32x4.add(c11, f32x4.mul(s1, w1));
        c20 = f32x4.add(c20, f32x4.mul(s2, w0));
        c21 = f32x4.add(c21, f32x4.mul(s2, w1));
        c30 = f32x4.add(c30, f32x4.mul(s3, w0));
        c31 = f32x4.add(c31, f32x4.mul(s3, w1));
        w += 32;
      }
      // Measurement only: full 8-wide stores (the output buffer has room), ReLU applied.
      const o = output + <usize>p * outRow + (<usize>nb << 2);
      v128.store(o, f32x4.pmax(c00, zero));
      v128.store(o, f32x4.pmax(c01, zero), 16);
      if (rows > 1) { v128.store(o + outRow, f32x4.pmax(c10, zero)); v128.store(o + outRow, f32x4.pmax(c11, zero), 16); }
      if (rows > 2) { v128.store(o + 2 * outRow, f32x4.pmax(c20, zero)); v128.store(o + 2 * outRow, f32x4.pmax(c21, zero), 16); }
      if (rows > 3) { v128.store(o + 3 * outRow, f32x4.pmax(c30, zero)); v128.store(o + 3 * outRow, f32x4.pmax(c31, zero), 16); }
    }
  }
}

/**
 * NHWC depthwise 3×3, padding 1, stride 1 or 2, channels a multiple of 4: vectors over channels,
 * out-of-image taps read a zero row (`zeros`, at least `channels` floats).
 */
export function dwNhwc3x3(
  channels: i32,
  h: i32,
  w: i32,
  stride: i32,
  input: usize,
  weights: usize,
  output: usize,
  zeros: usize,
): void {
  const oh = (h - 1) / stride + 1;
  const ow = (w - 1) / stride + 1;
  const rowBytes = <usize>(w * channels) << 2;
  const cBytes = <usize>channels << 2;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      const o = output + (<usize>((oy * ow + ox) * channels) << 2);
      const iy = oy * stride - 1;
      const ix = ox * stride - 1;
      const p0 = iy >= 0 ? input + <usize>iy * rowBytes : 0;
      const p1 = input + <usize>(iy + 1) * rowBytes;
      const p2 = iy + 2 < h ? input + <usize>(iy + 2) * rowBytes : 0;
      // Nine tap pointers per output pixel (an indirection row, as XNNPACK does), then channels.
      const i0 = tap(p0, ix, w, cBytes, zeros), i1 = tap(p0, ix + 1, w, cBytes, zeros), i2 = tap(p0, ix + 2, w, cBytes, zeros);
      const i3 = tap(p1, ix, w, cBytes, zeros), i4 = tap(p1, ix + 1, w, cBytes, zeros), i5 = tap(p1, ix + 2, w, cBytes, zeros);
      const i6 = tap(p2, ix, w, cBytes, zeros), i7 = tap(p2, ix + 1, w, cBytes, zeros), i8 = tap(p2, ix + 2, w, cBytes, zeros);
      let wp = weights; // packed [C/4][9 + 1][4]: nine taps then the bias
      for (let c = 0; c < channels; c += 4) {
        const cc = <usize>c << 2;
        let acc = v128.load(wp, 144);
        acc = f32x4.add(acc, f32x4.mul(v128.load(i0 + cc), v128.load(wp)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i1 + cc), v128.load(wp, 16)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i2 + cc), v128.load(wp, 32)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i3 + cc), v128.load(wp, 48)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i4 + cc), v128.load(wp, 64)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i5 + cc), v128.load(wp, 80)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i6 + cc), v128.load(wp, 96)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i7 + cc), v128.load(wp, 112)));
        acc = f32x4.add(acc, f32x4.mul(v128.load(i8 + cc), v128.load(wp, 128)));
        v128.store(o + cc, acc);
        wp += 160;
      }
    }
  }
}

@inline
function tap(row: usize, x: i32, w: i32, cBytes: usize, zeros: usize): usize {
  // Out-of-image taps point at a zero row; the channel offset is added by the caller.
  return row != 0 && x >= 0 && x < w ? row + <usize>x * cBytes : zeros;
}
