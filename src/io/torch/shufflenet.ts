/**
 * PyTorch ShuffleNet v1 state dicts → our ShuffleNet, for three module layouts:
 *
 * - **official** (megvii-model/ShuffleNet-Series) and **mmpretrain**, whose key maps live beside the
 *   model in src/models/shufflenet-checkpoints.ts; both shuffle after the depthwise conv + BN;
 * - **ours** (`torch.save` of a state dict with our names): needs the architecture name.
 *
 * Groups and widths are inferred from the tensor shapes. Moving a shuffle across the depthwise conv
 * and its BN (both per-channel) permutes their parameters; docs/checkpoints.md derives the
 * permutations used here. Every permuted tensor is named in `mapUnit`.
 */
import { FormatError, ShuffleNetError } from '../../errors.js';
import { channelShuffleSource } from '../../kernels/reference/channels.js';
import { architectureOf, createModel, type Architecture } from '../../models/registry.js';
import {
  officialShuffleSource,
  readMmpretrainKeys,
  readOfficialKeys,
  sourceLayout,
  type SourceBatchNorm,
  type SourceNet,
  type SourceUnit,
} from '../../models/shufflenet-checkpoints.js';
import {
  shallowStageRepeats,
  ShuffleNet,
  stage2Channels1x,
  stageRepeats,
  type ShuffleNetConfig,
} from '../../models/shufflenet.js';
import type { Module } from '../../nn/module.js';
import { formatShape, sameShape, Tensor } from '../../tensor/tensor.js';
import type { ModelInfo } from '../modelfile.js';
import { preprocessingPresets } from '../../data/preprocessing.js';
import type { TorchTensor } from './checkpoint.js';
import { importTorchvisionV2, isTorchvisionV2 } from './shufflenet-v2.js';

export type CheckpointLayout = 'official' | 'mmpretrain' | 'ours' | 'torchvision';

export interface ImportedModel {
  model: Module;
  info: ModelInfo;
  layout: CheckpointLayout;
  /** How the shuffle was carried over: relabelled into the paper's order, or the official variant kept. */
  shuffle: 'paper' | 'official' | 'none';
}

/**
 * Builds our network from a PyTorch state dict (keys as in the file; `module.` prefixes are
 * stripped). `arch` is required for state dicts in our own layout and, for the other layouts,
 * checked against the inferred groups.
 */
export function importShuffleNet(
  state: ReadonlyMap<string, TorchTensor>,
  source: string,
  arch?: string,
): ImportedModel {
  const tensors = stripPrefix(state);
  const layout = sourceLayout(tensors);
  if (layout === 'official') return fromSource(readOfficialKeys(tensors, source), layout, source, arch);
  if (layout === 'mmpretrain') return fromSource(readMmpretrainKeys(tensors, source), layout, source, arch);
  if (isTorchvisionV2(tensors)) return importTorchvisionV2(tensors, source, arch);
  if (tensors.has('conv1.weight') && tensors.has('fc.weight')) return fromOurs(tensors, source, arch);
  const sample = [...tensors.keys()].slice(0, 6).join(', ');
  throw new FormatError(
    `${source}: unrecognised state dict layout (keys ${sample}, …); expected megvii's official ShuffleNetV1 ` +
      '(first_conv.*, features.*), mmpretrain (backbone.*, head.*), ours (conv1.*, stage2.*, fc.*) ' +
      "or torchvision's ShuffleNet V2 (conv1.0.*, stage2.0.branch2.*, conv5.*, fc.*)",
  );
}

/** Drops `module.` (DataParallel) prefixes and the integer `num_batches_tracked` counters. */
function stripPrefix(state: ReadonlyMap<string, TorchTensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [key, { tensor }] of state) {
    let name = key;
    while (name.startsWith('module.')) name = name.slice('module.'.length);
    if (name.endsWith('num_batches_tracked')) continue;
    out.set(name, tensor);
  }
  return out;
}

