// Training-mode batch normalisation over NCHW (WASM SIMD128): one family of blocked passes,
//
//   forward:  batchNormStatistics → [exchange] → batchNormApply
//   backward: batchNormBackwardSums → [exchange] → batchNormBackwardApply
//
// Threads that train on parts of one batch run the passes with an exchange of the per-channel
// figures in between (src/train/parallel.ts). One thread is the same passes with no exchange:
// batchNormTrainForward and batchNormTrainBackward run both passes of each block of channels
// back to back while its data is in cache, through the same block functions, so they give
// bit-for-bit what the two passes give (test/wasm-batchnorm.test.ts).
//
// x, y, gradOut, gradIn: [batch, channels, pixels]; every other buffer: [channels].
// Every pass normalises with the f32 `mean` it is given, as the exchange carries it, so one part
// computes exactly what N = 1 parts compute. NOTE: x − mean then carries the f32 rounding of the
// mean, up to 2^-24·|mean|, which matters only for channels whose mean is large against their
// spread (test/wasm-train-kernels.test.ts bounds it); the statistics themselves are accurate.
//
// NOTE: every pass works on blocks of channels whose data (all of the batch) fits in ~128 KB, and
// sweeps each block in memory order: for every image, the block's rows one after the other. One
// channel at a time would read rows `channels · pixels` floats apart, which at 4×4 pixels is one
// cache line per 4 KB page and ran at a third of the bandwidth. The per-channel partial sums and
// coefficients of a block live in this module's static scratch, so one instance must not run two
// batch norms at once (instances never share memory; the shared build leaves this file out).

import { at, lanesSum, madd } from './common';

/**
 * Floats per lane-block of a sum: partial sums are kept in f32x4 over about this many floats and
 * then added into an f64, so a long row loses no more precision than a short one.
 */
const BLOCK: i32 = 256;
const BLOCK_BYTES: i32 = 128 * 1024;
const MAX_BLOCK_CHANNELS: i32 = 512;
/** Two f32x4 partial sums per channel of a block. */
const vectorScratch = memory.data(MAX_BLOCK_CHANNELS * 2 * 16, 16);
/** Two f64 sums per channel of a block. */
const sumScratch = memory.data(MAX_BLOCK_CHANNELS * 2 * 8, 16);
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

// Slots of the f32 scratch.
const HEAD: i32 = 0; // the pivot of the statistics' first pass, then the mean (f32)
const TAIL: i32 = 1; // the statistics' second pass: the exact mean − HEAD
const SCALE: i32 = 2; // forward γ/σ; backward a
const SHIFT: i32 = 3; // forward β; backward b
const CONSTANT: i32 = 4; // backward k
const ROW_TAIL: i32 = 5; // scalar sum of the rows' last floats (statistics)

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

/** Reads the mean of channels c0.. of a block into the scratch. */
function loadMean(cb: i32, mean: usize, c0: i32): void {
  for (let j = 0; j < cb; j++) store<f32>(floatSlot(HEAD, j), load<f32>(at(mean, c0 + j)));
}

/**
 * A statistics pass over a block of `cb` channels from x (offset to the block's first channel):
 * `squares` = 0 sums x − head[j] into sum 0; 1 sums ((x − head[j]) − tail[j])² into sum 1.
 */
function statisticsSums(batch: i32, cb: i32, pixels: i32, x: usize, batchStride: usize, squares: i32): void {
  const rowBytes = <usize>pixels << 2;
  const whole = pixels & ~7;
  const every = imagesPerFlush(pixels);
  const zero = f32x4.splat(0);
  for (let j = 0; j < cb; j++) {
    v128.store(vectorSlot(0, j), zero);
    store<f32>(floatSlot(ROW_TAIL, j), 0);
    store<f64>(sumSlot(squares, j), 0);
  }
  for (let n = 0; n < batch; n++) {
    const flush = n % every == every - 1 || n == batch - 1;
    for (let j = 0; j < cb; j++) {
      const row = x + <usize>n * batchStride + <usize>j * rowBytes;
      const hi = load<f32>(floatSlot(HEAD, j));
      const lo = squares != 0 ? load<f32>(floatSlot(TAIL, j)) : 0;
      const vh = f32x4.splat(hi);
      const vl = f32x4.splat(lo);
      let acc0 = v128.load(vectorSlot(0, j));
      let acc1 = zero;
      let tail = load<f32>(floatSlot(ROW_TAIL, j));
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
      store<f32>(floatSlot(ROW_TAIL, j), tail);
    }
  }
}

