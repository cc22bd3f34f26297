/** Reference kernels that move whole channels: channel shuffle and channel concatenation. */
import { ShapeError } from '../../errors.js';

/**
 * The channel shuffle, defined once: output channel k reads input channel `source[k]`. It is the
 * paper's: with C = g·n channels viewed as (g, n) and transposed to (n, g), input channel i·n + j
 * becomes output channel j·g + i, so groups AAA BBB CCC become ABC ABC ABC. (The official code's
 * variant, reshape to (C/g, g), is this with C/g groups: the inverse.) Every shuffle (the kernels,
 * the fused plans, checkpoint relabelling, ONNX) is this gather or its inverse.
 *
 * @example channelShuffleSource(6, 3) // [0, 2, 4, 1, 3, 5]
 */
export function channelShuffleSource(channels: number, groups: number): Int32Array {
  if (!Number.isInteger(groups) || groups <= 0 || !Number.isInteger(channels) || channels % groups !== 0) {
    throw new ShapeError(`channelShuffle: groups=${groups} must be a positive divisor of the ${channels} channels`);
  }
  const n = channels / groups;
  const source = new Int32Array(channels);
  for (let i = 0; i < groups; i++) for (let j = 0; j < n; j++) source[j * groups + i] = i * n + j;
  return source;
}

/**
 * The same shuffle as generic ops, the form ONNX files write it in: reshape [N, C, H, W] to
 * [N, g, C/g, H, W], transpose by this permutation, reshape back (test/shuffle.test.ts checks it
 * against `channelShuffleSource`).
 */
export const channelShuffleTransposePerm: readonly number[] = [0, 2, 1, 3, 4];

/** Channel shuffle (see `channelShuffleSource`) of [N, C, H·W]: whole planes gathered per sample. */
export function channelShuffleReference(
  input: Float32Array, // [N, C, H·W]
  output: Float32Array,
  batch: number,
  channels: number,
  spatial: number,
  groups: number,
): void {
  const source = channelShuffleSource(channels, groups);
  for (let n = 0; n < batch; n++) {
    for (let k = 0; k < channels; k++) {
      const from = (n * channels + source[k]!) * spatial;
      output.set(input.subarray(from, from + spatial), (n * channels + k) * spatial);
    }
  }
}

/**
 * Where each part of a channel concatenation sits, per sample: part k (of `channels[k]` channels)
 * of sample n is `count` floats at `part` in its own tensor and at `whole` in the concatenation.
 * The concatenation copies part → whole, its gradient whole → part.
 */
export function forEachConcatSlice(
  channels: readonly number[],
  batch: number,
  spatial: number,
  visit: (k: number, part: number, whole: number, count: number) => void,
): void {
  const total = channels.reduce((a, b) => a + b, 0);
  for (let n = 0; n < batch; n++) {
    let offset = 0;
    channels.forEach((c, k) => {
      visit(k, n * c * spatial, (n * total + offset) * spatial, c * spatial);
      offset += c;
    });
  }
}

/** Concatenates NCHW tensors along channels. `channels[k]` is the channel count of `inputs[k]`. */
export function concatChannelsReference(
  inputs: readonly Float32Array[],
  channels: readonly number[],
  output: Float32Array,
  batch: number,
  spatial: number,
): void {
  forEachConcatSlice(channels, batch, spatial, (k, part, whole, count) =>
    output.set(inputs[k]!.subarray(part, part + count), whole),
  );
}
