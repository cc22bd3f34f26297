/**
 * Bytes ⇄ ModelProto through protobufjs, with every decoding failure turned into one FormatError
 * that names the file. protobufjs checks each length prefix against the bytes that remain, so a
 * hostile length cannot make it allocate more than the file holds.
 */
import { FormatError } from '../../errors.js';
import { ModelProtoType, type Int64, type ModelProto } from './proto.js';

export function decodeModelProto(bytes: Uint8Array, fileName: string): ModelProto {
  if (bytes.length === 0) throw new FormatError(`${fileName}: the file is empty, not an ONNX model`);
  try {
    // protobufjs types a decoded message as its generic Message; its fields are ModelProto's (proto.ts).
    return ModelProtoType.decode(bytes) as unknown as ModelProto;
  } catch (e) {
    // RangeError for a length that runs past the end (a truncated file), Error for a bad wire type.
    throw new FormatError(`${fileName}: not a valid ONNX protobuf (${(e as Error).message})`);
  }
}

export function encodeModelProto(model: ModelProto): Uint8Array {
  const bytes = ModelProtoType.encode(ModelProtoType.fromObject(model as Record<string, unknown>)).finish();
  // In Node, protobufjs returns a Buffer, whose `slice` shares memory; hand out a plain Uint8Array.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The exact value of a 64-bit integer, or null when it lies outside JavaScript's safe integers. */
export function int64Value(v: Int64 | undefined | null): number | null {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : null;
  const high = v.unsigned ? v.high >>> 0 : v.high | 0;
  const value = high * 2 ** 32 + (v.low >>> 0);
  return Number.isSafeInteger(value) ? value : null;
}

/** `int64Value`, but a value outside the safe range is clamped to ±MAX_SAFE_INTEGER (for slice ends). */
export function int64Clamped(v: Int64): number {
  const exact = int64Value(v);
  if (exact !== null) return exact;
  const negative = typeof v === 'number' ? v < 0 : !v.unsigned && (v.high | 0) < 0;
  return negative ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
}