/**
 * Statistics of the block of channels c0..c0 + cb: the mean (rounded to f32) and the biased variance.
 *
 * NOTE: numerical care, for channels whose mean is large against their spread. The sum is taken
 * of x − x[0, c, 0] (a pivot inside the data, so the f32 differences are exact or nearly so);
 * the variance is a second pass over the centred values, (x − head) − tail, with the exact mean
 * split into an f32 head and tail.
 */
function statisticsBlock(
  batch: i32,
  channels: i32,
  pixels: i32,
  c0: i32,
  cb: i32,
  x: usize,
  mean: usize,
  variance: usize,
): void {
  const count = <f64>batch * <f64>pixels;
  const rowBytes = <usize>pixels << 2;
  const batchStride = <usize>channels * rowBytes;
  const xb = x + <usize>c0 * rowBytes;
  for (let j = 0; j < cb; j++) store<f32>(floatSlot(HEAD, j), load<f32>(xb + <usize>j * rowBytes));
  statisticsSums(batch, cb, pixels, xb, batchStride, 0);
  for (let j = 0; j < cb; j++) {
    const m = <f64>load<f32>(floatSlot(HEAD, j)) + load<f64>(sumSlot(0, j)) / count;
    const hi = <f32>m;
    const lo = <f32>(m - <f64>hi);
    store<f32>(floatSlot(HEAD, j), hi);
    store<f32>(floatSlot(TAIL, j), lo);
    store<f32>(at(mean, c0 + j), hi);
  }
  statisticsSums(batch, cb, pixels, xb, batchStride, 1);
  for (let j = 0; j < cb; j++) store<f32>(at(variance, c0 + j), <f32>(load<f64>(sumSlot(1, j)) / count));
}

/** y = (x − mean) · γ/σ + β over the block of channels c0..c0 + cb, σ = sqrt(variance + eps). */
function applyBlock(
  batch: i32,
  channels: i32,
  pixels: i32,
  c0: i32,
  cb: i32,
  x: usize,
  gamma: usize,
  beta: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  y: usize,
): void {
  const rowBytes = <usize>pixels << 2;
  const batchStride = <usize>channels * rowBytes;
  const first = <usize>c0 * rowBytes;
  loadMean(cb, mean, c0);
  for (let j = 0; j < cb; j++) {
    const c = c0 + j;
    const invStd = 1 / Math.sqrt(<f64>load<f32>(at(variance, c)) + <f64>eps);
    store<f32>(floatSlot(SCALE, j), <f32>(<f64>load<f32>(at(gamma, c)) * invStd));
    store<f32>(floatSlot(SHIFT, j), load<f32>(at(beta, c)));
  }
  for (let n = 0; n < batch; n++) {
    for (let j = 0; j < cb; j++) {
      const offset = first + <usize>n * batchStride + <usize>j * rowBytes;
      const src = x + offset;
      const dst = y + offset;
      const m = load<f32>(floatSlot(HEAD, j));
      const s = load<f32>(floatSlot(SCALE, j));
      const b = load<f32>(floatSlot(SHIFT, j));
      const vm = f32x4.splat(m);
      const vs = f32x4.splat(s);
      const vb = f32x4.splat(b);
      let i = 0;
      // (x − mean) first: with a large mean, x·scale − mean·scale would cancel in f32.
      for (; i + 4 <= pixels; i += 4) v128.store(at(dst, i), madd(f32x4.sub(v128.load(at(src, i)), vm), vs, vb));
      for (; i < pixels; i++) store<f32>(at(dst, i), (load<f32>(at(src, i)) - m) * s + b);
    }
  }
}

