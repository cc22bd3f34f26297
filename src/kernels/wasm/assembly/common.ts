// Helpers shared by the kernels, each defined once: vector arithmetic, partial vectors, padded
// planes and the sizes of 3×3 windows. Nothing here keeps static data, so the shared-memory build
// (inference.ts) may import it.
//
// The module is compiled for WASM SIMD128 and again with relaxed SIMD (scripts/build-wasm.mjs),
// where `madd` is one fused multiply-add instead of two instructions; the loader picks the relaxed
// build where the engine validates it.

/** a · b + c, lane-wise. Fused (one rounding) or not, depending on the build and the hardware. */
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// Activations applied in a kernel's epilogue or on their own (`activation` in inference.ts). The
// codes are `activationCodes` in src/runtime/lower.ts; NaN stays NaN in each (pmax/pmin return their
// first operand when a comparison with NaN fails).
export const ACT_NONE = 0;
export const ACT_RELU = 1;
export const ACT_RELU6 = 2;
export const ACT_HARDSWISH = 3;
export const ACT_HARDSIGMOID = 4;
export const ACT_SIGMOID = 5;
export const ACT_SILU = 6;

/**
 * The activation `code` of v, lane-wise (PyTorch's hardswish and hardsigmoid: x/6 + 1/2). ReLU is
 * inlined; the others are one call (inlining them into every store of every kernel doubled the
 * module).
 */
@inline
export function activate(v: v128, code: i32): v128 {
  return code == ACT_RELU ? f32x4.pmax(v, f32x4.splat(0)) : activateOther(v, code);
}

function activateOther(v: v128, code: i32): v128 {
  const zero = f32x4.splat(0);
  const one = f32x4.splat(1);
  switch (code) {
    case ACT_RELU:
      return f32x4.pmax(v, zero);
    case ACT_RELU6:
      return f32x4.pmin(f32x4.pmax(v, zero), f32x4.splat(6));
    case ACT_HARDSWISH:
      return f32x4.mul(v, hardSigmoid(v));
    case ACT_HARDSIGMOID:
      return hardSigmoid(v);
    case ACT_SIGMOID:
      return f32x4.div(one, f32x4.add(one, exp(f32x4.neg(v))));
    case ACT_SILU:
      return f32x4.div(v, f32x4.add(one, exp(f32x4.neg(v))));
    default:
      return v;
  }
}

/** clamp(x/6 + 1/2, 0, 1), lane-wise. */
@inline
function hardSigmoid(v: v128): v128 {
  const t = f32x4.add(f32x4.mul(v, f32x4.splat(<f32>1 / <f32>6)), f32x4.splat(0.5));
  return f32x4.pmin(f32x4.pmax(t, f32x4.splat(0)), f32x4.splat(1));
}

/**
 * e^x, lane-wise, to a few ulp: x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 in two parts, as in
 * Cephes' expf), e^r by its Taylor polynomial of degree 6 (remainder below 1.3e-7 relative), 2^n
 * in the exponent bits. x is clamped to [−87, 88], where 2^n stays a normal float; above 88.72
 * (e^x past the largest float) it is +∞.
 */
