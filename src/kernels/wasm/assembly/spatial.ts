// 3×3 window kernels over NCHW planes (WASM SIMD128): depthwise convolution at stride 1 and 2,
// max and average pooling 3×3/2, the im2col of the 3×3/2 stem, and global average pooling.
//
// Every 3×3 kernel here has padding 1 on each side. Each input plane is first copied into a
// scratch plane with a one-pixel border of the pad value (0, or −∞ for max pooling), so the
// inner loops have no bounds checks: a row of 4 outputs is 3 vector loads per kernel row at
// stride 1, and at stride 2 three loads plus three shuffles that split even and odd columns.
//
// NOTE: the last vector of a row may read up to 12 floats past the row's end and compute garbage
// in lanes that are never stored; `scratch` needs paddedPlaneFloats(h, w) floats.

import {
  activate,
  at,
  fillFloats,
  loadLanes,
  madd,
  outputSize,
  padPlane,
  padPlaneBy,
  paddedPlaneFloats,
  paddedWidth,
  storeLanes,
} from './common';

/**
 * dwconv-3x3p1-wasmsimd at stride 1 or 2: one 3×3 filter per channel, weights [C][9], bias [C],
 * input planes contiguous from `input`, output planes contiguous from `output`.
 */
export function dwconv3x3(
  channels: i32,
  h: i32,
  w: i32,
  stride: i32,
  input: usize,
  weights: usize,
  bias: usize,
  output: usize,
  act: i32,
  scratch: usize,
): void {
  const oh = outputSize(h, stride);
  const ow = outputSize(w, stride);
  const rowBytes = <usize>paddedWidth(w) << 2;
  for (let c = 0; c < channels; c++) {
    padPlane(input + (<usize>(c * h * w) << 2), h, w, scratch, 0);
    const wc = weights + (<usize>(c * 9) << 2);
    const w00 = v128.load32_splat(wc), w01 = v128.load32_splat(wc, 4), w02 = v128.load32_splat(wc, 8);
    const w10 = v128.load32_splat(wc, 12), w11 = v128.load32_splat(wc, 16), w12 = v128.load32_splat(wc, 20);
    const w20 = v128.load32_splat(wc, 24), w21 = v128.load32_splat(wc, 28), w22 = v128.load32_splat(wc, 32);
    const b = v128.load32_splat(bias + (<usize>c << 2));
    const out = output + (<usize>(c * oh * ow) << 2);
    if (stride == 1) {
      // Two output rows at a time share two of their four input rows: 12 loads for 18 multiply-adds.
      let oy = 0;
      for (; oy + 2 <= oh; oy += 2) {
        const r0 = scratch + <usize>oy * rowBytes;
        const r1 = r0 + rowBytes;
        const r2 = r1 + rowBytes;
        const r3 = r2 + rowBytes;
        const o0 = out + (<usize>(oy * ow) << 2);
        const o1 = o0 + (<usize>ow << 2);
        for (let ox = 0; ox < ow; ox += 4) {
          const at = <usize>ox << 2;
          let v0 = v128.load(r1 + at);
          let v1 = v128.load(r1 + at, 4);
          let v2 = v128.load(r1 + at, 8);
          let acc0 = madd(w10, v0, madd(w11, v1, madd(w12, v2, b)));
          let acc1 = madd(w00, v0, madd(w01, v1, madd(w02, v2, b)));
          v0 = v128.load(r2 + at);
          v1 = v128.load(r2 + at, 4);
          v2 = v128.load(r2 + at, 8);
          acc0 = madd(w20, v0, madd(w21, v1, madd(w22, v2, acc0)));
          acc1 = madd(w10, v0, madd(w11, v1, madd(w12, v2, acc1)));
          acc0 = madd(w00, v128.load(r0 + at), madd(w01, v128.load(r0 + at, 4), madd(w02, v128.load(r0 + at, 8), acc0)));
          acc1 = madd(w20, v128.load(r3 + at), madd(w21, v128.load(r3 + at, 4), madd(w22, v128.load(r3 + at, 8), acc1)));
          if (act != 0) {
            acc0 = activate(acc0, act);
            acc1 = activate(acc1, act);
          }
          storeLanes(o0 + at, acc0, ow - ox, 0);
          storeLanes(o1 + at, acc1, ow - ox, 0);
        }
      }
      if (oy < oh) {
        const r0 = scratch + <usize>oy * rowBytes;
        const r1 = r0 + rowBytes;
        const r2 = r1 + rowBytes;
        const o = out + (<usize>(oy * ow) << 2);
        for (let ox = 0; ox < ow; ox += 4) {
          const at = <usize>ox << 2;
          let acc = madd(w00, v128.load(r0 + at), madd(w01, v128.load(r0 + at, 4), madd(w02, v128.load(r0 + at, 8), b)));
          acc = madd(w10, v128.load(r1 + at), madd(w11, v128.load(r1 + at, 4), madd(w12, v128.load(r1 + at, 8), acc)));
          acc = madd(w20, v128.load(r2 + at), madd(w21, v128.load(r2 + at, 4), madd(w22, v128.load(r2 + at, 8), acc)));
          if (act != 0) acc = activate(acc, act);
          storeLanes(o + at, acc, ow - ox, 0);
        }
      }
    } else {
      for (let oy = 0; oy < oh; oy++) {
        const r0 = scratch + <usize>(oy * 2) * rowBytes;
        const r1 = r0 + rowBytes;
        const r2 = r1 + rowBytes;
        const o = out + (<usize>(oy * ow) << 2);
        for (let ox = 0; ox < ow; ox += 4) {
          const at = <usize>ox << 3;
          let acc = taps3(r0 + at, w00, w01, w02, b);
          acc = taps3(r1 + at, w10, w11, w12, acc);
          acc = taps3(r2 + at, w20, w21, w22, acc);
          if (act != 0) acc = activate(acc, act);
          storeLanes(o + (<usize>ox << 2), acc, ow - ox, 0);
        }
      }
    }
  }
}

