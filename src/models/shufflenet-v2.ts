/**
 * ShuffleNet V2 (Ma et al., ECCV 2018), the paper's successor, with torchvision's module names so
 * that its state dicts load as they are:
 *
 *   conv1 (3×3/2 + BN + ReLU) → MaxPool 3×3/2 → stage2 → stage3 → stage4 → conv5 (1×1 + BN + ReLU)
 *   → GlobalPool → fc
 *
 * Each stage starts with a stride-2 unit and repeats stride-1 units (4, 8, 4 in all, as in V1).
 * A stride-1 unit splits its channels in half, passes the first half through and runs the second
 * through 1×1 → DW3×3 → 1×1; a stride-2 unit runs the whole input through two branches. Both end in
 * a concat and a shuffle with 2 groups. See docs/architecture.md, "ShuffleNet V2 as built".
 */
import { ConfigError } from '../errors.js';
import type { GraphBuilder, Value } from '../graph/builder.js';
import {
  BatchNorm2d,
  Conv2d,
  Linear,
  channelShuffle,
  concat,
  flatten,
  globalAvgPool,
  maxPool,
  relu,
  sliceChannels,
} from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Random } from '../tensor/random.js';
import {
  arrayField,
  checkFields,
  integerField,
  numberField,
  objectField,
  stringField,
  type Fields,
} from '../validate.js';
import { networkFields } from './config-fields.js';
import { maxShuffleNetWidth, stageRepeats } from './shufflenet.js';

export interface ShuffleNetV2Config {
  /** Width multiplier: 0.5, 1, 1.5 or 2 (the V2 paper's and torchvision's four). */
  scale: number;
  /** Classifier outputs. */
  numClasses: number;
  /** Image channels. */
  inputChannels: number;
  /** For 28×28/32×32 data: conv1 at stride 1 and no max pool, as for V1. */
  smallInput: boolean;
  /** Seed for the initial weights. */
  seed: number;
  /** Draw random initial weights; false leaves zeros. */
  initialize: boolean;
  /** Explicit widths instead of the scale's (e.g. those of an imported checkpoint). Stages are even. */
  widths?: ShuffleNetV2Widths;
  /**
   * How a stride-2 unit divides its output between its branches. `'input'` (the default, the
   * official megvii code's): branch1 keeps its input's width and branch2 makes the rest, which
   * reproduces the V2 paper's complexities. `'half'` (torchvision's): each makes half. Only Stage 2's
   * first unit differs, whose input (24 channels) is narrower than half its output.
   */
  stride2Split: 'input' | 'half';
}

export interface ShuffleNetV2Widths {
  conv1: number;
  /** Output channels of stages 2, 3 and 4 (each even: a unit splits them in half). */
  stages: readonly [number, number, number];
  conv5: number;
}

/** The V2 paper's Table 5 widths (torchvision's `stages_out_channels`), by scale. */
export const shuffleNetV2Widths: Readonly<Record<string, ShuffleNetV2Widths>> = {
  '0.5': { conv1: 24, stages: [48, 96, 192], conv5: 1024 },
  '1': { conv1: 24, stages: [116, 232, 464], conv5: 1024 },
  '1.5': { conv1: 24, stages: [176, 352, 704], conv5: 1024 },
  '2': { conv1: 24, stages: [244, 488, 976], conv5: 2048 },
};

export const shuffleNetV2ConfigFields: Fields = {
  ...networkFields,
  scale: numberField(0, 8, true),
  widths: objectField(
    {
      conv1: integerField(1, maxShuffleNetWidth),
      stages: arrayField(integerField(2, maxShuffleNetWidth), 3, 3),
      conv5: integerField(1, maxShuffleNetWidth),
    },
    ['conv1', 'stages', 'conv5'],
  ),
  stride2Split: stringField(8, ['input', 'half']),
};

