// Training-mode kernels (WASM SIMD128) over NCHW: batch norm with batch statistics, forward and
// backward; ReLU and its gradient; add, accumulate and scale; the gradients of the 3×3/2 pools and
// of global average pooling; and one SGD step. Each matches its reference kernel in
// src/kernels/reference (see test/wasm-train-kernels.test.ts).
//
// Conventions: pointers are byte addresses, counts are in floats, `accumulate` = 0 overwrites the
// output and nonzero adds into it. Element-wise kernels and batch norm may run in place (an output
// equal to an input, as each kernel says); partially overlapping buffers are not allowed. Vector
// loops stop at the last whole vector and finish with scalar code, so nothing is written past any
// buffer, and only maxPool3x3s2Backward reads past one (up to 3 floats after `input` and after
// `gradOut`, inside the allocator's 64 bytes of slack). Batch norm and the pool gradients keep partial results in this
// module's static scratch: one instance runs one kernel at a time (instances never share memory).

import { madd } from './simd';
import { padPlane, paddedPlaneFloats } from './spatial';

/**
 * Floats per lane-block of a sum: partial sums are kept in f32x4 over about this many floats and
 * then added into an f64, so a long row loses no more precision than a short one.
 */
const BLOCK: i32 = 256;

// NOTE: batch norm works on blocks of channels whose data (all of the batch) fits in ~128 KB, and
// sweeps each block in memory order: for every image, the block's rows one after the other. One
// channel at a time would read rows `channels · pixels` floats apart, which at 4×4 pixels is one
// cache line per 4 KB page and ran at a third of the bandwidth. The per-channel partial sums of
// a block live in this module's static scratch (so one instance must not run two batch norms at
// once; instances never share memory).
const BLOCK_BYTES: i32 = 128 * 1024;
const MAX_BLOCK_CHANNELS: i32 = 512;
/** Three f32x4 partial sums per channel of a block. */
const vectorScratch = memory.data(MAX_BLOCK_CHANNELS * 3 * 16, 16);
/** Three f64 sums per channel of a block. */
const sumScratch = memory.data(MAX_BLOCK_CHANNELS * 3 * 8, 16);
/** Six f32 values per channel of a block (pivots, row tails, coefficients). */
const floatScratch = memory.data(MAX_BLOCK_CHANNELS * 6 * 4, 16);

@inline
function vectorSlot(k: i32, j: i32): usize {
  return vectorScratch + (<usize>(k * MAX_BLOCK_CHANNELS + j) << 4);
}

@inline
function sumSlot(k: i32, j: i32): usize {
  return sumScratch + (<usize>(k * MAX_BLOCK_CHANNELS + j) << 3);
}

@inline
function floatSlot(k: i32, j: i32): usize {
  return floatScratch + (<usize>(k * MAX_BLOCK_CHANNELS + j) << 2);
}

/** The sum of the four lanes, in f64. */
@inline
function lanesSum(v: v128): f64 {
  return (
    <f64>f32x4.extract_lane(v, 0) +
    <f64>f32x4.extract_lane(v, 1) +
    <f64>f32x4.extract_lane(v, 2) +
    <f64>f32x4.extract_lane(v, 3)
  );
}

@inline
function at(base: usize, i: i32): usize {
  return base + (<usize>i << 2);
}

/** Channels per block: as many as fit BLOCK_BYTES with all of the batch, at least 1. */
@inline
function blockChannels(batch: i32, pixels: i32): i32 {
  return min(MAX_BLOCK_CHANNELS, max(1, BLOCK_BYTES / max(batch * pixels * 4, 1)));
}

/** Images between flushes of the f32 partial sums into f64: about BLOCK floats per channel. */
@inline
function imagesPerFlush(pixels: i32): i32 {
  return max(1, BLOCK / max(pixels, 1));
}

// Slots of the scratch in batch norm.
const PIVOT: i32 = 0; // f32: the pivot of the forward's sum, then the mean's head (forward)
const LOW: i32 = 1; // f32: the mean's tail
const SCALE: i32 = 2; // f32: forward gamma / σ; backward a
const SHIFT: i32 = 3; // f32: forward beta; backward b
const CONSTANT: i32 = 4; // f32: backward k
const TAIL: i32 = 5; // f32: scalar sum of the rows' last floats (forward); k = 0 only