/**
 * Depthwise k×k convolution (multiplier 1) at stride 1 or 2 with `pad` zeros on every side: the 5×5
 * of MnasNet, EfficientNet and MobileNet V3 (3×3 has its own kernel above). Weights [C][k·k], bias
 * [C]; each channel's plane is padded into `scratch` (paddedPlaneFloatsBy floats), then 4 output
 * columns at a time take their k·k taps (at stride 2 the even lanes of two vectors).
 */
export function dwconvKxK(
  channels: i32,
  h: i32,
  w: i32,
  k: i32,
  stride: i32,
  pad: i32,
  input: usize,
  weights: usize,
  bias: usize,
  output: usize,
  act: i32,
  scratch: usize,
): void {
  const oh = (h + 2 * pad - k) / stride + 1;
  const ow = (w + 2 * pad - k) / stride + 1;
  const pw = w + 2 * pad;
  for (let c = 0; c < channels; c++) {
    padPlaneBy(at(input, c * h * w), h, w, scratch, pad);
    const wc = at(weights, c * k * k);
    const b = v128.load32_splat(at(bias, c));
    const out = at(output, c * oh * ow);
    for (let oy = 0; oy < oh; oy++) {
      const o = at(out, oy * ow);
      for (let ox = 0; ox < ow; ox += 4) {
        let acc = b;
        for (let ky = 0; ky < k; ky++) {
          const row = at(scratch, (oy * stride + ky) * pw + ox * stride);
          const wr = at(wc, ky * k);
          for (let kx = 0; kx < k; kx++) {
            const p = at(row, kx);
            const v = stride == 1 ? v128.load(p) : v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
            acc = madd(v128.load32_splat(at(wr, kx)), v, acc);
          }
        }
        if (act != 0) acc = activate(acc, act);
        storeLanes(at(o, ox), acc, ow - ox, 0);
      }
    }
  }
}

/** Floats of scratch `maxPoolKxK` needs: the padded plane its windows cover, rows 8 floats longer. */
export function poolPlaneFloats(oh: i32, ow: i32, kh: i32, kw: i32, stride: i32): i32 {
  return ((oh - 1) * stride + kh) * ((ow - 1) * stride + kw + 8) + 16;
}

/**
 * Max pool kh×kw at stride 1 or 2 with any padding (ceil_mode's extra bottom/right padding, GoogLeNet's
 * 3×3/1): each plane is copied into scratch with −∞ around it, then 4 output columns at a time take
 * the maximum of their window (at stride 2 the even lanes of two vectors). NaN propagates, as in the
 * reference (the NaN lanes are OR-ed back in).
 */
