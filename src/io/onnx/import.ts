/**
 * ONNX → Graph, for the CNN operator subset (see docs/onnx.md for the table). The result is a
 * `Graph` like the one a traced model gives, so `runGraph`, `withInputShape`, the complexity
 * counter and the fused runtime read it unchanged.
 *
 * Data flow: bytes → ModelProto (protobufjs) → initializers decoded into constants → nodes in file
 * order, each either folded at import time (integer shape arithmetic: Shape, Gather, Unsqueeze,
 * Concat, Div, …, which PyTorch's exporter emits around every `x.size()`) or added to a
 * GraphBuilder as one of our ops → channel-shuffle patterns fused.
 *
 * A symbolic batch (`dim_param`) is imported at batch 1 but tracked: integers computed from it
 * stay symbolic ("N"), and a Reshape that copies the batch is written with 0, so the graph runs at
 * any batch size through `withInputShape`.
 *
 * @example
 * const graph = importOnnx(bytes, 'model.onnx');
 * const logits = runGraph(withInputShape(graph, [4, 3, 224, 224]), input);
 */
import { escapeControls, FormatError, ShuffleNetError } from '../../errors.js';
import { GraphBuilder, type Value } from '../../graph/builder.js';
import type { Graph } from '../../graph/graph.js';
import {
  addOp,
  avgPool2dOp,
  batchNormOp,
  broadcastAddOp,
  broadcastMulOp,
  clipOp,
  concatOp,
  conv2dOp,
  flattenOp,
  gemmOp,
  globalAvgPoolOp,
  linearOp,
  matmulOp,
  maxPool2dOp,
  hardSigmoidOp,
  hardSwishOp,
  maxValueElements,
  mulChannelsOp,
  reluOp,
  reshapeOp,
  resolveReshape,
  sigmoidOp,
  sliceOp,
  softmaxOp,
  transposeOp,
  type OpAttrs,
  type OpDef,
  type OpType,
} from '../../ops/index.js';
import { formatShape, sameShape, type Shape, Tensor } from '../../tensor/tensor.js';
import { Attributes } from './attributes.js';
import { decodeModelProto, int64Value } from './codec.js';
import { DataType, type ModelProto, type NodeProto, type ValueInfoProto } from './proto.js';
import { fuseChannelShuffles } from './shuffle.js';
import { dataTypeName, decodeTensor, type Constant, type Dim } from './tensors.js';

export interface OnnxImportOptions {
  /**
   * The input shape to import at. Default: the shape the file declares, with a symbolic batch
   * taken as 1. Needed when the file leaves other dimensions symbolic.
   */
  inputShape?: Shape;
  /** Turn Reshape → Transpose → Reshape channel shuffles into one channelShuffle op (default true). */
  fuseChannelShuffle?: boolean;
  /**
   * Where a QDQ file's quantization goes: QuantizeLinear → DequantizeLinear pairs on activations
   * become identities whose scales are recorded here, DequantizeLinear of integer initializers
   * becomes their float values with the integers recorded. Without it, a QDQ file is refused (a
   * float import would drop its rounding).
   */
  qdq?: QdqRecord;
}

/** The quantization a QDQ file carries, by value and parameter name of the imported graph. */
export interface QdqRecord {
  /** Activations: the value a QuantizeLinear → DequantizeLinear pair rounds, and its uint8 scale. */
  values: Map<string, { scale: number; zeroPoint: number }>;
  /** Parameters that are DequantizeLinear of integer initializers. */
  params: Map<
    string,
    { values: Int32Array; dataType: number; scales: Float32Array; zeros: Int32Array; axis: number | null }
  >;
}

/** Opsets of the default domain this importer understands. */
const minOpset = 7;
const maxOpset = 21;

/** A name in the ONNX graph: an activation, a constant, or a zero-padded activation awaiting its consumer. */
type Entry =
  | { kind: 'value'; value: Value; batchAxis: number | null }
  /** The uint8 output of a QuantizeLinear: only a DequantizeLinear may read it. */
  | { kind: 'quantized'; value: Value; batchAxis: number | null; scale: number; zeroPoint: number }
  | { kind: 'const'; constant: Constant; name: string; param?: Value }
  | { kind: 'padded'; source: Value; batchAxis: number | null; pads: [number, number, number, number] };

export function importOnnx(bytes: Uint8Array, fileName: string, options: OnnxImportOptions = {}): Graph {
  return importOnnxModel(decodeModelProto(bytes, fileName), fileName, options);
}

