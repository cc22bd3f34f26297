// Entry point of the int8 kernels module (docs/int8.md): a separate WASM module, loaded only by
// int8 plans, so that the float runtime does not carry it. Everything exported here is callable
// from JS; scripts/build-wasm.mjs generates its TypeScript interface (Int8KernelExports).
//
// The arithmetic is the reference's (src/kernels/reference/quantized.ts), bit for bit:
//   acc = bias + Σ (x − z_x) · w                     exact int32 (i32x4.dot_i16x8_s)
//   u   = fround(fround(acc) · m[o])                 f32x4.convert_i32x4_s, f32x4.mul
//   u   = min(max(u, lo), hi)                        ReLU: lo = 0; ReLU6: hi = fround(6 / s_y)
//   q   = clamp(round(u) + z_y, 0, 255)              round half to even (roundBiased); the clamps
//                                                    above also hold [−z_y, 255 − z_y], so q fits

export function heapBase(): usize {
  return __heap_base;
}

/**
 * Packs `k` uint8 rows of `pixels` values (row r at input + r·rowStride) for qgemm: each pair of
 * rows (2j, 2j + 1) becomes one row of ⌈pixels/8⌉·8 i16 pairs (x[2j][p] − z, x[2j+1][p] − z), so
 * that one i32x4.dot_i16x8_s multiplies two input channels for 4 pixels. An odd k's last pair
 * holds 0 in its second half. Pair row j starts at out + j·pairStride (pairStride ≥ ⌈pixels/8⌉·32).
 * Tail lanes past `pixels` hold what the rows hold past their end (never stored by qgemm).
 */
export function qpack(input: usize, rowStride: usize, k: i32, pixels: i32, zero: i32, out: usize, pairStride: usize): void {
  const z = i16x8.splat(<i16>zero);
  const padded = (pixels + 7) & ~7;
  for (let j = 0; j < k; j += 2) {
    const a = input + <usize>j * rowStride;
    const b = a + rowStride;
    const second = j + 1 < k;
    let o = out + <usize>(j >> 1) * pairStride;
    for (let p = 0; p < padded; p += 8) {
      const va = i16x8.sub(i16x8.extend_low_i8x16_u(v128.load64_zero(a + <usize>p)), z);
      const vb = second ? i16x8.sub(i16x8.extend_low_i8x16_u(v128.load64_zero(b + <usize>p)), z) : i16x8.splat(0);
      v128.store(o, v128.shuffle<i16>(va, vb, 0, 8, 1, 9, 2, 10, 3, 11));
      v128.store(o, v128.shuffle<i16>(va, vb, 4, 12, 5, 13, 6, 14, 7, 15), 16);
      o += 32;
    }
  }
}

/**
 * Packs `k` uint8 rows of `pixels` values (row r at input + r·rowStride) for qgemm7: each quad of
 * rows (4j … 4j + 3) becomes one row of ⌈pixels/8⌉·8 groups of 4 bytes, x[4j + i][p] − 128 as i8
 * (rows past k: 0), quad row j at out + j·quadStride; and S[p] = Σ_r (x[r][p] − 128) as i32 right
 * after the last quad row, at out + ⌈k/4⌉·quadStride + 4p (⌈pixels/8⌉·8 of them: one more
 * quadStride), which qgemm7 needs to take its weights' offset of 64 away.
 * Tail lanes past `pixels` hold what the rows hold past their end (never stored by qgemm7).
 */
