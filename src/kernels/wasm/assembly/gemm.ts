// f32 GEMM micro-kernels for 1×1 convolution over NCHW activations (WASM SIMD128).
//
//   out[m, p] = bias[m] + Σ_k w[m, k] · in[k, p]  (+ residual[m, p])  (then an activation, optionally)
//
// m runs over output channels, k over input channels, p over pixels. Pixels are contiguous in
// NCHW, so each tile holds 4 output channels × 8 pixels in 8 vector accumulators: per k it loads
// two input vectors and broadcasts 4 packed weights (8 multiply-adds per 6 loads).
//
// Weights are pre-packed per block of 4 output channels as [K][4] (the last block zero-padded),
// bias as [⌈M/4⌉·4]. Every output row is addressed through a table of plane addresses, so the
// caller chooses where each output channel lands: a channel shuffle, a concat offset or a
// permutation costs nothing. The residual (if any) is addressed the same way.
//
// NOTE: tails (pixels not a multiple of 4) read up to 12 bytes past the last input row and
// compute garbage in unused lanes, which are never stored. Callers leave 16 bytes of slack.

import { activate, madd, storeLanes } from './common';

@inline
function finish(v: v128, residual: usize, act: i32): v128 {
  if (residual != 0) v = f32x4.add(v, v128.load(residual));
  return act != 0 ? activate(v, act) : v;
}

@inline
function rowAddress(table: usize, row: i32, offset: usize): usize {
  return <usize>load<u32>(table + (<usize>row << 2)) + offset;
}

@inline
function storeRow8(
  row: i32,
  rows: i32,
  outTable: usize,
  resTable: usize,
  offset: usize,
  act: i32,
  lo: v128,
  hi: v128,
): void {
  if (row < rows) {
    const out = rowAddress(outTable, row, offset);
    const res = resTable != 0 ? rowAddress(resTable, row, offset) : 0;
    v128.store(out, finish(lo, res, act));
    v128.store(out, finish(hi, res != 0 ? res + 16 : 0, act), 16);
  }
}

@inline
function storeRow4(
  row: i32,
  rows: i32,
  outTable: usize,
  resTable: usize,
  offset: usize,
  act: i32,
  v: v128,
  lanes: i32,
): void {
  if (row < rows) {
    const out = rowAddress(outTable, row, offset);
    const res = resTable != 0 ? rowAddress(resTable, row, offset) : 0;
    storeLanes(out, finish(v, res, act), lanes, 0);
  }
}

/**
 * gemm-4x8-wasmsimd over NCHW: see the file comment. `outTable` and `resTable` hold one u32 plane
 * address per output channel (resTable may be 0); `offset` (bytes) is added to every address, so
 * a caller can write a band of pixels.
 */