/**
 * Forward pass 1 or 2 over a block of `cb` channels from x (already offset to the block's first
 * channel): `squares` = 0 sums x − pivot[j] into sum 0; 1 sums ((x − head[j]) − tail[j])² into sum 1.
 */
function forwardSums(batch: i32, cb: i32, pixels: i32, x: usize, batchStride: usize, squares: i32): void {
  const rowBytes = <usize>pixels << 2;
  const whole = pixels & ~7;
  const every = imagesPerFlush(pixels);
  const zero = f32x4.splat(0);
  for (let j = 0; j < cb; j++) {
    v128.store(vectorSlot(0, j), zero);
    store<f32>(floatSlot(TAIL, j), 0);
    store<f64>(sumSlot(squares, j), 0);
  }
  for (let n = 0; n < batch; n++) {
    const flush = n % every == every - 1 || n == batch - 1;
    for (let j = 0; j < cb; j++) {
      const row = x + <usize>n * batchStride + <usize>j * rowBytes;
      const hi = load<f32>(floatSlot(PIVOT, j));
      const lo = squares != 0 ? load<f32>(floatSlot(LOW, j)) : 0;
      const vh = f32x4.splat(hi);
      const vl = f32x4.splat(lo);
      let acc0 = v128.load(vectorSlot(0, j));
      let acc1 = zero;
      let tail = load<f32>(floatSlot(TAIL, j));
      let i = 0;
      while (i < whole) {
        const end = min(whole, i + BLOCK);
        if (squares != 0) {
          for (; i < end; i += 8) {
            const d0 = f32x4.sub(f32x4.sub(v128.load(at(row, i)), vh), vl);
            const d1 = f32x4.sub(f32x4.sub(v128.load(at(row, i), 16), vh), vl);
            acc0 = madd(d0, d0, acc0);
            acc1 = madd(d1, d1, acc1);
          }
        } else {
          for (; i < end; i += 8) {
            acc0 = f32x4.add(acc0, f32x4.sub(v128.load(at(row, i)), vh));
            acc1 = f32x4.add(acc1, f32x4.sub(v128.load(at(row, i), 16), vh));
          }
        }
        if (end < whole) {
          // A long row: flush between blocks.
          store<f64>(sumSlot(squares, j), load<f64>(sumSlot(squares, j)) + lanesSum(f32x4.add(acc0, acc1)));
          acc0 = acc1 = zero;
        }
      }
      if (i + 4 <= pixels) {
        const d = f32x4.sub(f32x4.sub(v128.load(at(row, i)), vh), vl);
        acc0 = squares != 0 ? madd(d, d, acc0) : f32x4.add(acc0, d);
        i += 4;
      }
      for (; i < pixels; i++) {
        const d = load<f32>(at(row, i)) - hi - lo;
        tail += squares != 0 ? d * d : d;
      }
      let acc = f32x4.add(acc0, acc1);
      if (flush) {
        store<f64>(sumSlot(squares, j), load<f64>(sumSlot(squares, j)) + lanesSum(acc) + <f64>tail);
        acc = zero;
        tail = 0;
      }
      v128.store(vectorSlot(0, j), acc);
      store<f32>(floatSlot(TAIL, j), tail);
    }
  }
}

/**
 * Training-mode batch norm, forward: per channel, the mean and biased variance over batch × pixels
 * (written as f32 to mean[c] and variance[c]), then y = (x − mean) / sqrt(variance + eps) · gamma + beta.
 * x, y: [batch, channels, pixels]; gamma, beta, mean, variance: [channels]. y may equal x.
 *
 * NOTE: numerical care, for channels whose mean is large against their spread. The sum is taken
 * of x − x[0, c, 0] (a pivot inside the data, so the f32 differences are exact or nearly so);
 * the variance is a second pass over the centred values; and the mean is split into an f32 head
 * and tail, so x − mean is (x − head) − tail: exact, then one small rounding.
 */