/**
 * The backward's reductions over the block of channels c0..c0 + cb: sumDy = Σ ∂y and
 * sumDyXhat = Σ ∂y · x̂, x̂ = (x − mean) / σ.
 */
function backwardSumsBlock(
  batch: i32,
  channels: i32,
  pixels: i32,
  c0: i32,
  cb: i32,
  x: usize,
  gradOut: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  sumDy: usize,
  sumDyXhat: usize,
): void {
  const rowBytes = <usize>pixels << 2;
  const batchStride = <usize>channels * rowBytes;
  const first = <usize>c0 * rowBytes;
  const whole = pixels & ~3;
  const every = imagesPerFlush(pixels);
  const zero = f32x4.splat(0);
  loadMean(cb, mean, c0);
  for (let j = 0; j < cb; j++) {
    for (let k = 0; k < 2; k++) {
      v128.store(vectorSlot(k, j), zero);
      store<f64>(sumSlot(k, j), 0);
    }
  }
  for (let n = 0; n < batch; n++) {
    const flush = n % every == every - 1 || n == batch - 1;
    for (let j = 0; j < cb; j++) {
      const offset = first + <usize>n * batchStride + <usize>j * rowBytes;
      const xs = x + offset;
      const dys = gradOut + offset;
      const hi = load<f32>(floatSlot(HEAD, j));
      const vh = f32x4.splat(hi);
      let g = v128.load(vectorSlot(0, j));
      let gd = v128.load(vectorSlot(1, j));
      let i = 0;
      while (i < whole) {
        const end = min(whole, i + BLOCK);
        for (; i < end; i += 4) {
          const dy = v128.load(at(dys, i));
          g = f32x4.add(g, dy);
          gd = madd(dy, f32x4.sub(v128.load(at(xs, i)), vh), gd);
        }
        if (end < whole || flush) {
          store<f64>(sumSlot(0, j), load<f64>(sumSlot(0, j)) + lanesSum(g));
          store<f64>(sumSlot(1, j), load<f64>(sumSlot(1, j)) + lanesSum(gd));
          g = gd = zero;
        }
      }
      v128.store(vectorSlot(0, j), g);
      v128.store(vectorSlot(1, j), gd);
      if (i < pixels) {
        // The row's last 1..3 floats, straight into f64 (short rows are rare and this is cheap).
        let sumGrad: f64 = 0;
        let sumGradCentred: f64 = 0;
        for (; i < pixels; i++) {
          const dy = load<f32>(at(dys, i));
          sumGrad += <f64>dy;
          sumGradCentred += <f64>(dy * (load<f32>(at(xs, i)) - hi));
        }
        store<f64>(sumSlot(0, j), load<f64>(sumSlot(0, j)) + sumGrad);
        store<f64>(sumSlot(1, j), load<f64>(sumSlot(1, j)) + sumGradCentred);
      }
    }
  }
  for (let j = 0; j < cb; j++) {
    const c = c0 + j;
    const invStd = 1 / Math.sqrt(<f64>load<f32>(at(variance, c)) + <f64>eps);
    store<f32>(at(sumDy, c), <f32>load<f64>(sumSlot(0, j)));
    store<f32>(at(sumDyXhat, c), <f32>(load<f64>(sumSlot(1, j)) * invStd));
  }
}

/**
 * ∂x = γ/(M·σ) · (M·∂y − Σ∂y − x̂·Σ∂y·x̂) over the block of channels c0..c0 + cb, for M = `count`
 * values per channel (the whole batch's when parts exchange their sums), as
 * a·∂y + (b·(x − mean) + k) with a = γ/σ, b = −a·Σ∂y·x̂/(M·σ), k = −a·Σ∂y/M.
 */