export const defaultShuffleNetV2Config: ShuffleNetV2Config = {
  scale: 1,
  numClasses: 1000,
  inputChannels: 3,
  smallInput: false,
  seed: 0,
  initialize: true,
  stride2Split: 'input',
};

/** The widths a config stands for: its explicit widths, or its scale's. Refuses odd stage widths. */
export function widthsOfV2(c: Pick<ShuffleNetV2Config, 'scale' | 'widths'>): ShuffleNetV2Widths {
  const w = c.widths ?? shuffleNetV2Widths[String(c.scale)];
  if (w === undefined) {
    throw new ConfigError(
      `shufflenet_v2: scale must be one of ${Object.keys(shuffleNetV2Widths).join(', ')} (the V2 paper's) or come with explicit widths, but is ${c.scale}`,
    );
  }
  const odd = w.stages.find((s) => s % 2 !== 0);
  if (odd !== undefined) {
    throw new ConfigError(`shufflenet_v2: stage width ${odd} is odd; a unit splits its channels in half`);
  }
  return w;
}

/** A numbered container like nn.Sequential, whose forward the owner writes (ReLUs carry no tensors). */
class Numbered extends Module {
  private readonly parts: ReadonlyMap<number, Module>;

  constructor(
    modules: Record<number, Module>,
    private readonly forward: (g: GraphBuilder, x: Value, at: (i: number) => Module) => Value,
  ) {
    super();
    this.parts = new Map(Object.entries(modules).map(([i, m]) => [Number(i), this.registerModule(i, m)]));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    return this.forward(g, x, (i) => this.parts.get(i)!);
  }
}

const call = (g: GraphBuilder, m: Module, x: Value): Value => m.call(g, x);

/** conv → BN → ReLU, torchvision's `conv1` and `conv5` (children 0 and 1). */
function convBnRelu(inChannels: number, outChannels: number, kernelSize: 1 | 3, stride: 1 | 2, rng: Random | null) {
  const padding = kernelSize === 3 ? 1 : 0;
  return new Numbered(
    { 0: new Conv2d({ inChannels, outChannels, kernelSize, stride, padding }, rng), 1: new BatchNorm2d(outChannels) },
    (g, x, at) => relu(g, call(g, at(1), call(g, at(0), x))),
  );
}

/** A depthwise 3×3 conv (no bias), torchvision's `depthwise_conv`. */
function depthwise(channels: number, stride: 1 | 2, rng: Random | null): Conv2d {
  return new Conv2d(
    { inChannels: channels, outChannels: channels, kernelSize: 3, stride, padding: 1, groups: channels },
    rng,
  );
}

/**
 * The V2 unit (the V2 paper's Figure 3 c/d, torchvision's InvertedResidual):
 * - stride 1: split x in half; x₁ passes through; x₂ → 1×1 → BN → ReLU → DW3×3 → BN → 1×1 → BN → ReLU;
 * - stride 2: branch1 = DW3×3/2 → BN → 1×1 → BN → ReLU on all of x, branch2 as above at stride 2;
 * then concat(x₁ or branch1, branch2) → shuffle(2). Branch2's bottleneck is half the unit's output;
 * at stride 2, branch1 makes `branch1Width` channels and branch2 the rest.
 */
