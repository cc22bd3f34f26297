/**
 * Int8 model files: our model file format (safetensors + `shufflenet` metadata) holding a
 * QuantizedNetwork instead of float weights.
 *
 * - Metadata: the float file's fields (architecture, preprocessing, labels, notes) and
 *   `quantization`: the traced input shape, every calibrated value's scale and zero point, the
 *   calibration recipe, and the accuracy of the float and int8 models when measured.
 * - Tensors, per weighted step (its weight parameter `W`, e.g. `stage2.0.gconv1.weight`): `W` (I8,
 *   the float weight's shape, batch norm folded), `W:scale` (F32, one per output channel) and
 *   `W:bias` (I32). Parameters that a float step reads (a step with no int8 rule) stay F32 under
 *   their own names.
 *
 * Reading checks everything against the network that the architecture traces to: a missing or
 * extra tensor or scale, a scale that is not a positive finite float, a zero point outside 0–255,
 * a shape or dtype that differs: each is refused with a FormatError naming the tensor or value.
 */
import { FormatError, ShuffleNetError } from '../../errors.js';
import {
  buildWithinFile,
  modelFileFormat,
  modelFileVersion,
  modelInfoOf,
  parseModelMetadata,
  storedElements,
  type ModelInfo,
} from '../../io/modelfile.js';
import { readSafetensors, writeSafetensors, type IntegerTensor, type SafetensorsFile } from '../../io/safetensors.js';
import { maxPreprocessingSize } from '../../data/preprocessing.js';
import { formatShape, sameShape, Tensor, type Shape } from '../../tensor/tensor.js';
import {
  arrayField,
  checkFields,
  FieldError,
  integerField,
  numberField,
  objectField,
  showValue,
  stringField,
  type Fields,
} from '../../validate.js';
import { lowerForInference } from '../lower.js';
import { calibrationMethods } from './calibrate.js';
import {
  quantizationPoints,
  resolveActivations,
  WEIGHTED_KERNELS,
  weightName,
  type QParams,
  type QuantizedNetwork,
  type QuantizedWeights,
} from './network.js';

/** The arithmetic a file's integers follow (docs/int8.md). */
export const quantizationScheme = 'uint8-activations-per-tensor/int8-weights-per-channel';

export interface QuantizationInfo {
  scheme: string;
  /** The input shape the network was traced and calibrated at, [1, C, H, W]. */
  inputShape: number[];
  calibration: { method: string; images: number; data?: string; percentile?: number; weightBits?: number };
  /** Test accuracy of the float model and of this one, when measured (fractions, and where). */
  accuracy?: { float?: number; int8?: number; data?: string; examples?: number };
  /** Scale and zero point of each calibrated value, by value name. */
  activations: Record<string, { scale: number; zeroPoint: number }>;
}

/** A scale: positive (a zero scale would divide by zero), finite, and no larger than any real range needs. */
const scaleField = numberField(0, 1e9, true);

/** The calibration recipe's fields: a file's, and the `quantize` flags' ranges. */
export const calibrationFields = {
  method: stringField(20, calibrationMethods),
  images: integerField(1, 10_000_000),
  data: stringField(1000),
  percentile: numberField(50, 100, true),
  weightBits: integerField(7, 8),
} satisfies Fields;

const quantizationFields: Fields = {
  scheme: stringField(100, [quantizationScheme]),
  // Batch 1 (checked below); channels up to the architecture's (the trace checks they match); an
  // image no larger than any preprocessing may ask for, so running the network allocates what a
  // float model at its largest crop would.
  inputShape: arrayField(integerField(1, maxPreprocessingSize), 4, 4),
  calibration: objectField(calibrationFields, ['method', 'images']),
  accuracy: objectField({
    float: numberField(0, 1),
    int8: numberField(0, 1),
    data: stringField(1000),
    examples: integerField(0, 1e9),
  }),
  activations: {
    type: 'record',
    maxKeys: 100_000,
    values: objectField({ scale: scaleField, zeroPoint: integerField(0, 255) }, ['scale', 'zeroPoint']),
  },
};

function checkQuantization(value: unknown, path: string): QuantizationInfo {
  checkFields(value, quantizationFields, path, ['scheme', 'inputShape', 'calibration', 'activations']);
  return value as QuantizationInfo;
}

/** Tensor names of a weighted step's int8 weights, their scales and the int32 bias. */
export function weightTensorNames(weight: string): { weight: string; scale: string; bias: string } {
  return { weight, scale: `${weight}:scale`, bias: `${weight}:bias` };
}

/** Parameters read by steps that run on float (no int8 rule): stored as float32. */
function floatParams(network: QuantizedNetwork): Set<string> {
  const names = new Set<string>();
  for (const step of network.steps) {
    if (WEIGHTED_KERNELS.includes(step.lowering.kernel)) continue;
    for (const node of step.nodes)
      for (const input of node.inputs) if (network.graph.params.has(input)) names.add(input);
  }
  return names;
}

