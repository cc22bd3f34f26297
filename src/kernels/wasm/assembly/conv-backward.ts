// Backward kernels of convolution over NCHW planes (WASM SIMD128): the weight gradient of a 1×1
// convolution (or of any convolution over an im2col buffer), and both gradients of the 3×3
// depthwise convolution with padding 1 at stride 1 and 2.
//
// Tails never add garbage: partial vectors are loaded lane by lane with zeros in the unused lanes
// (and masked where a product could meet a stray value), so results do not depend on what lies
// past a row. NOTE: like the forward dwconv, the depthwise kernels copy each plane they read
// (gradOut, input) into a padded scratch plane by whole vectors, reading up to 12 bytes past the
// last plane; the allocator's slack covers it. `gradIn` and `gradWeight` are read and written
// exactly.

import { fillFloats, loadLanes, madd, outputSize, padPlane, paddedWidth, storeLanes } from './common';

/** All ones in the first `lanes` lanes, zeros after. */
@inline
function laneMask(lanes: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(lanes));
}

/** [Σa, Σb, Σc, Σd]: four horizontal sums in one vector. */
@inline
function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 1, 4, 5), v128.shuffle<f32>(c, d, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 2, 4, 6), v128.shuffle<f32>(ab, cd, 1, 3, 5, 7));
}

@inline
function putSum(p: usize, value: f32, add: bool): void {
  store<f32>(p, add ? load<f32>(p) + value : value);
}

/** Writes (or adds) lanes 0..rows−1 of v at p, p + stride, … */
@inline
function putColumn(p: usize, stride: usize, v: v128, rows: i32, add: bool): void {
  putSum(p, f32x4.extract_lane(v, 0), add);
  if (rows > 1) putSum(p + stride, f32x4.extract_lane(v, 1), add);
  if (rows > 2) putSum(p + 2 * stride, f32x4.extract_lane(v, 2), add);
  if (rows > 3) putSum(p + 3 * stride, f32x4.extract_lane(v, 3), add);
}

/** Bytes of samples a weight-gradient pass covers before its partial sums go to memory (stays in L2). */
const WEIGHT_GRAD_CHUNK_BYTES = 256 * 1024;

/**
 * conv-weightgrad-4x2-wasmsimd: gradWeight[mi·k + ki] (=, or += when `accumulate`)
 * Σ_n Σ_p gradOut[n][mi][p] · input[n][ki][p], rows of `pixels` floats, samples `*BatchStride`
 * bytes apart. The dW of a 1×1 convolution (one call per group, pointers offset by the caller) or of
 * a convolution over an im2col buffer [K][pixels].
 *
 * A tile of 4 gradOut rows × 2 input rows keeps 8 vector dot products (6 loads per 8
 * multiply-adds) over the pixels of a chunk of samples, then sums them horizontally. Samples are
 * taken in chunks that stay in L2 while every tile passes over them.
 */
