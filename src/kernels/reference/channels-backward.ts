/** Reference gradients of the ops that move channels: both only route gradients back. */
import { channelShuffleReference, forEachConcatSlice } from './channels.js';

/**
 * The shuffle is a permutation, so its gradient is the inverse permutation: output gradient plane k
 * goes back to input channel source[k]. That inverse is the shuffle with C/g groups (see
 * `channelShuffleSource`), so the forward kernel routes it.
 */
export function channelShuffleBackwardReference(
  gradOutput: Float32Array, // [N, C, H·W]
  gradInput: Float32Array,
  batch: number,
  channels: number,
  spatial: number,
  groups: number,
): void {
  channelShuffleReference(gradOutput, gradInput, batch, channels, spatial, channels / groups);
}

/** Splits the gradient of a channel concatenation back into one gradient per input. */
export function concatChannelsBackwardReference(
  gradOutput: Float32Array, // [N, ΣC, H·W]
  channels: readonly number[],
  gradInputs: readonly (Float32Array | null)[], // [N, C_k, H·W] each, or null when not needed
  batch: number,
  spatial: number,
): void {
  forEachConcatSlice(channels, batch, spatial, (k, part, whole, count) =>
    gradInputs[k]?.set(gradOutput.subarray(whole, whole + count), part),
  );
}
