/**
 * Structure-aware mutations of model files: where the lengths, sizes and shapes of each format sit,
 * so that a hostile value lands on a field the reader trusts instead of in the weights.
 * - safetensors: the 8-byte header length, the JSON header (shapes, offsets, dtypes), the model
 *   metadata inside it (architecture config, preprocessing);
 * - PyTorch: zip records (local headers, central directory, end record), pickle opcodes with
 *   integer arguments or lengths, legacy storage element counts;
 * - ONNX: a decoded ModelProto (input dims, initializer dims, attribute ints, opsets, op types).
 */
import { decodeModelProto, encodeModelProto } from '../src/io/onnx/codec.js';
import type { AttributeProto, Int64, ModelProto } from '../src/io/onnx/proto.js';
import { unpickle } from '../src/io/torch/pickle.js';
import type { Random } from '../src/tensor/random.js';
import {
  chance,
  concat,
  encodeVarint,
  deeplyNested,
  describeJson,
  hostileJson,
  hostileNumberLiterals,
  hostileNumbers,
  hostileU16,
  hostileU32,
  hostileU64,
  type JsonValue,
  type Mutated,
  mutateJson,
  pick,
  RawLiteral,
  stringifyRaw,
  weighted,
  writeUint,
} from './mutate.js';

// ---- safetensors ---------------------------------------------------------------------------

export interface SafetensorsParts {
  header: string;
  data: Uint8Array;
}

/** Header text and data section of a well-formed file (the seeds are). */
export function splitSafetensors(bytes: Uint8Array): SafetensorsParts {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: new TextDecoder().decode(bytes.subarray(8, 8 + length)), data: bytes.subarray(8 + length) };
}