export function qpack4(input: usize, rowStride: usize, k: i32, pixels: i32, out: usize, quadStride: usize): void {
  const padded = (pixels + 7) & ~7;
  const sums = out + <usize>((k + 3) >> 2) * quadStride;
  const flip = i8x16.splat(-128);
  const ones = i8x16.splat(1);
  for (let p = 0; p < padded; p += 8) {
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let o = out + (<usize>p << 2);
    for (let j = 0; j < k; j += 4) {
      const row = input + <usize>j * rowStride + <usize>p;
      // Rows past k hold 128, which becomes 0.
      const r0 = v128.load64_zero(row);
      const r1 = j + 1 < k ? v128.load64_zero(row + rowStride) : flip;
      const r2 = j + 2 < k ? v128.load64_zero(row + 2 * rowStride) : flip;
      const r3 = j + 3 < k ? v128.load64_zero(row + 3 * rowStride) : flip;
      const r01 = v128.shuffle<u8>(r0, r1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const r23 = v128.shuffle<u8>(r2, r3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const q0 = v128.xor(v128.shuffle<u16>(r01, r23, 0, 8, 1, 9, 2, 10, 3, 11), flip);
      const q1 = v128.xor(v128.shuffle<u16>(r01, r23, 4, 12, 5, 13, 6, 14, 7, 15), flip);
      v128.store(o, q0);
      v128.store(o, q1, 16);
      s0 = dot4Add(q0, ones, s0);
      s1 = dot4Add(q1, ones, s1);
      o += quadStride;
    }
    v128.store(sums + (<usize>p << 2), s0);
    v128.store(sums + (<usize>p << 2), s1, 16);
  }
}

/** 1.5·2²³: u + MAGIC rounds u (|u| ≤ 2²²) to an integer held in the float's low mantissa bits. */
const MAGIC: f32 = 12582912.0;

/**
 * Round half to even and add the zero point, for |u| ≤ 2²²: u + 1.5·2²³ rounds u to an integer in
 * the float's low mantissa bits (the addition itself rounds half to even), so the bits minus those
 * of 1.5·2²³ are round(u) (XNNPACK's "magic" fp32 requantization). `bias` is 0x4B400000 − z_y as
 * i32 lanes: one subtraction takes the magic number's bits away and adds the zero point.
 */
@inline
function roundBiased(u: v128, bias: v128): v128 {
  return i32x4.sub(f32x4.add(u, f32x4.splat(MAGIC)), bias);
}

/**
 * Clamps to [lo, hi] with pmin/pmax (one instruction each on x86; NaN never reaches here: u comes
 * from integers times a finite multiplier).
 */
@inline
function clamp(u: v128, lo: v128, hi: v128): v128 {
  return f32x4.pmin(f32x4.pmax(u, lo), hi);
}

/**
 * The requantization of one vector of 4 accumulators (see the file comment), before narrowing. The
 * clamps are the activation's intersected with [−z_y, 255 − z_y] (epilogueParams in ../int8.ts), so
 * a rounded value is already within uint8 and the rounding stays exact.
 */
@inline
function requantize(acc: v128, m: v128, lo: v128, hi: v128, bias: v128): v128 {
  return roundBiased(clamp(f32x4.mul(f32x4.convert_i32x4_s(acc), m), lo, hi), bias);
}

/**
 * A residual step's requantization of 4 accumulators (residualSteps in the reference): the
 * convolution's value at the pre-add scale, q_c − z_c = round(clamp(acc · m, −z_c, 255 − z_c))
 * (the integer clamps are the uint8 saturation; (v + MAGIC) − MAGIC is the rounded value as a
 * float), then u = fround(m_a · (q_c − z_c)) + fround(m_r · (r − z_r)) and the output's
 * requantization. `r` holds r − z_r as f32; `e` is the params block (see qgemm).
 */
@inline
function requantizeResidual(acc: v128, m: v128, r: v128, lo: v128, hi: v128, bias: v128, e: usize): v128 {
  const u = clamp(f32x4.mul(f32x4.convert_i32x4_s(acc), m), v128.load(e, 48), v128.load(e, 64));
  const c = f32x4.sub(f32x4.add(u, f32x4.splat(MAGIC)), f32x4.splat(MAGIC));
  const v = f32x4.add(f32x4.mul(v128.load(e, 80), c), f32x4.mul(v128.load(e, 96), r));
  return roundBiased(clamp(v, lo, hi), bias);
}

/** One value's epilogue, as requantize does it for vectors: clamp, round half to even, zero point, saturate. */
@inline
function storeRounded(out: usize, u: f32, lo: f32, hi: f32, bias: i32): void {
  const q = reinterpret<i32>(min(max(u, lo), hi) + MAGIC) - bias;
  store<u8>(out, <u8>min(max(q, 0), 255));
}

/** Saturates two vectors of i32 to uint8 and stores their 8 bytes (lanes lo then hi). */
@inline
function store8(out: usize, lo: v128, hi: v128): void {
  const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(lo, hi), i16x8.splat(0));
  v128.store64_lane(out, bytes, 0);
}

/** Stores the first `lanes` (1–4) of a vector of i32 as saturated uint8. */
@inline
function storeLanes(out: usize, v: v128, lanes: i32): void {
  const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(v, v), i16x8.splat(0));
  if (lanes == 4) v128.store32_lane(out, bytes, 0);
  else {
    store<u8>(out, i8x16.extract_lane_u(bytes, 0));
    if (lanes > 1) store<u8>(out, i8x16.extract_lane_u(bytes, 1), 1);
    if (lanes > 2) store<u8>(out, i8x16.extract_lane_u(bytes, 2), 2);
  }
}

@inline
function rowAddress(table: usize, row: i32, offset: usize): usize {
  return <usize>load<u32>(table + (<usize>row << 2)) + offset;
}

/**
 * qgemm-4x8-wasmsimd: a group of a 1×1 convolution in int8, over input packed by qpack (`pairs`
 * pair rows, pairStride bytes apart). Weights are packed per block of 4 output channels as
 * [pairs][4] i32 words, each (w[o][2j] as i16) | (w[o][2j+1] << 16), the last block zero-padded;
 * bias [⌈m/4⌉·4] i32; multipliers [⌈m/4⌉·4] f32 (m[o], or the pre-add multipliers of a residual
 * step). Output channel o is written as uint8 at outTable[o] + offset (a table of byte addresses,
 * so a shuffle, a concat offset or any permutation is free); the residual (resTable ≠ 0) is read
 * the same way. `params` points at the epilogue's 8 v128s (epilogueParams in ../int8.ts): lo, hi
 * (f32 clamps in output steps), 0x4B400000 − z_y (i32), and for a residual −z_c, 255 − z_c, m_a,
 * m_r and z_r (f32).
 */