export function batchNormTrainForward(
  batch: i32,
  channels: i32,
  pixels: i32,
  x: usize,
  gamma: usize,
  beta: usize,
  y: usize,
  mean: usize,
  variance: usize,
  eps: f32,
): void {
  const count = <f64>batch * <f64>pixels;
  const rowBytes = <usize>pixels << 2;
  const batchStride = <usize>channels * rowBytes;
  const block = blockChannels(batch, pixels);
  for (let c0 = 0; c0 < channels; c0 += block) {
    const cb = min(block, channels - c0);
    const xb = x + <usize>c0 * rowBytes;
    const yb = y + <usize>c0 * rowBytes;
    for (let j = 0; j < cb; j++) store<f32>(floatSlot(PIVOT, j), load<f32>(xb + <usize>j * rowBytes));
    forwardSums(batch, cb, pixels, xb, batchStride, 0);
    for (let j = 0; j < cb; j++) {
      const m = <f64>load<f32>(floatSlot(PIVOT, j)) + load<f64>(sumSlot(0, j)) / count;
      const hi = <f32>m;
      store<f32>(floatSlot(PIVOT, j), hi);
      store<f32>(floatSlot(LOW, j), <f32>(m - <f64>hi));
      store<f32>(at(mean, c0 + j), hi);
    }
    forwardSums(batch, cb, pixels, xb, batchStride, 1);
    for (let j = 0; j < cb; j++) {
      const v = load<f64>(sumSlot(1, j)) / count;
      store<f32>(at(variance, c0 + j), <f32>v);
      store<f32>(floatSlot(SCALE, j), <f32>(<f64>load<f32>(at(gamma, c0 + j)) / Math.sqrt(v + <f64>eps)));
      store<f32>(floatSlot(SHIFT, j), load<f32>(at(beta, c0 + j)));
    }
    for (let n = 0; n < batch; n++) {
      for (let j = 0; j < cb; j++) {
        const offset = <usize>n * batchStride + <usize>j * rowBytes;
        const src = xb + offset;
        const dst = yb + offset;
        const hi = load<f32>(floatSlot(PIVOT, j));
        const lo = load<f32>(floatSlot(LOW, j));
        const s = load<f32>(floatSlot(SCALE, j));
        const b = load<f32>(floatSlot(SHIFT, j));
        const vh = f32x4.splat(hi);
        const vl = f32x4.splat(lo);
        const vs = f32x4.splat(s);
        const vb = f32x4.splat(b);
        let i = 0;
        for (; i + 4 <= pixels; i += 4) {
          const d = f32x4.sub(f32x4.sub(v128.load(at(src, i)), vh), vl);
          v128.store(at(dst, i), madd(d, vs, vb));
        }
        for (; i < pixels; i++) store<f32>(at(dst, i), (load<f32>(at(src, i)) - hi - lo) * s + b);
      }
    }
  }
}

/**
 * Training-mode batch norm, backward (the batch statistics depend on x): with M = batch · pixels
 * values per channel, x̂ = (x − mean) / σ, σ = sqrt(variance + eps),
 *   ∂gamma = Σ ∂y · x̂,  ∂beta = Σ ∂y,  ∂x = gamma / (M σ) · (M ∂y − ∂beta − x̂ · ∂gamma).
 * mean and variance are what batchNormTrainForward wrote. gradGamma and gradBeta are always
 * overwritten; gradIn per `accumulate`. gradIn may equal gradOut (with accumulate = 0).
 *
 * NOTE: `mean` (rounded to f32 by the forward) serves as a pivot: the same pass that sums ∂y and
 * ∂y · (x − mean) also sums x − mean, whose average is the rounding error of the mean, and both
 * ∂gamma and x̂ are corrected by it. So the result is what the exact batch mean gives.
 */
