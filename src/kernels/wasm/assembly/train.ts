// Training kernels (WASM SIMD128) over NCHW: ReLU and its gradient; add and accumulate; the
// gradients of the 3×3/2 pools and of global average pooling (batch norm: batchnorm.ts). Each
// matches its reference kernel in src/kernels/reference (see test/wasm-train-kernels.test.ts).
//
// Conventions: pointers are byte addresses, counts are in floats, `accumulate` = 0 overwrites the
// output and nonzero adds into it. Element-wise kernels may run in place (an output
// equal to an input, as each kernel says); partially overlapping buffers are not allowed. Vector
// loops stop at the last whole vector and finish with scalar code, so nothing is written past any
// buffer, and only maxPool3x3s2Backward reads past one (up to 3 floats after `input` and after
// `gradOut`, inside the allocator's 64 bytes of slack). The pool gradients keep partial results in
// this module's static scratch: one instance runs one kernel at a time (instances never share memory).

import { at, padPlane, paddedPlaneFloats } from './common';

/** y = max(x, 0), NaN kept (as reluReference: x < 0 ? 0 : x). y may equal x. */
export function relu(count: i32, x: usize, y: usize): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    // pmax(x, 0) is x < 0 ? 0 : x, lane-wise: NaN and −0 pass through as in the reference.
    v128.store(at(y, i), f32x4.pmax(v128.load(at(x, i)), zero));
    v128.store(at(y, i), f32x4.pmax(v128.load(at(x, i), 16), zero), 16);
  }
  for (; i + 4 <= count; i += 4) v128.store(at(y, i), f32x4.pmax(v128.load(at(x, i)), zero));
  for (; i < count; i++) {
    const v = load<f32>(at(x, i));
    store<f32>(at(y, i), v < 0 ? 0 : v);
  }
}

/**
 * ReLU's gradient: gradOut where x > 0, else 0 (x is the ReLU's input or its output: the same
 * sign pattern). gradIn per `accumulate`; it may equal gradOut.
 */
export function reluBackward(count: i32, x: usize, gradOut: usize, gradIn: usize, accumulate: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  if (accumulate != 0) {
    for (; i + 4 <= count; i += 4) {
      const g = v128.and(v128.load(at(gradOut, i)), f32x4.gt(v128.load(at(x, i)), zero));
      v128.store(at(gradIn, i), f32x4.add(v128.load(at(gradIn, i)), g));
    }
    for (; i < count; i++) {
      if (load<f32>(at(x, i)) > 0) store<f32>(at(gradIn, i), load<f32>(at(gradIn, i)) + load<f32>(at(gradOut, i)));
    }
  } else {
    for (; i + 8 <= count; i += 8) {
      const g0 = v128.and(v128.load(at(gradOut, i)), f32x4.gt(v128.load(at(x, i)), zero));
      const g1 = v128.and(v128.load(at(gradOut, i), 16), f32x4.gt(v128.load(at(x, i), 16), zero));
      v128.store(at(gradIn, i), g0);
      v128.store(at(gradIn, i), g1, 16);
    }
    for (; i + 4 <= count; i += 4) {
      v128.store(at(gradIn, i), v128.and(v128.load(at(gradOut, i)), f32x4.gt(v128.load(at(x, i)), zero)));
    }
    for (; i < count; i++) store<f32>(at(gradIn, i), load<f32>(at(x, i)) > 0 ? load<f32>(at(gradOut, i)) : 0);
  }
}

/** y = a + b. y may equal a or b. */
export function add(count: i32, a: usize, b: usize, y: usize): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(at(y, i), f32x4.add(v128.load(at(a, i)), v128.load(at(b, i))));
  for (; i < count; i++) store<f32>(at(y, i), load<f32>(at(a, i)) + load<f32>(at(b, i)));
}

/** dst += src. */
export function accumulate(count: i32, src: usize, dst: usize): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(at(dst, i), f32x4.add(v128.load(at(dst, i)), v128.load(at(src, i))));
  for (; i < count; i++) store<f32>(at(dst, i), load<f32>(at(dst, i)) + load<f32>(at(src, i)));
}

/** Input rows (or columns) of window `o` of a 3×3/2 pool with padding 1 over `size`. */
@inline
function windowSize(o: i32, size: i32): i32 {
  return min(2 * o + 2, size) - max(2 * o - 1, 0);
}

/** Output columns the pool gradients handle per row (input rows up to 2·this − 1 wide). */
const MAX_POOL_COLUMNS: i32 = 8192;
/** One row of window weights ∂ per output column, and a zero after it. */
const poolRowScratch = memory.data((MAX_POOL_COLUMNS + 4) * 4, 16);

