import { ShapeError } from '../errors.js';
import { channelShuffleReference, concatChannelsReference } from '../kernels/reference/channels.js';
import { formatShape } from '../tensor/tensor.js';
import { expectPositiveInts, expectRank, type OpDef } from './op.js';

export interface ChannelShuffleAttrs {
  groups: number;
}

/** The paper's channel shuffle: channels viewed as (g, n), transposed to (n, g), flattened. */
export const channelShuffleOp: OpDef<'channelShuffle'> = {
  type: 'channelShuffle',
  arity: 1,
  inferShape([x], a) {
    expectRank('channelShuffle', 'input', x!, 4);
    expectPositiveInts('channelShuffle', 'groups', [a.groups]);
    if (x![1]! % a.groups !== 0) {
      throw new ShapeError(
        `channelShuffle: input has ${x![1]} channels but groups=${a.groups} needs a multiple of ${a.groups}`,
      );
    }
    return x!;
  },
  forward([x], a, out) {
    const [n, c, h, w] = x!.shape;
    channelShuffleReference(x!.data, out.data, n!, c!, h! * w!, a.groups);
  },
  macs: () => 0,
};

/** Concatenation of NCHW tensors along the channel axis. */
export const concatOp: OpDef<'concat'> = {
  type: 'concat',
  arity: [1, Infinity],
  inferShape(inputs) {
    inputs.forEach((s, i) => expectRank('concat', `input ${i}`, s, 4));
    const [n, , h, w] = inputs[0]!;
    let channels = 0;
    for (const s of inputs) {
      if (s[0] !== n || s[2] !== h || s[3] !== w) {
        throw new ShapeError(
          `concat: every input needs batch and spatial size [${n}, *, ${h}, ${w}] but one has shape ${formatShape(s)}`,
        );
      }
      channels += s[1]!;
    }
    return [n!, channels, h!, w!];
  },
  forward(inputs, _a, out) {
    const [n, , h, w] = out.shape;
    concatChannelsReference(
      inputs.map((t) => t.data),
      inputs.map((t) => t.shape[1]!),
      out.data,
      n!,
      h! * w!,
    );
  },
  macs: () => 0,
};
