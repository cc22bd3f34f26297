/**
 * Our model files: safetensors whose `__metadata__["shufflenet"]` holds the architecture, the
 * preprocessing and the labels, so that a file alone is enough to rebuild and run the network.
 * Tensors carry PyTorch names (`stage2.0.gconv1.weight`, `bn1.running_mean`, …).
 *
 * @example
 * const bytes = saveModelFile(model, { architecture: architectureOf('shufflenet_v1_g3_0.5x') });
 * const { model: again, info } = loadModelFile(bytes, 'model.safetensors');
 */
import { FormatError, ShuffleNetError } from '../errors.js';
import { buildArchitecture, families, type Architecture } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import type { Preprocessing } from '../data/preprocessing.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { Tensor } from '../tensor/tensor.js';

export const modelFileFormat = 'shufflenet-model';
export const modelFileVersion = 1;

export interface ModelInfo {
  architecture: Architecture;
  /** The registered name this was built from, when there is one. */
  arch?: string;
  preprocessing?: Preprocessing;
  /** Class names, index = logit. */
  labels?: string[];
  /** Free-form provenance: the command that produced the file, the source checkpoint, accuracy. */
  notes?: Record<string, string | number>;
  /** A training run's config and progress, in checkpoints that `train --resume` continues. */
  training?: { config: Record<string, unknown>; state: { epoch: number; step: number; history: unknown[] } };
}

/** Tensors in a model file that are not the model's: optimiser state of a checkpoint. */
export const optimizerPrefix = 'optimizer/';

/** `optimizer` holds extra tensors (SGD momentum by parameter name) stored under `optimizer/`. */
export function saveModelFile(
  model: Module,
  info: ModelInfo,
  optimizer?: ReadonlyMap<string, Float32Array>,
): Uint8Array {
  const meta = { format: modelFileFormat, version: modelFileVersion, ...info };
  const tensors = model.stateDict();
  for (const [name, values] of optimizer ?? [])
    tensors.set(optimizerPrefix + name, new Tensor([values.length], values));
  return writeSafetensors(tensors, { shufflenet: JSON.stringify(meta) });
}

/** Parses, validates and rebuilds a model file. `source` names the file in errors. */
export function loadModelFile(
  bytes: Uint8Array,
  source = 'model file',
): { model: Module; info: ModelInfo; optimizer: Map<string, Float32Array> } {
  const file = readSafetensors(bytes, source);
  const raw = file.metadata['shufflenet'];
  if (raw === undefined) {
    throw new FormatError(`${source}: not a shufflenet model file (no "shufflenet" entry in __metadata__)`);
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new FormatError(`${source}: the "shufflenet" metadata is not valid JSON`);
  }
  if (typeof meta !== 'object' || meta === null || meta['format'] !== modelFileFormat) {
    throw new FormatError(
      `${source}: metadata format is ${JSON.stringify(meta?.['format'])}, expected "${modelFileFormat}"`,
    );
  }
  if (meta['version'] !== modelFileVersion) {
    throw new FormatError(
      `${source}: model file version ${JSON.stringify(meta['version'])} is not supported (this library reads ${modelFileVersion})`,
    );
  }
  const architecture = meta['architecture'] as Architecture | undefined;
  if (
    typeof architecture !== 'object' ||
    architecture === null ||
    !(families as readonly string[]).includes(architecture.family) ||
    typeof architecture.config !== 'object' ||
    architecture.config === null
  ) {
    throw new FormatError(
      `${source}: metadata has no valid "architecture" (family must be one of ${families.join(', ')})`,
    );
  }
  for (const [name, t] of file.tensors) {
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new FormatError(`${source}: tensor "${name}" holds ${t.data[bad]} at index ${bad}; weights must be finite`);
  }
  const weights = new Map<string, Tensor>();
  const optimizer = new Map<string, Float32Array>();
  for (const [name, t] of file.tensors) {
    if (name.startsWith(optimizerPrefix)) optimizer.set(name.slice(optimizerPrefix.length), t.data);
    else weights.set(name, t);
  }
  let model: Module;
  try {
    model = buildArchitecture({
      ...architecture,
      config: { ...architecture.config, initialize: false },
    } as Architecture);
    model.loadStateDict(weights);
  } catch (e) {
    if (e instanceof ShuffleNetError) throw new FormatError(`${source}: ${e.message}`);
    throw e;
  }
  const info: ModelInfo = { architecture };
  if (typeof meta['arch'] === 'string') info.arch = meta['arch'];
  if (meta['preprocessing'] !== undefined) info.preprocessing = meta['preprocessing'] as Preprocessing;
  if (Array.isArray(meta['labels'])) info.labels = (meta['labels'] as unknown[]).map(String);
  if (typeof meta['notes'] === 'object' && meta['notes'] !== null)
    info.notes = meta['notes'] as Record<string, string | number>;
  if (typeof meta['training'] === 'object' && meta['training'] !== null) {
    info.training = meta['training'] as ModelInfo['training'];
  }
  return { model, info, optimizer };
}
