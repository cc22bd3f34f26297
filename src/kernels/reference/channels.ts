/** Reference kernels that move whole channels: channel shuffle and channel concatenation. */

/**
 * The channel shuffle's permutation (the paper's: C = g·n channels viewed as (g, n), transposed to
 * (n, g)): output channel j reads input channel source[j].
 */
export function channelShuffleSource(channels: number, groups: number): Int32Array {
  const perGroup = channels / groups;
  const source = new Int32Array(channels);
  for (let i = 0; i < groups; i++) for (let j = 0; j < perGroup; j++) source[j * groups + i] = i * perGroup + j;
  return source;
}

/**
 * Channel shuffle as the paper defines it: with C = g·n channels, view them as (g, n), transpose to
 * (n, g) and flatten. Channel i·n + j of the input becomes channel j·g + i of the output, so groups
 * AAA BBB CCC become ABC ABC ABC.
 */
export function channelShuffleReference(
  input: Float32Array, // [N, C, H·W]
  output: Float32Array,
  batch: number,
  channels: number,
  spatial: number,
  groups: number,
): void {
  const perGroup = channels / groups;
  for (let n = 0; n < batch; n++) {
    for (let i = 0; i < groups; i++) {
      for (let j = 0; j < perGroup; j++) {
        const from = (n * channels + i * perGroup + j) * spatial;
        const to = (n * channels + j * groups + i) * spatial;
        output.set(input.subarray(from, from + spatial), to);
      }
    }
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
  const total = channels.reduce((a, b) => a + b, 0);
  for (let n = 0; n < batch; n++) {
    let offset = 0;
    inputs.forEach((input, k) => {
      const count = channels[k]! * spatial;
      output.set(input.subarray(n * count, (n + 1) * count), (n * total + offset) * spatial);
      offset += channels[k]!;
    });
  }
}