export function qgemm(
  pairs: i32,
  m: i32,
  pixels: i32,
  weights: usize,
  bias: usize,
  multipliers: usize,
  input: usize,
  pairStride: usize,
  outTable: usize,
  resTable: usize,
  offset: usize,
  params: usize,
): void {
  gemmTiles<i16>(pairs, m, pixels, weights, bias, multipliers, input, pairStride, 0, outTable, resTable, offset, params);
}

/**
 * qgemm7-4x8: qgemm for 7-bit weights (w in [−64, 63]) by the 8-bit dot product of relaxed SIMD,
 * i32x4.relaxed_dot_i8x16_i7x16_add_s: 16 multiply-adds in one instruction, exact on every engine
 * because its second operand stays within [0, 127]. Input packed by qpack4 (`quads` rows of 4
 * input channels as i8 x − 128, quadStride bytes apart) with its per-pixel sums S[p] = Σ (x − 128);
 * weights per block of 4 output channels as [quads][4][4] bytes w + 64 (64 where padded); bias
 * folded by the packer: bias + (128 − z_x) · Σ w. Then acc = bias' + dot − 64 · S[p]
 * = bias + Σ (x − z_x) · w, the same integer as qgemm's. Everything else as qgemm.
 * The SIMD128 build computes the same dot product in exact SIMD128 steps (slower; for tests).
 */
export function qgemm7(
  quads: i32,
  m: i32,
  pixels: i32,
  weights: usize,
  bias: usize,
  multipliers: usize,
  input: usize,
  quadStride: usize,
  outTable: usize,
  resTable: usize,
  offset: usize,
  params: usize,
): void {
  const sums = input + <usize>quads * quadStride;
  gemmTiles<i8>(quads, m, pixels, weights, bias, multipliers, input, quadStride, sums, outTable, resTable, offset, params);
}

/**
 * The 4×8 tiles of qgemm (K = i16: pairs of input channels, i32x4.dot_i16x8_s) and qgemm7 (K = i8:
 * quads, the 8-bit dot product, less 64 · S[p]); the epilogue is the same.
 */
@inline
function gemmTiles<K>(
  steps: i32,
  m: i32,
  pixels: i32,
  weights: usize,
  bias: usize,
  multipliers: usize,
  input: usize,
  stride: usize,
  sums: usize,
  outTable: usize,
  resTable: usize,
  offset: usize,
  params: usize,
): void {
  const e = params;
  const lo = v128.load(params);
  const hi = v128.load(params, 16);
  const rounding = v128.load(params, 32); // 0x4B400000 − z_y
  for (let mb = 0; mb < m; mb += 4) {
    const rows = min(m - mb, 4);
    const w = weights + (<usize>(mb * steps) << 2);
    const b = v128.load(bias + (<usize>mb << 2));
    const b0 = i32x4.splat(i32x4.extract_lane(b, 0));
    const b1 = i32x4.splat(i32x4.extract_lane(b, 1));
    const b2 = i32x4.splat(i32x4.extract_lane(b, 2));
    const b3 = i32x4.splat(i32x4.extract_lane(b, 3));
    const mv = v128.load(multipliers + (<usize>mb << 2));
    const m0 = f32x4.splat(f32x4.extract_lane(mv, 0));
    const m1 = f32x4.splat(f32x4.extract_lane(mv, 1));
    const m2 = f32x4.splat(f32x4.extract_lane(mv, 2));
    const m3 = f32x4.splat(f32x4.extract_lane(mv, 3));
    const outRows = outTable + (<usize>mb << 2);
    const resRows = resTable != 0 ? resTable + (<usize>mb << 2) : 0;
    let p = 0;
    for (; p + 8 <= pixels; p += 8) {
      let c00 = b0, c01 = b0, c10 = b1, c11 = b1, c20 = b2, c21 = b2, c30 = b3, c31 = b3;
      if (sizeof<K>() == 1) {
        const s0 = i32x4.shl(v128.load(sums + (<usize>p << 2)), 6);
        const s1 = i32x4.shl(v128.load(sums + (<usize>p << 2), 16), 6);
        c00 = i32x4.sub(c00, s0); c10 = i32x4.sub(c10, s0); c20 = i32x4.sub(c20, s0); c30 = i32x4.sub(c30, s0);
        c01 = i32x4.sub(c01, s1); c11 = i32x4.sub(c11, s1); c21 = i32x4.sub(c21, s1); c31 = i32x4.sub(c31, s1);
      }
      let a = w;
      let x = input + (<usize>p << 2);
      for (let j = 0; j < steps; j++) {
        const x0 = v128.load(x);
        const x1 = v128.load(x, 16);
        const s0 = v128.load32_splat(a);
        const s1 = v128.load32_splat(a, 4);
        const s2 = v128.load32_splat(a, 8);
        const s3 = v128.load32_splat(a, 12);
        c00 = mac<K>(c00, x0, s0);
        c01 = mac<K>(c01, x1, s0);
        c10 = mac<K>(c10, x0, s1);
        c11 = mac<K>(c11, x1, s1);
        c20 = mac<K>(c20, x0, s2);
        c21 = mac<K>(c21, x1, s2);
        c30 = mac<K>(c30, x0, s3);
        c31 = mac<K>(c31, x1, s3);
        a += 16;
        x += stride;
      }
      const o = offset + <usize>p;
      row8(0, rows, outRows, resRows, o, c00, c01, m0, lo, hi, rounding, e);
      row8(1, rows, outRows, resRows, o, c10, c11, m1, lo, hi, rounding, e);
      row8(2, rows, outRows, resRows, o, c20, c21, m2, lo, hi, rounding, e);
      row8(3, rows, outRows, resRows, o, c30, c31, m3, lo, hi, rounding, e);
    }
    for (; p < pixels; p += 4) {
      const lanes = min(pixels - p, 4);
      let c0 = b0, c1 = b1, c2 = b2, c3 = b3;
      if (sizeof<K>() == 1) {
        const s = i32x4.shl(v128.load(sums + (<usize>p << 2)), 6);
        c0 = i32x4.sub(c0, s); c1 = i32x4.sub(c1, s); c2 = i32x4.sub(c2, s); c3 = i32x4.sub(c3, s);
      }
      let a = w;
      let x = input + (<usize>p << 2);
      for (let j = 0; j < steps; j++) {
        const x0 = v128.load(x);
        c0 = mac<K>(c0, x0, v128.load32_splat(a));
        c1 = mac<K>(c1, x0, v128.load32_splat(a, 4));
        c2 = mac<K>(c2, x0, v128.load32_splat(a, 8));
        c3 = mac<K>(c3, x0, v128.load32_splat(a, 12));
        a += 16;
        x += stride;
      }
      const o = offset + <usize>p;
      row4(0, rows, outRows, resRows, o, c0, m0, lo, hi, rounding, e, lanes);
      row4(1, rows, outRows, resRows, o, c1, m1, lo, hi, rounding, e, lanes);
      row4(2, rows, outRows, resRows, o, c2, m2, lo, hi, rounding, e, lanes);
      row4(3, rows, outRows, resRows, o, c3, m3, lo, hi, rounding, e, lanes);
    }
  }
}


