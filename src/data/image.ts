/**
 * From decoded pixels to the input tensor a model expects: channel conversion, resizing the short
 * side, a centre crop, scaling and normalisation, following the preprocessing stored with the
 * weights. Resizing is PIL's bilinear filter (a triangle filter widened when shrinking, i.e.
 * antialiased), which is what torchvision's `Resize` applies to PIL images; crops follow
 * torchvision's `CenterCrop` rounding. Browser-safe: decoding happens elsewhere (sharp in Node, a
 * canvas in browsers).
 */
import { ShapeError, ShuffleNetError } from '../errors.js';
import type { Preprocessing } from './preprocessing.js';
import { Tensor } from '../tensor/tensor.js';

/** Decoded pixels, interleaved HWC: 1 = gray, 2 = gray + alpha, 3 = RGB, 4 = RGBA. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
}

/** An image whose size is refused (too large, too thin); the message names the file and the limit. */
export class ImageSizeError extends ShuffleNetError {
  override name = 'ImageSizeError';
}

/**
 * What an image may be, checked from its header before decoding and again on the resize plan, in
 * Node and in the browser alike (docs/input-safety.md).
 */
export const imageLimits = {
  /** Most pixels on either side. */
  maxSide: 16_384,
  /** Most pixels in all (8192 × 8192): a decompression bomb is refused before it is decoded. */
  maxPixels: 8192 * 8192,
  /** Longest side over shortest side: beyond it, resizing the short side makes the long one huge. */
  maxAspect: 32,
  /** Most pixels of the image once its short side is resized for the model. */
  maxResizedPixels: 2 ** 24,
};

/** How an image of `width`×`height` goes through a preprocessing's resize, decided before decoding. */
export interface ImagePlan {
  /** Size to decode to: the image's own, or smaller when it is more than twice what the resize needs. */
  decodeWidth: number;
  decodeHeight: number;
  /** Size after the short side is resized. */
  resizedWidth: number;
  resizedHeight: number;
}

/** torchvision's Resize(int): the short side becomes `size`, the long side keeps the aspect ratio. */
function shortSideTo(width: number, height: number, size: number): [number, number] {
  return width <= height ? [size, Math.trunc((size * height) / width)] : [Math.trunc((size * width) / height), size];
}

/**
 * Checks an image's size against `imageLimits` (and a lower `pixelLimit`, whose `note` the refusal
 * quotes) and plans its decoding for a short side of `resize` (`resize` undefined: only the limits). Decoding may shrink to twice the resize, which is where an
 * antialiased bilinear resize still sees every source pixel's neighbourhood; the final resize is
 * always ours. `source` names the image in errors.
 */
export function planImage(
  width: number,
  height: number,
  resize: number | undefined,
  source: string,
  pixelLimit: { pixels: number; note?: string } = { pixels: imageLimits.maxPixels },
): ImagePlan {
  const limits = imageLimits;
  const refuse = (why: string): never => {
    throw new ImageSizeError(`${source}: ${width}×${height} ${why}`);
  };
  if (!(Number.isSafeInteger(width) && Number.isSafeInteger(height) && width >= 1 && height >= 1))
    refuse('has no pixels');
  if (width > limits.maxSide || height > limits.maxSide)
    refuse(`has a side over the limit of ${limits.maxSide.toLocaleString('en-US')} pixels`);
  const maxPixels = Math.min(pixelLimit.pixels, limits.maxPixels);
  if (width * height > maxPixels) {
    refuse(
      `is ${(width * height).toLocaleString('en-US')} pixels, over the limit of ` +
        `${maxPixels.toLocaleString('en-US')}${pixelLimit.note ?? ''} (a decompression bomb, or simply too large)`,
    );
  }
  const aspect = Math.max(width, height) / Math.min(width, height);
  if (aspect > limits.maxAspect)
    refuse(`has an aspect ratio of ${Math.round(aspect)}:1, over the limit of ${limits.maxAspect}:1`);
  if (resize === undefined)
    return { decodeWidth: width, decodeHeight: height, resizedWidth: width, resizedHeight: height };
  const [resizedWidth, resizedHeight] = shortSideTo(width, height, resize);
  if (resizedWidth * resizedHeight > limits.maxResizedPixels) {
    refuse(
      `resized to a short side of ${resize} would be ${resizedWidth}×${resizedHeight}, over the limit of ` +
        `${limits.maxResizedPixels.toLocaleString('en-US')} pixels`,
    );
  }
  const [decodeWidth, decodeHeight] =
    Math.min(width, height) > 2 * resize ? shortSideTo(width, height, 2 * resize) : [width, height];
  return { decodeWidth, decodeHeight, resizedWidth, resizedHeight };
}