export class ShuffleV2Unit extends Module {
  readonly branch1: Numbered | null;
  readonly branch2: Numbered;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly stride: 1 | 2,
    branch1Width: number,
    rng: Random | null,
  ) {
    super();
    const half = outChannels / 2;
    const where = `shufflenet_v2 unit ${inChannels}→${outChannels}`;
    if (stride === 1 && inChannels !== outChannels) {
      throw new ConfigError(`${where}: a stride-1 unit keeps its width`);
    }
    const branch2Width = stride === 2 ? outChannels - branch1Width : half;
    if (branch2Width < 1) throw new ConfigError(`${where}: a stride-2 unit must widen its input`);
    this.branch1 =
      stride === 2
        ? this.registerModule(
            'branch1',
            new Numbered(
              {
                0: depthwise(inChannels, stride, rng),
                1: new BatchNorm2d(inChannels),
                2: new Conv2d({ inChannels, outChannels: branch1Width, kernelSize: 1 }, rng),
                3: new BatchNorm2d(branch1Width),
              },
              (g, x, at) => relu(g, call(g, at(3), call(g, at(2), call(g, at(1), call(g, at(0), x))))),
            ),
          )
        : null;
    this.branch2 = this.registerModule(
      'branch2',
      new Numbered(
        {
          0: new Conv2d({ inChannels: stride === 2 ? inChannels : half, outChannels: half, kernelSize: 1 }, rng),
          1: new BatchNorm2d(half),
          3: depthwise(half, stride, rng),
          4: new BatchNorm2d(half),
          5: new Conv2d({ inChannels: half, outChannels: branch2Width, kernelSize: 1 }, rng),
          6: new BatchNorm2d(branch2Width),
        },
        (g, x, at) => {
          const y = relu(g, call(g, at(1), call(g, at(0), x)));
          const z = call(g, at(4), call(g, at(3), y)); // no ReLU after the depthwise conv
          return relu(g, call(g, at(6), call(g, at(5), z)));
        },
      ),
    );
  }

  protected build(g: GraphBuilder, x: Value): Value {
    if (this.branch1 === null) {
      const half = this.inChannels / 2;
      const passed = sliceChannels(g, x, 0, half);
      return channelShuffle(g, concat(g, passed, this.branch2.call(g, sliceChannels(g, x, half, this.inChannels))), 2);
    }
    return channelShuffle(g, concat(g, this.branch1.call(g, x), this.branch2.call(g, x)), 2);
  }
}

export class ShuffleNetV2 extends Module {
  readonly config: ShuffleNetV2Config;
  readonly widths: ShuffleNetV2Widths;
  readonly conv1: Numbered;
  readonly stages: Numbered[] = [];
  readonly units: ShuffleV2Unit[][] = [];
  readonly conv5: Numbered;
  readonly fc: Linear;

  constructor(config: Partial<ShuffleNetV2Config> = {}) {
    super();
    checkFields(config, shuffleNetV2ConfigFields, 'shufflenet_v2 config');
    const c = (this.config = { ...defaultShuffleNetV2Config, ...config });
    const rng = c.initialize ? new Random(c.seed) : null;
    const w = (this.widths = widthsOfV2(c));
    this.conv1 = this.registerModule('conv1', convBnRelu(c.inputChannels, w.conv1, 3, c.smallInput ? 1 : 2, rng));
    let inChannels = w.conv1;
    w.stages.forEach((outChannels, s) => {
      const units = Array.from({ length: stageRepeats[s]! }, (_, i) =>
        i === 0
          ? new ShuffleV2Unit(
              inChannels,
              outChannels,
              2,
              c.stride2Split === 'input' ? inChannels : outChannels / 2,
              rng,
            )
          : new ShuffleV2Unit(outChannels, outChannels, 1, 0, rng),
      );
      this.units.push(units);
      const stage = new Numbered({ ...units }, (g, x) => units.reduce((y, unit) => unit.call(g, y), x));
      this.stages.push(this.registerModule(`stage${s + 2}`, stage));
      inChannels = outChannels;
    });
    this.conv5 = this.registerModule('conv5', convBnRelu(inChannels, w.conv5, 1, 1, rng));
    this.fc = this.registerModule('fc', new Linear(w.conv5, c.numClasses, true, rng));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    let y = this.conv1.call(g, x); // [N, 24, 112, 112] at 224²
    if (!this.config.smallInput) y = maxPool(g, y, 3, 2, 1);
    for (const stage of this.stages) y = stage.call(g, y);
    y = this.conv5.call(g, y); // [N, 1024, 7, 7] at 1×
    return this.fc.call(g, flatten(g, globalAvgPool(g, y))); // [N, numClasses]
  }
}