/** acc + the products of one step of K: a pair of i16 (qgemm) or a quad of i8 by 7-bit weights (qgemm7). */
@inline
function mac<K>(acc: v128, x: v128, w: v128): v128 {
  if (sizeof<K>() == 2) return i32x4.add(acc, i32x4.dot_i16x8_s(x, w));
  return dot4Add(x, w, acc);
}

/**
 * dot4Add of (a, b, c) splatted, lane 0: 4ab + c where the 8-bit dot product is right. Int8Kernels
 * checks the relaxed build with it before using it: V8 11.3 (Node 20, under
 * --experimental-wasm-relaxed-simd) returns 8ab + c from i32x4.relaxed_dot_i8x16_i7x16_add_s.
 */
export function qdot4Probe(a: i32, b: i32, c: i32): i32 {
  return i32x4.extract_lane(dot4Add(i8x16.splat(<i8>a), i8x16.splat(<i8>b), i32x4.splat(c)), 0);
}

/**
 * c + Σ of each lane's 4 products a[4i + j] · b[4i + j] (a i8, b in [0, 127]): the relaxed
 * instruction where the build has it; in the SIMD128 build the same sums by widening multiplies
 * (exact: a product fits i16, as does the sum of two).
 */
@inline
function dot4Add(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c);
  const lo = i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_low_i8x16_s(a, b));
  const hi = i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_high_i8x16_s(a, b));
  return i32x4.add(c, i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7)));
}

@inline
function row8(
  row: i32, rows: i32, outTable: usize, resTable: usize, offset: usize,
  first: v128, second: v128, m: v128, lo: v128, hi: v128, bias: v128, e: usize,
): void {
  if (row < rows) {
    let a: v128, b: v128;
    if (resTable == 0) {
      a = requantize(first, m, lo, hi, bias);
      b = requantize(second, m, lo, hi, bias);
    } else {
      // The 8 residual bytes once, as r − z_r in f32.
      const r = i16x8.extend_low_i8x16_u(v128.load64_zero(rowAddress(resTable, row, offset)));
      const zr = v128.load(e, 112);
      a = requantizeResidual(first, m, f32x4.sub(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(r)), zr), lo, hi, bias, e);
      b = requantizeResidual(second, m, f32x4.sub(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(r)), zr), lo, hi, bias, e);
    }
    store8(rowAddress(outTable, row, offset), a, b);
  }
}

@inline
function row4(
  row: i32, rows: i32, outTable: usize, resTable: usize, offset: usize,
  acc: v128, m: v128, lo: v128, hi: v128, bias: v128, e: usize, lanes: i32,
): void {
  if (row < rows) {
    let q: v128;
    if (resTable == 0) q = requantize(acc, m, lo, hi, bias);
    else {
      const r = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(rowAddress(resTable, row, offset))));
      q = requantizeResidual(acc, m, f32x4.sub(f32x4.convert_i32x4_s(r), v128.load(e, 112)), lo, hi, bias, e);
    }
    storeLanes(rowAddress(outTable, row, offset), q, lanes);
  }
}

