/**
 * Int8 network → ONNX in QDQ form: QuantizeLinear / DequantizeLinear pairs around float ops, the
 * form onnxruntime and other runtimes fuse into their int8 kernels (Conv between DQ and Q becomes
 * QLinearConv, Add QLinearAdd, …). Every value that our int8 network stores as uint8 is written as
 * Q → DQ with its scale and zero point; weights are int8 initializers behind a per-channel DQ
 * (axis 0), biases int32 behind a DQ at (input scale · weight scale); batch norm is already folded.
 * So the file means exactly what runQuantized computes, up to float rounding inside the ops.
 *
 *   x:q ─DQ─► x:dq ─► Conv(x:dq, DQ(W int8), DQ(B int32)) ─► [Q─DQ pre-add ─► Add(·, r:dq)] ─► act ─► Q ─► y:q
 *
 * A channel shuffle after the activation sits between two Q/DQ pairs of the same scale (a
 * permutation of uint8 values, as onnxruntime moves Q/DQ through Reshape and Transpose).
 */
import { FormatError } from '../../errors.js';
import { OnnxWriter, type OnnxExportOptions } from '../../io/onnx/export.js';
import { decodeModelProto } from '../../io/onnx/codec.js';
import { importOnnxModel, type OnnxImportOptions, type QdqRecord } from '../../io/onnx/import.js';
import { AttributeType, DataType, type ModelProto, type TensorProto } from '../../io/onnx/proto.js';
import { showValue } from '../../validate.js';
import { lowerForInference } from '../lower.js';
import {
  preAddValue,
  quantizationPoints,
  quantizeWeights,
  resolveActivations,
  WEIGHTED_KERNELS,
  weightName,
  type QParams,
  type QuantizedNetwork,
  type QuantizedWeights,
} from './network.js';

/**
 * `inspect`: also output every quantized value as uint8 (`<value>:q`), to compare a runtime's
 * integers with ours value by value (test/quantize.test.ts).
 */