export function maxPoolKxK(
  channels: i32,
  h: i32,
  w: i32,
  kh: i32,
  kw: i32,
  stride: i32,
  padTop: i32,
  padLeft: i32,
  oh: i32,
  ow: i32,
  input: usize,
  output: usize,
  act: i32,
  scratch: usize,
): void {
  const ph = (oh - 1) * stride + kh;
  const pw = (ow - 1) * stride + kw + 8;
  for (let c = 0; c < channels; c++) {
    fillFloats(scratch, ph * pw + 16, -Infinity);
    const plane = at(input, c * h * w);
    for (let y = 0; y < h; y++) {
      const py = y + padTop;
      if (py < 0 || py >= ph) continue;
      const x0 = padLeft < 0 ? -padLeft : 0;
      const count = min(w - x0, pw - 8 - (x0 + padLeft));
      const row = at(scratch, py * pw + x0 + padLeft);
      const from = at(plane, y * w + x0);
      for (let x = 0; x < count; x += 4) storeLanes(at(row, x), loadLanes(at(from, x), min(4, count - x)), min(4, count - x), 0);
    }
    const out = at(output, c * oh * ow);
    for (let oy = 0; oy < oh; oy++) {
      const o = at(out, oy * ow);
      for (let ox = 0; ox < ow; ox += 4) {
        let best = f32x4.splat(-Infinity);
        let nan = f32x4.splat(0);
        for (let ky = 0; ky < kh; ky++) {
          const row = at(scratch, (oy * stride + ky) * pw + ox * stride);
          for (let kx = 0; kx < kw; kx++) {
            const p = at(row, kx);
            const v = stride == 1 ? v128.load(p) : v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
            nan = v128.or(nan, f32x4.ne(v, v));
            best = f32x4.pmax(best, v);
          }
        }
        let v = v128.or(best, nan);
        if (act != 0) v = activate(v, act);
        storeLanes(at(o, ox), v, ow - ox, 0);
      }
    }
  }
}

/** acc + Σ_kx w_kx · row[2·i + kx] for i = 0..3: even columns, odd columns, even columns shifted by one. */
@inline
function taps3(row: usize, wa: v128, wb: v128, wc: v128, acc: v128): v128 {
  const v0 = v128.load(row);
  const v1 = v128.load(row, 16);
  const v2 = v128.load(row, 32);
  const even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
  const odd = v128.shuffle<f32>(v0, v1, 1, 3, 5, 7);
  const next = v128.shuffle<f32>(even, v2, 1, 2, 3, 4);
  return madd(wc, next, madd(wb, odd, madd(wa, even, acc)));
}

/**
 * Max of row[2·i + kx], kx = 0..2, for i = 0..3, with every lane that saw a NaN set to all ones
 * (a NaN). NOTE: `f32x4.max` propagates NaN but V8 lowers it to ~8 instructions; `pmax` is one,
 * and a NaN mask (x ≠ x) restores the propagation for less than half the cost.
 */
@inline
function max3(row: usize): v128 {
  const v0 = v128.load(row);
  const v1 = v128.load(row, 16);
  const v2 = v128.load(row, 32);
  const even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
  const odd = v128.shuffle<f32>(v0, v1, 1, 3, 5, 7);
  const next = v128.shuffle<f32>(even, v2, 1, 2, 3, 4);
  const nan = v128.or(v128.or(f32x4.ne(even, even), f32x4.ne(odd, odd)), f32x4.ne(next, next));
  return v128.or(f32x4.pmax(f32x4.pmax(even, odd), next), nan);
}

/** Sum of row[2·i + kx], kx = 0..2, for i = 0..3. */
@inline
function sum3(row: usize): v128 {
  const v0 = v128.load(row);
  const v1 = v128.load(row, 16);
  const v2 = v128.load(row, 32);
  const even = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6);
  const odd = v128.shuffle<f32>(v0, v1, 1, 3, 5, 7);
  const next = v128.shuffle<f32>(even, v2, 1, 2, 3, 4);
  return f32x4.add(f32x4.add(even, odd), next);
}

/**
 * maxpool-3x3s2-wasmsimd (padding never wins; NaN propagates) or, with `average` set,
 * avgpool-3x3s2-wasmsimd with count_include_pad, at padding `pad` = 1 (ShuffleNet's shortcut and
 * max pool) or 0 (AlexNet): with floor rounding every window lies inside the padded input, so the
 * divisor is always 9. An activation (`act`) optional.
 */
