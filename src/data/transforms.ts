/**
 * Training-time augmentation and the conversion to float, as composable `ImageTransform`s over the
 * 8-bit CHW pixels a dataset holds. Every random choice draws from the `Random` the batcher passes,
 * so augmentation is reproducible from the seed.
 */
import { ShapeError } from '../errors.js';
import type { Random } from '../tensor/random.js';
import type { ImageTransform } from './batches.js';
import { crop, resize, type PlanarImage } from './image.js';

export interface AugmentOptions {
  /** Output side; default: the dataset's. */
  size?: number;
  /**
   * torchvision's RandomResizedCrop: a crop of `scale` of the area and `ratio` aspect, resized to
   * `size`. The paper's recipe for ImageNet; too strong for 28×28 images.
   */
  randomResizedCrop?: { scale: readonly [number, number]; ratio: readonly [number, number] };
  /** Pad by this many zero pixels, then crop back at a random offset (the usual CIFAR/MNIST recipe). */
  padCrop?: number;
  /** Mirror left–right with probability 0.5. */
  flip?: boolean;
  /** Per-channel normalisation after scaling to [0, 1]. */
  mean?: readonly number[];
  std?: readonly number[];
}

function planar(pixels: Uint8Array, [c, h, w]: readonly [number, number, number]): PlanarImage {
  return { channels: c, height: h, width: w, data: Float32Array.from(pixels) };
}

/** Where torchvision's RandomResizedCrop would cut: tries 10 times, then falls back to a centre crop. */
export function randomResizedCropBox(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Random,
): { left: number; top: number; width: number; height: number } {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + rng.next() * (scale[1] - scale[0]));
    const aspect = Math.exp(logRatio[0] + rng.next() * (logRatio[1] - logRatio[0]));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return { left: rng.int(width - w + 1), top: rng.int(height - h + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

function flipped(image: PlanarImage): PlanarImage {
  const out = new Float32Array(image.data.length);
  for (let row = 0; row < image.channels * image.height; row++) {
    const base = row * image.width;
    for (let x = 0; x < image.width; x++) out[base + x] = image.data[base + image.width - 1 - x]!;
  }
  return { ...image, data: out };
}

function padCropped(image: PlanarImage, pad: number, rng: Random): PlanarImage {
  const { channels, width, height } = image;
  const dx = rng.int(2 * pad + 1) - pad;
  const dy = rng.int(2 * pad + 1) - pad;
  const out = new Float32Array(image.data.length);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= height) continue;
      for (let x = 0; x < width; x++) {
        const sx = x + dx;
        if (sx >= 0 && sx < width) out[(c * height + y) * width + x] = image.data[(c * height + sy) * width + sx]!;
      }
    }
  }
  return { ...image, data: out };
}

/** Builds the training transform: augment, then scale to [0, 1] and normalise. */
export function augment(o: AugmentOptions): ImageTransform {
  if (o.padCrop !== undefined && !(Number.isInteger(o.padCrop) && o.padCrop >= 0)) {
    throw new ShapeError(`augment: padCrop must be a non-negative integer but is ${o.padCrop}`);
  }
  return (pixels, shape, rng) => {
    let image = planar(pixels, shape);
    const size = o.size ?? shape[1];
    if (o.randomResizedCrop) {
      const box = randomResizedCropBox(
        image.width,
        image.height,
        o.randomResizedCrop.scale,
        o.randomResizedCrop.ratio,
        rng,
      );
      image = resize(crop(image, box.left, box.top, box.width, box.height), size, size);
    } else if (size !== image.height || size !== image.width) {
      image = resize(image, size, size);
    }
    if (o.padCrop) image = padCropped(image, o.padCrop, rng);
    if (o.flip && rng.next() < 0.5) image = flipped(image);
    const plane = image.width * image.height;
    for (let c = 0; c < image.channels; c++) {
      const mean = o.mean?.[c] ?? 0;
      const std = o.std?.[c] ?? 1;
      for (let i = c * plane; i < (c + 1) * plane; i++) image.data[i] = (image.data[i]! / 255 - mean) / std;
    }
    return image.data;
  };
}
