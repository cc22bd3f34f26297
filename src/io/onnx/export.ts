/**
 * Graph → ONNX. The exporter reads the same traced graph that the reference executor runs, so what
 * ONNX Runtime computes is what `runGraph` computes. One graph node becomes one ONNX node, except
 * channel shuffle, which ONNX has no operator for: it becomes Reshape → Transpose → Reshape (the
 * form PyTorch exports, and the pattern the importer turns back into one shuffle).
 *
 * The batch axis is dynamic (`dim_param` "N" on the input and output, and every Reshape copies it
 * with 0); the other dimensions are those of the traced input.
 *
 * @example
 * const graph = createModel('shufflenet_v1_g3_0.5x').trace([1, 3, 224, 224]);
 * const bytes = exportOnnx(graph); // a ModelProto, opset 13
 */
import { ShuffleNetError } from '../../errors.js';
import type { Graph, GraphNode } from '../../graph/graph.js';
import { channelShuffleTransposePerm } from '../../kernels/reference/channels.js';
import type { Tensor } from '../../tensor/tensor.js';
import { encodeModelProto } from './codec.js';
import { AttributeType, DataType, type AttributeProto, type NodeProto, type TensorProto } from './proto.js';

export interface OnnxExportOptions {
  /** Opset of the default domain, 13 or later; default 13 (every op we emit is unchanged up to 21). */
  opset?: number;
  /** Name of the dynamic batch dimension; default "N". */
  batchName?: string;
  /** Name of the graph's output; default "logits". */
  outputName?: string;
  /** Recorded as the model's doc_string (e.g. the architecture name). */
  docString?: string;
  /** Extra metadata_props entries. */
  metadata?: Record<string, string>;
  /** More graph outputs: inner values to inspect (an elem type of proto's DataType, a shape with batch first). */
  extraOutputs?: { name: string; elemType: number; shape: readonly number[] }[];
}

const producerName = 'shufflenet';

export function exportOnnx(graph: Graph, options: OnnxExportOptions = {}): Uint8Array {
  const writer = new OnnxWriter(graph, options);
  const used = new Set<string>();
  for (const node of graph.nodes) for (const input of node.inputs) used.add(input);
  for (const [name, param] of graph.params) if (used.has(name)) writer.initializer(floatTensor(name, param.tensor));
  for (const node of graph.nodes) writer.node(node);
  return writer.finish();
}

/**
 * Writes one ONNX model from a graph's nodes: initializers, nodes under unique names, the input and
 * the (renamed) output. `exportOnnx` writes every node as it is; the int8 exporter
 * (src/runtime/quant/qdq.ts) writes nodes with renamed inputs between QuantizeLinear and
 * DequantizeLinear nodes of its own.
 */
export class OnnxWriter {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly nodeNames = new Map<string, number>();
  private readonly opset: number;
  private readonly outputName: string;
  readonly constants: Constants;

  constructor(
    private readonly graph: Graph,
    private readonly options: OnnxExportOptions = {},
  ) {
    this.opset = options.opset ?? 13;
    if (!Number.isInteger(this.opset) || this.opset < 13 || this.opset > 21) {
      throw new ShuffleNetError(`exportOnnx: opset must be an integer from 13 to 21 but is ${this.opset}`);
    }
    this.outputName = options.outputName ?? 'logits';
    this.constants = {
      int64s: (name, values) => this.initializer(int64Tensor(name, values)),
      float: (name, value) => this.initializer(floatScalar(name, value)),
    };
  }

  /** Adds an initializer; returns its name. */
  initializer(t: TensorProto & { name: string }): string {
    this.initializers.push(t);
    return t.name;
  }

  /** One ONNX node named after `owner` (a module path) and its op type. */
  emit(owner: string, opType: string, inputs: string[], output: string, attribute: AttributeProto[] = []): void {
    const rename = (name: string): string => (name === this.graph.output ? this.outputName : name);
    const base = `${owner}/${opType}`;
    const count = this.nodeNames.get(base) ?? 0;
    this.nodeNames.set(base, count + 1);
    this.nodes.push({
      op_type: opType,
      name: count === 0 ? base : `${base}_${count}`,
      input: inputs.map(rename),
      output: [rename(output)],
      attribute,
    });
  }

