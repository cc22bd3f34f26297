// Training-mode batch normalisation over NCHW (WASM SIMD128), split into reduction and apply
// passes so that threads training on parts of one batch can combine their per-channel figures in
// between (src/train/plan.ts): statistics → [combine] → apply, and backward sums → [combine] →
// backward apply. Per-row sums run in f32x4 lanes and are added up per channel in f64.
//
// Channel c of sample n is the row of `pixels` floats at base + ((n·channels + c)·pixels)·4.

@inline
function rowAddress(base: usize, n: i32, channels: i32, c: i32, pixels: i32): usize {
  return base + (<usize>((n * channels + c) * pixels) << 2);
}

@inline
function horizontalSum(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

/** Σ row[p]. */
function rowSum(row: usize, pixels: i32): f64 {
  let acc = f32x4.splat(0);
  let p = 0;
  for (; p + 4 <= pixels; p += 4) acc = f32x4.add(acc, v128.load(row + (<usize>p << 2)));
  let sum = horizontalSum(acc);
  for (; p < pixels; p++) sum += <f64>load<f32>(row + (<usize>p << 2));
  return sum;
}

/** Σ (row[p] − mean)². */
function rowSquaredDeviation(row: usize, pixels: i32, mean: f32): f64 {
  const m = f32x4.splat(mean);
  let acc = f32x4.splat(0);
  let p = 0;
  for (; p + 4 <= pixels; p += 4) {
    const d = f32x4.sub(v128.load(row + (<usize>p << 2)), m);
    acc = f32x4.add(acc, f32x4.mul(d, d));
  }
  let sum = horizontalSum(acc);
  for (; p < pixels; p++) {
    const d = <f64>(load<f32>(row + (<usize>p << 2)) - mean);
    sum += d * d;
  }
  return sum;
}

/**
 * Per-channel mean and biased variance of x over batch × pixels, written to mean[c] and
 * variance[c] (two passes: the mean, then squared deviations from it).
 */
export function batchNormStatistics(batch: i32, channels: i32, pixels: i32, x: usize, mean: usize, variance: usize): void {
  const count = <f64>batch * <f64>pixels;
  for (let c = 0; c < channels; c++) {
    let sum: f64 = 0;
    for (let n = 0; n < batch; n++) sum += rowSum(rowAddress(x, n, channels, c, pixels), pixels);
    const m = <f32>(sum / count);
    let squares: f64 = 0;
    for (let n = 0; n < batch; n++) squares += rowSquaredDeviation(rowAddress(x, n, channels, c, pixels), pixels, m);
    store<f32>(mean + (<usize>c << 2), m);
    store<f32>(variance + (<usize>c << 2), <f32>(squares / count));
  }
}

/** y = (x − mean[c]) / sqrt(variance[c] + eps) · gamma[c] + beta[c]. y may be x. */
export function batchNormApply(
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
  for (let c = 0; c < channels; c++) {
    const at = <usize>c << 2;
    // (x − mean) first: with a large mean, x·scale − mean·scale would cancel in float32.
    const scale = <f32>(<f64>load<f32>(gamma + at) / Math.sqrt(<f64>load<f32>(variance + at) + <f64>eps));
    const m = load<f32>(mean + at);
    const shift = load<f32>(beta + at);
    const s = f32x4.splat(scale);
    const b = f32x4.splat(shift);
    const mv = f32x4.splat(m);
    for (let n = 0; n < batch; n++) {
      const from = rowAddress(x, n, channels, c, pixels);
      const to = rowAddress(y, n, channels, c, pixels);
      let p = 0;
      for (; p + 4 <= pixels; p += 4) {
        const o = <usize>p << 2;
        v128.store(to + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(from + o), mv), s), b));
      }
      for (; p < pixels; p++) {
        const o = <usize>p << 2;
        store<f32>(to + o, (load<f32>(from + o) - m) * scale + shift);
      }
    }
  }
}

/**
 * The backward's per-channel reductions: sumDy[c] = Σ ∂y and sumDyXhat[c] = Σ ∂y · x̂, with
 * x̂ = (x − mean[c]) / sqrt(variance[c] + eps).
 */
