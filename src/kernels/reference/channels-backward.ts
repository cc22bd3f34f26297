/** Reference gradients of the ops that move channels: both only route gradients back. */
import { channelShuffleSource } from './channels.js';

/**
 * The shuffle is a permutation (a gather: output channel k reads input channel source[k]), so its
 * gradient is the inverse permutation: the scatter of each output gradient plane k to source[k].
 */
export function channelShuffleBackwardReference(
  gradOutput: Float32Array, // [N, C, H·W]
  gradInput: Float32Array,
  batch: number,
  channels: number,
  spatial: number,
  groups: number,
): void {
  const source = channelShuffleSource(channels, groups);
  for (let n = 0; n < batch; n++) {
    for (let k = 0; k < channels; k++) {
      const from = (n * channels + k) * spatial;
      gradInput.set(gradOutput.subarray(from, from + spatial), (n * channels + source[k]!) * spatial);
    }
  }
}

/** Splits the gradient of a channel concatenation back into one gradient per input. */
export function concatChannelsBackwardReference(
  gradOutput: Float32Array, // [N, ΣC, H·W]
  channels: readonly number[],
  gradInputs: readonly (Float32Array | null)[], // [N, C_k, H·W] each, or null when not needed
  batch: number,
  spatial: number,
): void {
  const total = channels.reduce((a, b) => a + b, 0);
  for (let n = 0; n < batch; n++) {
    let offset = 0;
    channels.forEach((c, k) => {
      const count = c * spatial;
      const from = (n * total + offset) * spatial;
      gradInputs[k]?.set(gradOutput.subarray(from, from + count), n * count);
      offset += c;
    });
  }
}
