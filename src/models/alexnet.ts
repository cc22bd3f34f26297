/**
 * AlexNet (Krizhevsky et al., 2012), the paper's Table 6 baseline, in its original two-tower form:
 * conv2, conv4 and conv5 are grouped convolutions with g = 2, which is how the 720 MFLOPs the paper
 * quotes arise. Local response normalisation is left out (it has no multiply-adds and no
 * parameters, and modern re-implementations drop it); dropout is a training-time detail.
 * Conv1 uses padding 2 so that a 224×224 input gives the original 55×55 map.
 */
import { ConfigError } from '../errors.js';
import type { GraphBuilder, Value } from '../graph/builder.js';
import { Conv2d, Linear, flatten, maxPool, relu } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Random } from '../tensor/random.js';
import { checkFields, integerField, type Fields } from '../validate.js';
import { networkFields } from './config-fields.js';

export interface AlexNetConfig {
  numClasses: number;
  inputChannels: number;
  /** Square input size; fc6's width depends on it. */
  inputSize: number;
  /** For 28×28/32×32 data: conv1 becomes 5×5 at stride 1. */
  smallInput: boolean;
  seed: number;
  /** Draw random initial weights; false leaves zeros (enough to trace or count complexity). */
  initialize: boolean;
}

/** The type and range of each config field (src/validate.ts). */
export const alexNetConfigFields: Fields = { ...networkFields, inputSize: integerField(15, 4096) };

export class AlexNet extends Module {
  readonly config: AlexNetConfig;
  private readonly convs: Conv2d[] = [];
  private readonly fcs: Linear[] = [];

  constructor(config: Partial<AlexNetConfig> = {}) {
    super();
    checkFields(config, alexNetConfigFields, 'alexnet config');
    const c = (this.config = {
      numClasses: 1000,
      inputChannels: 3,
      inputSize: 224,
      smallInput: false,
      seed: 0,
      initialize: true,
      ...config,
    });
    const rng = c.initialize ? new Random(c.seed) : null;
    const conv1 = c.smallInput ? { kernelSize: 5, stride: 1, padding: 2 } : { kernelSize: 11, stride: 4, padding: 2 };
    const specs = [
      { inChannels: c.inputChannels, outChannels: 96, ...conv1 },
      { inChannels: 96, outChannels: 256, kernelSize: 5, padding: 2, groups: 2 },
      { inChannels: 256, outChannels: 384, kernelSize: 3, padding: 1 },
      { inChannels: 384, outChannels: 384, kernelSize: 3, padding: 1, groups: 2 },
      { inChannels: 384, outChannels: 256, kernelSize: 3, padding: 1, groups: 2 },
    ];
    specs.forEach((s, i) =>
      this.convs.push(this.registerModule(`conv${i + 1}`, new Conv2d({ ...s, bias: true }, rng))),
    );
    // Spatial size after conv1, and after each of the three 3×3/2 max pools.
    const pool = (n: number): number => Math.floor((n - 3) / 2) + 1;
    const afterConv1 = Math.floor((c.inputSize + 2 * conv1.padding - conv1.kernelSize) / conv1.stride) + 1;
    const final = pool(pool(pool(afterConv1)));
    if (!(final >= 1)) {
      throw new ConfigError(
        `alexnet: input size ${c.inputSize} is too small (needs at least ${c.smallInput ? 15 : 63})`,
      );
    }
    const widths = [256 * final * final, 4096, 4096, c.numClasses];
    for (let i = 0; i < 3; i++) {
      this.fcs.push(this.registerModule(`fc${i + 6}`, new Linear(widths[i]!, widths[i + 1]!, true, rng)));
    }
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const [conv1, conv2, conv3, conv4, conv5] = this.convs as [Conv2d, Conv2d, Conv2d, Conv2d, Conv2d];
    let y = maxPool(g, relu(g, conv1.call(g, x)), 3, 2, 0); // [N, 96, 27, 27]
    y = maxPool(g, relu(g, conv2.call(g, y)), 3, 2, 0); // [N, 256, 13, 13]
    y = relu(g, conv3.call(g, y));
    y = relu(g, conv4.call(g, y));
    y = maxPool(g, relu(g, conv5.call(g, y)), 3, 2, 0); // [N, 256, 6, 6]
    y = flatten(g, y);
    const [fc6, fc7, fc8] = this.fcs as [Linear, Linear, Linear];
    return fc8.call(g, relu(g, fc7.call(g, relu(g, fc6.call(g, y)))));
  }
}
