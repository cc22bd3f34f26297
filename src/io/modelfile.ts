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
import { maxClasses } from '../models/config-fields.js';
import { buildArchitecture, checkArchitecture, type Architecture } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { checkPreprocessing, type Preprocessing } from '../data/preprocessing.js';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from './safetensors.js';
import { Tensor, withElementBudget } from '../tensor/tensor.js';
import {
  arrayField,
  booleanField,
  checkedField,
  checkFields,
  FieldError,
  integerField,
  numberField,
  objectField,
  showValue,
  stringField,
  type Fields,
} from '../validate.js';

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
  training?: {
    config: Record<string, unknown>;
    state: { epoch: number; step: number; history: unknown[]; finished?: boolean };
  };
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

/** Longest label: a folder name of 255 bytes (the usual file-system limit) fits. */
export const maxLabelLength = 256;
/** A label as stored: one name per class. */
const labelField = stringField(maxLabelLength);

/**
 * The `shufflenet` metadata entry, field by field (src/validate.ts). `architecture` and
 * `preprocessing` are checked by their own layers' rules (`checkArchitecture`, `checkPreprocessing`);
 * `training` is checked here for shape and size, and field by field by the trainer that resumes it.
 */
const metadataFields: Fields = {
  format: stringField(64),
  version: integerField(0, 1_000_000),
  architecture: checkedField('an architecture', checkArchitecture),
  arch: stringField(200),
  preprocessing: checkedField('a preprocessing', checkPreprocessing),
  labels: arrayField(labelField, 1, maxClasses),
  notes: {
    type: 'record',
    maxKeys: 256,
    values: { type: 'either', options: [stringField(10_000), numberField(-1e300, 1e300)] },
  },
  training: objectField(
    {
      config: {
        type: 'record',
        maxKeys: 64,
        values: { type: 'either', options: [stringField(200), numberField(-1e300, 1e300), booleanField] },
      },
      state: objectField(
        {
          epoch: integerField(0, 1_000_000),
          step: integerField(0, Number.MAX_SAFE_INTEGER),
          history: arrayField({ type: 'record', maxKeys: 16, values: numberField(-1e300, 1e300) }, 0, 1_000_000),
          finished: booleanField,
        },
        ['epoch', 'step', 'history'],
      ),
    },
    ['config', 'state'],
  ),
};

/** Tensor elements a rebuilt model may allocate beyond what its file stores (buffers it does not save). */
const buildMargin = 1 << 16;

/**
 * Builds `architecture` from a file and loads `weights` into it by name (strictly). A network
 * cannot need more elements than its file stores (`stored`, plus a margin for buffers a file does
 * not save): metadata that claims 10⁹ classes is refused before the classifier is allocated. Every
 * reader that rebuilds one of our networks from a file (model files, torchvision checkpoints, our
 * ONNX exports) goes through here; `what` names the network in the budget's error.
 */
export function buildWithWeights(
  architecture: Architecture,
  weights: ReadonlyMap<string, Tensor>,
  stored: number,
  what: string,
): Module {
  const model = buildWithinFile(architecture, stored, what);
  model.loadStateDict(weights);
  return model;
}

/**
 * Builds `architecture` (uninitialised) allocating at most what its file stores (`stored`
 * elements, plus a margin): the budget of `buildWithWeights`, for readers that load the weights
 * their own way (int8 model files).
 */
export function buildWithinFile(architecture: Architecture, stored: number, what: string): Module {
  return withElementBudget(
    stored + buildMargin,
    `${what} (the file stores ${stored.toLocaleString('en-US')} values)`,
    () => buildArchitecture({ ...architecture, config: { ...architecture.config, initialize: false } } as Architecture),
  );
}

/**
 * The `shufflenet` metadata entry of a model file, parsed and checked field by field; throws a
 * FormatError naming the field. An int8 file's `quantization` entry is checked by
 * `checkQuantization` (the int8 reader's), and accepted unchecked without it, so that every reader
 * can say what such a file is.
 */
