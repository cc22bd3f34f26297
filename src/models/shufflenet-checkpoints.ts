/**
 * The key maps of published ShuffleNet v1 checkpoints: which tensor of a PyTorch state dict is
 * which part of the network, for two module layouts. Reading a checkpoint file (unpickling) and
 * carrying the tensors over to our network (relabelling channels) live in src/io/torch.
 *
 * - **official** (megvii-model/ShuffleNet-Series, ShuffleNetV1): `first_conv.{0,1}`,
 *   `features.N.branch_main_1.{0,1,3,4}`, `features.N.branch_main_2.{0,1}`, `classifier.0.weight`
 *   (no bias). Its shuffle sits after the depthwise conv + BN and uses the inverse permutation.
 * - **mmpretrain** (open-mmlab, ex-mmclassification): `backbone.conv1.{conv,bn}`,
 *   `backbone.layers.S.I.{g_conv_1x1_compress,depthwise_conv3x3_bn,g_conv_1x1_expand}.{conv,bn}`,
 *   `head.fc.{weight,bias}`. Its shuffle is the paper's, also after the depthwise conv + BN.
 *
 * Each reader takes the tensors it maps out of `tensors` and refuses any left over.
 */
import { FormatError } from '../errors.js';
import { channelShuffleSource } from '../kernels/reference/channels.js';
import { formatShape, type Tensor } from '../tensor/tensor.js';
import { officialShuffleGroups, stageRepeats } from './shufflenet.js';

/** The official code's shuffle (reshape to (C/g, g)) as a gather: the paper's with C/g groups. */
export function officialShuffleSource(channels: number, groups: number): Int32Array {
  return channelShuffleSource(channels, officialShuffleGroups(channels, groups));
}

/** A batch norm of a source network: its four tensors and where they came from. */
export interface SourceBatchNorm {
  /** The source key prefix, for messages. */
  source: string;
  weight: Tensor;
  bias: Tensor;
  running_mean: Tensor;
  running_var: Tensor;
}

/** One unit of a source network, in source channel order. */
export interface SourceUnit {
  name: string;
  gconv1: Tensor;
  bn1: SourceBatchNorm;
  dwconv: Tensor;
  bn2: SourceBatchNorm;
  gconv2: Tensor;
  bn3: SourceBatchNorm;
}

/** A source network's tensors in source channel order, and where its shuffle sits. */
export interface SourceNet {
  conv1: Tensor;
  bn1: SourceBatchNorm;
  stages: SourceUnit[][];
  fcWeight: Tensor;
  fcBias: Tensor | null;
  /** Gather of the source's shuffle, applied after the depthwise conv + BN. */
  shuffle: (channels: number, groups: number) => Int32Array;
}

/** Which layout a state dict (keys as in the file, `module.` stripped) is in, by a key only it has. */
export function sourceLayout(tensors: ReadonlyMap<string, Tensor>): 'official' | 'mmpretrain' | null {
  if (tensors.has('first_conv.0.weight')) return 'official';
  if (tensors.has('backbone.conv1.conv.weight')) return 'mmpretrain';
  return null;
}

