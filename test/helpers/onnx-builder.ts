/** Hand-written ONNX models for tests: a tiny builder over the ModelProto objects protobufjs encodes. */
import { encodeModelProto } from '../../src/io/onnx/codec.js';
import { AttributeType, type AttributeProto, type NodeProto, type TensorProto } from '../../src/io/onnx/proto.js';
import { Random } from '../../src/tensor/random.js';

export function randomFloats(count: number, seed: number, scale = 1): number[] {
  const rng = new Random(seed);
  return Array.from({ length: count }, () => rng.normal() * scale);
}

export function floatRaw(name: string, dims: number[], values: number[]): TensorProto {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dims, data_type: 1, raw_data: raw };
}

export const floatField = (name: string, dims: number[], values: number[]): TensorProto => ({
  name,
  dims,
  data_type: 1,
  float_data: values,
});

export const int64Field = (name: string, values: number[]): TensorProto => ({
  name,
  dims: [values.length],
  data_type: 7,
  int64_data: values,
});

export function int64Raw(name: string, values: number[]): TensorProto {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { name, dims: [values.length], data_type: 7, raw_data: raw };
}

type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

export function node(
  op: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, AttrValue> = {},
  name?: string,
): NodeProto {
  const attribute: AttributeProto[] = Object.entries(attrs).map(([key, v]) => {
    if (typeof v === 'string') return { name: key, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name: key, type: AttributeType.INTS, ints: v };
    if (typeof v === 'number') return { name: key, type: AttributeType.INT, i: v };
    if ('float' in v) return { name: key, type: AttributeType.FLOAT, f: v.float };
    return { name: key, type: AttributeType.FLOATS, floats: v.floats };
  });
  return { op_type: op, input: inputs, output: outputs, name: name ?? `${op}_${outputs[0]}`, attribute };
}

export function model(opts: {
  opset: number;
  nodes: NodeProto[];
  initializers: TensorProto[];
  input: [string, (number | string)[]];
  output: string;
}): Uint8Array {
  const dims = (shape: (number | string)[]) =>
    shape.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d }));
  return encodeModelProto({
    ir_version: 7,
    opset_import: [{ domain: '', version: opts.opset }],
    producer_name: 'test',
    graph: {
      name: 'test',
      node: opts.nodes,
      initializer: opts.initializers,
      input: [{ name: opts.input[0], type: { tensor_type: { elem_type: 1, shape: { dim: dims(opts.input[1]) } } } }],
      output: [{ name: opts.output, type: { tensor_type: { elem_type: 1 } } }],
    },
  });
}