export function exportQdq(
  network: QuantizedNetwork,
  options: OnnxExportOptions & { inspect?: boolean } = {},
): Uint8Array {
  const { graph, activations } = network;
  const { inspect = false, ...onnxOptions } = options;
  const extraOutputs = inspect
    ? [...activations.keys()]
        .filter((v) => v !== graph.input.name)
        .map((v) => ({ name: `${v}:q`, elemType: DataType.UINT8, shape: graph.shapes.get(v)! }))
    : [];
  const writer = new OnnxWriter(graph, { ...onnxOptions, extraOutputs });
  /** Values written as float by the node before and read through Q → DQ: name → scale. */
  const quantized = new Map<string, QParams>();
  for (const [value, p] of activations) quantized.set(value, p);
  /** Parameters replaced by DQ of int8/int32 initializers. */
  const replaced = new Map<string, string>();
  const read = (v: string): string => replaced.get(v) ?? (quantized.has(v) ? `${v}:dq` : v);
  const qdq = (value: string, p: QParams, owner: string): void => {
    const scale = writer.initializer(floatScalarTensor(`${value}:scale`, p.scale));
    const zero = writer.initializer({
      name: `${value}:zero`,
      data_type: DataType.UINT8,
      dims: [],
      raw_data: Uint8Array.of(p.zeroPoint),
    });
    writer.emit(owner, 'QuantizeLinear', [value, scale, zero], `${value}:q`);
    writer.emit(owner, 'DequantizeLinear', [`${value}:q`, scale, zero], `${value}:dq`);
  };
  qdq(graph.input.name, activations.get(graph.input.name)!, 'input');

  for (const step of network.steps) {
    const main = step.nodes[0]!;
    const owner = main.name || main.op;
    const extra = new Map<string, QParams>();
    if (step.residual !== null) extra.set(preAddValue(step), activations.get(preAddValue(step))!);
    const shuffle = step.nodes.find((n) => n.op === 'channelShuffle');
    if (shuffle !== undefined && activations.has(step.output))
      extra.set(shuffle.inputs[0]!, activations.get(step.output)!);
    for (const [v, p] of extra) quantized.set(v, p);

    let nodes = step.nodes;
    if (WEIGHTED_KERNELS.includes(step.lowering.kernel)) {
      const name = weightName(step);
      const w = network.weights.get(name)!;
      const inputScale = activations.get(step.inputs[0]!)!.scale;
      const cOut = w.scales.length;
      const wScale = writer.initializer(floatTensor(`${name}:scale`, w.scales));
      const wZero = writer.initializer({
        name: `${name}:zero`,
        data_type: DataType.INT8,
        dims: [cOut],
        raw_data: new Uint8Array(cOut),
      });
      writer.initializer({
        name: `${name}:q`,
        data_type: DataType.INT8,
        dims: [...graph.shapes.get(name)!],
        raw_data: new Uint8Array(w.weight.buffer, w.weight.byteOffset, w.weight.length),
      });
      const bScale = writer.initializer(
        floatTensor(
          `${name}:bias_scale`,
          w.scales.map((s) => Math.fround(inputScale * s)),
        ),
      );
      const bZero = writer.initializer({
        name: `${name}:bias_zero`,
        data_type: DataType.INT32,
        dims: [cOut],
        raw_data: new Uint8Array(cOut * 4),
      });
      writer.initializer({
        name: `${name}:bias_q`,
        data_type: DataType.INT32,
        dims: [cOut],
        raw_data: int32Bytes(w.bias),
      });
      const axis = [{ name: 'axis', type: AttributeType.INT, i: 0 }];
      writer.emit(owner, 'DequantizeLinear', [`${name}:q`, wScale, wZero], `${name}:dq`, axis);
      writer.emit(owner, 'DequantizeLinear', [`${name}:bias_q`, bScale, bZero], `${name}:bias_dq`, axis);
      replaced.set(name, `${name}:dq`);
      const bias = `${name}:bias_dq`;
      // The main node reads the folded bias (a node without one gains it) and, its batch norm
      // folded away, writes the batch norm's output.
      const bn = step.foldedBatchNorm;
      const folded = {
        ...main,
        inputs: [main.inputs[0]!, name, bias],
        output: bn?.output ?? main.output,
      } as typeof main;
      nodes = [folded, ...nodes.slice(1).filter((n) => n !== bn)];
    }
    for (const node of nodes) {
      writer.node(node, read);
      const p = quantized.get(node.output);
      if (p !== undefined && node.output !== graph.output) qdq(node.output, p, owner);
    }
  }
  return writer.finish();
}

function floatScalarTensor(name: string, value: number): TensorProto & { name: string } {
  const raw = new Uint8Array(4);
  new DataView(raw.buffer).setFloat32(0, value, true);
  return { name, data_type: DataType.FLOAT, dims: [], raw_data: raw };
}

function floatTensor(name: string, values: Float32Array): TensorProto & { name: string } {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, data_type: DataType.FLOAT, dims: [values.length], raw_data: raw };
}

function int32Bytes(values: Int32Array): Uint8Array {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setInt32(i * 4, v, true));
  return raw;
}

/**
 * Imports an ONNX QDQ file (our export, or one quantized the same way) as an int8 network: the
 * float graph the Q/DQ pairs surround, lowered into our steps, with the file's own scales and
 * integers. Every value our int8 steps store must be quantized in the file, and the file may
 * quantize nothing that they keep exact (a value inside a step, but one a permutation away from
 * the step's output at the same scale): otherwise its arithmetic is not ours, and it is refused
 * naming the value.
 */
export function importQdq(bytes: Uint8Array, fileName: string, options: OnnxImportOptions = {}): QuantizedNetwork {
  return importQdqModel(decodeModelProto(bytes, fileName), fileName, options);
}

/** Whether an ONNX model quantizes (has QuantizeLinear or DequantizeLinear nodes). */
export function isQdqModel(model: ModelProto): boolean {
  return (model.graph?.node ?? []).some((n) => n.op_type === 'QuantizeLinear' || n.op_type === 'DequantizeLinear');
}