function fromSource(net: SourceNet, layout: CheckpointLayout, source: string, arch?: string): ImportedModel {
  const fail = (why: string): never => {
    throw new FormatError(`${source}: ${why}`);
  };
  const [conv1Out, inputChannels, kh, kw] = net.conv1.shape as [number, number, number, number];
  if (kh !== 3 || kw !== 3) fail(`conv1 weight ${formatShape(net.conv1.shape)} is not a 3×3 convolution`);
  // Groups: the second GConv of the first unit sees bottleneck/g input channels per group.
  const first = net.stages[0]![0]!;
  const bottleneck0 = first.gconv1.shape[0]!;
  const groups = bottleneck0 / first.gconv2.shape[1]!;
  if (!Number.isInteger(groups) || groups < 1) {
    fail(`cannot infer groups: ${first.name} gconv2 ${formatShape(first.gconv2.shape)} with bottleneck ${bottleneck0}`);
  }
  if (stage2Channels1x[groups] === undefined) {
    fail(`inferred groups = ${groups}, but ShuffleNet v1 uses ${Object.keys(stage2Channels1x).join(', ')}`);
  }
  // Widths: a stride-2 unit outputs its input plus its branch; stride-1 units keep the width.
  const stages: number[] = [];
  const repeats: number[] = [];
  let width = conv1Out;
  for (const units of net.stages) {
    width += units[0]!.gconv2.shape[0]!;
    stages.push(width);
    repeats.push(units.length);
  }
  if (![conv1Out, inputChannels, ...stages, net.fcWeight.shape[0]!].every((w) => Number.isSafeInteger(w) && w > 0)) {
    fail(`inferred widths conv1 ${conv1Out}, stages ${stages.join('/')} are not all positive`);
  }
  const scale = stages[0]! / stage2Channels1x[groups]!;
  const config: Partial<ShuffleNetConfig> = {
    groups,
    scale,
    numClasses: net.fcWeight.shape[0]!,
    inputChannels,
    widths: { conv1: conv1Out, stages: stages as [number, number, number] },
  };
  if (repeats.every((r, i) => r === shallowStageRepeats[i])) config.shallow = true;
  else if (!repeats.every((r, i) => r === stageRepeats[i]))
    fail(
      `units per stage ${repeats.join(', ')} are neither ${stageRepeats.join(', ')} nor ${shallowStageRepeats.join(', ')}`,
    );
  if (arch !== undefined) {
    const expected = architectureOf(arch).config as Partial<ShuffleNetConfig>;
    if (architectureOf(arch).family !== 'shufflenet_v1' || expected.groups !== groups) {
      fail(`--arch ${arch} does not match the checkpoint, which is a ShuffleNet v1 with g = ${groups}`);
    }
  }

  // Which shuffle can we use? The paper's, when every unit's channels can be relabelled into its
  // order; otherwise the official variant (see docs/checkpoints.md for when relabelling is impossible).
  const plans: (UnitPlan | null)[][] = net.stages.map((units, s) =>
    units.map((u, i) => planUnit(u, groups, s === 0 && i === 0, net.shuffle, fail)),
  );
  const paper = plans.every((units) => units.every((p) => p !== null));
  // mmpretrain's classes always match (it shuffles with the paper's permutation), so only the
  // official layout can need the official shuffle; anything else would be a silent wrong answer.
  if (!paper && layout !== 'official') fail(`cannot carry the ${layout} shuffle over to ours (internal error)`);
  if (!paper) config.officialShuffle = true;

  let model: ShuffleNet;
  try {
    model = new ShuffleNet({ ...config, initialize: false });
  } catch (e) {
    if (e instanceof ShuffleNetError)
      fail(`inferred widths conv1 ${conv1Out}, stages ${stages.join('/')} do not build: ${e.message}`);
    throw e;
  }
  const out = new Map<string, Tensor>();
  out.set('conv1.weight', net.conv1);
  setBn(out, 'bn1', net.bn1, null);
  net.stages.forEach((units, s) =>
    units.forEach((u, i) => {
      const plan = paper ? plans[s]![i]! : officialPlan(u.gconv1.shape[0]!, groups);
      const target = model.stages[s]!.units[i]!;
      if (target.bottleneck !== u.gconv1.shape[0]) {
        fail(
          `${u.name} has bottleneck ${u.gconv1.shape[0]} but our unit ${target.bottleneck} (rule: a quarter of ${stages[s]})`,
        );
      }
      try {
        mapUnit(out, `stage${s + 2}.${i}`, u, plan, groups);
      } catch (e) {
        if (e instanceof ShuffleNetError) fail(e.message);
        throw e;
      }
    }),
  );
  out.set('fc.weight', net.fcWeight);
  out.set('fc.bias', net.fcBias ?? new Tensor([net.fcWeight.shape[0]!])); // the official classifier has no bias
  try {
    model.loadStateDict(out);
  } catch (e) {
    if (e instanceof ShuffleNetError) fail(e.message);
    throw e;
  }
  assertFinite(out, source);
  const architecture: Architecture = { family: 'shufflenet_v1', config };
  const preprocessing =
    layout === 'official' ? preprocessingPresets.official_shufflenet_v1 : preprocessingPresets.imagenet;
  return {
    model,
    layout,
    shuffle: paper ? 'paper' : 'official',
    info: {
      architecture,
      preprocessing,
      notes: {
        source,
        layout,
        shuffle: paper ? "relabelled into the paper's order" : "official code's permutation (cannot be relabelled)",
      },
    },
  };
}