/**
 * Gradient of average pooling 3×3, stride 2, padding 1, floor rounding, over `channels` planes of
 * h×w (output ho = (h − 1)/2 + 1, wo likewise). Each window's gradient is shared by its pixels:
 * divided by 9 with countIncludePad (every window then lies inside the padded input), else by the
 * number of real pixels it covers, rows(oy) · cols(ox). gradIn per `accumulate`.
 *
 * Input row y lies in window rows oy = y/2 (y even) or (y ± 1)/2 (y odd), and likewise columns,
 * so for each input row the kernel sums the gradients of its one or two window rows, each over
 * its divisor, into a row s[ox] (s[wo] = 0), and spreads it: gradIn[y][2i] = s[i],
 * gradIn[y][2i + 1] = s[i] + s[i + 1]. w must be below 2 · 8192 (the kernel traps otherwise).
 */
export function avgPool3x3s2Backward(
  channels: i32,
  h: i32,
  w: i32,
  countIncludePad: i32,
  gradOut: usize,
  gradIn: usize,
  accumulate: i32,
): void {
  const ho = (h - 1) / 2 + 1;
  const wo = (w - 1) / 2 + 1;
  if (wo > MAX_POOL_COLUMNS) unreachable();
  const s = poolRowScratch;
  store<f32>(at(s, wo), 0);
  const third = f32x4.splat(<f32>1 / <f32>3);
  for (let c = 0; c < channels; c++) {
    const go = gradOut + (<usize>(c * ho * wo) << 2);
    const gi = gradIn + (<usize>(c * h * w) << 2);
    for (let y = 0; y < h; y++) {
      // Window rows a ≤ b of input row y, with their weights (1/3 each with countIncludePad).
      const a = y >> 1;
      const b = min((y + 1) >> 1, ho - 1);
      const rowA = at(go, a * wo);
      const rowB = at(go, b * wo);
      const wa = countIncludePad != 0 ? <f32>1 / <f32>3 : <f32>1 / <f32>windowSize(a, h);
      const wb = b != a ? (countIncludePad != 0 ? <f32>1 / <f32>3 : <f32>1 / <f32>windowSize(b, h)) : 0;
      const va = f32x4.splat(wa);
      const vb = f32x4.splat(wb);
      let i = 0;
      for (; i + 4 <= wo; i += 4) {
        const sum = f32x4.add(f32x4.mul(v128.load(at(rowA, i)), va), f32x4.mul(v128.load(at(rowB, i)), vb));
        v128.store(at(s, i), f32x4.mul(sum, third));
      }
      for (; i < wo; i++) store<f32>(at(s, i), (load<f32>(at(rowA, i)) * wa + load<f32>(at(rowB, i)) * wb) / 3);
      if (countIncludePad == 0) {
        // Column weights: 1/3 inside, 1/cols at the edges (the first window, and the last if clipped).
        store<f32>(s, (load<f32>(s) * 3) / <f32>windowSize(0, w));
        if (wo > 1) store<f32>(at(s, wo - 1), (load<f32>(at(s, wo - 1)) * 3) / <f32>windowSize(wo - 1, w));
      }
      const out = at(gi, y * w);
      let x = 0;
      for (; x + 8 <= w; x += 8) {
        const even = v128.load(at(s, x >> 1));
        const odd = f32x4.add(even, v128.load(at(s, (x >> 1) + 1)));
        let lo = v128.shuffle<f32>(even, odd, 0, 4, 1, 5);
        let hi = v128.shuffle<f32>(even, odd, 2, 6, 3, 7);
        if (accumulate != 0) {
          lo = f32x4.add(lo, v128.load(at(out, x)));
          hi = f32x4.add(hi, v128.load(at(out, x), 16));
        }
        v128.store(at(out, x), lo);
        v128.store(at(out, x), hi, 16);
      }
      if (x + 4 <= w) {
        // Four more: lanes 0 and 1 of the spread (the loads' other lanes are unused scratch).
        const even = v128.load(at(s, x >> 1));
        let lo = v128.shuffle<f32>(even, f32x4.add(even, v128.load(at(s, (x >> 1) + 1))), 0, 4, 1, 5);
        if (accumulate != 0) lo = f32x4.add(lo, v128.load(at(out, x)));
        v128.store(at(out, x), lo);
        x += 4;
      }
      for (; x < w; x++) {
        let v = load<f32>(at(s, x >> 1));
        if (x & 1) v += load<f32>(at(s, (x + 1) >> 1));
        if (accumulate != 0) v += load<f32>(at(out, x));
        store<f32>(at(out, x), v);
      }
    }
  }
}

/** Floats of the padded plane the vector max-pool gradient works on (larger planes go scalar). */
const MAX_PADDED_PLANE: i32 = 65536;
const paddedPlaneScratch = memory.data(MAX_PADDED_PLANE * 4, 16);
/** The gradient of the padded plane, gathered before it is copied out. */
const paddedGradScratch = memory.data(MAX_PADDED_PLANE * 4, 16);