  /** A graph node as ONNX nodes; `read` renames the values it reads (shapes are still looked up by the node's own names). */
  node(node: GraphNode, read: (value: string) => string = (v) => v): void {
    const owner = node.name || node.op;
    emitNode(
      node,
      this.graph,
      (opType, inputs, output, attributes) => this.emit(owner, opType, inputs.map(read), output, attributes),
      this.constants,
    );
  }

  finish(): Uint8Array {
    const { graph, options } = this;
    const batchName = options.batchName ?? 'N';
    const inputShape = graph.input.shape;
    const outputShape = graph.shapes.get(graph.output)!;
    const dims = (shape: readonly number[]) =>
      shape.map((d, i) => (i === 0 ? { dim_param: batchName } : { dim_value: d }));
    return encodeModelProto({
      ir_version: 7,
      opset_import: [{ domain: '', version: this.opset }],
      producer_name: producerName,
      producer_version: '0.1.0',
      ...(options.docString ? { doc_string: options.docString } : {}),
      metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: 'shufflenet',
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(graph.input.name, dims(inputShape))],
        output: [
          valueInfo(this.outputName, dims(outputShape)),
          ...(options.extraOutputs ?? []).map((o) => valueInfo(o.name, dims(o.shape), o.elemType)),
        ],
      },
    });
  }
}

type Emit = (opType: string, inputs: string[], output: string, attributes?: AttributeProto[]) => void;

/** Adds a constant initializer and returns its name. */
export interface Constants {
  int64s(name: string, values: readonly number[]): string;
  float(name: string, value: number): string;
}