/**
 * How our unit's tensors are gathered from the source unit's:
 * - `bn1From[d]`: our GConv1 output channel d (and BN1 channel d) is source channel bn1From[d];
 * - `dwFrom[k]`: our depthwise conv / BN2 channel k is source channel dwFrom[k];
 * - `gconv2From[k]`: our GConv2 input channel k is source GConv2 input channel gconv2From[k].
 */
export interface UnitPlan {
  bn1From: Int32Array;
  dwFrom: Int32Array;
  gconv2From: Int32Array;
}

/**
 * Relabels a source unit (shuffle after the depthwise conv + BN) into ours (the paper's shuffle
 * right after GConv1). Channel c of the source bottleneck connects GConv1 group A(c) to GConv2
 * group G(c); ours must have a channel with the same (A, G) for each, so we pair channels class by
 * class. Returns null when the class sizes differ (then no relabelling exists).
 */
function planUnit(
  u: SourceUnit,
  groups: number,
  firstUnit: boolean,
  sourceShuffle: (channels: number, groups: number) => Int32Array,
  fail: (why: string) => never,
): UnitPlan | null {
  const m = u.gconv1.shape[0]!;
  if (m % groups !== 0) fail(`${u.name}: bottleneck ${m} is not divisible by groups = ${groups}`);
  const n = m / groups;
  const expect = (what: string, t: Tensor, shape: number[]): void => {
    if (!sameShape(t.shape, shape))
      fail(`${u.name}: ${what} has shape ${formatShape(t.shape)} but should be ${formatShape(shape)}`);
  };
  expect('the depthwise conv weight', u.dwconv, [m, 1, 3, 3]);
  const branch = u.gconv2.shape[0]!;
  if (branch % groups !== 0) fail(`${u.name}: second GConv output ${branch} is not divisible by groups = ${groups}`);
  expect('the second GConv weight', u.gconv2, [branch, n, 1, 1]);
  return relabelPlan(m, groups, firstUnit, sourceShuffle);
}

/**
 * The channel relabelling that carries a unit whose shuffle (`sourceShuffle`, a gather) sits after
 * the depthwise conv + BN into our unit (the paper's shuffle right after GConv1), or null when none
 * exists: for the official shuffle, exactly when n = m/g satisfies n mod g ∈ {0, 1, g − 1}
 * (docs/checkpoints.md).
 */
export function relabelPlan(
  m: number,
  groups: number,
  firstUnit: boolean,
  sourceShuffle: (channels: number, groups: number) => Int32Array,
): UnitPlan | null {
  const n = m / groups;
  const srcGather = sourceShuffle(m, groups); // source z4[k] = z3[srcGather[k]]
  const ourGather = channelShuffleSource(m, groups); // our y2[k] = y1[ourGather[k]]
  const srcLands = invert(srcGather); // source channel c feeds GConv2 input srcLands[c]
  const ourLands = invert(ourGather);
  const groupOf = (c: number): number => (firstUnit ? 0 : Math.floor(c / n)); // GConv1 group
  const classes = new Map<number, number[]>();
  for (let c = 0; c < m; c++) {
    const key = groupOf(c) * groups + Math.floor(srcLands[c]! / n);
    const list = classes.get(key) ?? [];
    list.push(c);
    classes.set(key, list);
  }
  const bn1From = new Int32Array(m);
  for (let d = 0; d < m; d++) {
    const list = classes.get(groupOf(d) * groups + Math.floor(ourLands[d]! / n));
    if (list === undefined || list.length === 0) return null;
    bn1From[d] = list.shift()!;
  }
  const dwFrom = new Int32Array(m);
  const gconv2From = new Int32Array(m);
  for (let k = 0; k < m; k++) {
    const c = bn1From[ourGather[k]!]!; // our y3[k] carries source channel c …
    dwFrom[k] = c;
    gconv2From[k] = srcLands[c]!; // … which the source feeds to GConv2 input srcLands[c]
  }
  return { bn1From, dwFrom, gconv2From };
}