export function pool3x3s2(
  channels: i32,
  h: i32,
  w: i32,
  pad: i32,
  average: i32,
  input: usize,
  output: usize,
  act: i32,
  scratch: usize,
): void {
  // Padding 0 reads the padded plane from (1, 1): the border is never inside a window.
  const oh = (h + 2 * pad - 3) / 2 + 1;
  const ow = (w + 2 * pad - 3) / 2 + 1;
  const rowBytes = <usize>paddedWidth(w) << 2;
  const skip = <usize>(1 - pad);
  const ninth = f32x4.splat(<f32>1 / <f32>9);
  for (let c = 0; c < channels; c++) {
    padPlane(input + (<usize>(c * h * w) << 2), h, w, scratch, average != 0 ? 0 : -Infinity);
    const out = output + (<usize>(c * oh * ow) << 2);
    for (let oy = 0; oy < oh; oy++) {
      const r0 = scratch + (<usize>(oy * 2) + skip) * rowBytes + (skip << 2);
      const o = out + (<usize>(oy * ow) << 2);
      for (let ox = 0; ox < ow; ox += 4) {
        const at = r0 + (<usize>ox << 3);
        let v: v128;
        if (average != 0) {
          v = f32x4.mul(f32x4.add(f32x4.add(sum3(at), sum3(at + rowBytes)), sum3(at + 2 * rowBytes)), ninth);
        } else {
          // All-ones lanes (NaN) stay all ones: pmax returns its first operand when the comparison
          // with NaN fails, and the mask is OR-ed in again.
          const m0 = max3(at);
          const m1 = max3(at + rowBytes);
          const m2 = max3(at + 2 * rowBytes);
          const nan = v128.or(v128.or(f32x4.ne(m0, m0), f32x4.ne(m1, m1)), f32x4.ne(m2, m2));
          v = v128.or(f32x4.pmax(f32x4.pmax(m0, m1), m2), nan);
        }
        if (act != 0) v = activate(v, act);
        storeLanes(o + (<usize>ox << 2), v, ow - ox, 0);
      }
    }
  }
}

/**
 * Copies `channels` planes of h×w into `padded` with a border of 0, each plane taking
 * paddedPlaneFloats(h, w) floats: the input of im2col3x3s2.
 */
export function padPlanes(channels: i32, h: i32, w: i32, input: usize, padded: usize): void {
  const planeBytes = <usize>paddedPlaneFloats(h, w) << 2;
  for (let c = 0; c < channels; c++) padPlane(input + (<usize>(c * h * w) << 2), h, w, padded + <usize>c * planeBytes, 0);
}

/**
 * im2col of a 3×3 convolution at stride 2, padding 1, for output rows oy0 ≤ oy < oy1:
 * col[(c·9 + ky·3 + kx), (oy − oy0)·OW + ox] = padded[c, 2·oy + ky, 2·ox + kx], from planes padded
 * by padPlanes. With gemm4x8 on top this is the stem conv; a band of a few rows keeps the patch
 * matrix in cache while the GEMM passes over it once per block of 4 output channels.
 * `col` needs C·9·(oy1 − oy0)·OW + 4 floats.
 */
export function im2col3x3s2(channels: i32, h: i32, w: i32, padded: usize, oy0: i32, oy1: i32, col: usize): void {
  const ow = outputSize(w, 2);
  const rowBytes = <usize>paddedWidth(w) << 2;
  const planeBytes = <usize>paddedPlaneFloats(h, w) << 2;
  let dst = col;
  for (let c = 0; c < channels; c++) {
    const plane = padded + <usize>c * planeBytes;
    for (let ky = 0; ky < 3; ky++) {
      for (let kx = 0; kx < 3; kx++) {
        for (let oy = oy0; oy < oy1; oy++) {
          const row = plane + <usize>(oy * 2 + ky) * rowBytes + (<usize>kx << 2);
          // Full-vector stores in increasing address order: a row's overhang is overwritten by
          // the next row, and the last one lands in the 4 floats of slack.
          for (let ox = 0; ox < ow; ox += 4) {
            const at = row + (<usize>ox << 3);
            v128.store(dst + (<usize>ox << 2), v128.shuffle<f32>(v128.load(at), v128.load(at, 16), 0, 2, 4, 6));
          }
          dst += <usize>ow << 2;
        }
      }
    }
  }
}

/** Global average pooling: out[c] = mean of plane c (planes of `spatial` floats). */
export function globalAvgPool(channels: i32, spatial: i32, input: usize, output: usize): void {
  const scale = <f32>1 / <f32>spatial;
  for (let c = 0; c < channels; c++) {
    const plane = input + (<usize>(c * spatial) << 2);
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    let i = 0;
    for (; i + 8 <= spatial; i += 8) {
      acc0 = f32x4.add(acc0, v128.load(plane + (<usize>i << 2)));
      acc1 = f32x4.add(acc1, v128.load(plane + (<usize>i << 2), 16));
    }
    const acc = f32x4.add(acc0, acc1);
    let sum =
      f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    for (; i < spatial; i++) sum += load<f32>(plane + (<usize>i << 2));
    store<f32>(output + (<usize>c << 2), sum * scale);
  }
}