function backwardApplyBlock(
  batch: i32,
  channels: i32,
  pixels: i32,
  c0: i32,
  cb: i32,
  x: usize,
  gradOut: usize,
  gamma: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  sumDy: usize,
  sumDyXhat: usize,
  count: f64,
  gradIn: usize,
  accumulate: i32,
): void {
  const rowBytes = <usize>pixels << 2;
  const batchStride = <usize>channels * rowBytes;
  const first = <usize>c0 * rowBytes;
  const whole = pixels & ~3;
  loadMean(cb, mean, c0);
  for (let j = 0; j < cb; j++) {
    const c = c0 + j;
    const invStd = 1 / Math.sqrt(<f64>load<f32>(at(variance, c)) + <f64>eps);
    const a = <f64>load<f32>(at(gamma, c)) * invStd;
    store<f32>(floatSlot(SCALE, j), <f32>a);
    store<f32>(floatSlot(SHIFT, j), <f32>((-a * invStd * <f64>load<f32>(at(sumDyXhat, c))) / count));
    store<f32>(floatSlot(CONSTANT, j), <f32>((-a * <f64>load<f32>(at(sumDy, c))) / count));
  }
  for (let n = 0; n < batch; n++) {
    for (let j = 0; j < cb; j++) {
      const offset = first + <usize>n * batchStride + <usize>j * rowBytes;
      const xs = x + offset;
      const dys = gradOut + offset;
      const out = gradIn + offset;
      const m = load<f32>(floatSlot(HEAD, j));
      const a = load<f32>(floatSlot(SCALE, j));
      const b = load<f32>(floatSlot(SHIFT, j));
      const k = load<f32>(floatSlot(CONSTANT, j));
      const vm = f32x4.splat(m);
      const va = f32x4.splat(a);
      const vb = f32x4.splat(b);
      const vk = f32x4.splat(k);
      let i = 0;
      if (accumulate != 0) {
        for (; i < whole; i += 4) {
          const d = f32x4.sub(v128.load(at(xs, i)), vm);
          const g = madd(va, v128.load(at(dys, i)), madd(vb, d, vk));
          v128.store(at(out, i), f32x4.add(v128.load(at(out, i)), g));
        }
        for (; i < pixels; i++) {
          const d = load<f32>(at(xs, i)) - m;
          store<f32>(at(out, i), load<f32>(at(out, i)) + (a * load<f32>(at(dys, i)) + (b * d + k)));
        }
      } else {
        for (; i < whole; i += 4) {
          const d = f32x4.sub(v128.load(at(xs, i)), vm);
          v128.store(at(out, i), madd(va, v128.load(at(dys, i)), madd(vb, d, vk)));
        }
        for (; i < pixels; i++) {
          const d = load<f32>(at(xs, i)) - m;
          store<f32>(at(out, i), a * load<f32>(at(dys, i)) + (b * d + k));
        }
      }
    }
  }
}

// Which passes a call runs over each block of channels.
const FIRST: i32 = 1; // statistics, or the backward's sums
const SECOND: i32 = 2; // apply, or the backward apply

/** The forward's passes over every block of channels. */
@inline
function forward(
  passes: i32,
  batch: i32,
  channels: i32,
  pixels: i32,
  x: usize,
  gamma: usize,
  beta: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  y: usize,
): void {
  const block = blockChannels(batch, pixels);
  for (let c0 = 0; c0 < channels; c0 += block) {
    const cb = min(block, channels - c0);
    if (passes & FIRST) statisticsBlock(batch, channels, pixels, c0, cb, x, mean, variance);
    if (passes & SECOND) applyBlock(batch, channels, pixels, c0, cb, x, gamma, beta, mean, variance, eps, y);
  }
}

