/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
 * a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}}`,
 * then the raw little-endian tensor bytes.
 *
 * The reader validates everything against the file length before allocating anything: a hostile
 * header cannot make it allocate more than the file holds. It works on bytes, so it runs in
 * browsers as well as in Node.
 */
import { FormatError, oneLine } from '../errors.js';
import { formatShape, shapeSize, Tensor } from '../tensor/tensor.js';
import { bfloat16ToFloat, halfToFloat } from './float16.js';
import { showValue } from '../validate.js';

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
  /** Each tensor's stored dtype (`F32`, `I8`, …). */
  dtypes: Map<string, string>;
  /** The I8, U8 and I32 tensors' values, exactly (a float32 `Tensor` rounds int32 beyond 2²⁴). */
  integers: Map<string, Int32Array>;
}

/** An integer tensor to write: int8, uint8 or int32 values. */
export interface IntegerTensor {
  dtype: 'I8' | 'U8' | 'I32';
  shape: readonly number[];
  data: Int8Array | Uint8Array | Int32Array;
}

const dtypeBytes: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  U16: 2,
  U32: 4,
  U64: 8,
};

/**
 * Headers above this size are refused (the reference implementation allows 100 MB): 65,536 tensors
 * take about 8 MB of header, and parsing 100 MB of JSON could take seconds.
 */
const maxHeaderBytes = 16 * 1024 * 1024;
/** Most tensors in one file (ShuffleNet 2× has 1,000 or so; AlexNet 16). */
export const maxTensorsPerFile = 65_536;
/** Most dimensions of one tensor. */
const maxRank = 16;

/**
 * Parses a safetensors file. Integer and float dtypes are converted to Float32 tensors.
 * `source` names the file in error messages.
 */
export function readSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsFile {
  const fail = (why: string): never => {
    throw new FormatError(`${source}: ${why}`);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(maxHeaderBytes, bytes.length - 8))) {
    fail(`header length ${headerLength} exceeds the ${bytes.length - 8} bytes after it`);
  }
  const headerEnd = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${oneLine((e as Error).message)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const count = Object.keys(header as object).length;
  if (count > maxTensorsPerFile + 1)
    fail(`header describes ${count} entries, over the limit of ${maxTensorsPerFile} tensors`);
  const dataLength = bytes.length - headerEnd;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value for ${showValue(k)} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) fail(`tensor ${showValue(name)} has no description`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string' || !Object.hasOwn(dtypeBytes, dtype))
      fail(`tensor ${showValue(name)} has unsupported dtype ${showValue(dtype)}`);
    if (!Array.isArray(shape) || shape.length > maxRank || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor ${showValue(name)} has an invalid shape ${showValue(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(`tensor ${showValue(name)} has invalid data_offsets ${showValue(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength)
      fail(`tensor ${showValue(name)} ends at byte ${end} but the data section has ${dataLength} bytes`);
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (elements * dtypeBytes[dtype as string]! !== end - begin) {
      fail(
        `tensor ${showValue(name)} of dtype ${dtype as string} and shape ${formatShape(shape as number[])} needs ` +
          `${elements * dtypeBytes[dtype as string]!} bytes but its offsets span ${end - begin}`,
      );
    }
    entries.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }
  // Tensors must not overlap (the format also requires them to cover the data section exactly).
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor && !(e.begin === e.end && e.begin <= cursor)) {
      fail(
        `tensor ${showValue(e.name)} starts at byte ${e.begin} but the previous tensor ends at ${cursor} (gap or overlap)`,
      );
    }
    cursor = Math.max(cursor, e.end);
  }
  if (cursor !== dataLength) fail(`tensors cover ${cursor} bytes but the data section has ${dataLength}`);

  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, string>();
  const integers = new Map<string, Int32Array>();
  for (const e of entries) {
    const start = headerEnd + e.begin;
    tensors.set(e.name, new Tensor(e.shape, decode(bytes, start, shapeSize(e.shape), e.dtype)));
    dtypes.set(e.name, e.dtype);
    if (e.dtype === 'I8' || e.dtype === 'U8' || e.dtype === 'I32') {
      const view = new DataView(bytes.buffer, bytes.byteOffset + start, e.end - e.begin);
      const count = shapeSize(e.shape);
      const exact = new Int32Array(count);
      for (let i = 0; i < count; i++)
        exact[i] =
          e.dtype === 'I32' ? view.getInt32(i * 4, true) : e.dtype === 'I8' ? view.getInt8(i) : view.getUint8(i);
      integers.set(e.name, exact);
    }
  }
  return { tensors, metadata, dtypes, integers };
}

function decode(bytes: Uint8Array, start: number, count: number, dtype: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, count * dtypeBytes[dtype]!);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(view.getUint16(i * 2, true));
      break;
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      break;
    case 'U64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigUint64(i * 8, true));
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      break;
    case 'U32':
      for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, true);
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      break;
    case 'U16':
      for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    default: // U8, BOOL
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
  }
  return out;
}

const integerBytes = { I8: 1, U8: 1, I32: 4 } as const;

/**
 * Serialises Float32 tensors and `integers` (sorted by name, as the reference implementation does)
 * with optional string metadata. The header is padded with spaces to a multiple of 8 bytes.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Record<string, string> = {},
  integers: ReadonlyMap<string, IntegerTensor> = new Map(),
): Uint8Array {
  const names = [...new Set([...tensors.keys(), ...integers.keys()])].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const name of names) {
    const int = integers.get(name);
    if (int !== undefined && tensors.has(name))
      throw new FormatError(`writeSafetensors: tensor ${showValue(name)} given twice`);
    const bytes = int !== undefined ? int.data.length * integerBytes[int.dtype] : tensors.get(name)!.size * 4;
    const shape = int !== undefined ? int.shape : tensors.get(name)!.shape;
    header[name] = { dtype: int?.dtype ?? 'F32', shape: [...shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const int = integers.get(name);
    if (int === undefined) {
      const t = tensors.get(name)!;
      for (let i = 0; i < t.size; i++, at += 4) view.setFloat32(at, t.data[i]!, true);
    } else if (int.dtype === 'I32') {
      for (let i = 0; i < int.data.length; i++, at += 4) view.setInt32(at, int.data[i]!, true);
    } else {
      for (let i = 0; i < int.data.length; i++, at += 1) out[at] = int.data[i]! & 0xff;
    }
  }
  return out;
}