export function convWeightGrad(
  m: i32,
  k: i32,
  pixels: i32,
  batch: i32,
  gradOut: usize,
  gradOutBatchStride: usize,
  input: usize,
  inputBatchStride: usize,
  gradWeight: usize,
  accumulate: i32,
): void {
  if (batch <= 0 || pixels <= 0) {
    // Empty sums: dW = 0 (or unchanged when accumulating).
    if (accumulate == 0) fillFloats(gradWeight, m * k, 0);
    return;
  }
  const rowBytes = <usize>pixels << 2;
  const full = pixels & ~3;
  const tail = pixels - full;
  const chunk = max(1, WEIGHT_GRAD_CHUNK_BYTES / (<i32>rowBytes * (m + k)));
  const kBytes = <usize>k << 2;
  for (let n0 = 0; n0 < batch; n0 += chunk) {
    const n1 = min(batch, n0 + chunk);
    const add = accumulate != 0 || n0 > 0;
    for (let mb = 0; mb < m; mb += 4) {
      const rows = min(m - mb, 4);
      // Rows past m repeat the last row: computed, never stored.
      const o1 = <usize>min(mb + 1, m - 1) * rowBytes;
      const o2 = <usize>min(mb + 2, m - 1) * rowBytes;
      const o3 = <usize>min(mb + 3, m - 1) * rowBytes;
      const o0 = <usize>mb * rowBytes;
      for (let kb = 0; kb < k; kb += 2) {
        const i1 = <usize>min(kb + 1, k - 1) * rowBytes;
        const i0 = <usize>kb * rowBytes;
        let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (let n = n0; n < n1; n++) {
          const g = gradOut + <usize>n * gradOutBatchStride;
          const x = input + <usize>n * inputBatchStride;
          const g0 = g + o0, g1 = g + o1, g2 = g + o2, g3 = g + o3;
          const x0 = x + i0, x1 = x + i1;
          for (let at: usize = 0; at < (<usize>full << 2); at += 16) {
            const a = v128.load(x0 + at);
            const b = v128.load(x1 + at);
            const s0 = v128.load(g0 + at);
            const s1 = v128.load(g1 + at);
            const s2 = v128.load(g2 + at);
            const s3 = v128.load(g3 + at);
            c00 = madd(s0, a, c00);
            c01 = madd(s0, b, c01);
            c10 = madd(s1, a, c10);
            c11 = madd(s1, b, c11);
            c20 = madd(s2, a, c20);
            c21 = madd(s2, b, c21);
            c30 = madd(s3, a, c30);
            c31 = madd(s3, b, c31);
          }
          if (tail != 0) {
            const at = <usize>full << 2;
            const a = loadLanes(x0 + at, tail);
            const b = loadLanes(x1 + at, tail);
            const s0 = loadLanes(g0 + at, tail);
            const s1 = loadLanes(g1 + at, tail);
            const s2 = loadLanes(g2 + at, tail);
            const s3 = loadLanes(g3 + at, tail);
            c00 = madd(s0, a, c00);
            c01 = madd(s0, b, c01);
            c10 = madd(s1, a, c10);
            c11 = madd(s1, b, c11);
            c20 = madd(s2, a, c20);
            c21 = madd(s2, b, c21);
            c30 = madd(s3, a, c30);
            c31 = madd(s3, b, c31);
          }
        }
        const out = gradWeight + <usize>mb * kBytes + (<usize>kb << 2);
        putColumn(out, kBytes, hsum4(c00, c10, c20, c30), rows, add);
        if (kb + 1 < k) putColumn(out + 4, kBytes, hsum4(c01, c11, c21, c31), rows, add);
      }
    }
  }
}

/**
 * dwconv-3x3p1-backward-input-wasmsimd at stride 1 or 2: gradIn[c] (=, or += when `accumulate`)
 * ∂L/∂input of the depthwise 3×3 convolution with padding 1; h, w are the input dims, gradOut
 * planes are [C][ho][wo] with ho = ⌊(h − 1)/stride⌋ + 1, weights [C][9] as in the forward.
 * `scratch` needs paddedPlaneFloats(h, w) floats.
 *
 * Stride 1 is the forward dwconv of the zero-padded gradOut with the kernel rotated 180°. At
 * stride 2 only the taps of matching parity reach an input pixel: even rows get kernel row 1 of
 * output row y/2, odd rows kernel rows 0 and 2 of output rows (y+1)/2 and (y−1)/2; the same split
 * along x gives even and odd columns as two vectors (1 or 2 taps each), interleaved on store —
 * 9 multiply-adds per 4 input pixels.
 */