/**
 * Gradient of max pooling 3×3, stride 2, padding 1, floor rounding, over `channels` planes of h×w:
 * each window's gradient goes to its maximum, recomputed from `input` with the reference's rule
 * (the first maximum in scan order; a NaN wins, the last one if several; a window of −∞ only
 * passes nothing). gradIn per `accumulate`.
 *
 * Each plane is copied into scratch with a border of −∞ (which never wins). Four windows at a
 * time keep their best value and its tap lane-wise over the nine taps in scan order; then each
 * kernel row's three taps are spread with vector adds into a padded gradient plane in scratch
 * (no scalar scatter), which is copied out at the end of the plane. Planes of more than
 * MAX_PADDED_PLANE floats padded go through scalar code with the same rule.
 * NOTE: reads whole vectors, up to 3 floats past the end of `input` and of `gradOut` (the
 * allocator's slack; the values read there are never used).
 */
export function maxPool3x3s2Backward(
  channels: i32,
  h: i32,
  w: i32,
  input: usize,
  gradOut: usize,
  gradIn: usize,
  accumulate: i32,
): void {
  const ho = (h - 1) / 2 + 1;
  const wo = (w - 1) / 2 + 1;
  const paddedFloats = paddedPlaneFloats(h, w);
  const rowBytes = <usize>(w + 2) << 2;
  const scratch = paddedPlaneScratch;
  const grad = paddedGradScratch;
  const laneIds = i32x4(0, 1, 2, 3);
  for (let c = 0; c < channels; c++) {
    const plane = input + (<usize>(c * h * w) << 2);
    const go = gradOut + (<usize>(c * ho * wo) << 2);
    const gi = gradIn + (<usize>(c * h * w) << 2);
    if (paddedFloats > MAX_PADDED_PLANE) {
      if (accumulate == 0) memory.fill(gi, 0, <usize>(h * w) << 2);
      maxPoolBackwardPlaneScalar(h, w, plane, go, gi);
      continue;
    }
    padPlane(plane, h, w, scratch, -Infinity);
    memory.fill(grad, 0, <usize>paddedFloats << 2);
    for (let oy = 0; oy < ho; oy++) {
      const rows = scratch + <usize>(2 * oy) * rowBytes;
      const gradRows = grad + <usize>(2 * oy) * rowBytes;
      let carry0: f32 = 0;
      let carry1: f32 = 0;
      let carry2: f32 = 0;
      let ox = 0;
      for (; ox < wo; ox += 4) {
        let best = f32x4.splat(-Infinity);
        let tap = i32x4.splat(-1);
        for (let ky = 0; ky < 3; ky++) {
          const row = rows + <usize>ky * rowBytes + (<usize>ox << 3);
          const v0 = v128.load(row);
          const v1 = v128.load(row, 16);
          const v2 = v128.load(row, 32);
          const even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
          const odd = v128.shuffle<f32>(v0, v1, 1, 3, 5, 7);
          const next = v128.shuffle<f32>(even, v2, 1, 2, 3, 4);
          let take = v128.or(f32x4.gt(even, best), f32x4.ne(even, even));
          best = v128.bitselect(even, best, take);
          tap = v128.bitselect(i32x4.splat(3 * ky), tap, take);
          take = v128.or(f32x4.gt(odd, best), f32x4.ne(odd, odd));
          best = v128.bitselect(odd, best, take);
          tap = v128.bitselect(i32x4.splat(3 * ky + 1), tap, take);
          take = v128.or(f32x4.gt(next, best), f32x4.ne(next, next));
          best = v128.bitselect(next, best, take);
          tap = v128.bitselect(i32x4.splat(3 * ky + 2), tap, take);
        }
        // The windows' gradients, zero in lanes past the row's end.
        const g = v128.and(v128.load(at(go, oy * wo + ox)), i32x4.lt_s(laneIds, i32x4.splat(wo - ox)));
        const at0 = gradRows + (<usize>ox << 3);
        carry0 = spreadTaps(at0, g, tap, 0, carry0);
        carry1 = spreadTaps(at0 + rowBytes, g, tap, 3, carry1);
        carry2 = spreadTaps(at0 + 2 * rowBytes, g, tap, 6, carry2);
      }
      // The last windows' right taps land one column past their vectors.
      const end = gradRows + (<usize>ox << 3);
      store<f32>(end, load<f32>(end) + carry0);
      store<f32>(end + rowBytes, load<f32>(end + rowBytes) + carry1);
      store<f32>(end + 2 * rowBytes, load<f32>(end + 2 * rowBytes) + carry2);
    }
    for (let y = 0; y < h; y++) {
      const src = grad + <usize>(y + 1) * rowBytes + 4;
      const dst = gi + (<usize>(y * w) << 2);
      let i = 0;
      if (accumulate != 0) {
        for (; i + 4 <= w; i += 4) v128.store(at(dst, i), f32x4.add(v128.load(at(dst, i)), v128.load(at(src, i))));
        for (; i < w; i++) store<f32>(at(dst, i), load<f32>(at(dst, i)) + load<f32>(at(src, i)));
      } else {
        for (; i + 4 <= w; i += 4) v128.store(at(dst, i), v128.load(at(src, i)));
        for (; i < w; i++) store<f32>(at(dst, i), load<f32>(at(src, i)));
      }
    }
  }
}