/** A float image, planar CHW, values 0–255 until `toInput` scales them. */
export interface PlanarImage {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

/** Refuses pixels that do not make the image they claim to be. */
function checkRawImage({ width, height, channels, data }: RawImage): void {
  if (![1, 2, 3, 4].includes(channels) || data.length !== width * height * channels) {
    throw new ShapeError(`image: ${data.length} bytes do not make ${width}×${height} pixels of ${channels} channels`);
  }
}

/**
 * Converts to the model's channels. Alpha is composited over black (a transparent canvas becomes
 * the black background that MNIST-style data has). Gray from colour is ITU-R 601 luma, as PIL's
 * `convert('L')`.
 */
export function toChannels(image: RawImage, target: Preprocessing['channels']): PlanarImage {
  checkRawImage(image);
  const { width, height, channels, data } = image;
  const plane = width * height;
  const outChannels = target === 'gray' ? 1 : 3;
  const out = new Float32Array(outChannels * plane);
  for (let i = 0; i < plane; i++) {
    const p = i * channels;
    const alpha = channels === 2 || channels === 4 ? data[p + channels - 1]! / 255 : 1;
    const r = data[p]! * alpha;
    const g = (channels >= 3 ? data[p + 1]! : data[p]!) * alpha;
    const b = (channels >= 3 ? data[p + 2]! : data[p]!) * alpha;
    if (target === 'gray') out[i] = channels >= 3 ? 0.299 * r + 0.587 * g + 0.114 * b : r;
    else if (target === 'RGB') [out[i], out[plane + i], out[2 * plane + i]] = [r, g, b];
    else [out[i], out[plane + i], out[2 * plane + i]] = [b, g, r];
  }
  return { width, height, channels: outChannels, data: out };
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  stride: number;
}

/** PIL's bilinear resampling taps along one axis. */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle filter has support 1
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let x = 0; x < outSize; x++) {
    const center = (x + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let total = 0;
    for (let k = 0; k < hi - lo; k++) {
      const w = Math.max(0, 1 - Math.abs((lo + k - center + 0.5) / filterScale));
      weights[x * stride + k] = w;
      total += w;
    }
    for (let k = 0; k < hi - lo; k++) weights[x * stride + k]! /= total || 1;
    start[x] = lo;
    count[x] = hi - lo;
  }
  return { start, count, weights, stride };
}

/** Bilinear (antialiased) resize of a planar image. */
export function resize(image: PlanarImage, width: number, height: number): PlanarImage {
  checkTarget(width, height);
  const tmp = new Float32Array(image.channels * image.height * width); // [C, H, width]
  resizeRows(image, bilinearTaps(image.width, width), width, tmp, 0, image.height);
  return resizeColumns(tmp, image.channels, image.height, width, height);
}

function checkTarget(width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new ShapeError(`resize: target size ${width}×${height} must be positive integers`);
  }
}

/**
 * The horizontal pass over the rows of `band`, which are rows `top`… of an image `totalHeight`
 * high: into `tmp` [C, totalHeight, width].
 */
function resizeRows(
  band: PlanarImage,
  h: Taps,
  width: number,
  tmp: Float32Array,
  top: number,
  totalHeight: number,
): void {
  for (let c = 0; c < band.channels; c++) {
    const src = band.data.subarray(c * band.width * band.height);
    const dst = tmp.subarray((c * totalHeight + top) * width);
    for (let y = 0; y < band.height; y++) {
      for (let x = 0; x < width; x++) {
        let sum = 0;
        for (let k = 0; k < h.count[x]!; k++)
          sum += src[y * band.width + h.start[x]! + k]! * h.weights[x * h.stride + k]!;
        dst[y * width + x] = sum;
      }
    }
  }
}