export function dwconv3x3BackwardInput(
  channels: i32,
  h: i32,
  w: i32,
  stride: i32,
  gradOut: usize,
  weights: usize,
  gradIn: usize,
  accumulate: i32,
  scratch: usize,
): void {
  const oh = outputSize(h, stride);
  const ow = outputSize(w, stride);
  const rowBytes = <usize>paddedWidth(ow) << 2;
  for (let c = 0; c < channels; c++) {
    padPlane(gradOut + (<usize>(c * oh * ow) << 2), oh, ow, scratch, 0);
    const wc = weights + (<usize>(c * 9) << 2);
    const w00 = v128.load32_splat(wc), w01 = v128.load32_splat(wc, 4), w02 = v128.load32_splat(wc, 8);
    const w10 = v128.load32_splat(wc, 12), w11 = v128.load32_splat(wc, 16), w12 = v128.load32_splat(wc, 20);
    const w20 = v128.load32_splat(wc, 24), w21 = v128.load32_splat(wc, 28), w22 = v128.load32_splat(wc, 32);
    const out = gradIn + (<usize>(c * h * w) << 2);
    if (stride == 1) {
      // gradIn[y][x] = Σ padded[y + a][x + b] · w[2 − a][2 − b]; two rows share two of four loads.
      let y = 0;
      for (; y + 2 <= h; y += 2) {
        const r0 = scratch + <usize>y * rowBytes;
        const r1 = r0 + rowBytes;
        const r2 = r1 + rowBytes;
        const r3 = r2 + rowBytes;
        const o0 = out + (<usize>(y * w) << 2);
        const o1 = o0 + (<usize>w << 2);
        for (let x = 0; x < w; x += 4) {
          const at = <usize>x << 2;
          let v0 = v128.load(r1 + at);
          let v1 = v128.load(r1 + at, 4);
          let v2 = v128.load(r1 + at, 8);
          let acc0 = madd(w12, v0, madd(w11, v1, f32x4.mul(w10, v2)));
          let acc1 = madd(w22, v0, madd(w21, v1, f32x4.mul(w20, v2)));
          v0 = v128.load(r2 + at);
          v1 = v128.load(r2 + at, 4);
          v2 = v128.load(r2 + at, 8);
          acc0 = madd(w02, v0, madd(w01, v1, madd(w00, v2, acc0)));
          acc1 = madd(w12, v0, madd(w11, v1, madd(w10, v2, acc1)));
          acc0 = madd(w22, v128.load(r0 + at), madd(w21, v128.load(r0 + at, 4), madd(w20, v128.load(r0 + at, 8), acc0)));
          acc1 = madd(w02, v128.load(r3 + at), madd(w01, v128.load(r3 + at, 4), madd(w00, v128.load(r3 + at, 8), acc1)));
          const lanes = min(w - x, 4);
          storeLanes(o0 + at, acc0, lanes, accumulate);
          storeLanes(o1 + at, acc1, lanes, accumulate);
        }
      }
      if (y < h) {
        const r0 = scratch + <usize>y * rowBytes;
        const r1 = r0 + rowBytes;
        const r2 = r1 + rowBytes;
        const o = out + (<usize>(y * w) << 2);
        for (let x = 0; x < w; x += 4) {
          const at = <usize>x << 2;
          let acc = madd(w22, v128.load(r0 + at), madd(w21, v128.load(r0 + at, 4), f32x4.mul(w20, v128.load(r0 + at, 8))));
          acc = madd(w12, v128.load(r1 + at), madd(w11, v128.load(r1 + at, 4), madd(w10, v128.load(r1 + at, 8), acc)));
          acc = madd(w02, v128.load(r2 + at), madd(w01, v128.load(r2 + at, 4), madd(w00, v128.load(r2 + at, 8), acc)));
          storeLanes(o + at, acc, min(w - x, 4), accumulate);
        }
      }
    } else {
      // padded[j + 1][i + 1] = gradOut[j][i]. For input row y and columns 2i (even) and 2i + 1 (odd):
      // even y = 2j:     E = P[j+1][i+1]·w11,  O = P[j+1][i+1]·w12 + P[j+1][i+2]·w10
      // odd y = 2j + 1:  E = P[j+2][i+1]·w01 + P[j+1][i+1]·w21,
      //                  O = P[j+2][i+1]·w02 + P[j+2][i+2]·w00 + P[j+1][i+1]·w22 + P[j+1][i+2]·w20
      for (let y = 0; y < h; y++) {
        const j = y >> 1;
        const rLow = scratch + <usize>(j + 1) * rowBytes + 4;
        const rHigh = rLow + rowBytes;
        const o = out + (<usize>(y * w) << 2);
        for (let x = 0; x < w; x += 8) {
          const at = <usize>x << 1; // 4 output columns per 8 input columns
          const a = v128.load(rLow + at);
          const b = v128.load(rLow + at, 4);
          let even: v128, odd: v128;
          if ((y & 1) == 0) {
            even = f32x4.mul(w11, a);
            odd = madd(w10, b, f32x4.mul(w12, a));
          } else {
            const c = v128.load(rHigh + at);
            const d = v128.load(rHigh + at, 4);
            even = madd(w01, c, f32x4.mul(w21, a));
            odd = madd(w00, d, madd(w02, c, madd(w20, b, f32x4.mul(w22, a))));
          }
          const left = w - x;
          storeLanes(o + (<usize>x << 2), v128.shuffle<f32>(even, odd, 0, 4, 1, 5), min(left, 4), accumulate);
          if (left > 4) {
            storeLanes(o + (<usize>x << 2) + 16, v128.shuffle<f32>(even, odd, 2, 6, 3, 7), min(left - 4, 4), accumulate);
          }
        }
      }
    }
  }
}

