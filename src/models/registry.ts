/**
 * The model registry: every network of the paper by name. Variants are data (a config), builders
 * are tiny, and the registry refuses duplicate names and lists what exists.
 *
 * @example
 * import { createModel } from 'shufflenet';
 * const net = createModel('shufflenet_v1_g3_1.0x');                     // ImageNet, 224×224
 * const small = createModel('shufflenet_v1_g3_0.5x', { numClasses: 10, inputChannels: 1, smallInput: true });
 */
import { UnknownNameError } from '../errors.js';
import type { Module } from '../nn/module.js';
import { checkFields, FieldError, showValue, stringField, type Fields } from '../validate.js';
import { AlexNet, alexNetConfigFields, type AlexNetConfig } from './alexnet.js';
import { MobileNetV1, mobileNetConfigFields, type MobileNetConfig } from './mobilenet.js';
import { paperFigures, type PaperFigure } from './paper.js';
import { ShuffleNet, shuffleNetConfigFields, type ShuffleNetConfig } from './shufflenet.js';
import { ShuffleNetV2, shuffleNetV2ConfigFields, type ShuffleNetV2Config } from './shufflenet-v2.js';

/**
 * A network described by its family and config alone: what a model file stores, so that the file
 * is enough to rebuild the network even when its widths are not those of any registered name
 * (e.g. an imported checkpoint).
 */
export type Architecture =
  | { family: 'shufflenet_v1'; config: Partial<ShuffleNetConfig> }
  | { family: 'shufflenet_v2'; config: Partial<ShuffleNetV2Config> }
  | { family: 'mobilenet_v1'; config: Partial<MobileNetConfig> }
  | { family: 'alexnet'; config: Partial<AlexNetConfig> };

export const families = ['shufflenet_v1', 'shufflenet_v2', 'mobilenet_v1', 'alexnet'] as const;
export type Family = (typeof families)[number];

/** Each family's config fields and ranges (src/validate.ts). */
export const architectureFields: Readonly<Record<Family, Fields>> = {
  shufflenet_v1: shuffleNetConfigFields,
  shufflenet_v2: shuffleNetV2ConfigFields,
  mobilenet_v1: mobileNetConfigFields,
  alexnet: alexNetConfigFields,
};

/**
 * Checks an architecture read from outside (a model file) before anything is built from it: a known
 * family, and a config whose every field has its type and range. `path` names it in errors.
 */
export function checkArchitecture(value: unknown, path: string): Architecture {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FieldError(`${path} is ${showValue(value)}; expected an object with "family" and "config"`);
  }
  const { family, config, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined)
    throw new FieldError(`${path}.${showValue(extra)} is not a known field; known: family, config`);
  checkFields({ family }, { family: stringField(32, families) }, path, ['family']);
  checkFields(config, architectureFields[family as Family], `${path}.config`);
  return value as Architecture;
}

/** Builds a network from an architecture description. */
export function buildArchitecture(a: Architecture): Module {
  switch (a.family) {
    case 'shufflenet_v1':
      return new ShuffleNet(a.config);
    case 'shufflenet_v2':
      return new ShuffleNetV2(a.config);
    case 'mobilenet_v1':
      return new MobileNetV1(a.config);
    case 'alexnet':
      return new AlexNet(a.config);
    default:
      throw new UnknownNameError(
        `unknown architecture family ${JSON.stringify((a as { family: unknown }).family)}; known: ${families.join(', ')}`,
      );
  }
}

/** The architecture a registered name stands for, with options applied. */
export function architectureOf(name: string, options: ModelOptions = {}): Architecture {
  const entry = getModelEntry(name);
  const { initialize: _i, seed: _s, ...rest } = options;
  void _i;
  void _s;
  const config = { ...entry.config, ...(entry.family === 'alexnet' ? rest : withoutInputSize(rest)) };
  return { family: entry.family, config } as Architecture;
}

export interface ModelOptions {
  /** Classifier outputs; default 1000 (ImageNet). */
  numClasses?: number;
  /** Image channels; default 3. */
  inputChannels?: number;
  /** Stem for 28×28/32×32 inputs (stride-1 Conv1, no max pool); default false. */
  smallInput?: boolean;
  /** Square input size; only AlexNet's fc6 depends on it. Default 224. */
  inputSize?: number;
  /** Seed of the initial weights; default 0. */
  seed?: number;
  /** Draw random initial weights (default); false leaves zeros, enough to trace or count. */
  initialize?: boolean;
}