/** The vertical pass: `tmp` [C, inHeight, width] to an image `width`×`height`. */
function resizeColumns(
  tmp: Float32Array,
  channels: number,
  inHeight: number,
  width: number,
  height: number,
): PlanarImage {
  const v = bilinearTaps(inHeight, height);
  const out = new Float32Array(channels * width * height);
  for (let c = 0; c < channels; c++) {
    const src = tmp.subarray(c * inHeight * width);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let sum = 0;
        for (let k = 0; k < v.count[y]!; k++) sum += src[(v.start[y]! + k) * width + x]! * v.weights[y * v.stride + k]!;
        out[c * width * height + y * width + x] = sum;
      }
    }
  }
  return { width, height, channels, data: out };
}

/** Resizes so that the short side is `size`, keeping the aspect ratio (torchvision's Resize(int)). */
export function resizeShortSide(image: PlanarImage, size: number): PlanarImage {
  const { width, height } = image;
  if (Math.min(width, height) === size) return image;
  return resize(image, ...shortSideTo(width, height, size));
}

/** Source bytes converted to floats at a time when a raw image is resized: bounds the memory. */
const bandBytes = 1 << 20;

/**
 * `toChannels` then `resizeShortSide`, in bounded memory: the raw image is converted a band of rows
 * at a time and each band resized horizontally at once, so a large image never exists as a
 * full-size float image. The same arithmetic in the same order: the same floats.
 */
export function rawToShortSide(image: RawImage, target: Preprocessing['channels'], size: number): PlanarImage {
  checkRawImage(image); // before it is cut into bands
  const { width, height, channels } = image;
  if (Math.min(width, height) === size) return toChannels(image, target);
  const [outWidth, outHeight] = shortSideTo(width, height, size);
  checkTarget(outWidth, outHeight);
  const outChannels = target === 'gray' ? 1 : 3;
  const taps = bilinearTaps(width, outWidth);
  const tmp = new Float32Array(outChannels * height * outWidth); // [C, height, outWidth]
  const rows = Math.max(1, Math.floor(bandBytes / (width * channels)));
  for (let top = 0; top < height; top += rows) {
    const bottom = Math.min(height, top + rows);
    const band = {
      ...image,
      height: bottom - top,
      data: image.data.subarray(top * width * channels, bottom * width * channels),
    };
    resizeRows(toChannels(band, target), taps, outWidth, tmp, top, height);
  }
  return resizeColumns(tmp, outChannels, height, outWidth, outHeight);
}

/** Crops `width`×`height` at (left, top). */
export function crop(image: PlanarImage, left: number, top: number, width: number, height: number): PlanarImage {
  if (left < 0 || top < 0 || left + width > image.width || top + height > image.height) {
    throw new ShapeError(
      `crop: ${width}×${height} at (${left}, ${top}) does not fit in ${image.width}×${image.height}`,
    );
  }
  const out = new Float32Array(image.channels * width * height);
  for (let c = 0; c < image.channels; c++) {
    for (let y = 0; y < height; y++) {
      const from = c * image.width * image.height + (top + y) * image.width + left;
      out.set(image.data.subarray(from, from + width), c * width * height + y * width);
    }
  }
  return { width, height, channels: image.channels, data: out };
}

/** torchvision's CenterCrop: the offset is rounded half to even, as Python's round does. */
export function centerCrop(image: PlanarImage, size: number): PlanarImage {
  const roundHalfEven = (v: number): number => {
    const r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  return crop(image, roundHalfEven((image.width - size) / 2), roundHalfEven((image.height - size) / 2), size, size);
}

/** Scales by the divisor and normalises per channel: the model's input, [1, C, H, W]. */
export function toInput(image: PlanarImage, p: Preprocessing): Tensor {
  const plane = image.width * image.height;
  const out = new Tensor([1, image.channels, image.height, image.width]);
  for (let c = 0; c < image.channels; c++) {
    const mean = p.mean[c] ?? 0;
    const std = p.std[c] ?? 1;
    for (let i = c * plane; i < (c + 1) * plane; i++) out.data[i] = (image.data[i]! / p.divisor - mean) / std;
  }
  return out;
}

/**
 * The whole pipeline a preset describes: channels, resize short side, centre crop, normalise. The
 * image's size is checked first (`planImage`); `source` names it in errors.
 */
export function preprocessImage(image: RawImage, p: Preprocessing, source = 'image'): Tensor {
  planImage(image.width, image.height, p.resize, source);
  return toInput(centerCrop(rawToShortSide(image, p.channels, p.resize), p.crop), p);
}