/** `importOnnx` of a model already decoded (a loader that also reads its metadata decodes it once). */
export function importOnnxModel(model: ModelProto, fileName: string, options: OnnxImportOptions = {}): Graph {
  const fail = (why: string): never => {
    throw new FormatError(escapeControls(`${fileName}: ${why}`));
  };
  const graphProto = model.graph;
  if (graphProto === undefined || graphProto === null) fail('has no graph (is this an ONNX model file?)');
  const opset = defaultOpset(model.opset_import ?? [], fail);

  // Initializers.
  const entries = new Map<string, Entry>();
  for (const t of graphProto!.initializer ?? []) {
    const name = t.name ?? '';
    if (name === '') fail('has an initializer without a name');
    if (entries.has(name)) fail(`has two initializers named "${name}"`);
    const constant = decodeTensor(t, (why) => fail(`initializer "${name}" ${why}`));
    entries.set(name, { kind: 'const', constant, name });
  }

  // The one real input (older files also list initializers as inputs).
  const inputs = (graphProto!.input ?? []).filter((i) => !entries.has(i.name ?? ''));
  if (inputs.length !== 1) {
    fail(
      `has ${inputs.length} graph inputs (${inputs.map((i) => `"${i.name}"`).join(', ')}); exactly one image input is supported`,
    );
  }
  const { name: inputName, shape: inputShape, symbolicBatch } = inputSpec(inputs[0]!, options.inputShape, fail);
  const builder = new GraphBuilder(inputShape, inputName);
  entries.set(inputName, { kind: 'value', value: builder.input, batchAxis: 0 });

  const outputs = graphProto!.output ?? [];
  if (outputs.length !== 1) fail(`has ${outputs.length} graph outputs; exactly one is supported`);
  const outputName = outputs[0]!.name ?? '';

  const nodes = graphProto!.node ?? [];
  const uses = new Map<string, number>();
  for (const node of nodes) for (const i of node.input ?? []) uses.set(i, (uses.get(i) ?? 0) + 1);
  uses.set(outputName, (uses.get(outputName) ?? 0) + 1);

  nodes.forEach((node, index) => {
    const op = node.op_type ?? '';
    const label = node.name || `${op || 'node'}_${index}`;
    const where = `node "${label}" (${op || 'no op_type'})`;
    try {
      if (node.domain && node.domain !== 'ai.onnx') {
        throw new FormatError(`is in operator domain "${node.domain}", which is not supported`);
      }
      const handler = handlers[op];
      if (handler === undefined) {
        throw new FormatError(
          `uses operator ${op}, which is not supported (supported: ${Object.keys(handlers).sort().join(', ')})`,
        );
      }
      handler(new NodeContext(node, label, opset, entries, builder, symbolicBatch, uses, options.qdq));
    } catch (e) {
      if (!(e instanceof ShuffleNetError)) throw e;
      const message = e.message.startsWith(`${label}: `) ? e.message.slice(label.length + 2) : e.message;
      throw new FormatError(
        escapeControls(`${fileName}: ${where} ${e instanceof FormatError ? '' : 'is invalid: '}${message}`),
      );
    }
  });

  const result = entries.get(outputName);
  if (result === undefined) fail(`graph output "${outputName}" is not computed by any node`);
  if (result!.kind !== 'value') fail(`graph output "${outputName}" is a constant, not computed from the input`);
  const graph = builder.finish((result as { value: Value }).value);
  return options.fuseChannelShuffle === false ? graph : fuseChannelShuffles(graph);
}

function defaultOpset(imports: readonly { domain?: string; version?: unknown }[], fail: (w: string) => never): number {
  const entry = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (entry === undefined) fail('imports no opset of the default ONNX domain');
  const version = int64Value(entry!.version as never);
  if (version === null || version < minOpset || version > maxOpset) {
    fail(`uses opset ${version ?? '(out of range)'}; opsets ${minOpset} to ${maxOpset} are supported`);
  }
  return version!;
}

function inputSpec(
  info: ValueInfoProto,
  override: Shape | undefined,
  fail: (w: string) => never,
): { name: string; shape: number[]; symbolicBatch: boolean } {
  const name = info.name ?? '';
  if (name === '') fail('graph input has no name');
  const tensorType = info.type?.tensor_type;
  if (tensorType === undefined || tensorType === null) fail(`input "${name}" is not a tensor`);
  if ((tensorType!.elem_type ?? 0) !== 1) {
    fail(`input "${name}" has element type ${dataTypeName(tensorType!.elem_type)}; FLOAT is supported`);
  }
  const dims = tensorType!.shape?.dim ?? [];
  if (dims.length !== 4) fail(`input "${name}" has rank ${dims.length}; an image input [N, C, H, W] is expected`);
  const declared = dims.map((d) =>
    d.dim_value !== undefined && d.dim_value !== null ? int64Value(d.dim_value) : null,
  );
  const symbolicBatch = declared[0] === null || declared[0] === 0;
  if (override !== undefined) {
    if (override.length !== 4 || !override.every((d) => Number.isInteger(d) && d > 0)) {
      fail(`the requested input shape ${formatShape(override)} is not [N, C, H, W]`);
    }
    declared.forEach((d, i) => {
      if (i > 0 && d !== null && d > 0 && d !== override[i]) {
        fail(
          `input "${name}" is declared ${formatDims(declared)} but the shape ${formatShape(override)} was requested`,
        );
      }
    });
    return { name, shape: [...override], symbolicBatch };
  }
  const shape = declared.map((d, i) => {
    if (d !== null && d > 0) return d;
    if (i === 0) return 1;
    return fail(
      `input "${name}" has a symbolic dimension ${i} (${formatDims(declared)}); pass the input shape to import it`,
    );
  });
  // The graph builder bounds every value (maxValueElements); the input is refused here, with its name.
  if (shape.reduce((a, b) => a * b, 1) > maxValueElements) {
    fail(`input "${name}" declares a shape ${formatShape(shape)} of more than ${maxValueElements} values`);
  }
  return { name, shape, symbolicBatch };
}

const formatDims = (dims: readonly (number | null)[]): string => `[${dims.map((d) => d ?? '?').join(', ')}]`;

// ------------------------------------------------------------------------------------------------
// Per-node context: typed access to inputs and attributes, and a way to add ops.