/** Serialises an int8 network with its float file's description. */
export function saveQuantizedModelFile(
  network: QuantizedNetwork,
  info: ModelInfo,
  quantization: Omit<QuantizationInfo, 'scheme' | 'inputShape' | 'activations'>,
): Uint8Array {
  const { graph } = network;
  const points = quantizationPoints(graph, network.steps);
  const activations: QuantizationInfo['activations'] = {};
  for (const p of points) if (p.kind === 'calibrated') activations[p.value] = { ...network.activations.get(p.value)! };
  const meta = {
    format: modelFileFormat,
    version: modelFileVersion,
    architecture: info.architecture,
    ...(info.arch !== undefined ? { arch: info.arch } : {}),
    ...(info.preprocessing !== undefined ? { preprocessing: info.preprocessing } : {}),
    ...(info.labels !== undefined ? { labels: info.labels } : {}),
    ...(info.notes !== undefined ? { notes: info.notes } : {}),
    quantization: { scheme: quantizationScheme, inputShape: [...graph.input.shape], ...quantization, activations },
  };
  const integers = new Map<string, IntegerTensor>();
  const floats = new Map<string, Tensor>();
  for (const [name, w] of network.weights) {
    const names = weightTensorNames(name);
    integers.set(names.weight, { dtype: 'I8', shape: graph.shapes.get(name)!, data: w.weight });
    integers.set(names.bias, { dtype: 'I32', shape: [w.bias.length], data: w.bias });
    floats.set(names.scale, new Tensor([w.scales.length], w.scales));
  }
  for (const name of floatParams(network)) floats.set(name, graph.params.get(name)!.tensor);
  return writeSafetensors(floats, { shufflenet: JSON.stringify(meta) }, integers);
}

/** Whether a safetensors file's metadata says it is an int8 model file (its fields unchecked). */
export function isQuantizedModelFile(file: SafetensorsFile): boolean {
  try {
    return JSON.parse(file.metadata['shufflenet'] ?? '{}')?.quantization !== undefined;
  } catch {
    return false;
  }
}

/**
 * Parses, validates and rebuilds an int8 model file. `source` names the file in errors.
 */
export function loadQuantizedModelFile(
  bytes: Uint8Array,
  source = 'model file',
  parsed?: SafetensorsFile,
): { network: QuantizedNetwork; info: ModelInfo; quantization: QuantizationInfo } {
  const file = parsed ?? readSafetensors(bytes, source);
  const meta = parseModelMetadata(file, source, checkQuantization);
  const quantization = meta['quantization'] as QuantizationInfo | undefined;
  if (quantization === undefined)
    throw new FormatError(`${source}: a float model file, not an int8 one (no metadata.quantization)`);
  const info = modelInfoOf(meta, source);
  const fail = (why: string): never => {
    throw new FormatError(`${source}: ${why}`);
  };
  const stored = storedElements(file, source);
  let network: QuantizedNetwork;
  try {
    const module = buildWithinFile(info.architecture, stored, 'the network in its metadata');
    const inputShape = quantization.inputShape as Shape;
    if (inputShape[0] !== 1) fail(`metadata.quantization.inputShape ${formatShape(inputShape)} must have batch 1`);
    const graph = module.trace(inputShape);
    const steps = lowerForInference(graph);
    // Activation scales: exactly the network's calibrated values.
    const points = quantizationPoints(graph, steps);
    const calibrated = new Map<string, QParams>();
    for (const p of points) {
      if (p.kind !== 'calibrated') continue;
      const entry = quantization.activations[p.value];
      if (entry === undefined) fail(`metadata.quantization.activations has no scale for value ${showValue(p.value)}`);
      calibrated.set(p.value, { scale: entry!.scale, zeroPoint: entry!.zeroPoint });
    }
    for (const value of Object.keys(quantization.activations)) {
      if (!calibrated.has(value))
        fail(`metadata.quantization.activations[${showValue(value)}] is not a calibrated value of this network`);
    }
    for (const [value, p] of calibrated) {
      if (Math.fround(p.scale) !== p.scale)
        fail(`metadata.quantization.activations[${showValue(value)}].scale ${p.scale} is not a float32`);
    }
    const activations = resolveActivations(points, calibrated);
    // Tensors: the int8 weights of every weighted step, float parameters of float steps, nothing else.
    const expected = new Set<string>();
    const tensor = (name: string, dtype: string, shape: Shape): Int32Array | Float32Array => {
      expected.add(name);
      const t = file.tensors.get(name);
      if (t === undefined) fail(`tensor ${showValue(name)} is missing`);
      if (file.dtypes.get(name) !== dtype)
        fail(`tensor ${showValue(name)} has dtype ${showValue(file.dtypes.get(name))}, expected ${dtype}`);
      if (!sameShape(t!.shape, shape))
        fail(`tensor ${showValue(name)} has shape ${formatShape(t!.shape)}, expected ${formatShape(shape)}`);
      return file.integers.get(name) ?? t!.data;
    };
    const weights = new Map<string, QuantizedWeights>();
    for (const step of steps) {
      if (!WEIGHTED_KERNELS.includes(step.lowering.kernel)) continue;
      const name = weightName(step);
      const shape = graph.shapes.get(name)!;
      const names = weightTensorNames(name);
      const scales = tensor(names.scale, 'F32', [shape[0]!]) as Float32Array;
      const bad = scales.findIndex((s) => !(s > 0));
      if (bad >= 0)
        fail(`tensor ${showValue(names.scale)} holds ${scales[bad]} at index ${bad}; weight scales must be positive`);
      const weight = Int8Array.from(tensor(names.weight, 'I8', shape));
      weights.set(name, { weight, scales, bias: tensor(names.bias, 'I32', [shape[0]!]) as Int32Array });
    }
    const partial = { graph, steps, activations, weights };
    const params = new Map<string, Tensor>();
    for (const name of floatParams(partial)) {
      params.set(
        name,
        new Tensor(graph.shapes.get(name)!, tensor(name, 'F32', graph.shapes.get(name)!) as Float32Array),
      );
    }
    for (const name of file.tensors.keys())
      if (!expected.has(name)) fail(`tensor ${showValue(name)} is not part of this network's int8 form`);
    for (const [name, t] of params) graph.params.get(name)!.tensor.data.set(t.data);
    network = partial;
  } catch (e) {
    if (e instanceof FormatError) throw e;
    if (e instanceof FieldError || e instanceof ShuffleNetError) throw new FormatError(`${source}: ${e.message}`);
    throw e;
  }
  return { network, info, quantization };
}