/** The backward's passes over every block of channels. */
@inline
function backward(
  passes: i32,
  batch: i32,
  channels: i32,
  pixels: i32,
  x: usize,
  gradOut: usize,
  gamma: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  sumDy: usize,
  sumDyXhat: usize,
  count: f64,
  gradIn: usize,
  accumulate: i32,
): void {
  const block = blockChannels(batch, pixels);
  for (let c0 = 0; c0 < channels; c0 += block) {
    const cb = min(block, channels - c0);
    if (passes & FIRST) {
      backwardSumsBlock(batch, channels, pixels, c0, cb, x, gradOut, mean, variance, eps, sumDy, sumDyXhat);
    }
    if (passes & SECOND) {
      backwardApplyBlock(batch, channels, pixels, c0, cb, x, gradOut, gamma, mean, variance, eps, sumDy, sumDyXhat, count, gradIn, accumulate);
    }
  }
}

/**
 * Per channel, the mean over batch × pixels (rounded to f32) and the biased variance.
 */
export function batchNormStatistics(batch: i32, channels: i32, pixels: i32, x: usize, mean: usize, variance: usize): void {
  forward(FIRST, batch, channels, pixels, x, 0, 0, mean, variance, 0, 0);
}

/** y = (x − mean) / sqrt(variance + eps) · gamma + beta, per channel. y may equal x. */
export function batchNormApply(batch: i32, channels: i32, pixels: i32, x: usize, gamma: usize, beta: usize, mean: usize, variance: usize, eps: f32, y: usize): void {
  forward(SECOND, batch, channels, pixels, x, gamma, beta, mean, variance, eps, y);
}

/**
 * batchNormStatistics then batchNormApply with no exchange between (one thread), block by block
 * while each block is in cache. Bit-for-bit the two passes' results. y may equal x.
 */
export function batchNormTrainForward(batch: i32, channels: i32, pixels: i32, x: usize, gamma: usize, beta: usize, mean: usize, variance: usize, eps: f32, y: usize): void {
  forward(FIRST | SECOND, batch, channels, pixels, x, gamma, beta, mean, variance, eps, y);
}

/** The backward's per-channel reductions sumDy = Σ ∂y and sumDyXhat = Σ ∂y · x̂ (∂β and ∂γ of this part). */
export function batchNormBackwardSums(batch: i32, channels: i32, pixels: i32, x: usize, gradOut: usize, mean: usize, variance: usize, eps: f32, sumDy: usize, sumDyXhat: usize): void {
  backward(FIRST, batch, channels, pixels, x, gradOut, 0, mean, variance, eps, sumDy, sumDyXhat, 0, 0, 0);
}

/**
 * ∂x from the sums, for M = `count` values per channel (the whole batch's), written to gradIn or,
 * with `accumulate`, added to it. gradIn may equal gradOut (with accumulate = 0).
 */
export function batchNormBackwardApply(batch: i32, channels: i32, pixels: i32, x: usize, gradOut: usize, gamma: usize, mean: usize, variance: usize, eps: f32, sumDy: usize, sumDyXhat: usize, count: f64, gradIn: usize, accumulate: i32): void {
  backward(SECOND, batch, channels, pixels, x, gradOut, gamma, mean, variance, eps, sumDy, sumDyXhat, count, gradIn, accumulate);
}

/**
 * batchNormBackwardSums then batchNormBackwardApply with no exchange between (one thread,
 * M = batch · pixels), block by block while each block is in cache; bit-for-bit the two passes'
 * results. sumDy and sumDyXhat (∂β and ∂γ) are always overwritten; gradIn per `accumulate`.
 */
export function batchNormTrainBackward(batch: i32, channels: i32, pixels: i32, x: usize, gradOut: usize, gamma: usize, mean: usize, variance: usize, eps: f32, sumDy: usize, sumDyXhat: usize, gradIn: usize, accumulate: i32): void {
  const count = <f64>batch * <f64>pixels;
  backward(FIRST | SECOND, batch, channels, pixels, x, gradOut, gamma, mean, variance, eps, sumDy, sumDyXhat, count, gradIn, accumulate);
}