@inline
export function exp(x: v128): v128 {
  // Beyond the float range e^x is +∞ (so that a sigmoid of −∞ is 0, and SiLU of −∞ is NaN, as
  // −∞ · 0 is in the reference); below it, the clamp gives ~1e-38 for 0.
  const overflow = f32x4.gt(x, f32x4.splat(88.7228));
  x = f32x4.pmax(f32x4.pmin(x, f32x4.splat(88)), f32x4.splat(-87));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(<f32>1 / <f32>720);
  p = madd(p, r, f32x4.splat(<f32>1 / <f32>120));
  p = madd(p, r, f32x4.splat(<f32>1 / <f32>24));
  p = madd(p, r, f32x4.splat(<f32>1 / <f32>6));
  p = madd(p, r, f32x4.splat(0.5));
  p = madd(p, r, f32x4.splat(1));
  p = madd(p, r, f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.bitselect(f32x4.splat(Infinity), f32x4.mul(p, scale), overflow);
}

/** The sum of the four lanes, in f64. */
@inline
export function lanesSum(v: v128): f64 {
  return (
    <f64>f32x4.extract_lane(v, 0) +
    <f64>f32x4.extract_lane(v, 1) +
    <f64>f32x4.extract_lane(v, 2) +
    <f64>f32x4.extract_lane(v, 3)
  );
}

/** The byte address of float `i` from `base`. */
@inline
export function at(base: usize, i: i32): usize {
  return base + (<usize>i << 2);
}

/** The first `lanes` (1..4) floats at p, zeros in the other lanes; never reads past them. */
@inline
export function loadLanes(p: usize, lanes: i32): v128 {
  if (lanes >= 4) return v128.load(p);
  if (lanes == 1) return v128.load32_zero(p);
  const v = v128.load64_zero(p);
  return lanes == 2 ? v : v128.load32_lane(p, v, 2, 8);
}

/** Stores the first `lanes` (1..4) lanes of v or, when `accumulate` ≠ 0, adds them to what is there. */
@inline
export function storeLanes(p: usize, v: v128, lanes: i32, accumulate: i32): void {
  if (accumulate != 0) v = f32x4.add(v, loadLanes(p, lanes));
  if (lanes >= 4) {
    v128.store(p, v);
  } else {
    v128.store32_lane(p, v, 0);
    if (lanes > 1) v128.store32_lane(p, v, 1, 4);
    if (lanes > 2) v128.store32_lane(p, v, 2, 8);
  }
}

/** `count` floats of `value` from dst. */
export function fillFloats(dst: usize, count: i32, value: f32): void {
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(dst + (<usize>i << 2), v);
  for (; i < count; i++) store<f32>(dst + (<usize>i << 2), value);
}

/** Output size of a 3×3 window with padding 1 at `stride`: ⌊(size + 2 − 3) / stride⌋ + 1. */
@inline
export function outputSize(size: i32, stride: i32): i32 {
  return (size - 1) / stride + 1;
}

/** Row width of a plane padded by one pixel on each side. */
@inline
export function paddedWidth(w: i32): i32 {
  return w + 2;
}

/** Floats of scratch that the 3×3 kernels (forward and backward) need for an h×w plane. */
export function paddedPlaneFloats(h: i32, w: i32): i32 {
  return (h + 2) * paddedWidth(w) + 16;
}

/** Floats of scratch that a k×k window with padding `pad` needs for an h×w plane (64 of slack). */
export function paddedPlaneFloatsBy(h: i32, w: i32, pad: i32): i32 {
  return (h + 2 * pad) * (w + 2 * pad) + 64;
}

/** Copies an h×w plane into scratch with `pad` zeros on every side, rows w + 2·pad wide (and 64 after). */
export function padPlaneBy(src: usize, h: i32, w: i32, dst: usize, pad: i32): void {
  const pw = w + 2 * pad;
  fillFloats(dst, pad * pw + pad, 0);
  for (let y = 0; y < h; y++) {
    const row = at(dst, (y + pad) * pw + pad);
    const from = at(src, y * w);
    // Whole vectors, spilling up to 3 floats into the right border (zeroed just after).
    for (let x = 0; x < w; x += 4) v128.store(at(row, x), v128.load(at(from, x)));
    fillFloats(at(row, w), 2 * pad, 0);
  }
  fillFloats(at(dst, (h + pad) * pw), pad * pw + 64, 0);
}

/** Copies an h×w plane into scratch with a border of `pad` on every side (and 16 floats of it after). */
export function padPlane(src: usize, h: i32, w: i32, dst: usize, pad: f32): void {
  const pw = paddedWidth(w);
  const rowBytes = <usize>pw << 2;
  fillFloats(dst, pw, pad);
  // NOTE: rows are copied by whole vectors (memory.copy is a call per row in V8, which cost a
  // third of a small depthwise conv). The last vector may spill up to 3 floats past the row: into
  // the right border, set just after, and the next row, rewritten next.
  for (let y = 0; y < h; y++) {
    const row = dst + <usize>(y + 1) * rowBytes;
    const from = src + (<usize>(y * w) << 2);
    store<f32>(row, pad);
    for (let x = 0; x < w; x += 4) v128.store(row + 4 + (<usize>x << 2), v128.load(from + (<usize>x << 2)));
    store<f32>(row + (<usize>(w + 1) << 2), pad);
  }
  fillFloats(dst + <usize>(h + 1) * rowBytes, pw + 16, pad);
}