/** i16 elements per row of qdwconv3x3's padded plane for width `w`: w + 2, rounded up, plus a vector of slack. */
export function qdwPaddedWidth(w: i32): i32 {
  return ((w + 2 + 7) & ~7) + 16;
}

/**
 * qdwconv-3x3p1-wasmsimd: `planes` consecutive planes of a depthwise 3×3 convolution, padding 1,
 * stride 1 or 2, in int8. Each uint8 plane (h × w) is copied into `scratch` as i16 (x − z) inside
 * a border of zeros (the real value 0), qdwPaddedWidth(w) elements per row, (h + 2) rows; then 8
 * outputs at a time: per tap one (stride 1) or two loads and a shuffle (stride 2), and two
 * i32x4.extmul of the i16 pixels by the tap's weight. Per plane: 9 taps as i32 at `weights`
 * (row-major, 36 bytes a plane), an i32 bias at `bias` and an f32 multiplier at `multipliers`;
 * `params` is the epilogue block of qgemm (lo, hi, the rounding bias). Each plane's oh × ow outputs follow the last.
 */
export function qdwconv3x3(
  planes: i32,
  input: usize,
  h: i32,
  w: i32,
  zero: i32,
  weights: usize,
  bias: usize,
  multipliers: usize,
  stride: i32,
  out: usize,
  scratch: usize,
  params: usize,
): void {
  const pw = qdwPaddedWidth(w);
  fillScratch(scratch, h, pw, 0);
  const outPlane = <usize>(((h - 1) / stride + 1) * ((w - 1) / stride + 1));
  for (let p = 0; p < planes; p++) {
    copyPlane(input + <usize>(p * h * w), h, w, zero, scratch, pw, 0);
    dwPlane(h, w, pw, weights + <usize>(p * 36), load<i32>(bias + (<usize>p << 2)), load<f32>(multipliers + (<usize>p << 2)), stride, out + <usize>p * outPlane, scratch, params);
  }
}

/**
 * One plane of qdwconv3x3 from its padded scratch, by pairs of taps: i32x4.dot_i16x8_s of
 * (c[x], c[x + 1]) pixel pairs by a (w0, w1) weight pair, and of (c[x + 2], ·) by (w2, 0), per row
 * of the window: 4 dot products (one instruction each) per row per 8 outputs, against 6 widening
 * multiplies with extmul. At stride 1 the pairs start at even and odd columns (two accumulators of
 * interleaved outputs, put back in order before the store); at stride 2 every output's window
 * starts at an even column, so the pairs fall in order.
 */
@inline
function dwPlane(h: i32, w: i32, pw: i32, weights: usize, bias: i32, m: f32, stride: i32, out: usize, scratch: usize, params: usize): void {
  const oh = (h - 1) / stride + 1;
  const ow = (w - 1) / stride + 1;
  const lo = v128.load(params);
  const hi = v128.load(params, 16);
  const rounding = v128.load(params, 32);
  const mv = f32x4.splat(m);
  const b = i32x4.splat(bias);
  const p0 = tapPair(weights, 0);
  const q0 = tapPair(weights, 8);
  const p1 = tapPair(weights, 12);
  const q1 = tapPair(weights, 20);
  const p2 = tapPair(weights, 24);
  const q2 = tapPair(weights, 32);
  const rowBytes = <usize>pw << 1;
  for (let oy = 0; oy < oh; oy++) {
    const r0 = scratch + <usize>(oy * stride) * rowBytes;
    const r1 = r0 + rowBytes;
    const r2 = r1 + rowBytes;
    const dst = out + <usize>(oy * ow);
    for (let ox = 0; ox < ow; ox += 8) {
      let e = b;
      let o = b;
      if (stride == 1) {
        // e: outputs ox, ox + 2, ox + 4, ox + 6; o: ox + 1, ox + 3, …
        const x = <usize>ox << 1;
        e = pairRow(e, r0 + x, 0, 4, p0, q0); o = pairRow(o, r0 + x, 2, 6, p0, q0);
        e = pairRow(e, r1 + x, 0, 4, p1, q1); o = pairRow(o, r1 + x, 2, 6, p1, q1);
        e = pairRow(e, r2 + x, 0, 4, p2, q2); o = pairRow(o, r2 + x, 2, 6, p2, q2);
        const qe = requantize(e, mv, lo, hi, rounding);
        const qo = requantize(o, mv, lo, hi, rounding);
        storeRow(dst + <usize>ox, i32x4.shuffle(qe, qo, 0, 4, 1, 5), i32x4.shuffle(qe, qo, 2, 6, 3, 7), ow - ox);
      } else {
        // e: outputs ox … ox + 3 (columns 2ox …); o: ox + 4 … ox + 7 (8 columns on).
        const x = <usize>ox << 2;
        e = pairRow(e, r0 + x, 0, 4, p0, q0); o = pairRow(o, r0 + x, 16, 20, p0, q0);
        e = pairRow(e, r1 + x, 0, 4, p1, q1); o = pairRow(o, r1 + x, 16, 20, p1, q1);
        e = pairRow(e, r2 + x, 0, 4, p2, q2); o = pairRow(o, r2 + x, 16, 20, p2, q2);
        storeRow(dst + <usize>ox, requantize(e, mv, lo, hi, rounding), requantize(o, mv, lo, hi, rounding), ow - ox);
      }
    }
  }
}

