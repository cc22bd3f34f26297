/**
 * ShuffleNet v1 (Zhang et al., CVPR 2018), built from a table that reads like the paper's Table 1.
 *
 *   Conv1 3×3/2 → MaxPool 3×3/2 → Stage2 → Stage3 → Stage4 → GlobalPool → FC
 *
 * Each stage starts with a stride-2 unit (avg-pool shortcut, concatenation) followed by stride-1
 * units (residual add). Width rules for other scales are documented in docs/architecture.md and in
 * `shuffleNetWidths` below.
 */
import { ConfigError } from '../errors.js';
import type { GraphBuilder, Value } from '../graph/builder.js';
import {
  BatchNorm2d,
  Conv2d,
  Linear,
  SqueezeExcite,
  add,
  avgPool,
  channelShuffle,
  concat,
  flatten,
  globalAvgPool,
  maxPool,
  relu,
} from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Random } from '../tensor/random.js';
import {
  arrayField,
  booleanField,
  checkFields,
  integerField,
  numberField,
  objectField,
  type Fields,
} from '../validate.js';
import { networkFields } from './config-fields.js';

export interface ShuffleNetConfig {
  /** Groups g of the pointwise convolutions (the paper uses 1, 2, 3, 4, 8). */
  groups: number;
  /** Width multiplier s of "ShuffleNet s×". */
  scale: number;
  /** Channel shuffle after the first pointwise group conv; false is Table 3's ablation. */
  shuffle: boolean;
  /** Squeeze-and-excitation in every unit, reduction 16 (Table 5's SE row). */
  se: boolean;
  /** Half of the units in Stages 2–4: 26 layers instead of 50 (Table 5's shallow row). */
  shallow: boolean;
  /** Classifier outputs. */
  numClasses: number;
  /** Image channels (3 for RGB, 1 for Fashion-MNIST). */
  inputChannels: number;
  /** For 28×28/32×32 data: Conv1 at stride 1 and no max pool, so Stage 4 still sees 4×4 or so. */
  smallInput: boolean;
  /** Seed for the initial weights. */
  seed: number;
  /** Draw random initial weights; false leaves zeros (enough to trace or count complexity). */
  initialize: boolean;
  /**
   * Explicit channel widths instead of the rule of `shuffleNetWidths`, e.g. those inferred from an
   * imported checkpoint. Units per stage still follow `shallow`.
   */
  widths?: { conv1: number; stages: readonly [number, number, number] };
  /**
   * Shuffle with the official megvii code's permutation (reshape to (C/g, g): the inverse of the
   * paper's, i.e. the paper's shuffle with C/g groups), still right after the first GConv. Only
   * imported official checkpoints whose channels cannot be relabelled into the paper's order need
   * it (g = 8 at 0.5×–1.5×); see docs/checkpoints.md. Default false.
   */
  officialShuffle?: boolean;
}

/** Most channels of an explicit width (ShuffleNet 2× g8 has 3,072 in Stage 4). */
export const maxShuffleNetWidth = 16_384;

/** The type and range of each config field (src/validate.ts): files and the CLI are checked against it. */
export const shuffleNetConfigFields: Fields = {
  ...networkFields,
  groups: integerField(1, 8),
  scale: numberField(0, 8, true),
  shuffle: booleanField,
  se: booleanField,
  shallow: booleanField,
  widths: objectField(
    {
      conv1: integerField(1, maxShuffleNetWidth),
      stages: arrayField(integerField(1, maxShuffleNetWidth), 3, 3),
    },
    ['conv1', 'stages'],
  ),
  officialShuffle: booleanField,
};

export const defaultShuffleNetConfig: ShuffleNetConfig = {
  groups: 3,
  scale: 1,
  shuffle: true,
  se: false,
  shallow: false,
  numClasses: 1000,
  inputChannels: 3,
  smallInput: false,
  seed: 0,
  initialize: true,
};

/** Table 1: output channels of Stage 2 at 1× for each group count. Stages 3 and 4 double it. */
export const stage2Channels1x: Readonly<Record<number, number>> = { 1: 144, 2: 200, 3: 240, 4: 272, 8: 384 };

/** Units per stage (the first has stride 2), Table 1. */
export const stageRepeats = [4, 8, 4] as const;

/** Units per stage of the shallow networks: half of Table 1's (26 layers instead of 50). */
export const shallowStageRepeats = [stageRepeats[0] / 2, stageRepeats[1] / 2, stageRepeats[2] / 2] as const;

/** Squeeze-and-excitation reduction ratio r, as in Hu et al. */
export const seReduction = 16;

export interface ShuffleNetWidths {
  conv1: number;
  /** Output channels of Stages 2, 3 and 4. */
  stages: readonly [number, number, number];
  repeats: readonly [number, number, number];
}