/** A file with this header text (space-padded to 8 bytes, as writers do) and data section. */
export function joinSafetensors(header: string, data: Uint8Array): Uint8Array {
  const text = new TextEncoder().encode(header);
  const padded = Math.ceil(text.length / 8) * 8;
  const out = new Uint8Array(8 + padded + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.fill(0x20, 8, 8 + padded);
  out.set(text, 8);
  out.set(data, 8 + padded);
  return out;
}

/** Config fields the builders read, and the preprocessing fields `info`/`classify` read. */
const configKeys = [
  'numClasses',
  'inputChannels',
  'groups',
  'scale',
  'widths',
  'smallInput',
  'widthMultiplier',
  'inputSize',
  'shallow',
  'se',
];
const preprocessingKeys = ['crop', 'resize', 'divisor', 'mean', 'std', 'channels'];

/**
 * One structure-aware mutation of a safetensors file (`seed` must be well formed): a number in the
 * header text, a tensor entry, a metadata field, the header length, thousands of empty tensors, or
 * deep nesting.
 */
export function mutateSafetensors(rng: Random, seed: Uint8Array): Mutated {
  const { header, data } = splitSafetensors(seed);
  const kind = weighted(rng, [
    [4, 'number-text'],
    [5, 'metadata'],
    [3, 'config-field'],
    [2, 'tensor-entry'],
    [1, 'header-length'],
    [1, 'empty-tensors'],
    [1, 'deep-header'],
  ] as const);
  switch (kind) {
    case 'number-text': {
      // Any number in the header text, the metadata's included (it is unescaped JSON inside a string).
      const numbers = [...header.matchAll(/-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g)];
      if (numbers.length === 0) break;
      const m = pick(rng, numbers);
      const literal = pick(rng, hostileNumberLiterals);
      const text = header.slice(0, m.index) + literal + header.slice(m.index + m[0].length);
      return { bytes: joinSafetensors(text, data), what: `header number ${m[0]} at char ${m.index} → ${literal}` };
    }
    case 'metadata':
    case 'config-field': {
      const parsed = JSON.parse(header) as { __metadata__?: Record<string, string> };
      const raw = parsed.__metadata__?.['shufflenet'];
      if (raw === undefined) break;
      const meta = JSON.parse(raw) as Record<string, JsonValue>;
      let what: string;
      if (kind === 'metadata') what = `metadata ${mutateJson(rng, meta)}`;
      else if (chance(rng, 0.6)) {
        const config = ((meta['architecture'] as Record<string, JsonValue> | undefined)?.['config'] ?? {}) as Record<
          string,
          JsonValue
        >;
        const key = pick(rng, configKeys);
        config[key] = key === 'widths' ? hostileWidths(rng) : hostileJson(rng, config[key] ?? 0);
        what = `config.${key} = ${describeJson(config[key])}`;
      } else {
        const pre = (meta['preprocessing'] ?? (meta['preprocessing'] = {})) as Record<string, JsonValue>;
        const key = pick(rng, preprocessingKeys);
        pre[key] = hostileJson(rng, pre[key] ?? 0);
        what = `preprocessing.${key} = ${describeJson(pre[key])}`;
      }
      parsed.__metadata__!['shufflenet'] = stringifyRaw(meta);
      return { bytes: joinSafetensors(JSON.stringify(parsed), data), what };
    }
    case 'tensor-entry': {
      const parsed = JSON.parse(header) as Record<
        string,
        { dtype: JsonValue; shape: JsonValue[]; data_offsets: JsonValue[] }
      >;
      const names = Object.keys(parsed).filter((k) => k !== '__metadata__');
      if (names.length === 0) break;
      const name = pick(rng, names);
      const entry = parsed[name]!;
      const field = pick(rng, ['shape-dim', 'shape', 'offset', 'dtype'] as const);
      let what: string;
      if (field === 'shape-dim' && entry.shape.length > 0) {
        const i = rng.int(entry.shape.length);
        entry.shape[i] = chance(rng, 0.7)
          ? pick(rng, hostileNumbers)
          : new RawLiteral(pick(rng, hostileNumberLiterals));
        what = `${name}.shape[${i}] = ${describeJson(entry.shape[i]!)}`;
      } else if (field === 'shape') {
        // A huge shape of zero elements still has consistent offsets: only the shape is hostile.
        const begin = entry.data_offsets[0]!;
        entry.shape = pick(rng, [
          [0, 1e9, 1e9],
          [1e9, 1e9, 0],
          [2 ** 53, 0],
          [0, -1],
          Array.from({ length: 1000 }, () => 1),
        ]);
        entry.data_offsets = [begin, begin];
        what = `${name}.shape = ${describeJson(entry.shape)} with empty offsets`;
      } else if (field === 'offset') {
        const i = rng.int(2);
        entry.data_offsets[i] = pick(rng, hostileNumbers);
        what = `${name}.data_offsets[${i}] = ${describeJson(entry.data_offsets[i]!)}`;
      } else {
        entry.dtype = pick(rng, ['F64', 'F16', 'BF16', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'C64', 'f32', '', 7]);
        what = `${name}.dtype = ${describeJson(entry.dtype)}`;
      }
      return { bytes: joinSafetensors(stringifyRaw(parsed as unknown as JsonValue), data), what };
    }
    case 'header-length': {
      const bytes = seed.slice();
      const value = pick(rng, [...hostileU64, BigInt(seed.length - 8), BigInt(seed.length - 7), 1000000000n]);
      writeUint(bytes, 0, 8, value);
      return { bytes, what: `header length = ${value}` };
    }
    case 'empty-tensors': {
      // Issue 15: a header of 200,000 empty tensors took 2.4 s.
      const count = pick(rng, [1000, 20000, 200000]);
      const parsed = JSON.parse(header) as Record<string, unknown>;
      for (let i = 0; i < count; i++) parsed[`empty.${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
      return { bytes: joinSafetensors(JSON.stringify(parsed), data), what: `${count} empty tensors added` };
    }
    case 'deep-header': {
      const depth = pick(rng, [1000, 10000, 100000, 1000000]);
      const parsed = JSON.parse(header) as Record<string, JsonValue>;
      const where = pick(rng, ['tensor', 'metadata-value', 'metadata-json'] as const);
      if (where === 'tensor') parsed['deep'] = deeplyNested(depth, 0, chance(rng, 0.5));
      else if (where === 'metadata-value')
        ((parsed['__metadata__'] ?? (parsed['__metadata__'] = {})) as Record<string, JsonValue>)['deep'] =
          deeplyNested(depth);
      else {
        const meta = (parsed['__metadata__'] ?? (parsed['__metadata__'] = {})) as Record<string, JsonValue>;
        const inner = typeof meta['shufflenet'] === 'string' ? (JSON.parse(meta['shufflenet']) as JsonValue) : {};
        if (inner !== null && typeof inner === 'object' && !Array.isArray(inner) && !(inner instanceof RawLiteral)) {
          inner['labels'] = deeplyNested(depth, 'x');
        }
        meta['shufflenet'] = stringifyRaw(inner);
      }
      return { bytes: joinSafetensors(stringifyRaw(parsed), data), what: `nesting of depth ${depth} in the ${where}` };
    }
  }
  // The seed had nothing of that kind (a file without metadata): change the header length instead.
  const bytes = seed.slice();
  writeUint(bytes, 0, 8, BigInt(seed.length));
  return { bytes, what: 'header length = file length' };
}

/** Explicit widths of which some are hostile (issue 15: "invalid shape [-12, 1, 3, 3]"). */
function hostileWidths(rng: Random): JsonValue {
  const width = (): JsonValue => (chance(rng, 0.5) ? pick(rng, hostileNumbers) : pick(rng, [12, 24, 48, 96, 240]));
  return { conv1: width(), stages: [width(), width(), width()] };
}

// ---- zip (PyTorch ≥ 1.6) -------------------------------------------------------------------

export interface Field {
  at: number;
  width: 1 | 2 | 4 | 8;
  /** What the field is, for the failure report. */
  name: string;
  kind: 'size' | 'count' | 'int' | 'length';
}

/** The size, offset, count and length fields of every zip record found by signature. */
export function zipFields(bytes: Uint8Array): Field[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Field[] = [];
  for (let p = 0; p + 4 <= bytes.length; p++) {
    if (bytes[p] !== 0x50 || bytes[p + 1] !== 0x4b) continue;
    const sig = view.getUint32(p, true);
    const f = (offset: number, width: 1 | 2 | 4 | 8, name: string, kind: Field['kind'] = 'size'): void => {
      if (p + offset + width <= bytes.length) out.push({ at: p + offset, width, name, kind });
    };
    if (sig === 0x04034b50) {
      f(8, 2, 'local method', 'int');
      f(18, 4, 'local compressed size');
      f(22, 4, 'local size');
      f(26, 2, 'local name length', 'length');
      f(28, 2, 'local extra length', 'length');
    } else if (sig === 0x02014b50) {
      f(10, 2, 'central method', 'int');
      f(20, 4, 'central compressed size');
      f(24, 4, 'central size');
      f(28, 2, 'central name length', 'length');
      f(30, 2, 'central extra length', 'length');
      f(32, 2, 'central comment length', 'length');
      f(42, 4, 'central local header offset');
    } else if (sig === 0x06054b50) {
      f(8, 2, 'end entries on disk', 'count');
      f(10, 2, 'end entry count', 'count');
      f(12, 4, 'end directory size');
      f(16, 4, 'end directory offset');
      f(20, 2, 'end comment length', 'length');
    } else if (sig === 0x06064b50) {
      f(32, 8, 'zip64 entry count', 'count');
      f(40, 8, 'zip64 directory size');
      f(48, 8, 'zip64 directory offset');
    } else if (sig === 0x07064b50) f(8, 8, 'zip64 locator offset');
  }
  return out;
}

/** [start, end) of the named entry's data in a stored zip, or null. */
export function zipEntryRange(bytes: Uint8Array, suffix: string): [number, number] | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();
  for (let p = 0; p + 30 <= bytes.length; p++) {
    if (view.getUint32(p, true) !== 0x04034b50) continue;
    const nameLength = view.getUint16(p + 26, true);
    const extraLength = view.getUint16(p + 28, true);
    const name = decoder.decode(bytes.subarray(p + 30, p + 30 + nameLength));
    if (!name.endsWith(suffix)) continue;
    const start = p + 30 + nameLength + extraLength;
    // torch writes data descriptors: the sizes are in the central directory, so scan for the next record.
    let end = start;
    while (
      end + 4 <= bytes.length &&
      view.getUint32(end, true) !== 0x04034b50 &&
      view.getUint32(end, true) !== 0x02014b50
    )
      end++;
    return [start, end];
  }
  return null;
}

// ---- pickle --------------------------------------------------------------------------------

/** The integer arguments and lengths of a pickle's opcodes from `start`, walked as the unpickler reads them. */
export function pickleFields(bytes: Uint8Array, start: number, limit = 20000): Field[] {
  const out: Field[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const line = (p: number): number => {
    const nl = bytes.indexOf(0x0a, p);
    return nl < 0 ? bytes.length : nl + 1;
  };
  let p = start;
  while (p < bytes.length && out.length < limit) {
    const op = bytes[p++]!;
    const arg = (width: 1 | 2 | 4 | 8, name: string, kind: Field['kind']): void => {
      if (p + width <= bytes.length) out.push({ at: p, width, name, kind });
    };
    const len = (width: 1 | 4 | 8): number =>
      p + width > bytes.length
        ? 0
        : width === 1
          ? bytes[p]!
          : width === 4
            ? view.getUint32(p, true)
            : Number(view.getBigUint64(p, true));
    switch (op) {
      case 0x2e: // STOP
        return out;
      case 0x80: // PROTO
        p += 1;
        break;
      case 0x95: // FRAME
        p += 8;
        break;
      case 0x4b: // BININT1
        arg(1, 'BININT1', 'int');
        p += 1;
        break;
      case 0x4d: // BININT2
        arg(2, 'BININT2', 'int');
        p += 2;
        break;
      case 0x4a: // BININT
        arg(4, 'BININT', 'int');
        p += 4;
        break;
      case 0x71: // BINPUT
      case 0x68: // BINGET
        arg(1, op === 0x71 ? 'BINPUT' : 'BINGET', 'count');
        p += 1;
        break;
      case 0x72: // LONG_BINPUT
      case 0x6a: // LONG_BINGET
        arg(4, op === 0x72 ? 'LONG_BINPUT' : 'LONG_BINGET', 'count');
        p += 4;
        break;
      case 0x47: // BINFLOAT
        p += 8;
        break;
      case 0x8a: // LONG1
      case 0x8c: // SHORT_BINUNICODE
      case 0x55: // SHORT_BINSTRING
      case 0x43: // SHORT_BINBYTES
        arg(1, `length of opcode 0x${op.toString(16)}`, 'length');
        p += 1 + len(1);
        break;
      case 0x8b: // LONG4
      case 0x58: // BINUNICODE
      case 0x54: // BINSTRING
      case 0x42: // BINBYTES
        arg(4, `length of opcode 0x${op.toString(16)}`, 'length');
        p += 4 + len(4);
        break;
      case 0x8d: // BINUNICODE8
      case 0x8e: // BINBYTES8
        arg(8, `length of opcode 0x${op.toString(16)}`, 'length');
        p += 8 + len(8);
        break;
      case 0x49: // INT
      case 0x4c: // LONG
      case 0x46: // FLOAT
      case 0x70: // PUT
      case 0x67: // GET
      case 0x50: // PERSID
        p = line(p);
        break;
      case 0x63: // GLOBAL
        p = line(line(p));
        break;
      default: // opcodes without arguments
        break;
    }
  }
  return out;
}

/** Offsets of the pickles of a legacy (pre-1.6) file and of its storage records' element counts. */
export function legacyLayout(bytes: Uint8Array): { pickles: number[]; counts: number[] } {
  const pickles: number[] = [];
  let end = 0;
  try {
    for (let i = 0; i < 5; i++) {
      pickles.push(end);
      end = unpickle(bytes, end).end;
    }
  } catch {
    return { pickles, counts: [] };
  }
  // Then, per storage: an int64 element count and the raw data. The element size is not known
  // here; float32 is what the fixtures hold, 8 bytes for int64 (num_batches_tracked) or half 2.
  const counts: number[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = end;
  while (p + 8 <= bytes.length && counts.length < 10000) {
    const count = Number(view.getBigInt64(p, true));
    counts.push(p);
    const rest = bytes.length - p - 8;
    const size = [4, 8, 2].find((s) => count * s <= rest && count >= 0) ?? 0;
    if (size === 0) break;
    p += 8 + count * size;
  }
  return { pickles, counts };
}

function hostileFor(rng: Random, field: Field, fileLength: number): bigint {
  const near = [fileLength - 1, fileLength, fileLength + 1].map(BigInt);
  switch (field.width) {
    case 1:
      return BigInt(pick(rng, [0, 1, 0x7f, 0x80, 0xfe, 0xff]));
    case 2:
      return BigInt(pick(rng, hostileU16));
    case 4:
      return chance(rng, 0.8) ? BigInt(pick(rng, hostileU32)) : pick(rng, near);
    case 8:
      return chance(rng, 0.8) ? pick(rng, hostileU64) : pick(rng, near);
  }
}

/** Writes a hostile value (or the value ± 1) into one of `fields`. */
export function mutateField(rng: Random, seed: Uint8Array, fields: readonly Field[]): Mutated | null {
  if (fields.length === 0) return null;
  const field = pick(rng, fields);
  const bytes = seed.slice();
  let value: bigint;
  if (chance(rng, 0.2)) {
    let old = 0n;
    for (let i = field.width - 1; i >= 0; i--) old = (old << 8n) | BigInt(seed[field.at + i]!);
    value = old + pick(rng, [1n, -1n, 64n, -64n]);
  } else if (field.kind === 'int' && field.width === 4 && chance(rng, 0.5)) {
    value = BigInt(pick(rng, [-12, -1, 1e9, 100000, 0, 2 ** 31 - 1, -(2 ** 31)]));
  } else value = hostileFor(rng, field, seed.length);
  writeUint(bytes, field.at, field.width, value);
  return { bytes, what: `${field.name} at ${field.at} = ${BigInt.asUintN(field.width * 8, value)}` };
}

// ---- ONNX ----------------------------------------------------------------------------------

const onnxOps = [
  'Conv',
  'Relu',
  'Add',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'Gemm',
  'Reshape',
  'Transpose',
  'Flatten',
  'Concat',
  'BatchNormalization',
  'LRN',
  'Clip',
  'Split',
  'Slice',
  'Mul',
  'Sigmoid',
  'Softmax',
  '',
  'Conv\u001b[2J\n',
];

const int64Hostile = (rng: Random): number =>
  pick(rng, [...hostileNumbers.filter(Number.isInteger), -2, 0, 1e15, -(2 ** 53)]);

/** One mutation of the decoded model: a dim, an attribute int, an opset, an op, a data type, an edge. */
export function mutateOnnx(rng: Random, seed: Uint8Array): Mutated {
  const model = decodeModelProto(seed, 'seed.onnx') as ModelProto;
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  const inits = graph.initializer ?? [];
  const kind = weighted(rng, [
    [3, 'input-dim'],
    [4, 'attribute'],
    [2, 'initializer-dims'],
    [1, 'initializer-type'],
    [1, 'opset'],
    [1, 'op-type'],
    [1, 'edge'],
    [1, 'drop-node'],
    [1, 'raw-data'],
  ] as const);
  let what = kind as string;
  switch (kind) {
    case 'input-dim': {
      const dims = graph.input?.[0]?.type?.tensor_type?.shape?.dim ?? [];
      if (dims.length === 0) break;
      const i = rng.int(dims.length);
      if (chance(rng, 0.15)) {
        dims[i] = { dim_param: pick(rng, ['N', 'H', '']) };
        what = `input dim ${i} symbolic`;
      } else {
        dims[i] = { dim_value: int64Hostile(rng) };
        what = `input dim ${i} = ${String(dims[i]!.dim_value)}`;
      }
      break;
    }
    case 'attribute': {
      const withAttrs = nodes.filter((n) => (n.attribute ?? []).length > 0);
      if (withAttrs.length === 0) break;
      const node = pick(rng, withAttrs);
      const attr = pick(rng, node.attribute!) as AttributeProto;
      const how = weighted(rng, [
        [(attr.ints ?? []).length > 0 ? 8 : 0, 'element'],
        [1, 'list'],
        [1, 'type'],
        [1, 'scalar'],
      ] as const);
      if (how === 'element') {
        const i = rng.int(attr.ints!.length);
        attr.ints![i] = int64Hostile(rng);
        what = `node "${node.name}" ${attr.name}[${i}] = ${String(attr.ints![i])}`;
      } else if (how === 'list') {
        attr.ints = Array.from({ length: pick(rng, [0, 1, 3, 5, 100]) }, () => int64Hostile(rng));
        what = `node "${node.name}" ${attr.name} = [${attr.ints.length} hostile ints]`;
      } else if (how === 'type') {
        attr.type = pick(rng, [0, 1, 2, 3, 4, 6, 7, 99]);
        what = `node "${node.name}" ${attr.name}.type = ${attr.type}`;
      } else {
        attr.i = int64Hostile(rng);
        attr.f = pick(rng, [NaN, Infinity, -1, 1e30, 0]);
        what = `node "${node.name}" ${attr.name}.i = ${String(attr.i)}, .f = ${attr.f}`;
      }
      break;
    }
    case 'initializer-dims': {
      if (inits.length === 0) break;
      const t = pick(rng, inits);
      const dims = (t.dims ?? []) as Int64[];
      if (dims.length > 0 && chance(rng, 0.7)) {
        const i = rng.int(dims.length);
        dims[i] = int64Hostile(rng);
        what = `initializer "${t.name}" dims[${i}] = ${String(dims[i])}`;
      } else {
        t.dims = pick(rng, [[], [0], [1e9, 1e9], [-1], [...dims, 1], dims.slice(1)]);
        what = `initializer "${t.name}" dims = [${t.dims.join(', ')}]`;
      }
      break;
    }
    case 'initializer-type': {
      if (inits.length === 0) break;
      const t = pick(rng, inits);
      t.data_type = pick(rng, [0, 2, 3, 6, 7, 8, 10, 11, 16, 99]);
      what = `initializer "${t.name}" data_type = ${t.data_type}`;
      break;
    }
    case 'opset': {
      const version = pick(rng, [0, 1, 6, 7, 13, 21, 22, 1e9, -1]);
      model.opset_import = [{ domain: pick(rng, ['', 'ai.onnx', 'com.example']), version }];
      what = `opset = ${version}`;
      break;
    }
    case 'op-type': {
      if (nodes.length === 0) break;
      const node = pick(rng, nodes);
      node.op_type = pick(rng, onnxOps);
      what = `node "${node.name}" op_type = ${JSON.stringify(node.op_type)}`;
      break;
    }
    case 'edge': {
      if (nodes.length === 0) break;
      const node = pick(rng, nodes);
      const inputs = node.input ?? [];
      const choice = rng.int(3);
      if (choice === 0 && inputs.length > 0) inputs.pop();
      else if (choice === 1) inputs.push(pick(rng, [inputs[0] ?? 'x', '', 'nowhere']));
      else node.output = pick(rng, [[], [...(node.output ?? []), 'extra'], [inputs[0] ?? 'x']]);
      what = `node "${node.name}" edges changed (${choice})`;
      break;
    }
    case 'drop-node': {
      if (nodes.length === 0) break;
      const i = rng.int(nodes.length);
      what = `node "${nodes[i]!.name}" removed`;
      nodes.splice(i, 1);
      break;
    }
    case 'raw-data': {
      const withRaw = inits.filter((t) => (t.raw_data?.length ?? 0) > 0);
      if (withRaw.length === 0) break;
      const t = pick(rng, withRaw);
      const keep = pick(rng, [0, 1, 3, t.raw_data!.length - 1, t.raw_data!.length + 4]);
      const raw = new Uint8Array(keep);
      raw.set(t.raw_data!.subarray(0, keep));
      t.raw_data = raw;
      what = `initializer "${t.name}" raw_data cut to ${keep} bytes`;
      break;
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = encodeModelProto(model);
  } catch {
    // A value protobufjs refuses to encode (a float where an int goes): fall back to the seed.
    return { bytes: seed.slice(), what: `${what} (not encodable: seed unchanged)` };
  }
  return { bytes, what };
}

/** Hot ranges of a protobuf file: everything but the long raw tensor payloads. */
export function protobufHot(bytes: Uint8Array): [number, number][] {
  return [
    [0, Math.min(bytes.length, 4096)],
    [Math.max(0, bytes.length - 4096), bytes.length],
  ];
}

// ---- protobuf wire format ------------------------------------------------------------------

export interface VarintField {
  at: number;
  /** Bytes the varint occupies. */
  size: number;
  kind: 'length' | 'value';
}

function readVarint(bytes: Uint8Array, p: number): { value: number; size: number } | null {
  let value = 0;
  for (let i = 0; i < 10 && p + i < bytes.length; i++) {
    const b = bytes[p + i]!;
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return { value, size: i + 1 };
  }
  return null;
}

/**
 * The varint values and length prefixes of a protobuf message, nested messages included (a
 * length-delimited payload that parses as a message is walked; payloads over 64 KB are taken as
 * tensor data and skipped).
 */
export function protobufFields(
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
  depth = 0,
  out: VarintField[] = [],
): VarintField[] {
  const found: VarintField[] = [];
  let p = start;
  while (p < end) {
    const key = readVarint(bytes, p);
    if (key === null || key.value === 0) return out;
    p += key.size;
    const wire = key.value % 8;
    if (wire === 0) {
      const v = readVarint(bytes, p);
      if (v === null) return out;
      found.push({ at: p, size: v.size, kind: 'value' });
      p += v.size;
    } else if (wire === 2) {
      const v = readVarint(bytes, p);
      if (v === null || p + v.size + v.value > end) return out;
      found.push({ at: p, size: v.size, kind: 'length' });
      p += v.size;
      if (depth < 8 && v.value > 0 && v.value <= 65536) {
        const inner = protobufFields(bytes, p, p + v.value, depth + 1, []);
        found.push(...inner);
      }
      p += v.value;
    } else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else return out; // not a message: keep nothing from this level
  }
  out.push(...found);
  return out;
}

/** Re-encodes one varint of `fields` with a hostile value (the file grows or shrinks to fit). */
export function mutateProtobufVarint(rng: Random, seed: Uint8Array, fields: readonly VarintField[]): Mutated | null {
  if (fields.length === 0) return null;
  const lengths = fields.filter((f) => f.kind === 'length');
  const field = lengths.length > 0 && chance(rng, 0.5) ? pick(rng, lengths) : pick(rng, fields);
  const old = readVarint(seed, field.at)!.value;
  const value = chance(rng, 0.3)
    ? BigInt(Math.max(0, old + pick(rng, [1, -1, 2, 100, -100])))
    : pick(rng, [...hostileU64, 0xffffffffn, 0x7fffffffn, BigInt(seed.length), BigInt(-12), BigInt(1e9)]);
  const encoded = encodeVarint(value);
  return {
    bytes: concat(seed.subarray(0, field.at), encoded, seed.subarray(field.at + field.size)),
    what: `protobuf ${field.kind} varint at ${field.at} = ${BigInt.asUintN(64, value)} (was ${old})`,
  };
}