/** Our unit with the official shuffle before the depthwise conv: only the per-channel layers move. */
function officialPlan(m: number, groups: number): UnitPlan {
  const identity = Int32Array.from({ length: m }, (_, i) => i);
  return { bn1From: identity, dwFrom: officialShuffleSource(m, groups), gconv2From: identity };
}

function mapUnit(out: Map<string, Tensor>, prefix: string, u: SourceUnit, plan: UnitPlan, groups: number): void {
  const m = u.gconv1.shape[0]!;
  const n = m / groups;
  // gconv1.weight [m, Cin/g1, 1, 1]: output channels permuted by bn1From, with BN1.
  out.set(`${prefix}.gconv1.weight`, gatherRows(u.gconv1, plan.bn1From, `${u.name}: the first GConv weight`));
  setBn(out, `${prefix}.bn1`, u.bn1, plan.bn1From);
  // dwconv.weight [m, 1, 3, 3] and BN2 are per-channel: permuted by dwFrom.
  out.set(`${prefix}.dwconv.weight`, gatherRows(u.dwconv, plan.dwFrom, `${u.name}: the depthwise conv weight`));
  setBn(out, `${prefix}.bn2`, u.bn2, plan.dwFrom);
  // gconv2.weight [out, n, 1, 1]: input channel k of group ⌊k/n⌋ is column k − ⌊k/n⌋·n.
  const [outChannels, perGroup] = u.gconv2.shape as [number, number];
  const w2 = new Tensor(u.gconv2.shape);
  const outPerGroup = outChannels / groups;
  for (let o = 0; o < outChannels; o++) {
    const group = Math.floor(o / outPerGroup);
    for (let j = 0; j < perGroup; j++) {
      const from = plan.gconv2From[group * n + j]! - group * n;
      w2.data[o * perGroup + j] = u.gconv2.data[o * perGroup + from]!;
    }
  }
  out.set(`${prefix}.gconv2.weight`, w2);
  setBn(out, `${prefix}.bn3`, u.bn3, null);
}

function setBn(out: Map<string, Tensor>, prefix: string, bn: SourceBatchNorm, from: Int32Array | null): void {
  for (const key of ['weight', 'bias', 'running_mean', 'running_var'] as const) {
    out.set(`${prefix}.${key}`, from ? gatherRows(bn[key], from, `${bn.source}.${key}`) : bn[key]);
  }
}

/** Rows (first-axis slices) of `t` in the order `from`. */
function gatherRows(t: Tensor, from: Int32Array, what: string): Tensor {
  if (t.shape[0] !== from.length) {
    throw new FormatError(`${what} has shape ${formatShape(t.shape)} but the bottleneck has ${from.length} channels`);
  }
  const row = t.size / from.length;
  const out = new Tensor(t.shape);
  for (let i = 0; i < from.length; i++) out.data.set(t.data.subarray(from[i]! * row, (from[i]! + 1) * row), i * row);
  return out;
}

function invert(p: Int32Array): Int32Array {
  const inv = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) inv[p[i]!] = i;
  return inv;
}

function fromOurs(tensors: Map<string, Tensor>, source: string, arch?: string): ImportedModel {
  if (arch === undefined) {
    throw new FormatError(`${source}: a state dict in our own layout needs --arch NAME to say which network it holds`);
  }
  const fc = tensors.get('fc.weight')!;
  const conv1 = tensors.get('conv1.weight')!;
  if (fc.rank !== 2 || conv1.rank !== 4) {
    throw new FormatError(
      `${source}: fc.weight ${formatShape(fc.shape)} or conv1.weight ${formatShape(conv1.shape)} has the wrong rank`,
    );
  }
  const options = { numClasses: fc.shape[0]!, inputChannels: conv1.shape[1]! };
  let model: Module;
  try {
    model = createModel(arch, { ...options, initialize: false });
    model.loadStateDict(tensors);
  } catch (e) {
    if (e instanceof ShuffleNetError) throw new FormatError(`${source}: does not fit ${arch}: ${e.message}`);
    throw e;
  }
  assertFinite(tensors, source);
  return {
    model,
    layout: 'ours',
    shuffle: 'none',
    info: { architecture: architectureOf(arch, options), arch, notes: { source, layout: 'ours' } },
  };
}

/** Refuses weights that are not finite, naming the tensor and the index. */
export function assertFinite(tensors: ReadonlyMap<string, Tensor>, source: string): void {
  for (const [name, t] of tensors) {
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new FormatError(`${source}: tensor "${name}" holds ${t.data[bad]} at index ${bad}; weights must be finite`);
  }
}
