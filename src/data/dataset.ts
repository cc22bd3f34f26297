/**
 * Image classification datasets held in memory as 8-bit pixels, decoded once when loaded, so that
 * batching only converts and augments (decoding stays off the training hot path).
 */
import { ShapeError } from '../errors.js';

export interface ImageDataset {
  readonly name: string;
  /** Number of examples. */
  readonly length: number;
  /** [channels, height, width] of every image. */
  readonly imageShape: readonly [number, number, number];
  readonly classes: readonly string[];
  /** Pixels of example i, CHW, 0–255. A view: do not modify. */
  pixels(i: number): Uint8Array;
  label(i: number): number;
}

/** A dataset over one contiguous pixel buffer [N, C, H, W] and a label per example. */
export class ArrayDataset implements ImageDataset {
  readonly length: number;
  private readonly imageSize: number;

  constructor(
    readonly name: string,
    readonly imageShape: readonly [number, number, number],
    readonly classes: readonly string[],
    private readonly data: Uint8Array,
    private readonly labels: Uint8Array | Int32Array,
  ) {
    this.imageSize = imageShape[0] * imageShape[1] * imageShape[2];
    this.length = labels.length;
    if (data.length !== this.length * this.imageSize) {
      throw new ShapeError(
        `${name}: ${data.length} pixel bytes do not make ${this.length} images of ${imageShape.join('×')}`,
      );
    }
    const bad = labels.findIndex((l) => !(l >= 0 && l < classes.length));
    if (bad >= 0)
      throw new ShapeError(`${name}: example ${bad} has label ${labels[bad]} but there are ${classes.length} classes`);
  }

  pixels(i: number): Uint8Array {
    return this.data.subarray(i * this.imageSize, (i + 1) * this.imageSize);
  }

  label(i: number): number {
    return this.labels[i]!;
  }
}

/** The examples at `indices` of another dataset, in that order. */
export function subset(dataset: ImageDataset, indices: readonly number[], name = dataset.name): ImageDataset {
  for (const i of indices) {
    if (!(Number.isInteger(i) && i >= 0 && i < dataset.length)) {
      throw new ShapeError(`${name}: index ${i} is outside 0..${dataset.length - 1}`);
    }
  }
  return {
    name,
    length: indices.length,
    imageShape: dataset.imageShape,
    classes: dataset.classes,
    pixels: (i) => dataset.pixels(indices[i]!),
    label: (i) => dataset.label(indices[i]!),
  };
}

/** Counts of each class, e.g. to check a split is balanced. */
export function classCounts(dataset: ImageDataset): number[] {
  const counts = new Array<number>(dataset.classes.length).fill(0);
  for (let i = 0; i < dataset.length; i++) counts[dataset.label(i)]!++;
  return counts;
}