export function batchNormBackwardSums(
  batch: i32,
  channels: i32,
  pixels: i32,
  x: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  gradOut: usize,
  sumDy: usize,
  sumDyXhat: usize,
): void {
  for (let c = 0; c < channels; c++) {
    const at = <usize>c << 2;
    const m = load<f32>(mean + at);
    const mv = f32x4.splat(m);
    let dySum: f64 = 0;
    let dyxSum: f64 = 0;
    for (let n = 0; n < batch; n++) {
      const xs = rowAddress(x, n, channels, c, pixels);
      const gs = rowAddress(gradOut, n, channels, c, pixels);
      let a = f32x4.splat(0);
      let b = f32x4.splat(0);
      let p = 0;
      for (; p + 4 <= pixels; p += 4) {
        const o = <usize>p << 2;
        const dy = v128.load(gs + o);
        a = f32x4.add(a, dy);
        b = f32x4.add(b, f32x4.mul(dy, f32x4.sub(v128.load(xs + o), mv)));
      }
      dySum += horizontalSum(a);
      dyxSum += horizontalSum(b);
      for (; p < pixels; p++) {
        const o = <usize>p << 2;
        const dy = <f64>load<f32>(gs + o);
        dySum += dy;
        dyxSum += dy * <f64>(load<f32>(xs + o) - m);
      }
    }
    const invStd = 1 / Math.sqrt(<f64>load<f32>(variance + at) + <f64>eps);
    store<f32>(sumDy + at, <f32>dySum);
    store<f32>(sumDyXhat + at, <f32>(dyxSum * invStd));
  }
}

/**
 * ∂x = γ/(M·σ) · (M·∂y − Σ∂y − x̂·Σ∂y·x̂) for M = `count` values per channel (the whole batch's,
 * when threads share one), written to gradIn or, with `accumulate`, added to it.
 */
export function batchNormBackwardApply(
  batch: i32,
  channels: i32,
  pixels: i32,
  x: usize,
  gamma: usize,
  mean: usize,
  variance: usize,
  eps: f32,
  gradOut: usize,
  sumDy: usize,
  sumDyXhat: usize,
  count: f64,
  gradIn: usize,
  accumulate: i32,
): void {
  for (let c = 0; c < channels; c++) {
    const at = <usize>c << 2;
    const invStd = 1 / Math.sqrt(<f64>load<f32>(variance + at) + <f64>eps);
    const g = <f64>load<f32>(gamma + at);
    // ∂x = k1·∂y − k3·(x − mean) − k4, with k1 = γσ⁻¹, k3 = γσ⁻²·Σ∂y·x̂/M, k4 = k1·Σ∂y/M
    // (x − mean first: with a large mean, k3·x and k3·mean would cancel in float32).
    const k1 = g * invStd;
    const k3 = (g * invStd * invStd * <f64>load<f32>(sumDyXhat + at)) / count;
    const k4 = (k1 * <f64>load<f32>(sumDy + at)) / count;
    const m = load<f32>(mean + at);
    const a = <f32>k1;
    const b = <f32>k3;
    const d = <f32>k4;
    const av = f32x4.splat(a);
    const bv = f32x4.splat(b);
    const dv = f32x4.splat(d);
    const mv = f32x4.splat(m);
    for (let n = 0; n < batch; n++) {
      const xs = rowAddress(x, n, channels, c, pixels);
      const gs = rowAddress(gradOut, n, channels, c, pixels);
      const out = rowAddress(gradIn, n, channels, c, pixels);
      let p = 0;
      for (; p + 4 <= pixels; p += 4) {
        const o = <usize>p << 2;
        const centred = f32x4.sub(v128.load(xs + o), mv);
        let v = f32x4.sub(f32x4.sub(f32x4.mul(av, v128.load(gs + o)), f32x4.mul(bv, centred)), dv);
        if (accumulate != 0) v = f32x4.add(v, v128.load(out + o));
        v128.store(out + o, v);
      }
      for (; p < pixels; p++) {
        const o = <usize>p << 2;
        let v = a * load<f32>(gs + o) - b * (load<f32>(xs + o) - m) - d;
        if (accumulate != 0) v += load<f32>(out + o);
        store<f32>(out + o, v);
      }
    }
  }
}