export function batchNormTrainBackward(
  batch: i32,
  channels: i32,
  pixels: i32,
  x: usize,
  gamma: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  gradOut: usize,
  gradIn: usize,
  gradGamma: usize,
  gradBeta: usize,
  accumulate: i32,
): void {
  const count = <f64>batch * <f64>pixels;
  const rowBytes = <usize>pixels << 2;
  const batchStride = <usize>channels * rowBytes;
  const whole = pixels & ~3;
  const every = imagesPerFlush(pixels);
  const zero = f32x4.splat(0);
  const block = blockChannels(batch, pixels);
  for (let c0 = 0; c0 < channels; c0 += block) {
    const cb = min(block, channels - c0);
    const first = <usize>c0 * rowBytes;
    for (let j = 0; j < cb; j++) {
      for (let k = 0; k < 3; k++) {
        v128.store(vectorSlot(k, j), zero);
        store<f64>(sumSlot(k, j), 0);
      }
    }
    // Pass 1: Σ ∂y (sum 0), Σ ∂y · (x − mean) (sum 1), Σ (x − mean) (sum 2).
    for (let n = 0; n < batch; n++) {
      const flush = n % every == every - 1 || n == batch - 1;
      for (let j = 0; j < cb; j++) {
        const offset = first + <usize>n * batchStride + <usize>j * rowBytes;
        const xs = x + offset;
        const dys = gradOut + offset;
        const hi = load<f32>(at(mean, c0 + j));
        const vh = f32x4.splat(hi);
        let g = v128.load(vectorSlot(0, j));
        let gd = v128.load(vectorSlot(1, j));
        let d = v128.load(vectorSlot(2, j));
        let i = 0;
        while (i < whole) {
          const end = min(whole, i + BLOCK);
          for (; i < end; i += 4) {
            const dy = v128.load(at(dys, i));
            const centred = f32x4.sub(v128.load(at(xs, i)), vh);
            g = f32x4.add(g, dy);
            gd = madd(dy, centred, gd);
            d = f32x4.add(d, centred);
          }
          if (end < whole || flush) {
            store<f64>(sumSlot(0, j), load<f64>(sumSlot(0, j)) + lanesSum(g));
            store<f64>(sumSlot(1, j), load<f64>(sumSlot(1, j)) + lanesSum(gd));
            store<f64>(sumSlot(2, j), load<f64>(sumSlot(2, j)) + lanesSum(d));
            g = gd = d = zero;
          }
        }
        v128.store(vectorSlot(0, j), g);
        v128.store(vectorSlot(1, j), gd);
        v128.store(vectorSlot(2, j), d);
        if (i < pixels) {
          // The row's last 1..3 floats, straight into f64 (short rows are rare and this is cheap).
          let sumGrad: f64 = 0;
          let sumGradCentred: f64 = 0;
          let sumCentred: f64 = 0;
          for (; i < pixels; i++) {
            const dy = load<f32>(at(dys, i));
            const centred = load<f32>(at(xs, i)) - hi;
            sumGrad += <f64>dy;
            sumGradCentred += <f64>(dy * centred);
            sumCentred += <f64>centred;
          }
          store<f64>(sumSlot(0, j), load<f64>(sumSlot(0, j)) + sumGrad);
          store<f64>(sumSlot(1, j), load<f64>(sumSlot(1, j)) + sumGradCentred);
          store<f64>(sumSlot(2, j), load<f64>(sumSlot(2, j)) + sumCentred);
        }
      }
    }
    // ∂x = a · ∂y + b · (x − mean) + k per channel.
    for (let j = 0; j < cb; j++) {
      const c = c0 + j;
      const invStd = 1 / Math.sqrt(<f64>load<f32>(at(variance, c)) + <f64>eps);
      const sumGrad = load<f64>(sumSlot(0, j));
      const shift = load<f64>(sumSlot(2, j)) / count; // exact mean − mean[c]
      const sumGradXhat = (load<f64>(sumSlot(1, j)) - shift * sumGrad) * invStd;
      store<f32>(at(gradGamma, c), <f32>sumGradXhat);
      store<f32>(at(gradBeta, c), <f32>sumGrad);
      const gi = <f64>load<f32>(at(gamma, c)) * invStd;
      store<f32>(floatSlot(LOW, j), <f32>shift);
      store<f32>(floatSlot(SCALE, j), <f32>gi);
      store<f32>(floatSlot(SHIFT, j), <f32>((-gi * invStd * sumGradXhat) / count));
      store<f32>(floatSlot(CONSTANT, j), <f32>((-gi * sumGrad) / count));
    }
    for (let n = 0; n < batch; n++) {
      for (let j = 0; j < cb; j++) {
        const offset = first + <usize>n * batchStride + <usize>j * rowBytes;
        const xs = x + offset;
        const dys = gradOut + offset;
        const out = gradIn + offset;
        const hi = load<f32>(at(mean, c0 + j));
        const lo = load<f32>(floatSlot(LOW, j));
        const a = load<f32>(floatSlot(SCALE, j));
        const b = load<f32>(floatSlot(SHIFT, j));
        const k = load<f32>(floatSlot(CONSTANT, j));
        const vh = f32x4.splat(hi);
        const vl = f32x4.splat(lo);
        const va = f32x4.splat(a);
        const vb = f32x4.splat(b);
        const vk = f32x4.splat(k);
        let i = 0;
        if (accumulate != 0) {
          for (; i < whole; i += 4) {
            const d = f32x4.sub(f32x4.sub(v128.load(at(xs, i)), vh), vl);
            const g = madd(va, v128.load(at(dys, i)), madd(vb, d, vk));
            v128.store(at(out, i), f32x4.add(v128.load(at(out, i)), g));
          }
          for (; i < pixels; i++) {
            const d = load<f32>(at(xs, i)) - hi - lo;
            store<f32>(at(out, i), load<f32>(at(out, i)) + (a * load<f32>(at(dys, i)) + (b * d + k)));
          }
        } else {
          for (; i < whole; i += 4) {
            const d = f32x4.sub(f32x4.sub(v128.load(at(xs, i)), vh), vl);
            v128.store(at(out, i), madd(va, v128.load(at(dys, i)), madd(vb, d, vk)));
          }
          for (; i < pixels; i++) {
            const d = load<f32>(at(xs, i)) - hi - lo;
            store<f32>(at(out, i), a * load<f32>(at(dys, i)) + (b * d + k));
          }
        }
      }
    }
  }
}

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

