/**
 * MobileNet v1 (Howard et al., 2017), the paper's Table 5 baseline: a 3×3 stem and 13 depthwise
 * separable blocks (DWConv3×3 → BN → ReLU → Conv1×1 → BN → ReLU), global pool, FC.
 * Widths are ⌊c · α⌋, the MobileNet paper's width multiplier.
 */
import type { GraphBuilder, Value } from '../graph/builder.js';
import { BatchNorm2d, Conv2d, Linear, flatten, globalAvgPool, relu } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Random } from '../tensor/random.js';
import { checkFields, numberField, type Fields } from '../validate.js';
import { networkFields } from './config-fields.js';

export interface MobileNetConfig {
  /** Width multiplier α (the paper compares 0.25, 0.5, 0.75, 1.0). */
  widthMultiplier: number;
  numClasses: number;
  inputChannels: number;
  /** For 28×28/32×32 data: the stem at stride 1. */
  smallInput: boolean;
  seed: number;
  /** Draw random initial weights; false leaves zeros (enough to trace or count complexity). */
  initialize: boolean;
}

/** The type and range of each config field (src/validate.ts). */
export const mobileNetConfigFields: Fields = { ...networkFields, widthMultiplier: numberField(0, 4, true) };

/** [output channels at α = 1, stride] of the 13 depthwise separable blocks (MobileNet Table 1). */
export const mobileNetBlocks: readonly (readonly [number, 1 | 2])[] = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

class DepthwiseSeparable extends Module {
  readonly dwconv: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly pwconv: Conv2d;
  readonly bn2: BatchNorm2d;

  constructor(inChannels: number, outChannels: number, stride: number, rng: Random | null) {
    super();
    this.dwconv = this.registerModule(
      'dwconv',
      new Conv2d({ inChannels, outChannels: inChannels, kernelSize: 3, stride, padding: 1, groups: inChannels }, rng),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(inChannels));
    this.pwconv = this.registerModule('pwconv', new Conv2d({ inChannels, outChannels, kernelSize: 1 }, rng));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outChannels));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const y = relu(g, this.bn1.call(g, this.dwconv.call(g, x)));
    return relu(g, this.bn2.call(g, this.pwconv.call(g, y)));
  }
}

class Blocks extends Module {
  readonly blocks: DepthwiseSeparable[] = [];

  add(block: DepthwiseSeparable): void {
    this.blocks.push(this.registerModule(String(this.blocks.length), block));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    return this.blocks.reduce((y, b) => b.call(g, y), x);
  }
}

export class MobileNetV1 extends Module {
  readonly config: MobileNetConfig;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly blocks: Blocks;
  readonly fc: Linear;

  constructor(config: Partial<MobileNetConfig> = {}) {
    super();
    checkFields(config, mobileNetConfigFields, 'mobilenet_v1 config');
    const c = (this.config = {
      widthMultiplier: 1,
      numClasses: 1000,
      inputChannels: 3,
      smallInput: false,
      seed: 0,
      initialize: true,
      ...config,
    });
    const rng = c.initialize ? new Random(c.seed) : null;
    const width = (channels: number): number => Math.max(1, Math.floor(channels * c.widthMultiplier));
    let channels = width(32);
    this.conv1 = this.registerModule(
      'conv1',
      new Conv2d(
        { inChannels: c.inputChannels, outChannels: channels, kernelSize: 3, stride: c.smallInput ? 1 : 2, padding: 1 },
        rng,
      ),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(channels));
    this.blocks = this.registerModule('blocks', new Blocks());
    for (const [out, stride] of mobileNetBlocks) {
      this.blocks.add(new DepthwiseSeparable(channels, width(out), stride, rng));
      channels = width(out);
    }
    this.fc = this.registerModule('fc', new Linear(channels, c.numClasses, true, rng));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const y = relu(g, this.bn1.call(g, this.conv1.call(g, x))); // [N, 32α, 112, 112]
    const features = this.blocks.call(g, y); // [N, 1024α, 7, 7]
    return this.fc.call(g, flatten(g, globalAvgPool(g, features)));
  }
}
