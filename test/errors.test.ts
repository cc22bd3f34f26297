/** The errors a user can hit name what was wrong: the op or module, the expected and the actual. */
import { describe, expect, it } from 'vitest';
import { ConfigError, ShapeError, UnknownNameError } from '../src/errors.js';
import { createModel, modelNames } from '../src/models/registry.js';
import { ShuffleNet } from '../src/models/shufflenet.js';
import { Conv2d } from '../src/nn/layers.js';
import { forward } from '../src/nn/forward.js';
import { avgPool2d, channelShuffle, concat, conv2d, getOp, linear } from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';

describe('error messages', () => {
  it('an unknown model name lists every valid name and suggests the closest', () => {
    let error: unknown;
    try {
      createModel('shufflenet_v1_g3_1.0');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnknownNameError);
    const message = (error as Error).message;
    expect(message).toContain('unknown model "shufflenet_v1_g3_1.0"');
    expect(message).toContain('did you mean "shufflenet_v1_g3_1.0x"');
    for (const name of modelNames()) expect(message).toContain(name);
  });

  it('widths that the groups cannot divide name both numbers', () => {
    expect(() => new ShuffleNet({ groups: 4, widths: { conv1: 24, stages: [250, 500, 1000] } })).toThrow(ConfigError);
    expect(() => new ShuffleNet({ groups: 4, widths: { conv1: 24, stages: [250, 500, 1000] } })).toThrow(
      /226 is not divisible by groups=4/,
    );
    expect(() => new ShuffleNet({ groups: 3, widths: { conv1: 12, stages: [120, 241, 480] } })).toThrow(
      /not divisible by groups=3/,
    );
    expect(() => new Conv2d({ inChannels: 30, outChannels: 8, kernelSize: 1, groups: 4 })).toThrow(
      /30 input and 8 output channels cannot be split into groups=4/,
    );
  });

  it('groups outside the paper are refused with the allowed values', () => {
    expect(() => new ShuffleNet({ groups: 5 })).toThrow(/groups must be one of 1, 2, 3, 4, 8 .* but is 5/);
    expect(() => new ShuffleNet({ scale: -1 })).toThrow(
      'shufflenet_v1 config.scale is -1; expected a number above 0 and at most 8',
    );
  });

  it('conv2d names channels and groups', () => {
    const x = Tensor.zeros([1, 30, 4, 4]);
    expect(() => conv2d(x, Tensor.zeros([8, 7, 1, 1]), null, { groups: 4 })).toThrow(
      'conv2d: input has 30 channels but groups=4 needs a multiple of 4',
    );
    expect(() => conv2d(Tensor.zeros([1, 8, 4, 4]), Tensor.zeros([6, 3, 1, 1]), null, { groups: 2 })).toThrow(
      /weight \[6, 3, 1, 1\] expects 3 input channels per group but the input has 8 channels in 2 group\(s\), i.e. 4 per group/,
    );
    expect(() => conv2d(Tensor.zeros([1, 3, 2, 2]), Tensor.zeros([4, 3, 5, 5]))).toThrow(
      /the height is 2 \(\+0 padding\) but the kernel spans 5/,
    );
    expect(() => conv2d(Tensor.zeros([3, 2, 2]), Tensor.zeros([4, 3, 1, 1]))).toThrow(
      /input must have rank 4 but has shape \[3, 2, 2\]/,
    );
  });

  it('other ops name the shapes', () => {
    expect(() => channelShuffle(Tensor.zeros([1, 10, 2, 2]), 3)).toThrow(
      'channelShuffle: input has 10 channels but groups=3 needs a multiple of 3',
    );
    expect(() => concat([Tensor.zeros([1, 2, 4, 4]), Tensor.zeros([1, 2, 3, 4])])).toThrow(/\[1, 2, 3, 4\]/);
    expect(() => linear(Tensor.zeros([2, 5]), Tensor.zeros([3, 4]))).toThrow(
      'linear: input has 5 features but weight [3, 4] expects 4',
    );
    expect(() => avgPool2d(Tensor.zeros([1, 1, 4, 4]), { kernel: 3, padding: 3 })).toThrow(
      /padding .* must be smaller than the kernel/,
    );
    expect(() => getOp('conv3d')).toThrow(/unknown op "conv3d"; known ops: conv2d, /);
  });

  it('a shape error inside a network names the module it came from', () => {
    const model = createModel('shufflenet_v1_g3_0.25x', { initialize: false });
    expect(() => model.trace([1, 4, 64, 64])).toThrow(ShapeError);
    expect(() => model.trace([1, 4, 64, 64])).toThrow(
      /^conv1: conv2d: weight \[12, 3, 3, 3\] expects 3 input channels/,
    );
  });

  it('a network refuses a NaN input instead of returning NaN logits', () => {
    const model = createModel('shufflenet_v1_g3_0.25x', { smallInput: true, numClasses: 10 });
    const x = Tensor.zeros([1, 3, 28, 28]);
    x.data[5] = NaN;
    expect(() => forward(model, x)).toThrow('forward: input element 5 is NaN; inputs must be finite numbers');
  });

  it('loading weights of the wrong shape names the tensor and both shapes', () => {
    const model = createModel('shufflenet_v1_g3_0.25x', { initialize: false });
    const state = model.stateDict();
    state.set('fc.weight', Tensor.zeros([10, 240]));
    expect(() => model.loadStateDict(state)).toThrow(
      'loadStateDict: "fc.weight" has shape [10, 240] but the model expects [1000, 240]',
    );
    state.delete('fc.weight');
    expect(() => model.loadStateDict(state)).toThrow('loadStateDict: missing tensor(s): fc.weight');
    state.set('fc.weight', Tensor.zeros([1000, 240]));
    state.set('head.weight', Tensor.zeros([1]));
    expect(() => model.loadStateDict(state)).toThrow('loadStateDict: unexpected tensor(s): head.weight');
  });

  it('tensors refuse data of the wrong length and impossible shapes', () => {
    expect(() => new Tensor([2, 3], new Float32Array(5))).toThrow('Tensor: shape [2, 3] needs 6 values but got 5');
    expect(() => Tensor.zeros([2, -1])).toThrow(/dimensions must be non-negative integers/);
    expect(() => Tensor.zeros([2 ** 30, 2 ** 30])).toThrow(/too many/);
  });
});