/**
 * The width rule (the paper gives widths only at 1×; see docs/architecture.md for how close each
 * choice lands to every complexity the paper prints).
 * - Stage 2 has s · c(g) output channels (c(g) from Table 1), rounded to the nearest multiple of g;
 *   Stages 3 and 4 double it. The bottleneck of every unit is a quarter of its output, rounded to
 *   the nearest multiple of g (`bottleneckWidth`). At 1× and at every scale of g = 3 and g = 8 no
 *   rounding happens, so these are exactly the official code's widths.
 * - Conv1 has 24 · 2^⌊log2 s⌋ channels but at least 12: 12 at 0.25× and 0.5×, 24 at 1× and 1.5×,
 *   48 at 2× (the official code's choice at 0.5×–2×). The first unit's main branch produces
 *   Stage2 − Conv1 channels in g groups, so Conv1 must be a multiple of g: it is rounded up at
 *   0.5× and above (the official 0.5× g = 8 has 16) and down below 0.5× (8 at 0.25× g = 8), where
 *   16 channels at 112×112 would cost more than a fifth of the whole network.
 * - Shallow networks have half the units per stage and stages √2 wider, so that they keep roughly
 *   the budget of the deep network of the same scale (the paper's 0.5× shallow is 40 MFLOPs).
 */
export function shuffleNetWidths(groups: number, scale: number, shallow = false): ShuffleNetWidths {
  const base = stage2Channels1x[groups];
  if (base === undefined) {
    throw new ConfigError(
      `shufflenet: groups must be one of ${Object.keys(stage2Channels1x).join(', ')} (Table 1) but is ${groups}`,
    );
  }
  if (!(scale > 0 && scale <= 8)) throw new ConfigError(`shufflenet: scale must be in (0, 8] but is ${scale}`);
  const stage2 = nearestMultiple((shallow ? Math.SQRT2 : 1) * scale * base, groups);
  const nominalConv1 = Math.max(12, 24 * 2 ** Math.floor(Math.log2(scale)));
  const conv1 =
    scale >= 0.5
      ? Math.ceil(nominalConv1 / groups) * groups
      : Math.max(groups, Math.floor(nominalConv1 / groups) * groups);
  const repeats = shallow ? shallowStageRepeats : stageRepeats;
  return { conv1, stages: [stage2, stage2 * 2, stage2 * 4], repeats };
}

/**
 * The official megvii code shuffles by reshaping to (C/g, g): the paper's shuffle with C/g groups
 * instead of g, which is its inverse permutation (see `channelShuffleSource`).
 */
export function officialShuffleGroups(channels: number, groups: number): number {
  return channels / groups;
}

/** A quarter of a unit's output channels, rounded to the nearest multiple of g (ties up). */
export function bottleneckWidth(outChannels: number, groups: number): number {
  return nearestMultiple(outChannels / 4, groups);
}

function nearestMultiple(value: number, of: number): number {
  return Math.max(of, Math.round(value / of) * of);
}

export interface ShuffleUnitConfig {
  inChannels: number;
  outChannels: number;
  stride: 1 | 2;
  groups: number;
  /** Whether the first pointwise conv is grouped (not in the first unit of Stage 2). */
  groupFirstConv: boolean;
  shuffle: boolean;
  se: boolean;
  /** Bottleneck channels; default `bottleneckWidth(outChannels, groups)`. */
  bottleneck?: number;
  /** Shuffle with the official code's inverse permutation (see ShuffleNetConfig.officialShuffle). */
  officialShuffle?: boolean;
}

/**
 * The ShuffleNet unit (Figure 2 b/c):
 *   GConv1×1 → BN → ReLU → shuffle → DWConv3×3 (stride) → BN → GConv1×1 → BN
 * then `add x → ReLU` at stride 1, or `concat(AvgPool3×3/2(x), ·) → ReLU` at stride 2.
 */
export class ShuffleUnit extends Module {
  readonly config: ShuffleUnitConfig;
  readonly gconv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly dwconv: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly gconv2: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly se: SqueezeExcite | null;
  readonly bottleneck: number;