/**
 * dwconv-3x3p1-backward-weight-wasmsimd at stride 1 or 2: gradWeight[c·9 + t] +=
 * Σ over output pixels of gradOut · the input pixel under tap t (padding 1; always accumulates,
 * one call per sample). h, w are the input dims; `scratch` needs paddedPlaneFloats(h, w)
 * floats. Nine vector accumulators per channel, one per tap, summed horizontally at the end.
 */
export function dwconv3x3BackwardWeight(
  channels: i32,
  h: i32,
  w: i32,
  stride: i32,
  input: usize,
  gradOut: usize,
  gradWeight: usize,
  scratch: usize,
): void {
  const oh = outputSize(h, stride);
  const ow = outputSize(w, stride);
  const rowBytes = <usize>paddedWidth(w) << 2;
  const full = ow & ~3;
  const tail = ow - full;
  const mask = laneMask(tail);
  const zero = f32x4.splat(0);
  for (let c = 0; c < channels; c++) {
    padPlane(input + (<usize>(c * h * w) << 2), h, w, scratch, 0);
    const go = gradOut + (<usize>(c * oh * ow) << 2);
    let t00 = zero, t01 = zero, t02 = zero, t10 = zero, t11 = zero, t12 = zero, t20 = zero, t21 = zero, t22 = zero;
    let oy = 0;
    if (stride == 1) {
      // Two output rows share two of their four input rows: 14 loads for 18 multiply-adds.
      for (; oy + 2 <= oh; oy += 2) {
        const r0 = scratch + <usize>oy * rowBytes;
        const r1 = r0 + rowBytes;
        const r2 = r1 + rowBytes;
        const r3 = r2 + rowBytes;
        const g0 = go + (<usize>(oy * ow) << 2);
        const g1 = g0 + (<usize>ow << 2);
        let x: v128;
        for (let ox = 0; ox < full; ox += 4) {
          const at = <usize>ox << 2;
          const a = v128.load(g0 + at);
          const b = v128.load(g1 + at);
          x = v128.load(r0 + at);
          t00 = madd(a, x, t00);
          x = v128.load(r0 + at, 4);
          t01 = madd(a, x, t01);
          x = v128.load(r0 + at, 8);
          t02 = madd(a, x, t02);
          x = v128.load(r1 + at);
          t10 = madd(a, x, t10);
          t00 = madd(b, x, t00);
          x = v128.load(r1 + at, 4);
          t11 = madd(a, x, t11);
          t01 = madd(b, x, t01);
          x = v128.load(r1 + at, 8);
          t12 = madd(a, x, t12);
          t02 = madd(b, x, t02);
          x = v128.load(r2 + at);
          t20 = madd(a, x, t20);
          t10 = madd(b, x, t10);
          x = v128.load(r2 + at, 4);
          t21 = madd(a, x, t21);
          t11 = madd(b, x, t11);
          x = v128.load(r2 + at, 8);
          t22 = madd(a, x, t22);
          t12 = madd(b, x, t12);
          x = v128.load(r3 + at);
          t20 = madd(b, x, t20);
          x = v128.load(r3 + at, 4);
          t21 = madd(b, x, t21);
          x = v128.load(r3 + at, 8);
          t22 = madd(b, x, t22);
        }
        if (tail != 0) {
          const at = <usize>full << 2;
          const a = loadLanes(g0 + at, tail);
          const b = loadLanes(g1 + at, tail);
          x = v128.and(v128.load(r0 + at), mask);
          t00 = madd(a, x, t00);
          x = v128.and(v128.load(r0 + at, 4), mask);
          t01 = madd(a, x, t01);
          x = v128.and(v128.load(r0 + at, 8), mask);
          t02 = madd(a, x, t02);
          x = v128.and(v128.load(r1 + at), mask);
          t10 = madd(a, x, t10);
          t00 = madd(b, x, t00);
          x = v128.and(v128.load(r1 + at, 4), mask);
          t11 = madd(a, x, t11);
          t01 = madd(b, x, t01);
          x = v128.and(v128.load(r1 + at, 8), mask);
          t12 = madd(a, x, t12);
          t02 = madd(b, x, t02);
          x = v128.and(v128.load(r2 + at), mask);
          t20 = madd(a, x, t20);
          t10 = madd(b, x, t10);
          x = v128.and(v128.load(r2 + at, 4), mask);
          t21 = madd(a, x, t21);
          t11 = madd(b, x, t11);
          x = v128.and(v128.load(r2 + at, 8), mask);
          t22 = madd(a, x, t22);
          t12 = madd(b, x, t12);
          x = v128.and(v128.load(r3 + at), mask);
          t20 = madd(b, x, t20);
          x = v128.and(v128.load(r3 + at, 4), mask);
          t21 = madd(b, x, t21);
          x = v128.and(v128.load(r3 + at, 8), mask);
          t22 = madd(b, x, t22);
        }
      }
    }
    for (; oy < oh; oy++) {
      const r0 = scratch + <usize>(oy * stride) * rowBytes;
      const r1 = r0 + rowBytes;
      const r2 = r1 + rowBytes;
      const g = go + (<usize>(oy * ow) << 2);
      // The last, partial vector: zeros in the unused lanes of gradOut, and the mask keeps a stray
      // value past the row (Inf, NaN) out of their products.
      const gTail = tail != 0 ? loadLanes(g + (<usize>full << 2), tail) : zero;
      if (stride == 1) {
        for (let ox = 0; ox < full; ox += 4) {
          const at = <usize>ox << 2;
          const gv = v128.load(g + at);
          t00 = madd(gv, v128.load(r0 + at), t00);
          t01 = madd(gv, v128.load(r0 + at, 4), t01);
          t02 = madd(gv, v128.load(r0 + at, 8), t02);
          t10 = madd(gv, v128.load(r1 + at), t10);
          t11 = madd(gv, v128.load(r1 + at, 4), t11);
          t12 = madd(gv, v128.load(r1 + at, 8), t12);
          t20 = madd(gv, v128.load(r2 + at), t20);
          t21 = madd(gv, v128.load(r2 + at, 4), t21);
          t22 = madd(gv, v128.load(r2 + at, 8), t22);
        }
        if (tail != 0) {
          const at = <usize>full << 2;
          t00 = madd(gTail, v128.and(v128.load(r0 + at), mask), t00);
          t01 = madd(gTail, v128.and(v128.load(r0 + at, 4), mask), t01);
          t02 = madd(gTail, v128.and(v128.load(r0 + at, 8), mask), t02);
          t10 = madd(gTail, v128.and(v128.load(r1 + at), mask), t10);
          t11 = madd(gTail, v128.and(v128.load(r1 + at, 4), mask), t11);
          t12 = madd(gTail, v128.and(v128.load(r1 + at, 8), mask), t12);
          t20 = madd(gTail, v128.and(v128.load(r2 + at), mask), t20);
          t21 = madd(gTail, v128.and(v128.load(r2 + at, 4), mask), t21);
          t22 = madd(gTail, v128.and(v128.load(r2 + at, 8), mask), t22);
        }
      } else {
        // Columns 2·ox + kx of each row: even, odd, and even shifted by one (3 loads, 3 shuffles).
        for (let ox = 0; ox < full; ox += 4) {
          const at = <usize>ox << 3;
          const gv = v128.load(g + (<usize>ox << 2));
          let v0 = v128.load(r0 + at), v1 = v128.load(r0 + at, 16), v2 = v128.load(r0 + at, 32);
          let even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
          t00 = madd(gv, even, t00);
          t01 = madd(gv, v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), t01);
          t02 = madd(gv, v128.shuffle<f32>(even, v2, 1, 2, 3, 4), t02);
          v0 = v128.load(r1 + at);
          v1 = v128.load(r1 + at, 16);
          v2 = v128.load(r1 + at, 32);
          even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
          t10 = madd(gv, even, t10);
          t11 = madd(gv, v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), t11);
          t12 = madd(gv, v128.shuffle<f32>(even, v2, 1, 2, 3, 4), t12);
          v0 = v128.load(r2 + at);
          v1 = v128.load(r2 + at, 16);
          v2 = v128.load(r2 + at, 32);
          even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
          t20 = madd(gv, even, t20);
          t21 = madd(gv, v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), t21);
          t22 = madd(gv, v128.shuffle<f32>(even, v2, 1, 2, 3, 4), t22);
        }
        if (tail != 0) {
          const at = <usize>full << 3;
          let v0 = v128.load(r0 + at), v1 = v128.load(r0 + at, 16), v2 = v128.load(r0 + at, 32);
          let even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
          t00 = madd(gTail, v128.and(even, mask), t00);
          t01 = madd(gTail, v128.and(v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), mask), t01);
          t02 = madd(gTail, v128.and(v128.shuffle<f32>(even, v2, 1, 2, 3, 4), mask), t02);
          v0 = v128.load(r1 + at);
          v1 = v128.load(r1 + at, 16);
          v2 = v128.load(r1 + at, 32);
          even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
          t10 = madd(gTail, v128.and(even, mask), t10);
          t11 = madd(gTail, v128.and(v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), mask), t11);
          t12 = madd(gTail, v128.and(v128.shuffle<f32>(even, v2, 1, 2, 3, 4), mask), t12);
          v0 = v128.load(r2 + at);
          v1 = v128.load(r2 + at, 16);
          v2 = v128.load(r2 + at, 32);
          even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
          t20 = madd(gTail, v128.and(even, mask), t20);
          t21 = madd(gTail, v128.and(v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), mask), t21);
          t22 = madd(gTail, v128.and(v128.shuffle<f32>(even, v2, 1, 2, 3, 4), mask), t22);
        }
      }
    }
    const out = gradWeight + (<usize>(c * 9) << 2);
    v128.store(out, f32x4.add(v128.load(out), hsum4(t00, t01, t02, t10)));
    v128.store(out, f32x4.add(v128.load(out, 16), hsum4(t11, t12, t20, t21)), 16);
    const last = f32x4.add(v128.shuffle<f32>(t22, t22, 0, 1, 0, 1), v128.shuffle<f32>(t22, t22, 2, 3, 2, 3));
    store<f32>(out + 32, load<f32>(out + 32) + f32x4.extract_lane(last, 0) + f32x4.extract_lane(last, 1));
  }
}
