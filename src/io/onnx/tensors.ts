/**
 * ONNX TensorProto → constants. Every size is checked against the data the file actually holds
 * before anything is allocated, so a hostile `dims` (1e12, negative, overflowing) is an error, not
 * an allocation.
 */
import { formatShape } from '../../tensor/tensor.js';
import { int64Clamped, int64Value } from './codec.js';
import { DataType, type Int64, type TensorProto } from './proto.js';

/** One element of an integer constant: a number, or the batch size when the graph's batch is symbolic. */
export type Dim = number | 'N';

/** A constant known at import time: floats (weights) or integers (shapes, axes, indices). */
export type Constant =
  | { readonly kind: 'float'; readonly shape: readonly number[]; readonly data: Float32Array }
  | {
      readonly kind: 'int';
      readonly shape: readonly number[];
      readonly data: readonly Dim[];
      /** The ONNX element type it was stored as (INT8, UINT8, INT32, …), for a file's int8 tensors. */
      readonly dataType?: number;
    };

const typeNames: Record<number, string> = {
  0: 'UNDEFINED',
  1: 'FLOAT',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'STRING',
  9: 'BOOL',
  10: 'FLOAT16',
  11: 'DOUBLE',
  12: 'UINT32',
  13: 'UINT64',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  16: 'BFLOAT16',
};

export function dataTypeName(t: number | undefined): string {
  return typeNames[t ?? 0] ?? `data type ${t}`;
}

/** Element sizes in raw_data of the types we read, and whether they are integers. */
const rawLayout: Record<number, { bytes: number; int: boolean }> = {
  [DataType.FLOAT]: { bytes: 4, int: false },
  [DataType.DOUBLE]: { bytes: 8, int: false },
  [DataType.INT64]: { bytes: 8, int: true },
  [DataType.INT32]: { bytes: 4, int: true },
  [DataType.INT8]: { bytes: 1, int: true },
  [DataType.UINT8]: { bytes: 1, int: true },
  5: { bytes: 2, int: true }, // INT16
  4: { bytes: 2, int: true }, // UINT16
  9: { bytes: 1, int: true }, // BOOL
};

/** Decoded dims of a tensor, validated: non-negative safe integers with a safe product. */
export function tensorDims(dims: readonly Int64[] | undefined, fail: (why: string) => never): number[] {
  const out: number[] = [];
  let size = 1;
  for (const d of dims ?? []) {
    const v = int64Value(d);
    if (v === null || v < 0) fail(`has an invalid dimension ${v ?? 'beyond 2^53'} in its dims`);
    out.push(v!);
    size *= v!;
    if (!Number.isSafeInteger(size)) fail(`has dims ${formatShape(out)}… whose product is too large`);
  }
  return out;
}

/**
 * Decodes an initializer or a Constant's value. `fail` throws with the tensor's name already in
 * the message.
 */
export function decodeTensor(t: TensorProto, fail: (why: string) => never): Constant {
  if ((t.data_location ?? 0) === 1 || (t.external_data?.length ?? 0) > 0) {
    const location = t.external_data?.find((e) => e.key === 'location')?.value;
    fail(
      `stores its data in an external file${location ? ` ("${location}")` : ''}; external data is not supported ` +
        '(save the model with onnx.save_model(model, path, save_as_external_data=False))',
    );
  }
  const shape = tensorDims(t.dims, fail);
  const count = shape.reduce((a, b) => a * b, 1);
  const type = t.data_type ?? 0;
  const layout = rawLayout[type];
  if (layout === undefined) fail(`has data type ${dataTypeName(type)}, which is not supported`);
  const raw = t.raw_data;
  if (raw !== undefined && raw.length > 0) {
    if (raw.length !== count * layout!.bytes) {
      fail(
        `has shape ${formatShape(shape)} of ${dataTypeName(type)} (${count} × ${layout!.bytes} bytes) but its ` +
          `raw_data holds ${raw.length} bytes`,
      );
    }
    return decodeRaw(raw, type, shape, count);
  }
  const typed = typedField(t, type);
  if (typed.values.length !== count) {
    fail(
      `has shape ${formatShape(shape)} (${count} values) but its ${typed.field} holds ${typed.values.length} values`,
    );
  }
  if (layout!.int) {
    return {
      kind: 'int',
      shape,
      data: (typed.values as (number | Int64)[]).map((v) => int64Clamped(v as Int64)),
      dataType: type,
    };
  }
  return { kind: 'float', shape, data: Float32Array.from(typed.values as number[]) };
}

function typedField(t: TensorProto, type: number): { field: string; values: readonly (number | Int64)[] } {
  switch (type) {
    case DataType.FLOAT:
      return { field: 'float_data', values: t.float_data ?? [] };
    case DataType.DOUBLE:
      return { field: 'double_data', values: t.double_data ?? [] };
    case DataType.INT64:
      return { field: 'int64_data', values: t.int64_data ?? [] };
    default: // INT32, INT16, INT8, UINT16, UINT8, BOOL are all stored in int32_data
      return { field: 'int32_data', values: t.int32_data ?? [] };
  }
}

function decodeRaw(raw: Uint8Array, type: number, shape: number[], count: number): Constant {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (type === DataType.FLOAT || type === DataType.DOUBLE) {
    const data = new Float32Array(count);
    if (type === DataType.FLOAT) for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
    else for (let i = 0; i < count; i++) data[i] = view.getFloat64(i * 8, true);
    return { kind: 'float', shape, data };
  }
  const data = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    switch (type) {
      case DataType.INT64: {
        const v = view.getBigInt64(i * 8, true);
        // INT64_MAX and friends mean "to the end" in Slice; clamping keeps that meaning.
        data[i] = Number(
          v > BigInt(Number.MAX_SAFE_INTEGER)
            ? Number.MAX_SAFE_INTEGER
            : v < -BigInt(Number.MAX_SAFE_INTEGER)
              ? -Number.MAX_SAFE_INTEGER
              : v,
        );
        break;
      }
      case DataType.INT32:
        data[i] = view.getInt32(i * 4, true);
        break;
      case DataType.INT8:
        data[i] = view.getInt8(i);
        break;
      case 5: // INT16
        data[i] = view.getInt16(i * 2, true);
        break;
      case 4: // UINT16
        data[i] = view.getUint16(i * 2, true);
        break;
      default: // UINT8, BOOL
        data[i] = view.getUint8(i);
    }
  }
  return { kind: 'int', shape, data, dataType: type };
}