/**
 * A row of a 3×3 window for 4 outputs: the pixel pairs at `at` + `first` bytes times (w0, w1),
 * and those at `at` + `third` bytes (whose first halves are the third tap) times (w2, 0).
 */
@inline
function pairRow(acc: v128, at: usize, first: usize, third: usize, pair: v128, last: v128): v128 {
  return i32x4.add(i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(at + first), pair)), i32x4.dot_i16x8_s(v128.load(at + third), last));
}

/** The i16 pair (w[i], w[i + 1]) of a plane's 9 i32 taps at `weights` (`byte` = 4i), in every lane; (w[i], 0) when i is a row's last tap. */
@inline
function tapPair(weights: usize, byte: usize): v128 {
  const first = load<i32>(weights + byte) & 0xffff;
  const second = (byte >> 2) % 3 == 2 ? 0 : load<i32>(weights + byte, 4) << 16;
  return i32x4.splat(first | second);
}

/**
 * Fills `scratch` (h + 2 rows of pw i16) with `border`: the one row and column around each plane
 * that `copyPlane` then fills inside (0: the real value 0, for convolutions and average pools;
 * −32768 for max pools, where padding must never win). Done once per call: planes only overwrite
 * the inside.
 */
@inline
function fillScratch(scratch: usize, h: i32, pw: i32, border: i16): void {
  const fill = i16x8.splat(border);
  for (let i = 0; i < pw * (h + 2); i += 8) v128.store(scratch + (<usize>i << 1), fill);
}

/**
 * Copies an h × w uint8 plane into the inside of `scratch` as i16 (x − zero), pw elements per row,
 * 8 at a time: a row's last vector runs past its end (reading into the next row or the allocation's
 * slack, see KernelMemory), so the right border column is written again after it with `border`.
 */
@inline
function copyPlane(input: usize, h: i32, w: i32, zero: i32, scratch: usize, pw: i32, border: i16): void {
  const z = i16x8.splat(<i16>zero);
  for (let y = 0; y < h; y++) {
    const src = input + <usize>(y * w);
    const dst = scratch + (<usize>((y + 1) * pw + 1) << 1);
    for (let x = 0; x < w; x += 8) {
      v128.store(dst + (<usize>x << 1), i16x8.sub(i16x8.extend_low_i8x16_u(v128.load64_zero(src + <usize>x)), z));
    }
    store<i16>(dst + (<usize>w << 1), border);
  }
}

/**
 * qpool-3x3s2-wasmsimd: `planes` consecutive planes of a 3×3 / 2 max or average pool (padding 0 or 1 on every side;
 * the average divides by 9, count_include_pad, which with floor rounding is every window). The max
 * is taken of x − z (padding never wins) and the average sums x − z (padding is the real 0); then
 * u = v · m (the f32 at `multiplier`: m = s_x / s_y for a max, s_x / (9 · s_y) for an average) and qgemm's epilogue
 * (`params`: its lo, hi and rounding bias). Scratch: (h + 2) rows of qdwPaddedWidth(w) i16.
 */
export function qpool3x3s2(
  planes: i32,
  input: usize,
  h: i32,
  w: i32,
  zero: i32,
  pad: i32,
  average: bool,
  multiplier: usize,
  out: usize,
  scratch: usize,
  params: usize,
): void {
  const m = load<f32>(multiplier);
  const pw = qdwPaddedWidth(w);
  const border: i16 = average ? 0 : -32768;
  fillScratch(scratch, h, pw, border);
  const outPlane = <usize>(((h + 2 * pad - 3) / 2 + 1) * ((w + 2 * pad - 3) / 2 + 1));
  for (let p = 0; p < planes; p++) {
    copyPlane(input + <usize>(p * h * w), h, w, zero, scratch, pw, border);
    poolPlane(h, w, pw, pad, average, m, out + <usize>p * outPlane, scratch, params);
  }
}