/** y = x · factor. y may equal x. */
export function scale(count: i32, x: usize, factor: f32, y: usize): void {
  const f = f32x4.splat(factor);
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(at(y, i), f32x4.mul(v128.load(at(x, i)), f));
  for (; i < count; i++) store<f32>(at(y, i), load<f32>(at(x, i)) * factor);
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

/**
 * One step of torch.optim.SGD (dampening 0) over `count` parameters, as src/optim/sgd.ts:
 *   d = g + λ·p;  b = μ·b + d (b = d when `first`);  d = d + μ·b (Nesterov) or b;  p = p − lr·d.
 * With momentum 0 the buffer is not touched (momentumBuffer may be 0); with weightDecay 0 the
 * decay term is skipped, as PyTorch does.
 */
export function sgdStep(
  count: i32,
  param: usize,
  grad: usize,
  momentumBuffer: usize,
  lr: f32,
  momentum: f32,
  weightDecay: f32,
  nesterov: i32,
  first: i32,
): void {
  const vlr = f32x4.splat(lr);
  const vmu = f32x4.splat(momentum);
  const vwd = f32x4.splat(weightDecay);
  const decay = weightDecay != 0;
  const useBuffer = momentum != 0;
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const p = v128.load(at(param, i));
    let d = v128.load(at(grad, i));
    if (decay) d = f32x4.add(d, f32x4.mul(vwd, p));
    if (useBuffer) {
      const b = first != 0 ? d : f32x4.add(f32x4.mul(vmu, v128.load(at(momentumBuffer, i))), d);
      v128.store(at(momentumBuffer, i), b);
      d = nesterov != 0 ? f32x4.add(d, f32x4.mul(vmu, b)) : b;
    }
    v128.store(at(param, i), f32x4.sub(p, f32x4.mul(vlr, d)));
  }
  for (; i < count; i++) {
    const p = load<f32>(at(param, i));
    let d = load<f32>(at(grad, i));
    if (decay) d += weightDecay * p;
    if (useBuffer) {
      const b = first != 0 ? d : momentum * load<f32>(at(momentumBuffer, i)) + d;
      store<f32>(at(momentumBuffer, i), b);
      d = nesterov != 0 ? d + momentum * b : b;
    }
    store<f32>(at(param, i), p - lr * d);
  }
}