/**
 * Adds the gradients `g` of four windows to padded gradient row `row` (at the windows' first
 * column, 2·ox) where their winning tap is first, first + 1 or first + 2 (columns 2·l, 2·l + 1,
 * 2·l + 2 for lane l), plus `carry` at column 0 (the previous vector's lane-3 right tap).
 * Returns this vector's lane-3 right tap, which belongs to the next vector's column 0.
 */
@inline
function spreadTaps(row: usize, g: v128, tap: v128, first: i32, carry: f32): f32 {
  const zero = f32x4.splat(0);
  const left = v128.and(g, i32x4.eq(tap, i32x4.splat(first)));
  const middle = v128.and(g, i32x4.eq(tap, i32x4.splat(first + 1)));
  const right = v128.and(g, i32x4.eq(tap, i32x4.splat(first + 2)));
  // Columns 0..3: left0, middle0, left1 + right0, middle1; columns 4..7: left2 + right1, middle2, left3 + right2, middle3.
  let lo = f32x4.add(v128.shuffle<f32>(left, middle, 0, 4, 1, 5), v128.shuffle<f32>(zero, right, 0, 1, 4, 2));
  const hi = f32x4.add(v128.shuffle<f32>(left, middle, 2, 6, 3, 7), v128.shuffle<f32>(right, zero, 1, 4, 2, 5));
  lo = f32x4.replace_lane(lo, 0, f32x4.extract_lane(lo, 0) + carry);
  v128.store(row, f32x4.add(v128.load(row), lo));
  v128.store(row, f32x4.add(v128.load(row, 16), hi), 16);
  return f32x4.extract_lane(right, 3);
}

/** gradIn[index] += value, unless no element won the window (index −1). */
@inline
function scatter(gradIn: usize, index: i32, value: f32): void {
  if (index >= 0) store<f32>(at(gradIn, index), load<f32>(at(gradIn, index)) + value);
}

/** maxPool3x3s2Backward on one plane, scalar, for planes too large for the scratch. */
function maxPoolBackwardPlaneScalar(h: i32, w: i32, plane: usize, go: usize, gi: usize): void {
  const ho = (h - 1) / 2 + 1;
  const wo = (w - 1) / 2 + 1;
  for (let oy = 0; oy < ho; oy++) {
    const y0 = max(2 * oy - 1, 0);
    const y1 = min(2 * oy + 2, h);
    for (let ox = 0; ox < wo; ox++) {
      const x0 = max(2 * ox - 1, 0);
      const x1 = min(2 * ox + 2, w);
      let best: f32 = -Infinity;
      let found = -1;
      for (let y = y0; y < y1; y++) {
        for (let xx = x0; xx < x1; xx++) {
          const v = load<f32>(at(plane, y * w + xx));
          const take = v > best || v != v;
          best = select(v, best, take);
          found = select(y * w + xx, found, take);
        }
      }
      scatter(gi, found, load<f32>(at(go, oy * wo + ox)));
    }
  }
}

/** Gradient of global average pooling: gradIn[c][p] = gradOut[c] / pixels. gradIn per `accumulate`. */
export function globalAvgPoolBackward(channels: i32, pixels: i32, gradOut: usize, gradIn: usize, accumulate: i32): void {
  for (let c = 0; c < channels; c++) {
    const share = <f32>(<f64>load<f32>(at(gradOut, c)) / <f64>pixels);
    const v = f32x4.splat(share);
    const out = gradIn + (<usize>c * <usize>pixels << 2);
    let i = 0;
    if (accumulate != 0) {
      for (; i + 4 <= pixels; i += 4) v128.store(at(out, i), f32x4.add(v128.load(at(out, i)), v));
      for (; i < pixels; i++) store<f32>(at(out, i), load<f32>(at(out, i)) + share);
    } else {
      for (; i + 4 <= pixels; i += 4) v128.store(at(out, i), v);
      for (; i < pixels; i++) store<f32>(at(out, i), share);
    }
  }
}