/** `importQdq` of a model already decoded. */
export function importQdqModel(model: ModelProto, fileName: string, options: OnnxImportOptions = {}): QuantizedNetwork {
  const record: QdqRecord = { values: new Map(), params: new Map() };
  const graph = importOnnxModel(model, fileName, { ...options, qdq: record });
  const fail = (why: string): never => {
    throw new FormatError(`${fileName}: ${why}`);
  };
  if (record.values.size === 0) fail('has no QuantizeLinear → DequantizeLinear pairs: a float model, not an int8 one');
  const steps = lowerForInference(graph);
  const points = quantizationPoints(graph, steps);
  const calibrated = new Map<string, QParams>();
  for (const p of points) {
    const q = record.values.get(p.value);
    if (p.kind === 'calibrated') {
      if (q === undefined)
        fail(
          `value ${showValue(p.value)} is not quantized (no QuantizeLinear → DequantizeLinear), but our int8 steps store it as uint8`,
        );
      calibrated.set(p.value, q!);
    }
  }
  const activations = resolveActivations(points, calibrated);
  const same = (a: QParams, b: QParams): boolean => a.scale === b.scale && a.zeroPoint === b.zeroPoint;
  for (const [value, q] of record.values) {
    const ours = activations.get(value);
    if (ours !== undefined) {
      if (!same(ours, q))
        fail(
          `value ${showValue(value)} is quantized at scale ${q.scale}, zero point ${q.zeroPoint}; our int8 steps store it at its source's ${ours.scale}, ${ours.zeroPoint}`,
        );
      continue;
    }
    // Inside a step: only where a permutation of the step's uint8 output follows (a shuffle).
    const step = steps.find((s) => s.nodes.some((n) => n.output === value));
    const rest = step?.nodes.slice(step.nodes.findIndex((n) => n.output === value) + 1) ?? [];
    const outP = step !== undefined ? activations.get(step.output) : undefined;
    if (outP === undefined || !same(outP, q) || !rest.every((n) => n.op === 'channelShuffle' || n.op === 'flatten')) {
      fail(
        `value ${showValue(value)} is quantized inside one of our fused steps, where our int8 arithmetic keeps it exact`,
      );
    }
  }
  const weights = new Map<string, QuantizedWeights>();
  for (const step of steps) {
    if (!WEIGHTED_KERNELS.includes(step.lowering.kernel)) continue;
    const name = weightName(step);
    const inputScale = activations.get(step.inputs[0]!)!.scale;
    const w = record.params.get(name);
    if (w === undefined || step.foldedBatchNorm !== null) {
      weights.set(name, quantizeWeights(graph, step, inputScale)); // float weights: quantized as ours are
      continue;
    }
    const cOut = graph.shapes.get(name)![0]!;
    if (w.dataType !== DataType.INT8 || w.zeros.some((z) => z !== 0) || (w.axis !== null && w.axis !== 0)) {
      fail(
        `weights ${showValue(name)} must be int8, symmetric (zero point 0), per tensor or per output channel (axis 0)`,
      );
    }
    const scales = w.scales.length === cOut ? w.scales.slice() : new Float32Array(cOut).fill(w.scales[0]!);
    const biasName = step.nodes[0]!.inputs[2];
    const b = biasName === undefined ? undefined : record.params.get(biasName);
    let bias: Int32Array;
    if (biasName === undefined) bias = new Int32Array(cOut);
    else if (
      b !== undefined &&
      b.dataType === DataType.INT32 &&
      b.zeros.every((z) => z === 0) &&
      b.scales.every((s, o) => s === Math.fround(inputScale * scales[o]!))
    ) {
      bias = b.values;
    } else {
      // A float bias, or one at another scale: requantized at ours (its float value is exact in the graph).
      const f = graph.params.get(biasName)!.tensor.data;
      bias = Int32Array.from(f, (v, o) => Math.round(v / (inputScale * scales[o]!)));
    }
    weights.set(name, { weight: Int8Array.from(w.values), scales, bias });
  }
  return { graph, steps, activations, weights };
}