export function gemm4x8(
  k: i32,
  m: i32,
  pixels: i32,
  weights: usize,
  bias: usize,
  input: usize,
  inStride: usize,
  outTable: usize,
  resTable: usize,
  offset: usize,
  act: i32,
): void {
  for (let mb = 0; mb < m; mb += 4) {
    const rows = min(m - mb, 4);
    const w = weights + (<usize>(mb * k) << 2);
    const b = v128.load(bias + (<usize>mb << 2));
    const b0 = v128.shuffle<f32>(b, b, 0, 0, 0, 0);
    const b1 = v128.shuffle<f32>(b, b, 1, 1, 1, 1);
    const b2 = v128.shuffle<f32>(b, b, 2, 2, 2, 2);
    const b3 = v128.shuffle<f32>(b, b, 3, 3, 3, 3);
    const outRows = outTable + (<usize>mb << 2);
    const resRows = resTable != 0 ? resTable + (<usize>mb << 2) : 0;
    let p = 0;
    for (; p + 8 <= pixels; p += 8) {
      let c00 = b0, c01 = b0, c10 = b1, c11 = b1, c20 = b2, c21 = b2, c30 = b3, c31 = b3;
      let a = w;
      let x = input + (<usize>p << 2);
      for (let kk = 0; kk < k; kk++) {
        const x0 = v128.load(x);
        const x1 = v128.load(x, 16);
        const s0 = v128.load32_splat(a);
        const s1 = v128.load32_splat(a, 4);
        const s2 = v128.load32_splat(a, 8);
        const s3 = v128.load32_splat(a, 12);
        c00 = madd(s0, x0, c00);
        c01 = madd(s0, x1, c01);
        c10 = madd(s1, x0, c10);
        c11 = madd(s1, x1, c11);
        c20 = madd(s2, x0, c20);
        c21 = madd(s2, x1, c21);
        c30 = madd(s3, x0, c30);
        c31 = madd(s3, x1, c31);
        a += 16;
        x += inStride;
      }
      const o = offset + (<usize>p << 2);
      storeRow8(0, rows, outRows, resRows, o, act, c00, c01);
      storeRow8(1, rows, outRows, resRows, o, act, c10, c11);
      storeRow8(2, rows, outRows, resRows, o, act, c20, c21);
      storeRow8(3, rows, outRows, resRows, o, act, c30, c31);
    }
    for (; p < pixels; p += 4) {
      const lanes = min(pixels - p, 4);
      let c0 = b0, c1 = b1, c2 = b2, c3 = b3;
      let a = w;
      let x = input + (<usize>p << 2);
      for (let kk = 0; kk < k; kk++) {
        const x0 = v128.load(x);
        c0 = madd(v128.load32_splat(a), x0, c0);
        c1 = madd(v128.load32_splat(a, 4), x0, c1);
        c2 = madd(v128.load32_splat(a, 8), x0, c2);
        c3 = madd(v128.load32_splat(a, 12), x0, c3);
        a += 16;
        x += inStride;
      }
      const o = offset + (<usize>p << 2);
      storeRow4(0, rows, outRows, resRows, o, act, c0, lanes);
      storeRow4(1, rows, outRows, resRows, o, act, c1, lanes);
      storeRow4(2, rows, outRows, resRows, o, act, c2, lanes);
      storeRow4(3, rows, outRows, resRows, o, act, c3, lanes);
    }
  }
}

/**
 * Fully connected layer (a GEMV): out[o] = bias[o] + Σ_i w[o, i] · x[i], then activation `act`.
 * Weights packed per block of 8 outputs as [in][8], bias as [⌈out/8⌉·8]; `out` must have room for
 * ⌈out/8⌉·8 floats.
 */
export function dense8(
  inFeatures: i32,
  outFeatures: i32,
  x: usize,
  weights: usize,
  bias: usize,
  out: usize,
  act: i32,
): void {
  for (let ob = 0; ob < outFeatures; ob += 8) {
    let w = weights + (<usize>(ob * inFeatures) << 2);
    let c0 = v128.load(bias + (<usize>ob << 2));
    let c1 = v128.load(bias + (<usize>ob << 2), 16);
    let d0 = f32x4.splat(0);
    let d1 = f32x4.splat(0);
    let i = 0;
    // Two independent accumulator pairs hide the add latency.
    for (; i + 2 <= inFeatures; i += 2) {
      const s0 = v128.load32_splat(x + (<usize>i << 2));
      const s1 = v128.load32_splat(x + (<usize>i << 2), 4);
      c0 = madd(s0, v128.load(w), c0);
      c1 = madd(s0, v128.load(w, 16), c1);
      d0 = madd(s1, v128.load(w, 32), d0);
      d1 = madd(s1, v128.load(w, 48), d1);
      w += 64;
    }
    if (i < inFeatures) {
      const s0 = v128.load32_splat(x + (<usize>i << 2));
      c0 = madd(s0, v128.load(w), c0);
      c1 = madd(s0, v128.load(w, 16), c1);
    }
    v128.store(out + (<usize>ob << 2), finish(f32x4.add(c0, d0), 0, act));
    v128.store(out + (<usize>ob << 2), finish(f32x4.add(c1, d1), 0, act), 16);
  }
}
