/**
 * torchvision ShuffleNet V2 state dicts → our ShuffleNetV2. Our module names are torchvision's
 * (`conv1.{0,1}`, `stageS.I.branch1.{0,1,2,3}`, `stageS.I.branch2.{0,1,3,4,5,6}`, `conv5.{0,1}`,
 * `fc`), so the key map is the identity; what is read from the file is the widths, and how each
 * stride-2 unit divides its output between its branches (torchvision: halves; the official megvii
 * code: the shortcut branch keeps its input's width). The network is built under the file's element
 * budget (`buildWithWeights`), so claimed widths cannot allocate more than the file holds.
 */
import { FormatError, ShuffleNetError } from '../../errors.js';
import { getModelEntry, type Architecture } from '../../models/registry.js';
import type { ShuffleNetV2Config } from '../../models/shufflenet-v2.js';
import { stageRepeats } from '../../models/shufflenet.js';
import type { Module } from '../../nn/module.js';
import { formatShape, type Tensor } from '../../tensor/tensor.js';
import { buildWithWeights } from '../modelfile.js';
import { preprocessingPresets } from '../../data/preprocessing.js';
import { assertFinite, type ImportedModel } from './shufflenet.js';

/** Whether a state dict (prefixes stripped) is torchvision's ShuffleNet V2, by a key only it has. */
export function isTorchvisionV2(tensors: ReadonlyMap<string, Tensor>): boolean {
  return tensors.has('stage2.0.branch2.0.weight') && tensors.has('conv5.0.weight');
}

export function importTorchvisionV2(tensors: Map<string, Tensor>, source: string, arch?: string): ImportedModel {
  const fail = (why: string): never => {
    throw new FormatError(`${source}: ${why}`);
  };
  const weight = (key: string, rank: number): Tensor => {
    const t = tensors.get(key);
    if (t === undefined) return fail(`torchvision ShuffleNet V2 layout, but "${key}" is missing`);
    if (t.rank !== rank) fail(`"${key}" has shape ${formatShape(t.shape)}; expected rank ${rank}`);
    return t;
  };
  const conv1 = weight('conv1.0.weight', 4);
  const [conv1Out, inputChannels] = conv1.shape as [number, number];
  const stages: number[] = [];
  const splits = new Set<'input' | 'half'>();
  let width = conv1Out;
  for (let s = 0; s < 3; s++) {
    const name = `stage${s + 2}`;
    const units = new Set([...tensors.keys()].filter((k) => k.startsWith(`${name}.`)).map((k) => k.split('.')[1]));
    if (units.size !== stageRepeats[s]) {
      fail(`${name} has ${units.size} units; ShuffleNet V2 has ${stageRepeats.join(', ')} per stage`);
    }
    // A stride-2 unit outputs branch1's and branch2's channels; which way it divided them is read
    // from the first (the other stages' first units have inputs of half their output either way).
    const proj = weight(`${name}.0.branch1.2.weight`, 4).shape[0]!;
    const main = weight(`${name}.0.branch2.5.weight`, 4).shape[0]!;
    const out = proj + main;
    if (proj === out / 2) splits.add('half');
    else if (proj === width) splits.add('input');
    else fail(`${name}.0 splits its ${out} channels ${proj} + ${main}: neither halves nor its input's ${width}`);
    stages.push(out);
    width = out;
  }
  const conv5 = weight('conv5.0.weight', 4).shape[0]!;
  const numClasses = weight('fc.weight', 2).shape[0]!;
  const widths = { conv1: conv1Out, stages: stages as [number, number, number], conv5 };
  const config: Partial<ShuffleNetV2Config> = {
    numClasses,
    inputChannels,
    widths,
    stride2Split: splits.has('input') ? 'input' : 'half',
  };
  if (arch !== undefined && getModelEntry(arch).family !== 'shufflenet_v2') {
    fail(`--arch ${arch} does not match the checkpoint, which is a ShuffleNet V2`);
  }
  const architecture: Architecture = { family: 'shufflenet_v2', config };
  const stored = [...tensors.values()].reduce((sum, t) => sum + t.size, 0);
  let model: Module;
  try {
    model = buildWithWeights(architecture, tensors, stored, 'the network its widths describe');
  } catch (e) {
    if (e instanceof ShuffleNetError) {
      return fail(`widths conv1 ${conv1Out}, stages ${stages.join('/')}, conv5 ${conv5} do not fit: ${e.message}`);
    }
    throw e;
  }
  assertFinite(tensors, source);
  return {
    model,
    layout: 'torchvision',
    shuffle: 'paper',
    info: {
      architecture,
      preprocessing: preprocessingPresets.imagenet,
      notes: { source, layout: 'torchvision' },
    },
  };
}