export function parseModelMetadata(
  file: SafetensorsFile,
  source: string,
  checkQuantization?: (value: unknown, path: string) => unknown,
): Record<string, unknown> {
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
      `${source}: metadata format is ${showValue(meta?.['format'])}, expected "${modelFileFormat}"`,
    );
  }
  if (meta['version'] !== modelFileVersion) {
    throw new FormatError(
      `${source}: model file version ${showValue(meta['version'])} is not supported (this library reads ${modelFileVersion})`,
    );
  }
  // Any reader recognises an int8 file (to say what it is); only the int8 reader checks its fields.
  const quantization = checkedField('int8 quantization parameters', checkQuantization ?? ((v) => v));
  try {
    checkFields(meta, { ...metadataFields, quantization }, 'metadata', ['architecture']);
  } catch (e) {
    if (e instanceof FieldError) throw new FormatError(`${source}: ${e.message}`);
    throw e;
  }
  return meta;
}

/** The fields of checked metadata that describe the network (labels checked against its classes). */
export function modelInfoOf(meta: Record<string, unknown>, source: string): ModelInfo {
  const architecture = meta['architecture'] as Architecture;
  const labels = meta['labels'] as string[] | undefined;
  const classes = architecture.config.numClasses ?? 1000;
  if (labels !== undefined && labels.length !== classes) {
    throw new FormatError(`${source}: metadata.labels has ${labels.length} names for ${classes} classes`);
  }
  const info: ModelInfo = { architecture };
  if (typeof meta['arch'] === 'string') info.arch = meta['arch'];
  if (meta['preprocessing'] !== undefined) info.preprocessing = meta['preprocessing'] as Preprocessing;
  if (labels !== undefined) info.labels = labels;
  if (meta['notes'] !== undefined) info.notes = meta['notes'] as Record<string, string | number>;
  return info;
}

/** The values a file stores, all checked finite (a NaN weight is refused, naming its tensor). */
export function storedElements(file: SafetensorsFile, source: string): number {
  let stored = 0;
  for (const [name, t] of file.tensors) {
    stored += t.size;
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new FormatError(
        `${source}: tensor ${showValue(name)} holds ${t.data[bad]} at index ${bad}; weights must be finite`,
      );
  }
  return stored;
}

/**
 * Parses, validates and rebuilds a model file. `source` names the file in errors. `parsed` is the
 * same file already read by `readSafetensors`, so that a loader that looked at it first does not
 * parse its header twice.
 */
export function loadModelFile(
  bytes: Uint8Array,
  source = 'model file',
  parsed?: SafetensorsFile,
): { model: Module; info: ModelInfo; optimizer: Map<string, Float32Array> } {
  const file = parsed ?? readSafetensors(bytes, source);
  const meta = parseModelMetadata(file, source);
  if (meta['quantization'] !== undefined) {
    throw new FormatError(
      `${source}: an int8 model file (written by shufflenet quantize), not a float one: int8 files load with loadQuantizedModelFile (the CLI's eval and info take them)`,
    );
  }
  const info = modelInfoOf(meta, source);
  const architecture = info.architecture;
  const stored = storedElements(file, source);
  const weights = new Map<string, Tensor>();
  const optimizer = new Map<string, Float32Array>();
  for (const [name, t] of file.tensors) {
    if (name.startsWith(optimizerPrefix)) optimizer.set(name.slice(optimizerPrefix.length), t.data);
    else weights.set(name, t);
  }
  let model: Module;
  try {
    model = buildWithWeights(architecture, weights, stored, 'the network in its metadata');
  } catch (e) {
    if (e instanceof ShuffleNetError) throw new FormatError(`${source}: ${e.message}`);
    throw e;
  }
  if (meta['training'] !== undefined) info.training = meta['training'] as ModelInfo['training'];
  return { model, info, optimizer };
}