/** megvii-model/ShuffleNet-Series ShuffleNetV1: `first_conv`, `features.N.branch_main_{1,2}`, `classifier.0`. */
export function readOfficialKeys(tensors: Map<string, Tensor>, source: string): SourceNet {
  const conv1 = take(tensors, 'first_conv.0.weight', source, 4);
  const bn1 = takeBn(tensors, 'first_conv.1', source);
  const units: SourceUnit[] = [];
  for (let n = 0; tensors.has(`features.${n}.branch_main_1.0.weight`); n++) {
    const p = `features.${n}`;
    units.push({
      name: p,
      gconv1: take(tensors, `${p}.branch_main_1.0.weight`, source, 4),
      bn1: takeBn(tensors, `${p}.branch_main_1.1`, source),
      dwconv: take(tensors, `${p}.branch_main_1.3.weight`, source, 4),
      bn2: takeBn(tensors, `${p}.branch_main_1.4`, source),
      gconv2: take(tensors, `${p}.branch_main_2.0.weight`, source, 4),
      bn3: takeBn(tensors, `${p}.branch_main_2.1`, source),
    });
  }
  // The official code hard-codes Table 1's units per stage (the first of each with stride 2).
  const [r2, r3, r4] = stageRepeats;
  if (units.length !== r2 + r3 + r4) {
    throw new FormatError(
      `${source}: official layout has ${units.length} units (features.0…) but ShuffleNetV1 has ${r2 + r3 + r4}`,
    );
  }
  const fcWeight = take(tensors, 'classifier.0.weight', source, 2);
  const fcBias = tensors.has('classifier.0.bias') ? take(tensors, 'classifier.0.bias', source, 1) : null;
  leftovers(tensors, source);
  return {
    conv1,
    bn1,
    stages: [units.slice(0, r2), units.slice(r2, r2 + r3), units.slice(r2 + r3)],
    fcWeight,
    fcBias,
    shuffle: officialShuffleSource,
  };
}

/** mmpretrain's ShuffleNetV1: `backbone.conv1`, `backbone.layers.S.I.*`, `head.fc`. */
export function readMmpretrainKeys(tensors: Map<string, Tensor>, source: string): SourceNet {
  const conv1 = take(tensors, 'backbone.conv1.conv.weight', source, 4);
  const bn1 = takeBn(tensors, 'backbone.conv1.bn', source);
  const stages: SourceUnit[][] = [];
  for (let s = 0; s < 3; s++) {
    const units: SourceUnit[] = [];
    for (let i = 0; tensors.has(`backbone.layers.${s}.${i}.g_conv_1x1_compress.conv.weight`); i++) {
      const p = `backbone.layers.${s}.${i}`;
      units.push({
        name: p,
        gconv1: take(tensors, `${p}.g_conv_1x1_compress.conv.weight`, source, 4),
        bn1: takeBn(tensors, `${p}.g_conv_1x1_compress.bn`, source),
        dwconv: take(tensors, `${p}.depthwise_conv3x3_bn.conv.weight`, source, 4),
        bn2: takeBn(tensors, `${p}.depthwise_conv3x3_bn.bn`, source),
        gconv2: take(tensors, `${p}.g_conv_1x1_expand.conv.weight`, source, 4),
        bn3: takeBn(tensors, `${p}.g_conv_1x1_expand.bn`, source),
      });
    }
    if (units.length === 0) throw new FormatError(`${source}: mmpretrain layout has no units in backbone.layers.${s}`);
    stages.push(units);
  }
  const fcWeight = take(tensors, 'head.fc.weight', source, 2);
  const fcBias = tensors.has('head.fc.bias') ? take(tensors, 'head.fc.bias', source, 1) : null;
  leftovers(tensors, source);
  return { conv1, bn1, stages, fcWeight, fcBias, shuffle: channelShuffleSource };
}

function take(tensors: Map<string, Tensor>, name: string, source: string, rank?: number): Tensor {
  const t = tensors.get(name);
  if (t === undefined) throw new FormatError(`${source}: missing tensor "${name}"`);
  if (rank !== undefined && t.rank !== rank) {
    throw new FormatError(`${source}: "${name}" has shape ${formatShape(t.shape)} but should have ${rank} dimensions`);
  }
  tensors.delete(name);
  return t;
}

function takeBn(tensors: Map<string, Tensor>, prefix: string, source: string): SourceBatchNorm {
  const get = (k: string): Tensor => take(tensors, `${prefix}.${k}`, source, 1);
  return {
    source: prefix,
    weight: get('weight'),
    bias: get('bias'),
    running_mean: get('running_mean'),
    running_var: get('running_var'),
  };
}

function leftovers(tensors: Map<string, Tensor>, source: string): void {
  if (tensors.size > 0) {
    throw new FormatError(`${source}: unexpected tensor(s) ${[...tensors.keys()].slice(0, 5).join(', ')}`);
  }
}