/**
 * The options that fit a network to square images of `size` pixels with `inputChannels` channels:
 * the small-input stem up to 64×64 (what `shufflenet train` and `experiment` build).
 */
export function imageModelOptions(
  numClasses: number,
  inputChannels: number,
  size: number,
  seed?: number,
): ModelOptions {
  return {
    numClasses,
    inputChannels,
    smallInput: size <= 64,
    inputSize: size,
    ...(seed === undefined ? {} : { seed }),
  };
}

export interface ModelEntry {
  readonly name: string;
  readonly family: Family;
  readonly description: string;
  /** The architecture config the name stands for (before ModelOptions). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly paper: readonly PaperFigure[];
  build(options?: ModelOptions): Module;
}

const entries = new Map<string, ModelEntry>();

export function registerModel(entry: Omit<ModelEntry, 'paper'>): void {
  if (entries.has(entry.name)) throw new Error(`model registry: "${entry.name}" is registered twice`);
  entries.set(entry.name, { ...entry, paper: paperFigures(entry.name) });
}

export const shuffleNetGroups = [1, 2, 3, 4, 8] as const;
export const shuffleNetScales = ['0.25', '0.5', '1.0', '1.5', '2.0'] as const;
const shuffleNetVariants: Record<string, { suffix: string; config: Partial<ShuffleNetConfig>; text: string }> = {
  plain: { suffix: '', config: {}, text: '' },
  noshuffle: { suffix: '_noshuffle', config: { shuffle: false }, text: ', without channel shuffle' },
  se: { suffix: '_se', config: { se: true }, text: ', with squeeze-and-excitation' },
  shallow: { suffix: '_shallow', config: { shallow: true }, text: ', shallow (26 layers)' },
};

for (const variant of Object.values(shuffleNetVariants)) {
  for (const groups of shuffleNetGroups) {
    for (const scale of shuffleNetScales) {
      const config: Partial<ShuffleNetConfig> = { groups, scale: Number(scale), ...variant.config };
      registerModel({
        name: `shufflenet_v1_g${groups}_${scale}x${variant.suffix}`,
        family: 'shufflenet_v1',
        description: `ShuffleNet ${Number(scale)}× (g = ${groups})${variant.text}`,
        config,
        build: (o = {}) => new ShuffleNet({ ...config, ...withoutInputSize(o) }),
      });
    }
  }
}

for (const alpha of ['0.25', '0.5', '0.75', '1.0']) {
  registerModel({
    name: `mobilenet_v1_${alpha}`,
    family: 'mobilenet_v1',
    description: `${Number(alpha)} MobileNet-224 (Howard et al.)`,
    config: { widthMultiplier: Number(alpha) },
    build: (o = {}) => new MobileNetV1({ widthMultiplier: Number(alpha), ...withoutInputSize(o) }),
  });
}

registerModel({
  name: 'alexnet',
  family: 'alexnet',
  description: 'AlexNet (Krizhevsky et al.), two-tower grouped form',
  config: {},
  build: (o = {}) => new AlexNet(o),
});

for (const scale of ['0.5', '1.0', '1.5', '2.0']) {
  const config: Partial<ShuffleNetV2Config> = { scale: Number(scale) };
  registerModel({
    name: `shufflenet_v2_${scale}x`,
    family: 'shufflenet_v2',
    description: `ShuffleNet V2 ${Number(scale)}× (Ma et al.)`,
    config,
    build: (o = {}) => new ShuffleNetV2({ ...config, ...withoutInputSize(o) }),
  });
}

function withoutInputSize(o: ModelOptions): Omit<ModelOptions, 'inputSize'> {
  const { inputSize: _unused, ...rest } = o;
  void _unused;
  return rest;
}

/** Every registered name, in registration order. */
export function modelNames(): string[] {
  return [...entries.keys()];
}

export function getModelEntry(name: string): ModelEntry {
  const entry = entries.get(name);
  if (entry === undefined) {
    const names = modelNames();
    const hint = closest(name, names);
    throw new UnknownNameError(
      `unknown model "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}. Valid names (${names.length}): ${names.join(', ')}`,
    );
  }
  return entry;
}

/** Builds a registered network with fresh, seeded weights. */
export function createModel(name: string, options: ModelOptions = {}): Module {
  return getModelEntry(name).build(options);
}

function closest(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(3, Math.floor(name.length / 4)) + 1;
  for (const candidate of names) {
    const d = editDistance(name.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
