/**
 * Shuffled mini-batches as tensors. The order depends only on (seed, epoch), so a run that resumes
 * at epoch k sees the same batches as one that never stopped.
 */
import { Random } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import type { ImageDataset } from './dataset.js';

export interface Batch {
  /** [B, C, H, W] float input, after the transform. */
  input: Tensor;
  labels: Int32Array;
  /** Dataset indices of the examples, in batch order. */
  indices: Int32Array;
}

/** Turns one example's 0–255 pixels into the float CHW image the model sees. */
export type ImageTransform = (
  pixels: Uint8Array,
  shape: readonly [number, number, number],
  rng: Random,
) => Float32Array;

/** Scales to [0, 1], then optionally subtracts `mean` and divides by `std` per channel. */
export function toFloat(mean?: readonly number[], std?: readonly number[]): ImageTransform {
  return (pixels, [c, h, w]) => {
    const out = new Float32Array(pixels.length);
    const plane = h * w;
    for (let ch = 0; ch < c; ch++) {
      const m = mean?.[ch] ?? 0;
      const s = std?.[ch] ?? 1;
      for (let i = ch * plane; i < (ch + 1) * plane; i++) out[i] = (pixels[i]! / 255 - m) / s;
    }
    return out;
  };
}

/** A permutation of 0..n-1 from a seeded Fisher–Yates shuffle. */
export function permutation(n: number, rng: Random): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

export interface BatchOptions {
  batchSize: number;
  /** Shuffle with a permutation seeded by (seed, epoch); false keeps dataset order. */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Drop a last, smaller batch (training keeps BN statistics steady that way). */
  dropLast?: boolean;
  transform?: ImageTransform;
}

export function batchCount(length: number, o: Pick<BatchOptions, 'batchSize' | 'dropLast'>): number {
  return o.dropLast ? Math.floor(length / o.batchSize) : Math.ceil(length / o.batchSize);
}

export function* batches(dataset: ImageDataset, o: BatchOptions): Generator<Batch> {
  const seed = ((o.seed ?? 0) * 1_000_003 + (o.epoch ?? 0)) >>> 0;
  const order = o.shuffle
    ? permutation(dataset.length, new Random(seed))
    : Int32Array.from({ length: dataset.length }, (_, i) => i);
  // Augmentation draws from its own stream, so it does not change the batch order.
  const augment = new Random(seed ^ 0x9e3779b9);
  const transform = o.transform ?? toFloat();
  const [c, h, w] = dataset.imageShape;
  const count = batchCount(dataset.length, o);
  for (let b = 0; b < count; b++) {
    const indices = order.subarray(b * o.batchSize, Math.min((b + 1) * o.batchSize, dataset.length));
    const input = new Tensor([indices.length, c, h, w]);
    const labels = new Int32Array(indices.length);
    indices.forEach((index, k) => {
      input.data.set(transform(dataset.pixels(index), dataset.imageShape, augment), k * c * h * w);
      labels[k] = dataset.label(index);
    });
    yield { input, labels, indices: Int32Array.from(indices) };
  }
}