/** One plane of qpool3x3s2 from its padded scratch. */
@inline
function poolPlane(h: i32, w: i32, pw: i32, pad: i32, average: bool, m: f32, out: usize, scratch: usize, params: usize): void {
  const oh = (h + 2 * pad - 3) / 2 + 1;
  const ow = (w + 2 * pad - 3) / 2 + 1;
  const lo = v128.load(params);
  const hi = v128.load(params, 16);
  const rounding = v128.load(params, 32);
  const mv = f32x4.splat(m);
  // Without padding, windows start at the plane's first row and column: one in from the border.
  const skip = <usize>(1 - pad);
  for (let oy = 0; oy < oh; oy++) {
    const r0 = scratch + (((<usize>(oy * 2) + skip) * <usize>pw + skip) << 1);
    const r1 = r0 + (<usize>pw << 1);
    const r2 = r1 + (<usize>pw << 1);
    const dst = out + <usize>(oy * ow);
    for (let ox = 0; ox < ow; ox += 8) {
      const x0 = <usize>(ox * 2) << 1;
      let v: v128;
      if (average) {
        v = i16x8.add(i16x8.add(even(r0 + x0, 0), even(r0 + x0, 2)), even(r0 + x0, 4));
        v = i16x8.add(i16x8.add(i16x8.add(v, even(r1 + x0, 0)), even(r1 + x0, 2)), even(r1 + x0, 4));
        v = i16x8.add(i16x8.add(i16x8.add(v, even(r2 + x0, 0)), even(r2 + x0, 2)), even(r2 + x0, 4));
      } else {
        v = i16x8.max_s(i16x8.max_s(even(r0 + x0, 0), even(r0 + x0, 2)), even(r0 + x0, 4));
        v = i16x8.max_s(i16x8.max_s(i16x8.max_s(v, even(r1 + x0, 0)), even(r1 + x0, 2)), even(r1 + x0, 4));
        v = i16x8.max_s(i16x8.max_s(i16x8.max_s(v, even(r2 + x0, 0)), even(r2 + x0, 2)), even(r2 + x0, 4));
      }
      const q0 = requantize(i32x4.extend_low_i16x8_s(v), mv, lo, hi, rounding);
      const q1 = requantize(i32x4.extend_high_i16x8_s(v), mv, lo, hi, rounding);
      storeRow(dst + <usize>ox, q0, q1, ow - ox);
    }
  }
}

/** Stores up to 8 outputs (two vectors of i32 lanes) as saturated uint8: `left` of them, at most 8. */
@inline
function storeRow(dst: usize, q0: v128, q1: v128, left: i32): void {
  if (left >= 8) store8(dst, q0, q1);
  else if (left > 4) {
    storeLanes(dst, q0, 4);
    storeLanes(dst + 4, q1, left - 4);
  } else storeLanes(dst, q0, left);
}

/**
 * Global average pool of `planes` uint8 planes of `spatial` values: per plane
 * u = (Σ q − spatial · z) · m (m = s_x / (spatial · s_y)), then qgemm's epilogue; one byte per plane (m: the f32 at `multiplier`).
 */
export function qglobalAvgPool(input: usize, planes: i32, spatial: i32, zero: i32, multiplier: usize, out: usize, params: usize): void {
  const m = load<f32>(multiplier);
  const lo = f32x4.extract_lane(v128.load(params), 0);
  const hi = f32x4.extract_lane(v128.load(params, 16), 0);
  const rounding = i32x4.extract_lane(v128.load(params, 32), 0);
  for (let p = 0; p < planes; p++) {
    const src = input + <usize>(p * spatial);
    let sums = i32x4.splat(0);
    let i = 0;
    for (; i + 16 <= spatial; i += 16) sums = i32x4.add(sums, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(v128.load(src + <usize>i))));
    let sum = i32x4.extract_lane(sums, 0) + i32x4.extract_lane(sums, 1) + i32x4.extract_lane(sums, 2) + i32x4.extract_lane(sums, 3);
    for (; i < spatial; i++) sum += <i32>load<u8>(src + <usize>i);
    storeRounded(out + <usize>p, <f32>(sum - spatial * zero) * m, lo, hi, rounding);
  }
}

/**
 * qdense: a fully connected layer in int8, out[o] = bias[o] + Σ_i (x[i] − z) · w[o, i] (w as i16,
 * [out][⌈in/8⌉·8] zero-padded), then u = acc · m[o]. With `floatOut` the float32 u (the logits:
 * scale 1, no rounding) is stored at out + 4o; else qgemm's epilogue (`params`) and one byte.
 * `x16` is scratch for the input as i16 (x − z), ⌈in/8⌉·8 values.
 */
