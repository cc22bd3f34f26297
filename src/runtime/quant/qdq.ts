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
import { OnnxWriter, type OnnxExportOptions } from '../../io/onnx/export.js';
import { AttributeType, DataType, type TensorProto } from '../../io/onnx/proto.js';
import { preAddValue, WEIGHTED_KERNELS, weightName, type QParams, type QuantizedNetwork } from './network.js';

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