/**
 * im2col of any 2-D convolution group (kernel, stride, padding, dilation), for output rows
 * oy0 ≤ oy < oy1: col[(c·kh + ky)·kw + kx, (oy − oy0)·OW + ox] = input[c, iy, ix] with
 * iy = oy·sh − padTop + ky·dh, ix = ox·sw − padLeft + kx·dw, or 0 outside the input. Scalar: it
 * serves the convolutions no specialised kernel covers (AlexNet's 11×11/4, 5×5), where the GEMM
 * on top does K = C·kh·kw multiply-adds per element written.
 */
export function im2col(
  channels: i32,
  h: i32,
  w: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  padTop: i32,
  padLeft: i32,
  dh: i32,
  dw: i32,
  ow: i32,
  oy0: i32,
  oy1: i32,
  input: usize,
  col: usize,
): void {
  let dst = col;
  for (let c = 0; c < channels; c++) {
    const plane = input + (<usize>(c * h * w) << 2);
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        // Output columns whose input column is inside the image: [x0, x1).
        const shift = kx * dw - padLeft;
        let x0 = 0;
        while (x0 < ow && x0 * sw + shift < 0) x0++;
        let x1 = ow;
        while (x1 > x0 && (x1 - 1) * sw + shift >= w) x1--;
        for (let oy = oy0; oy < oy1; oy++) {
          const iy = oy * sh - padTop + ky * dh;
          if (iy < 0 || iy >= h) {
            memory.fill(dst, 0, <usize>ow << 2);
          } else {
            const row = plane + (<usize>(iy * w) << 2);
            for (let ox = 0; ox < x0; ox++) store<f32>(dst + (<usize>ox << 2), 0);
            for (let ox = x0; ox < x1; ox++) {
              store<f32>(dst + (<usize>ox << 2), load<f32>(row + (<usize>(ox * sw + shift) << 2)));
            }
            for (let ox = x1; ox < ow; ox++) store<f32>(dst + (<usize>ox << 2), 0);
          }
          dst += <usize>ow << 2;
        }
      }
    }
  }
}

/**
 * Copies `planes` planes of `pixels` floats, plane j from src + j·pixels to the address at
 * table[j] (a concat's part that its producer could not write in place, maybe interleaved by a
 * shuffle). Writes exactly each plane: neighbours may be written by other threads meanwhile.
 */
export function copyPlanes(planes: i32, pixels: i32, src: usize, table: usize): void {
  const bytes = <usize>pixels << 2;
  const vectorBytes = <usize>(pixels & ~3) << 2;
  for (let j = 0; j < planes; j++) {
    const from = src + <usize>j * bytes;
    const to = <usize>load<u32>(table + (<usize>j << 2));
    let i: usize = 0;
    for (; i < vectorBytes; i += 16) v128.store(to + i, v128.load(from + i));
    for (; i < bytes; i += 4) store<f32>(to + i, load<f32>(from + i));
  }
}

/** y = activation `act` of x, over `count` floats (x = y allowed). */
export function activation(count: i32, x: usize, y: usize, act: i32): void {
  const whole = count & ~3;
  let i = 0;
  for (; i < whole; i += 4) v128.store(at(y, i), activate(v128.load(at(x, i)), act));
  if (i < count) storeLanes(at(y, i), activate(loadLanes(at(x, i), count - i), act), count - i, 0);
}

/** y = activation `act` of a + b, over `count` floats (a residual add no convolution could take). */
export function addActivation(count: i32, a: usize, b: usize, y: usize, act: i32): void {
  const whole = count & ~3;
  let i = 0;
  for (; i < whole; i += 4) {
    const v = f32x4.add(v128.load(at(a, i)), v128.load(at(b, i)));
    v128.store(at(y, i), act != 0 ? activate(v, act) : v);
  }
  if (i < count) {
    const v = f32x4.add(loadLanes(at(a, i), count - i), loadLanes(at(b, i), count - i));
    storeLanes(at(y, i), act != 0 ? activate(v, act) : v, count - i, 0);
  }
}

/** y[c, p] = x[c, p] · scale[c] over `channels` planes of `pixels` (squeeze-and-excitation's rescale). */
export function scaleChannels(channels: i32, pixels: i32, x: usize, scale: usize, y: usize): void {
  const whole = pixels & ~3;
  for (let c = 0; c < channels; c++) {
    const s = v128.load32_splat(at(scale, c));
    const from = at(x, c * pixels);
    const to = at(y, c * pixels);
    let i = 0;
    for (; i < whole; i += 4) v128.store(at(to, i), f32x4.mul(v128.load(at(from, i)), s));
    if (i < pixels) storeLanes(at(to, i), f32x4.mul(loadLanes(at(from, i), pixels - i), s), pixels - i, 0);
  }
}