class NodeContext {
  readonly attrs: Attributes;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];

  constructor(
    readonly node: NodeProto,
    readonly label: string,
    readonly opset: number,
    private readonly entries: Map<string, Entry>,
    private readonly builder: GraphBuilder,
    readonly symbolicBatch: boolean,
    private readonly uses: ReadonlyMap<string, number>,
    readonly qdq?: QdqRecord,
  ) {
    this.attrs = new Attributes(node.attribute, (why) => this.fail(why));
    this.inputs = node.input ?? [];
    this.outputs = node.output ?? [];
    if (this.outputs.length === 0 || this.outputs[0] === '') this.fail('has no output');
    for (const o of this.outputs) if (o !== '' && entries.has(o)) this.fail(`redefines "${o}"`);
  }

  fail(why: string): never {
    throw new FormatError(why);
  }

  /** Number of readers of the node's first output (nodes and the graph output). */
  get outputUses(): number {
    return this.uses.get(this.outputs[0]!) ?? 0;
  }

  /** The entry of input i, or undefined when it is absent or empty (optional inputs). */
  entry(i: number): Entry | undefined {
    const name = this.inputs[i];
    if (name === undefined || name === '') return undefined;
    const e = this.entries.get(name);
    if (e === undefined) this.fail(`reads "${name}" before any node computes it`);
    return e;
  }

  requireInputs(min: number, max = min): void {
    const n = this.inputs.length;
    if (n < min || n > max) {
      this.fail(`has ${n} inputs but ${min === max ? min : `${min} to ${max}`} are expected`);
    }
  }

  /** Input i as a graph value: an activation, or a constant registered as a parameter. */
  value(i: number, trainable = true): { value: Value; batchAxis: number | null } {
    const e = this.entry(i);
    if (e === undefined) this.fail(`input ${i} is missing`);
    if (e!.kind === 'padded')
      this.fail('reads the output of a Pad, which is only supported before Conv or AveragePool');
    if (e!.kind === 'quantized')
      this.fail('reads the uint8 output of a QuantizeLinear, which only DequantizeLinear may read');
    if (e!.kind === 'value') return e!;
    const c = e as Extract<Entry, { kind: 'const' }>;
    if (c.param === undefined) {
      if (c.constant.kind === 'int' && c.constant.data.some((d) => d === 'N')) {
        this.fail(`uses "${c.name}", which depends on the batch size, as a tensor`);
      }
      const data = c.constant.kind === 'float' ? c.constant.data : Float32Array.from(c.constant.data as number[]);
      c.param = this.builder.param(c.name, new Tensor(c.constant.shape, data), trainable);
    }
    return { value: c.param, batchAxis: null };
  }

  /** Input i as an activation (not a constant). */
  activation(i: number): { value: Value; batchAxis: number | null } {
    const e = this.entry(i);
    if (e?.kind === 'const') this.fail(`input ${i} ("${this.inputs[i]}") must be computed from the graph input`);
    return this.value(i);
  }

  constant(i: number): Constant | undefined {
    const e = this.entry(i);
    if (e === undefined) return undefined;
    if (e.kind !== 'const') this.fail(`input ${i} ("${this.inputs[i]}") must be a constant`);
    return (e as Extract<Entry, { kind: 'const' }>).constant;
  }

  /** Input i as a list of integers (shapes, axes, pads); symbolic batch elements are allowed. */
  ints(i: number, what: string): Dim[] | undefined {
    const c = this.constant(i);
    if (c === undefined) return undefined;
    if (c.kind === 'float') {
      if (!c.data.every((v) => Number.isInteger(v))) this.fail(`${what} must be integers`);
      return [...c.data];
    }
    return [...c.data];
  }

  /** Like `ints`, but every element must be a number. */
  numbers(i: number, what: string): number[] | undefined {
    const v = this.ints(i, what);
    if (v?.some((d) => d === 'N')) this.fail(`${what} depends on the batch size, which is not supported here`);
    return v as number[] | undefined;
  }

  /** The scalar value of a constant input (Clip's min and max). */
  scalar(i: number, what: string): number | undefined {
    const c = this.constant(i);
    if (c === undefined) return undefined;
    if (c.data.length !== 1) this.fail(`${what} must be a scalar but has shape ${formatShape(c.shape)}`);
    const v = c.data[0]!;
    if (v === 'N') this.fail(`${what} depends on the batch size`);
    return v as number;
  }

  /** Adds one of our ops and binds the node's first output to its result. */
  apply<T extends OpType>(
    op: OpDef<T>,
    inputs: readonly Value[],
    attrs: OpAttrs[T],
    batchAxis: number | null,
    output = 0,
  ): Value {
    const value = this.builder.apply(op, inputs, attrs, this.label); // bounds the value's size too
    this.bind(output, { kind: 'value', value, batchAxis });
    return value;
  }

  bind(output: number, entry: Entry): void {
    const name = this.outputs[output];
    if (name === undefined || name === '') return;
    this.entries.set(name, entry);
  }

  bindConstant(output: number, constant: Constant): void {
    this.bind(output, { kind: 'const', constant, name: this.outputs[output] ?? '' });
  }

  /** Refuses extra outputs that a consumer reads (e.g. MaxPool's Indices, BatchNorm's training stats). */
  singleOutput(): void {
    for (let i = 1; i < this.outputs.length; i++) {
      if (this.outputs[i] && (this.uses.get(this.outputs[i]!) ?? 0) > 0) {
        this.fail(`output ${i} ("${this.outputs[i]}") is read by another node; only the first output is supported`);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Operator handlers.

type Handler = (n: NodeContext) => void;

function spatialAttrs(n: NodeContext, kernel: readonly number[]) {
  const autoPad = n.attrs.string('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') {
    n.fail(`has auto_pad ${autoPad}, which is not supported; export with explicit pads`);
  }
  const pads = autoPad === 'VALID' ? [0, 0, 0, 0] : n.attrs.ints('pads', [0, 0, 0, 0])!;
  const strides = n.attrs.ints('strides', [1, 1])!;
  const dilations = n.attrs.ints('dilations', [1, 1])!;
  if (kernel.length !== 2 || pads.length !== 4 || strides.length !== 2 || dilations.length !== 2) {
    n.fail(
      `must be 2-D: kernel [${kernel.join(', ')}], pads [${pads.join(', ')}], strides [${strides.join(', ')}], ` +
        `dilations [${dilations.join(', ')}]`,
    );
  }
  return { padding: quad(pads), stride: pair(strides), dilation: pair(dilations) };
}

// The lengths were checked above: copy into the fixed-length tuples that the ops' attributes hold.
const pair = (v: readonly number[]): [number, number] => [v[0]!, v[1]!];
const quad = (v: readonly number[]): [number, number, number, number] => [v[0]!, v[1]!, v[2]!, v[3]!];

/** Zero padding of a preceding Pad, to fold into this node's padding. */
function takePadded(n: NodeContext): {
  x: Value;
  batchAxis: number | null;
  extra: [number, number, number, number] | null;
} {
  const e = n.entry(0);
  if (e?.kind === 'padded') return { x: e.source, batchAxis: e.batchAxis, extra: e.pads };
  const { value, batchAxis } = n.activation(0);
  return { x: value, batchAxis, extra: null };
}

const addPads = (a: readonly number[], b: readonly number[]) =>
  a.map((v, i) => v + b[i]!) as [number, number, number, number];

function poolHandler(kind: 'max' | 'average'): Handler {
  return (n) => {
    n.requireInputs(1);
    n.singleOutput();
    const kernel = n.attrs.ints('kernel_shape', null);
    if (kernel === null) n.fail('has no kernel_shape');
    const s = spatialAttrs(n, kernel!);
    if (s.dilation.some((d) => d !== 1)) n.fail(`has dilations [${s.dilation.join(', ')}]; only 1 is supported`);
    const { x, batchAxis, extra } = takePadded(n);
    const attrs = { kernel: pair(kernel!), stride: s.stride, padding: s.padding };
    // ceil_mode: the last, partial window is a window over extra bottom/right padding, which a max
    // pool ignores and an average pool that does not count padding ignores too.
    const ceil = ceilModePadding(x.shape, attrs, n.attrs.int('ceil_mode', 0) !== 0);
    if (ceil !== null) {
      if (kind === 'average' && n.attrs.int('count_include_pad', 0) !== 0) {
        n.fail(
          'has ceil_mode=1 with count_include_pad=1 (what the partial window divides by differs between runtimes); not supported',
        );
      }
      attrs.padding = addPads(attrs.padding, ceil);
    }
    if (kind === 'max') {
      if (extra !== null) n.fail('follows a zero Pad, which a max pool would see as values; not supported');
      n.apply(maxPool2dOp, [x], attrs, batchAxis);
      return;
    }
    let countIncludePad = n.attrs.int('count_include_pad', 0) !== 0;
    if (extra !== null) {
      // The zeros of a Pad are real values: they count in the divisor whatever the attribute says,
      // which is countIncludePad over the combined padding when the pool pads nothing itself.
      if (s.padding.some((p) => p !== 0) && !countIncludePad) {
        n.fail('follows a zero Pad and pads itself without counting padding; not supported');
      }
      attrs.padding = addPads(s.padding, extra);
      countIncludePad = true;
    }
    n.apply(avgPool2dOp, [x], { ...attrs, countIncludePad }, batchAxis);
  };
}

/**
 * The bottom/right padding that makes a floor-mode pool give ceil mode's output (PyTorch's and
 * onnxruntime's rule: a window that would start in the bottom/right padding is dropped), or null
 * when ceil mode changes nothing.
 */
function ceilModePadding(
  x: Shape,
  a: { kernel: readonly [number, number]; stride: readonly [number, number]; padding: readonly number[] },
  ceil: boolean,
): [number, number, number, number] | null {
  if (!ceil || x.length !== 4) return null;
  const extra = [0, 1].map((axis) => {
    const size = x[2 + axis]!;
    const [k, s] = [a.kernel[axis]!, a.stride[axis]!];
    const [before, after] = [a.padding[axis]!, a.padding[axis + 2]!];
    const span = size + before + after - k;
    if (span < 0) return 0; // no window at all: inferShape says so
    let out = Math.ceil(span / s) + 1;
    if ((out - 1) * s >= size + before) out--;
    return Math.max(0, (out - 1) * s + k - (size + before + after));
  });
  return extra[0] === 0 && extra[1] === 0 ? null : [0, 0, extra[0]!, extra[1]!];
}

function reduceAxes(n: NodeContext): number[] | null {
  if (n.opset >= 18 && n.inputs.length > 1) return n.numbers(1, 'axes') ?? null;
  return n.attrs.ints('axes', null);
}

const normalizeAxis = (n: NodeContext, axis: number, rank: number): number => {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) n.fail(`axis ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
};

/** Integer arithmetic on constants (PyTorch's exporter computes every `x.size() // g` this way). */
function intArithmetic(n: NodeContext, a: Constant, b: Constant, op: string): Constant {
  const size = Math.max(a.data.length, b.data.length);
  if (!(a.data.length === size || a.data.length === 1) || !(b.data.length === size || b.data.length === 1)) {
    n.fail(`cannot combine constants of shapes ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  }
  const shape = a.data.length >= b.data.length ? a.shape : b.shape;
  if (a.kind === 'float' || b.kind === 'float') {
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const x = Number(a.data[a.data.length === 1 ? 0 : i]);
      const y = Number(b.data[b.data.length === 1 ? 0 : i]);
      if (Number.isNaN(x) || Number.isNaN(y)) n.fail('combines a batch-dependent integer with floats');
      data[i] = op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : x / y;
    }
    return { kind: 'float', shape, data };
  }
  const data: Dim[] = [];
  for (let i = 0; i < size; i++) {
    const x = a.data[a.data.length === 1 ? 0 : i]!;
    const y = b.data[b.data.length === 1 ? 0 : i]!;
    if (x === 'N' || y === 'N') {
      const other = x === 'N' ? y : x;
      const identity =
        (op === 'Mul' && other === 1) || (op === 'Div' && y === 1) || ((op === 'Add' || op === 'Sub') && y === 0);
      if (!identity || (x === 'N' && y === 'N')) n.fail(`computes ${op} on the batch size, which is not supported`);
      data.push('N');
      continue;
    }
    if (op === 'Div' && y === 0) n.fail('divides an integer by zero');
    data.push(op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : Math.trunc(x / y));
  }
  return { kind: 'int', shape, data };
}

/** Add/Sub/Mul/Div: folded on constants; Add and Mul on activations become graph ops. */
function binaryHandler(op: 'Add' | 'Sub' | 'Mul' | 'Div'): Handler {
  return (n) => {
    n.requireInputs(2);
    const a = n.entry(0);
    const b = n.entry(1);
    if (a?.kind === 'const' && b?.kind === 'const') {
      n.bindConstant(0, intArithmetic(n, a.constant, b.constant, op));
      return;
    }
    if (op === 'Sub' || op === 'Div') n.fail(`${op} of activations is not supported (only on constants)`);
    combine(n, op as 'Add' | 'Mul', n.value(0), n.value(1));
  };
}

type Operand = { value: Value; batchAxis: number | null };

/** Adds or multiplies two graph values with the most specific op that is valid at every batch size. */
function combine(n: NodeContext, op: 'Add' | 'Mul', x: Operand, y: Operand): Operand {
  const xs = x.value.shape;
  const ys = y.value.shape;
  const rank = Math.max(xs.length, ys.length);
  const batchAxis =
    x.batchAxis !== null
      ? x.batchAxis + rank - xs.length
      : y.batchAxis !== null
        ? y.batchAxis + rank - ys.length
        : null;
  // The same-shape and per-channel forms hold at every batch size only when both operands carry
  // the batch on axis 0 (at the import batch of 1, a [1, C, 1, 1] constant would look the same).
  const bothBatched = x.batchAxis === 0 && y.batchAxis === 0;
  const apply = (
    def: OpDef<'add' | 'broadcastAdd' | 'mulChannels' | 'broadcastMul'>,
    a: Operand,
    b: Operand,
  ): Operand => ({
    value: n.apply(def, [a.value, b.value], {}, batchAxis),
    batchAxis,
  });
  if (op === 'Add') {
    const same = sameShape(xs, ys) && (bothBatched || (x.batchAxis === null && y.batchAxis === null));
    return apply(same ? addOp : broadcastAddOp, x, y);
  }
  // x [N, C, H, W] · s [N, C, 1, 1] is squeeze-and-excitation's rescale, which the runtime knows.
  const isChannelScale = (p: Shape, q: Shape) => bothBatched && p.length === 4 && sameShape(q, [p[0]!, p[1]!, 1, 1]);
  if (isChannelScale(xs, ys)) return apply(mulChannelsOp, x, y);
  if (isChannelScale(ys, xs)) return apply(mulChannelsOp, y, x);
  return apply(broadcastMulOp, x, y);
}

/** Reshape of a constant: same data, new shape. */
/** A constant reshaped by the one reshape rule (0 copies, one −1 is inferred): `resolveReshape`. */
function reshapeConstant(c: Constant, target: readonly number[]): Constant {
  return { ...c, shape: resolveReshape(c.shape, target) };
}

const handlers: Record<string, Handler> = {
  Conv(n) {
    n.requireInputs(2, 3);
    const { x, batchAxis, extra } = takePadded(n);
    const w = n.value(1).value;
    if (w.shape.length !== 4) n.fail(`weight has shape ${formatShape(w.shape)}; only 2-D convolution is supported`);
    const kernel = n.attrs.ints('kernel_shape', [w.shape[2]!, w.shape[3]!])!;
    if (kernel[0] !== w.shape[2] || kernel[1] !== w.shape[3]) {
      n.fail(`kernel_shape [${kernel.join(', ')}] does not match the weight ${formatShape(w.shape)}`);
    }
    const s = spatialAttrs(n, kernel);
    const inputs = [x, w];
    if (n.entry(2) !== undefined) inputs.push(n.value(2).value);
    const padding = extra === null ? s.padding : addPads(s.padding, extra);
    n.apply(conv2dOp, inputs, { ...s, padding, groups: n.attrs.int('group', 1) }, batchAxis);
  },

  BatchNormalization(n) {
    n.requireInputs(5);
    n.singleOutput();
    if (n.attrs.int('training_mode', 0) !== 0) n.fail('has training_mode=1; only inference is supported');
    if (n.opset < 9 && n.attrs.int('spatial', 1) !== 1) n.fail('has spatial=0, which is not supported');
    const { value, batchAxis } = n.activation(0);
    const stats = [1, 2, 3, 4].map((i) => n.value(i, i <= 2).value);
    n.apply(batchNormOp, [value, ...stats], { eps: n.attrs.float('epsilon', 1e-5) }, batchAxis);
  },

  Relu(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.value(0);
    n.apply(reluOp, [value], {}, batchAxis);
  },

  Sigmoid(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.value(0);
    n.apply(sigmoidOp, [value], {}, batchAxis);
  },

  HardSigmoid(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.value(0);
    const attrs = { alpha: n.attrs.float('alpha', 0.2), beta: n.attrs.float('beta', 0.5) };
    n.apply(hardSigmoidOp, [value], attrs, batchAxis);
  },

  HardSwish(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.value(0);
    n.apply(hardSwishOp, [value], { alpha: 1 / 6, beta: 0.5 }, batchAxis);
  },

  Clip(n) {
    n.requireInputs(1, 3);
    const { value, batchAxis } = n.value(0);
    let min: number;
    let max: number;
    if (n.opset < 11) {
      min = n.attrs.float('min', -3.4028234663852886e38);
      max = n.attrs.float('max', 3.4028234663852886e38);
    } else {
      min = n.scalar(1, 'min') ?? -Infinity;
      max = n.scalar(2, 'max') ?? Infinity;
    }
    n.apply(clipOp, [value], { min, max }, batchAxis);
  },

  MaxPool: poolHandler('max'),
  AveragePool: poolHandler('average'),

  GlobalAveragePool(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.activation(0);
    n.apply(globalAvgPoolOp, [value], {}, batchAxis);
  },

  ReduceMean(n) {
    n.requireInputs(1, 2);
    const { value, batchAxis } = n.activation(0);
    const rank = value.shape.length;
    const axes = (reduceAxes(n) ?? []).map((a) => normalizeAxis(n, a, rank)).sort();
    if (rank !== 4 || axes.length !== 2 || axes[0] !== 2 || axes[1] !== 3) {
      n.fail(`reduces axes [${axes.join(', ')}] of ${formatShape(value.shape)}; only the spatial mean is supported`);
    }
    if (n.attrs.int('keepdims', 1) !== 0) {
      n.apply(globalAvgPoolOp, [value], {}, batchAxis);
      return;
    }
    const pooled = n.apply(globalAvgPoolOp, [value], {}, batchAxis);
    n.apply(flattenOp, [pooled], {}, batchAxis);
  },

  Concat(n) {
    if (n.inputs.length < 1) n.fail('has no inputs');
    const all = n.inputs.map((_, i) => n.entry(i));
    if (all.every((e) => e?.kind === 'const')) {
      // Shape arithmetic: concatenation of 1-D integer constants.
      const parts = all.map((e) => (e as Extract<Entry, { kind: 'const' }>).constant);
      if (parts.some((c) => c.shape.length !== 1 || c.kind !== 'int')) {
        n.fail('concatenates constants other than 1-D integer lists');
      }
      const data = parts.flatMap((c) => [...(c.data as Dim[])]);
      n.bindConstant(0, { kind: 'int', shape: [data.length], data });
      return;
    }
    const values = n.inputs.map((_, i) => n.value(i));
    const rank = values[0]!.value.shape.length;
    const axis = normalizeAxis(n, n.attrs.int('axis', 1), rank);
    if (rank !== 4 || axis !== 1)
      n.fail(`concatenates along axis ${axis} of rank ${rank}; only channels (axis 1 of 4) are supported`);
    n.apply(
      concatOp,
      values.map((v) => v.value),
      {},
      values[0]!.batchAxis,
    );
  },

  Flatten(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.activation(0);
    const axis = normalizeAxis(n, n.attrs.int('axis', 1), Math.max(value.shape.length, 1));
    if (axis !== 1) n.fail(`has axis ${axis}; only axis 1 is supported`);
    n.apply(flattenOp, [value], {}, batchAxis === 0 ? 0 : null);
  },

  Gemm(n) {
    n.requireInputs(2, 3);
    const a = n.activation(0);
    const b = n.value(1).value;
    const alpha = n.attrs.float('alpha', 1);
    const beta = n.attrs.float('beta', 1);
    const transA = n.attrs.int('transA', 0) !== 0;
    const transB = n.attrs.int('transB', 0) !== 0;
    const c = n.entry(2) === undefined ? undefined : n.value(2).value;
    const batchAxis = !transA && a.batchAxis === 0 ? 0 : null;
    // PyTorch's Linear: the fused runtime knows `linear`.
    if (
      alpha === 1 &&
      (beta === 1 || c === undefined) &&
      !transA &&
      transB &&
      (c === undefined || c.shape.length === 1)
    ) {
      n.apply(linearOp, c ? [a.value, b, c] : [a.value, b], {}, batchAxis);
      return;
    }
    n.apply(gemmOp, c ? [a.value, b, c] : [a.value, b], { alpha, beta, transA, transB }, batchAxis);
  },

  MatMul(n) {
    n.requireInputs(2);
    const a = n.value(0);
    const b = n.value(1);
    const rank = a.value.shape.length;
    n.apply(matmulOp, [a.value, b.value], {}, a.batchAxis !== null && a.batchAxis < rank - 1 ? a.batchAxis : null);
  },

  Softmax(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.activation(0);
    const rank = value.shape.length;
    const axis = normalizeAxis(n, n.attrs.int('axis', n.opset >= 13 ? -1 : 1), rank);
    if (axis !== rank - 1) n.fail(`has axis ${axis} of rank ${rank}; only the last axis is supported`);
    n.apply(softmaxOp, [value], {}, batchAxis);
  },

  Reshape(n) {
    n.requireInputs(2);
    const target = n.ints(1, 'shape');
    if (target === undefined) n.fail('has no shape');
    if (n.attrs.int('allowzero', 0) !== 0 && target!.includes(0)) n.fail('has allowzero=1 with a 0 in its shape');
    const data = n.entry(0);
    if (data?.kind === 'const') {
      if (target!.includes('N')) n.fail('reshapes a constant by the batch size');
      n.bindConstant(0, reshapeConstant(data.constant, target as number[]));
      return;
    }
    const { value, batchAxis } = n.activation(0);
    // The batch size appears in the target where PyTorch wrote `x.size(0)`: copying it (0) keeps the
    // graph valid for every batch; elsewhere it is the one dimension left to infer (-1).
    const symbols = target!.filter((d) => d === 'N').length;
    let outBatch: number | null = null;
    const shape = target!.map((d, i) => {
      if (d !== 'N') return d;
      outBatch = i;
      if (i === batchAxis) return 0;
      if (symbols > 1 || target!.includes(-1)) n.fail('uses the batch size in more than one place');
      return -1;
    });
    if (outBatch === null && batchAxis === 0 && shape[0] === 0) outBatch = 0;
    if (outBatch === null && batchAxis === 0 && shape[0] === -1) outBatch = 0;
    n.apply(reshapeOp, [value], { shape }, outBatch);
  },

  Transpose(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.activation(0);
    const rank = value.shape.length;
    const perm = n.attrs.ints('perm', null) ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    n.apply(transposeOp, [value], { perm }, batchAxis === null ? null : perm.indexOf(batchAxis));
  },

  Slice(n) {
    const data = n.entry(0);
    let starts: Dim[];
    let ends: Dim[];
    let axes: number[] | null;
    let steps: number[] | null;
    if (n.opset < 10) {
      n.requireInputs(1);
      starts = n.attrs.ints('starts', null) ?? n.fail('has no starts');
      ends = n.attrs.ints('ends', null) ?? n.fail('has no ends');
      axes = n.attrs.ints('axes', null);
      steps = null;
    } else {
      n.requireInputs(3, 5);
      starts = n.ints(1, 'starts')!;
      ends = n.ints(2, 'ends')!;
      axes = n.numbers(3, 'axes') ?? null;
      steps = n.numbers(4, 'steps') ?? null;
    }
    if (starts.length !== ends.length || (axes !== null && axes.length !== starts.length)) {
      n.fail('has starts, ends and axes of different lengths');
    }
    if (steps !== null && steps.some((s) => s !== 1)) n.fail(`has steps [${steps.join(', ')}]; only 1 is supported`);
    const big = Number.MAX_SAFE_INTEGER;
    const resolve = (d: Dim) => (d === 'N' ? big : d); // slicing to the batch size is to the end
    if (data?.kind === 'const') {
      // Shape arithmetic on a 1-D integer list.
      const c = data.constant;
      if (c.shape.length !== 1 || starts.length !== 1) n.fail('slices a constant other than a 1-D list');
      const length = c.shape[0]!;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + length : v, 0), length);
      const s = clamp(resolve(starts[0]!));
      const e = Math.max(clamp(resolve(ends[0]!)), s);
      const values = [...c.data].slice(s, e);
      n.bindConstant(
        0,
        c.kind === 'int'
          ? { kind: 'int', shape: [values.length], data: values as Dim[] }
          : { kind: 'float', shape: [values.length], data: Float32Array.from(values as number[]) },
      );
      return;
    }
    let current = n.activation(0);
    const rank = current.value.shape.length;
    starts.forEach((start, k) => {
      const axis = normalizeAxis(n, axes?.[k] ?? k, rank);
      if (start === 'N') n.fail('starts a slice at the batch size');
      const attrs = { axis, start: start as number, end: resolve(ends[k]!) };
      // Intermediate results of a multi-axis slice are bound to the output and then replaced.
      current = { value: n.apply(sliceOp, [current.value], attrs, current.batchAxis), batchAxis: current.batchAxis };
    });
  },

  Split(n) {
    n.requireInputs(1, 2);
    const { value, batchAxis } = n.activation(0);
    const rank = value.shape.length;
    const axis = normalizeAxis(n, n.attrs.int('axis', 0), rank);
    const dim = value.shape[axis]!;
    let sizes = n.opset >= 13 ? n.numbers(1, 'split') : n.attrs.ints('split', null);
    const count = n.outputs.length;
    if (sizes === undefined || sizes === null) {
      if (dim % count !== 0) n.fail(`cannot split ${dim} into ${count} equal parts`);
      sizes = new Array<number>(count).fill(dim / count);
    }
    if (sizes.length !== count || sizes.some((s) => s < 0) || sizes.reduce((a, b) => a + b, 0) !== dim) {
      n.fail(
        `split sizes [${sizes.join(', ')}] do not divide axis ${axis} of ${formatShape(value.shape)} into ${count}`,
      );
    }
    let start = 0;
    sizes.forEach((size, i) => {
      n.apply(sliceOp, [value], { axis, start, end: start + size }, batchAxis, i);
      start += size;
    });
  },

  Pad(n) {
    n.requireInputs(1, 4);
    const mode = n.attrs.string('mode', 'constant');
    const pads = n.opset >= 11 ? n.numbers(1, 'pads') : n.attrs.ints('pads', null);
    const value = n.opset >= 11 ? (n.scalar(2, 'constant_value') ?? 0) : n.attrs.float('value', 0);
    if (n.opset >= 18 && n.entry(3) !== undefined) n.fail('has an axes input, which is not supported');
    const x = n.activation(0);
    if (mode !== 'constant' || value !== 0)
      n.fail(`pads with mode ${mode} and value ${value}; only zero padding is supported`);
    if (!pads || pads.length !== 8 || x.value.shape.length !== 4) n.fail('must pad a 4-D tensor');
    const [n0, c0, t, l, n1, c1, b, r] = pads!;
    if (n0 || c0 || n1 || c1 || [t, l, b, r].some((p) => p! < 0)) {
      n.fail(`pads [${pads!.join(', ')}]; only non-negative padding of height and width is supported`);
    }
    // The padding is folded into the Conv or AveragePool that reads it (checked there).
    n.bind(0, { kind: 'padded', source: x.value, batchAxis: x.batchAxis, pads: [t!, l!, b!, r!] });
  },

  // ---- integer shape arithmetic, folded at import time -----------------------------------------

  Constant(n) {
    n.requireInputs(0);
    const t = n.attrs.tensor('value');
    if (t !== undefined) {
      n.bindConstant(
        0,
        decodeTensor(t, (why) => n.fail(`value ${why}`)),
      );
      return;
    }
    const floats = n.attrs.has('value_float') ? [n.attrs.float('value_float', 0)] : n.attrs.floats('value_floats');
    if (floats !== null) {
      const scalar = n.attrs.has('value_float');
      n.bindConstant(0, { kind: 'float', shape: scalar ? [] : [floats.length], data: Float32Array.from(floats) });
      return;
    }
    const ints = n.attrs.has('value_int') ? [n.attrs.int('value_int', 0)] : n.attrs.ints('value_ints', null);
    if (ints !== null) {
      n.bindConstant(0, { kind: 'int', shape: n.attrs.has('value_int') ? [] : [ints.length], data: ints });
      return;
    }
    n.fail('has no value attribute of a supported kind');
  },

  Shape(n) {
    n.requireInputs(1);
    const { value, batchAxis } = n.activation(0);
    const rank = value.shape.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const start = clamp(n.attrs.int('start', 0));
    const end = clamp(n.attrs.int('end', rank));
    const dims: Dim[] = value.shape.map((d, i) => (i === batchAxis && n.symbolicBatch ? 'N' : d));
    const data = dims.slice(start, Math.max(start, end));
    n.bindConstant(0, { kind: 'int', shape: [data.length], data });
  },

  Gather(n) {
    n.requireInputs(2);
    const c = n.constant(0);
    const indices = n.numbers(1, 'indices');
    if (c === undefined || indices === undefined) n.fail('needs data and indices');
    if (c!.shape.length > 1 || n.attrs.int('axis', 0) !== 0) n.fail('gathers from something other than a 1-D list');
    const length = c!.data.length;
    const picked = indices!.map((i) => {
      if (i < -length || i >= length) n.fail(`index ${i} is out of range for ${length} elements`);
      return c!.data[i < 0 ? i + length : i]!;
    });
    const shape = n.constant(1)!.shape;
    n.bindConstant(
      0,
      c!.kind === 'int'
        ? { kind: 'int', shape, data: picked as Dim[] }
        : { kind: 'float', shape, data: Float32Array.from(picked as number[]) },
    );
  },

  Unsqueeze(n) {
    n.requireInputs(1, 2);
    const c = n.constant(0) ?? n.fail('unsqueezes an activation, which is not supported');
    const axes = (n.opset >= 13 ? n.numbers(1, 'axes') : n.attrs.ints('axes', null)) ?? n.fail('has no axes');
    const rank = c.shape.length + axes.length;
    const normalized = axes.map((a) => normalizeAxis(n, a, rank)).sort((a, b) => a - b);
    const shape = [...c.shape];
    for (const a of normalized) shape.splice(a, 0, 1);
    n.bindConstant(0, { ...c, shape } as Constant);
  },

  Squeeze(n) {
    n.requireInputs(1, 2);
    const c = n.constant(0) ?? n.fail('squeezes an activation, which is not supported');
    const axes = n.opset >= 13 ? n.numbers(1, 'axes') : n.attrs.ints('axes', null);
    const rank = c.shape.length;
    const drop = new Set(
      (axes ?? c.shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normalizeAxis(n, a, rank)),
    );
    n.bindConstant(0, { ...c, shape: c.shape.filter((_, i) => !drop.has(i)) } as Constant);
  },

  Cast(n) {
    n.requireInputs(1);
    const to = n.attrs.int('to', 0);
    const e = n.entry(0);
    const toFloat = to === 1 || to === 11;
    const toInt = [2, 3, 4, 5, 6, 7, 12, 13].includes(to);
    if (e?.kind === 'const') {
      const c = e.constant;
      if (toInt) {
        const data = c.kind === 'int' ? [...c.data] : Array.from(c.data, Math.trunc);
        n.bindConstant(0, { kind: 'int', shape: c.shape, data });
      } else if (toFloat) {
        if (c.kind === 'int' && c.data.includes('N')) n.fail('casts the batch size to a float');
        n.bindConstant(0, { kind: 'float', shape: c.shape, data: Float32Array.from(c.data as number[]) });
      } else n.fail(`casts to ${dataTypeName(to)}, which is not supported`);
      return;
    }
    if (!toFloat) n.fail(`casts an activation to ${dataTypeName(to)}; only FLOAT is supported`);
    n.activation(0); // refuses constants of unsupported types
    n.bind(0, n.entry(0)!);
  },

  QuantizeLinear(n) {
    n.requireInputs(2, 3);
    if (n.qdq === undefined)
      n.fail('quantizes: this is an int8 (QDQ) file; load it as one (shufflenet info/eval read it)');
    const x = n.activation(0);
    const scale = n.scalar(1, 'y_scale');
    const zero = n.constant(2);
    if (zero !== undefined && !(zero.kind === 'int' && zero.dataType === DataType.UINT8 && zero.data.length === 1)) {
      n.fail('y_zero_point must be a uint8 scalar (int8 activations are not supported)');
    }
    if (!(scale! > 0 && scale! <= 1e9)) n.fail(`y_scale is ${scale}; expected a positive float`);
    const zeroPoint = zero === undefined ? 0 : (zero.data[0] as number);
    n.bind(0, { kind: 'quantized', value: x.value, batchAxis: x.batchAxis, scale: scale!, zeroPoint });
  },
  DequantizeLinear(n) {
    n.requireInputs(2, 3);
    const qdq =
      n.qdq ?? n.fail('dequantizes: this is an int8 (QDQ) file; load it as one (shufflenet info/eval read it)');
    const e = n.entry(0);
    if (e?.kind === 'quantized') {
      const zero = n.constant(2);
      const scale = n.scalar(1, 'x_scale');
      const zeroPoint = zero === undefined ? 0 : (zero.data[0] as number);
      if (scale !== e.scale || zeroPoint !== e.zeroPoint) {
        n.fail(
          `dequantizes with scale ${scale} and zero point ${zeroPoint}, not its QuantizeLinear's ${e.scale} and ${e.zeroPoint}`,
        );
      }
      const known = qdq.values.get(e.value.name);
      if (known !== undefined && (known.scale !== e.scale || known.zeroPoint !== e.zeroPoint)) {
        n.fail(`quantizes "${e.value.name}" a second time with another scale`);
      }
      qdq.values.set(e.value.name, { scale: e.scale, zeroPoint: e.zeroPoint });
      n.bind(0, { kind: 'value', value: e.value, batchAxis: e.batchAxis });
      return;
    }
    const c = n.constant(0);
    if (c === undefined || c.kind !== 'int' || c.data.some((d) => d === 'N'))
      n.fail('x must be an integer initializer or a QuantizeLinear output');
    const q = c as Extract<Constant, { kind: 'int' }>;
    const values = Int32Array.from(q.data as number[]);
    const scaleC = n.constant(1);
    if (scaleC === undefined || scaleC.kind !== 'float') n.fail('x_scale must be a float initializer');
    const scales = (scaleC as { data: Float32Array }).data;
    const zeroC = n.constant(2);
    const zeros = Int32Array.from(
      zeroC === undefined ? new Array<number>(scales.length).fill(0) : (zeroC.data as number[]),
    );
    const shape = q.shape;
    let axis: number | null = null;
    if (scales.length !== 1 || shape.length === 0) {
      axis = normalizeAxis(n, n.attrs.int('axis', 1), shape.length);
      if (scales.length !== shape[axis])
        n.fail(`x_scale has ${scales.length} values for axis ${axis} of x's shape ${formatShape(shape)}`);
    }
    if (zeros.length !== scales.length) n.fail(`x_zero_point has ${zeros.length} values but x_scale ${scales.length}`);
    const bad = scales.findIndex((v) => !(v > 0 && v <= 1e9));
    if (bad >= 0) n.fail(`x_scale[${bad}] is ${scales[bad]}; expected a positive float`);
    const inner = axis === null ? 1 : shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const data = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const c = axis === null ? 0 : Math.floor(i / inner) % scales.length;
      data[i] = Math.fround(scales[c]! * (values[i]! - zeros[c]!));
    }
    qdq.params.set(n.outputs[0]!, { values, dataType: q.dataType ?? DataType.INT32, scales, zeros, axis });
    n.bindConstant(0, { kind: 'float', shape, data });
  },
  Identity(n) {
    n.requireInputs(1);
    n.bind(0, n.entry(0) ?? n.fail('has no input'));
  },

  Dropout(n) {
    n.requireInputs(1, 3);
    n.singleOutput();
    n.bind(0, n.entry(0) ?? n.fail('has no input')); // inference: the identity
  },

  Add: binaryHandler('Add'),
  // Caffe2 conversions (e.g. the ONNX model zoo's ShuffleNet) write residual adds as Sum.
  Sum(n) {
    if (n.inputs.length < 1) n.fail('has no inputs');
    n.inputs.slice(1).reduce((acc, _, i) => combine(n, 'Add', acc, n.value(i + 1)), n.value(0));
    if (n.inputs.length === 1) n.bind(0, n.entry(0)!);
  },
  Sub: binaryHandler('Sub'),
  Mul: binaryHandler('Mul'),
  Div: binaryHandler('Div'),
};