export function qdense(
  inFeatures: i32,
  outFeatures: i32,
  input: usize,
  zero: i32,
  weights: usize,
  bias: usize,
  multipliers: usize,
  out: usize,
  floatOut: bool,
  x16: usize,
  params: usize,
): void {
  const padded = (inFeatures + 7) & ~7;
  const z = i16x8.splat(<i16>zero);
  for (let i = 0; i < padded; i += 8) {
    let v = i16x8.sub(i16x8.extend_low_i8x16_u(v128.load64_zero(input + <usize>i)), z);
    if (i + 8 > inFeatures) {
      // Lanes past the last input are zero (their weights are too, but garbage × 0 must stay 0).
      const keep = inFeatures - i;
      const lane = v128(0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0);
      v = v128.and(v, i16x8.lt_s(i16x8.extend_low_i8x16_u(lane), i16x8.splat(<i16>keep)));
    }
    v128.store(x16 + (<usize>i << 1), v);
  }
  const lo = f32x4.extract_lane(v128.load(params), 0);
  const hi = f32x4.extract_lane(v128.load(params, 16), 0);
  const rounding = i32x4.extract_lane(v128.load(params, 32), 0);
  for (let o = 0; o < outFeatures; o++) {
    const w = weights + (<usize>(o * padded) << 1);
    let a0 = i32x4.splat(0);
    let a1 = i32x4.splat(0);
    let i = 0;
    for (; i + 16 <= padded; i += 16) {
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(x16 + (<usize>i << 1)), v128.load(w + (<usize>i << 1))));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(x16 + (<usize>i << 1), 16), v128.load(w + (<usize>i << 1), 16)));
    }
    if (i < padded) a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(x16 + (<usize>i << 1)), v128.load(w + (<usize>i << 1))));
    const a = i32x4.add(a0, a1);
    const acc = load<i32>(bias + (<usize>o << 2)) + i32x4.extract_lane(a, 0) + i32x4.extract_lane(a, 1) + i32x4.extract_lane(a, 2) + i32x4.extract_lane(a, 3);
    const u = <f32>acc * load<f32>(multipliers + (<usize>o << 2));
    if (floatOut) store<f32>(out + (<usize>o << 2), u);
    else storeRounded(out + <usize>o, u, lo, hi, rounding);
  }
}

/** 8 i16 at even positions from `at` + offset bytes (16 elements read): stride 2's pixels. */
@inline
function even(at: usize, offset: usize): v128 {
  return v128.shuffle<i16>(v128.load(at + offset), v128.load(at + offset, 16), 0, 2, 4, 6, 8, 10, 12, 14);
}

/**
 * ONNX QuantizeLinear of `count` floats at `input` to uint8 at `out`: clamp(nearest(x / s) + z)
 * (x / s divided in f32, as the reference does).
 */
export function qquantize(input: usize, count: i32, scale: f32, zero: i32, out: usize): void {
  const s = f32x4.splat(scale);
  const bias = i32x4.splat(0x4b400000 - zero);
  const lo = f32x4.splat(-65536);
  const hi = f32x4.splat(65536);
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    // min/max, not pmin/pmax: an input may hold NaN, and NaN must land where the scalar tail puts it.
    const a = roundBiased(f32x4.min(f32x4.max(f32x4.div(v128.load(input + (<usize>i << 2)), s), lo), hi), bias);
    const b = roundBiased(f32x4.min(f32x4.max(f32x4.div(v128.load(input + (<usize>i << 2), 16), s), lo), hi), bias);
    store8(out + <usize>i, a, b);
  }
  for (; i < count; i++) storeRounded(out + <usize>i, load<f32>(input + (<usize>i << 2)) / scale, -65536, 65536, 0x4b400000 - zero);
}

/**
 * The patches of one group of a convolution for output rows [oy0, oy1), as uint8 rows
 * [C/g · kH · kW][(oy1 − oy0) · ow] (im2col) for qpack: the input's `channels` planes of h × w at
 * `input`; padding filled with the zero point (the real value 0).
 */
export function qim2col(
  input: usize,
  channels: i32,
  h: i32,
  w: i32,
  kh: i32,
  kw: i32,
  strideH: i32,
  strideW: i32,
  padTop: i32,
  padLeft: i32,
  dilationH: i32,
  dilationW: i32,
  oy0: i32,
  oy1: i32,
  ow: i32,
  zero: i32,
  out: usize,
): void {
  let o = out;
  for (let c = 0; c < channels; c++) {
    const plane = input + <usize>(c * h * w);
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        for (let oy = oy0; oy < oy1; oy++) {
          const y = oy * strideH - padTop + ky * dilationH;
          if (y < 0 || y >= h) {
            memory.fill(o, <u8>zero, <usize>ow);
            o += <usize>ow;
            continue;
          }
          const row = plane + <usize>(y * w);
          // Outputs [first, last) read inside the row; those outside read padding.
          const x0 = kx * dilationW - padLeft;
          const first = x0 >= 0 ? 0 : min(ow, (strideW - 1 - x0) / strideW);
          const last = w - 1 - x0 < 0 ? first : max(first, min(ow, (w - 1 - x0) / strideW + 1));
          memory.fill(o, <u8>zero, <usize>first);
          let ox = first;
          const from = row + <usize>(x0 + first * strideW);
          if (strideW == 1) {
            memory.copy(o + <usize>first, from, <usize>(last - first));
            ox = last;
          } else if (strideW == 2) {
            // 16 bytes in, the 8 at even positions out (reads past the row stay in the allocation's slack).
            for (; ox + 8 <= last; ox += 8) {
              const v = v128.load(from + (<usize>(ox - first) << 1));
              v128.store64_lane(o + <usize>ox, v128.shuffle<u8>(v, v, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14), 0);
            }
          }
          for (; ox < last; ox++) store<u8>(o + <usize>ox, load<u8>(row + <usize>(ox * strideW + x0)));
          memory.fill(o + <usize>last, <u8>zero, <usize>(ow - last));
          o += <usize>ow;
        }
      }
    }
  }
}