function emitNode(node: GraphNode, graph: Graph, emit: Emit, constants: Constants): void {
  const constant = constants.int64s;
  const [x] = node.inputs as [string];
  switch (node.op) {
    case 'conv2d': {
      const c = node.attrs;
      const w = graph.shapes.get(node.inputs[1]!)!;
      emit('Conv', [...node.inputs], node.output, [
        ints('kernel_shape', [w[2]!, w[3]!]),
        ints('strides', c.stride),
        ints('pads', c.padding), // ONNX order [top, left, bottom, right] is ours
        ints('dilations', c.dilation),
        int('group', c.groups),
      ]);
      return;
    }
    case 'batchNorm':
      emit('BatchNormalization', [...node.inputs], node.output, [float('epsilon', node.attrs.eps)]);
      return;
    case 'relu':
      emit('Relu', [x], node.output);
      return;
    case 'sigmoid':
      emit('Sigmoid', [x], node.output);
      return;
    case 'hardSigmoid':
      emit('HardSigmoid', [x], node.output, [float('alpha', node.attrs.alpha), float('beta', node.attrs.beta)]);
      return;
    case 'hardSwish': {
      // x · HardSigmoid(x): valid at every opset we write (HardSwish itself needs 14).
      const gate = `${node.output}.gate`;
      emit('HardSigmoid', [x], gate, [float('alpha', node.attrs.alpha), float('beta', node.attrs.beta)]);
      emit('Mul', [x, gate], node.output);
      return;
    }
    case 'clip': {
      const lo = constants.float(`${node.output}.min`, node.attrs.min);
      const hi = constants.float(`${node.output}.max`, node.attrs.max);
      emit('Clip', [x, lo, hi], node.output);
      return;
    }
    case 'add':
    case 'broadcastAdd':
      emit('Add', [...node.inputs], node.output);
      return;
    case 'mulChannels': // scale [N, C, 1, 1] broadcasts over H, W
    case 'broadcastMul':
      emit('Mul', [...node.inputs], node.output);
      return;
    case 'maxPool2d':
    case 'avgPool2d': {
      const p = node.attrs;
      const attributes = [ints('kernel_shape', p.kernel), ints('strides', p.stride), ints('pads', p.padding)];
      if (node.op === 'avgPool2d') attributes.push(int('count_include_pad', node.attrs.countIncludePad ? 1 : 0));
      emit(node.op === 'maxPool2d' ? 'MaxPool' : 'AveragePool', [x], node.output, attributes);
      return;
    }
    case 'globalAvgPool':
      emit('GlobalAveragePool', [x], node.output);
      return;
    case 'channelShuffle': {
      // The paper's shuffle: [N, g·n, H, W] → [N, g, n, H, W] → [N, n, g, H, W] → [N, g·n, H, W].
      const [, c, h, w] = graph.shapes.get(x)!;
      const g = node.attrs.groups;
      const split = `${node.output}.split`;
      const swapped = `${node.output}.transposed`;
      emit('Reshape', [x, constant(`${node.output}.split_shape`, [0, g, c! / g, h!, w!])], split);
      emit('Transpose', [split], swapped, [ints('perm', channelShuffleTransposePerm)]);
      emit('Reshape', [swapped, constant(`${node.output}.shape`, [0, c!, h!, w!])], node.output);
      return;
    }
    case 'concat':
      emit('Concat', [...node.inputs], node.output, [int('axis', 1)]);
      return;
    case 'flatten':
      emit('Flatten', [x], node.output, [int('axis', 1)]);
      return;
    case 'linear': // PyTorch's [out, in] weight is B transposed
      emit('Gemm', [...node.inputs], node.output, [int('transB', 1)]);
      return;
    case 'gemm': {
      const g = node.attrs;
      emit('Gemm', [...node.inputs], node.output, [
        float('alpha', g.alpha),
        float('beta', g.beta),
        int('transA', g.transA ? 1 : 0),
        int('transB', g.transB ? 1 : 0),
      ]);
      return;
    }
    case 'matmul':
      emit('MatMul', [...node.inputs], node.output);
      return;
    case 'softmax':
      emit('Softmax', [x], node.output, [int('axis', -1)]);
      return;
    case 'reshape': {
      const shape = node.attrs.shape;
      emit('Reshape', [x, constant(`${node.output}.shape`, [...shape])], node.output);
      return;
    }
    case 'transpose':
      emit('Transpose', [x], node.output, [ints('perm', node.attrs.perm)]);
      return;
    case 'slice': {
      const s = node.attrs;
      emit(
        'Slice',
        [
          x,
          constant(`${node.output}.starts`, [s.start]),
          constant(`${node.output}.ends`, [s.end]),
          constant(`${node.output}.axes`, [s.axis]),
        ],
        node.output,
      );
      return;
    }
    default:
      throw new ShuffleNetError(`exportOnnx: node "${node.name}" has op "${node.op}", which has no ONNX mapping`);
  }
}

export function floatTensor(name: string, t: Tensor): TensorProto & { name: string } {
  const raw = new Uint8Array(t.size * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < t.size; i++) view.setFloat32(i * 4, t.data[i]!, true); // ONNX raw_data is little-endian
  return { name, data_type: DataType.FLOAT, dims: [...t.shape], raw_data: raw };
}

function floatScalar(name: string, value: number): TensorProto & { name: string } {
  return { name, data_type: DataType.FLOAT, dims: [], float_data: [value] };
}

function int64Tensor(name: string, values: readonly number[]): TensorProto & { name: string } {
  return { name, data_type: DataType.INT64, dims: [values.length], int64_data: [...values] };
}

function valueInfo(
  name: string,
  dims: ({ dim_param: string } | { dim_value: number })[],
  elemType: number = DataType.FLOAT,
) {
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim: dims } } } };
}

const ints = (name: string, values: readonly number[]): AttributeProto => ({
  name,
  type: AttributeType.INTS,
  ints: [...values],
});
const int = (name: string, i: number): AttributeProto => ({ name, type: AttributeType.INT, i });
const float = (name: string, f: number): AttributeProto => ({ name, type: AttributeType.FLOAT, f });