  constructor(config: ShuffleUnitConfig, rng: Random | null) {
    super();
    this.config = config;
    const { inChannels, outChannels, stride, groups } = config;
    // At stride 2 the main branch only produces what the concatenation adds to the shortcut.
    const branchOut = stride === 2 ? outChannels - inChannels : outChannels;
    const bottleneck = (this.bottleneck = config.bottleneck ?? bottleneckWidth(outChannels, groups));
    const firstGroups = config.groupFirstConv ? groups : 1;
    const where = `shuffle unit ${inChannels}→${outChannels}`;
    if (stride === 1 && inChannels !== outChannels) {
      throw new ConfigError(
        `${where}: a stride-1 unit adds its input, so widths ${inChannels} and ${outChannels} must match`,
      );
    }
    if (branchOut <= 0) throw new ConfigError(`${where}: a stride-2 unit must widen its input`);
    for (const [what, channels, g] of [
      ['input width', inChannels, firstGroups],
      ['bottleneck width', bottleneck, groups],
      ['main-branch output width', branchOut, groups],
    ] as const) {
      if (channels % g !== 0) {
        throw new ConfigError(`${where}: ${what} ${channels} is not divisible by groups=${g}`);
      }
    }
    this.gconv1 = this.registerModule(
      'gconv1',
      new Conv2d({ inChannels, outChannels: bottleneck, kernelSize: 1, groups: firstGroups }, rng),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(bottleneck));
    this.dwconv = this.registerModule(
      'dwconv',
      new Conv2d(
        { inChannels: bottleneck, outChannels: bottleneck, kernelSize: 3, stride, padding: 1, groups: bottleneck },
        rng,
      ),
    );
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(bottleneck));
    this.gconv2 = this.registerModule(
      'gconv2',
      new Conv2d({ inChannels: bottleneck, outChannels: branchOut, kernelSize: 1, groups }, rng),
    );
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(branchOut));
    // SE recalibrates what the unit adds: the residual branch at stride 1, and at stride 2 (which has
    // no identity path, like an Inception module in the SE paper) the whole concatenated output.
    this.se = config.se
      ? this.registerModule('se', new SqueezeExcite(outChannels, Math.ceil(outChannels / seReduction), rng))
      : null;
  }

  protected build(g: GraphBuilder, x: Value): Value {
    const { stride, groups, shuffle } = this.config;
    let y = relu(g, this.bn1.call(g, this.gconv1.call(g, x)));
    if (shuffle && groups > 1)
      y = channelShuffle(g, y, this.config.officialShuffle ? officialShuffleGroups(this.bottleneck, groups) : groups);
    y = this.bn2.call(g, this.dwconv.call(g, y)); // no ReLU after the depthwise conv
    y = this.bn3.call(g, this.gconv2.call(g, y)); // no shuffle after the second GConv
    if (stride === 1) return relu(g, add(g, this.se ? this.se.call(g, y) : y, x));
    const joined = concat(g, avgPool(g, x, 3, 2, 1), y);
    return relu(g, this.se ? this.se.call(g, joined) : joined);
  }
}

/** A stage: one stride-2 unit, then stride-1 units, registered as `0`, `1`, … like nn.Sequential. */
class Stage extends Module {
  readonly units: ShuffleUnit[] = [];

  constructor(configs: ShuffleUnitConfig[], rng: Random | null) {
    super();
    configs.forEach((c, i) => this.units.push(this.registerModule(String(i), new ShuffleUnit(c, rng))));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    return this.units.reduce((y, unit) => unit.call(g, y), x);
  }
}

export class ShuffleNet extends Module {
  readonly config: ShuffleNetConfig;
  readonly widths: ShuffleNetWidths;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly stages: Stage[] = [];
  readonly fc: Linear;

  constructor(config: Partial<ShuffleNetConfig> = {}) {
    super();
    checkFields(config, shuffleNetConfigFields, 'shufflenet_v1 config');
    const c = (this.config = { ...defaultShuffleNetConfig, ...config });
    const rng = c.initialize ? new Random(c.seed) : null;
    const ruled = shuffleNetWidths(c.groups, c.scale, c.shallow);
    const w = (this.widths = c.widths ? { ...ruled, ...c.widths } : ruled);
    this.conv1 = this.registerModule(
      'conv1',
      new Conv2d(
        { inChannels: c.inputChannels, outChannels: w.conv1, kernelSize: 3, stride: c.smallInput ? 1 : 2, padding: 1 },
        rng,
      ),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(w.conv1));
    let inChannels = w.conv1;
    w.stages.forEach((outChannels, s) => {
      const units = Array.from({ length: w.repeats[s]! }, (_, i): ShuffleUnitConfig => {
        const unit: ShuffleUnitConfig = {
          inChannels: i === 0 ? inChannels : outChannels,
          outChannels,
          stride: i === 0 ? 2 : 1,
          groups: c.groups,
          // The paper: no group conv on Stage 2's first pointwise layer, its input is too narrow.
          groupFirstConv: !(s === 0 && i === 0),
          shuffle: c.shuffle,
          se: c.se,
          ...(c.officialShuffle ? { officialShuffle: true } : {}),
        };
        return unit;
      });
      this.stages.push(this.registerModule(`stage${s + 2}`, new Stage(units, rng)));
      inChannels = outChannels;
    });
    this.fc = this.registerModule('fc', new Linear(inChannels, c.numClasses, true, rng));
  }

  protected build(g: GraphBuilder, x: Value): Value {
    let y = relu(g, this.bn1.call(g, this.conv1.call(g, x))); // [N, 24, 112, 112] at 1×, 224²
    if (!this.config.smallInput) y = maxPool(g, y, 3, 2, 1); // [N, 24, 56, 56]
    for (const stage of this.stages) y = stage.call(g, y); // [N, 960, 7, 7] at g=3
    return this.fc.call(g, flatten(g, globalAvgPool(g, y))); // [N, numClasses]
  }
}
