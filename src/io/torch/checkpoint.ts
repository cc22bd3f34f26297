/**
 * PyTorch checkpoints (`torch.save`) read without Python, in both formats:
 *
 * - zip (torch ≥ 1.6): `<prefix>/data.pkl` holds the pickle, `<prefix>/data/<key>` each storage.
 * - legacy: five things back to back: pickles of the magic number, the protocol version and the
 *   system info, then the main pickle, then a pickle of the storage keys list, then for every key
 *   an int64 element count followed by the raw little-endian storage bytes.
 *
 * The pickle describes tensors as (storage, offset, size, stride); tensors are materialised as
 * contiguous Float32 only after every index they touch is checked against their storage, so a
 * hostile file cannot make us allocate more than it holds.
 *
 * @example
 * const { stateDict } = readTorchCheckpoint(bytes, 'model.pth.tar');
 * stateDict.get('module.first_conv.0.weight'); // { tensor: Tensor[24, 3, 3, 3], dtype: 'float32' }
 */
import { bfloat16ToFloat, halfToFloat } from '../float16.js';
import { FormatError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import {
  dtypeBytes,
  describe,
  PyTuple,
  StorageRef,
  TensorRef,
  unpickle,
  type PickleValue,
  type TorchDtype,
} from './pickle.js';
import { isZip, readZip } from './zip.js';

export interface TorchTensor {
  tensor: Tensor;
  dtype: TorchDtype;
}

export interface TorchCheckpoint {
  format: 'zip' | 'legacy';
  /** The state dict found in the file, after unwrapping `{"state_dict": …}` and the like. */
  stateDict: Map<string, TorchTensor>;
  /** The key path of the state dict inside the file (`[]` when the file is the state dict). */
  wrapper: string[];
}

/** Keys under which training scripts commonly store the weights. */
export const stateDictWrappers = ['state_dict', 'model', 'model_state_dict', 'net', 'network', 'weights'] as const;

const legacyMagic = 0x1950a86a20f9469cfc6cn;

/** Reads a `torch.save` file. `source` names the file in errors. */
export function readTorchCheckpoint(bytes: Uint8Array, source = 'checkpoint'): TorchCheckpoint {
  if (isZip(bytes)) return readZipCheckpoint(bytes, source);
  if (bytes.length > 262 && String.fromCharCode(...bytes.subarray(257, 262)) === 'ustar') {
    throw new FormatError(
      `${source}: tar-based PyTorch files (torch < 0.1.10) are not supported; re-save with a recent torch`,
    );
  }
  if (bytes.length < 2 || bytes[0] !== 0x80) {
    throw new FormatError(`${source}: not a PyTorch checkpoint (neither a zip archive nor a pickle)`);
  }
  return readLegacyCheckpoint(bytes, source);
}

function readZipCheckpoint(bytes: Uint8Array, source: string): TorchCheckpoint {
  const zip = readZip(bytes, source);
  const pkl = [...zip.entries.keys()]
    .filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'))
    .sort((a, b) => a.length - b.length)[0];
  if (pkl === undefined) throw new FormatError(`${source}: zip archive has no data.pkl: not a torch.save file`);
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  if ([...zip.entries.keys()].some((n) => n.startsWith(`${prefix}code/`))) {
    throw new FormatError(
      `${source}: a TorchScript archive (torch.jit.save), not a checkpoint; save model.state_dict() with torch.save`,
    );
  }
  const order = zip.entries.get(`${prefix}byteorder`);
  if (order !== undefined && new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim() !== 'little') {
    throw new FormatError(`${source}: big-endian checkpoints are not supported`);
  }
  const { value } = unpickle(zip.read(pkl), 0, `${source} (${pkl})`);
  return finish(value, 'zip', source, (ref) => {
    const name = `${prefix}data/${ref.key}`;
    if (!zip.entries.has(name)) throw new FormatError(`${source}: storage ${ref.key} is missing (no entry "${name}")`);
    return zip.read(name);
  });
}

function readLegacyCheckpoint(bytes: Uint8Array, source: string): TorchCheckpoint {
  const magic = unpickle(bytes, 0, source);
  if (magic.value !== legacyMagic && !(typeof magic.value === 'bigint' && magic.value === legacyMagic)) {
    throw new FormatError(
      `${source}: a pickle but not a PyTorch checkpoint (wrong magic number ${describe(magic.value)})`,
    );
  }
  const protocol = unpickle(bytes, magic.end, source);
  if (protocol.value !== 1001) {
    throw new FormatError(
      `${source}: legacy protocol version ${describe(protocol.value)} is not supported (expected 1001)`,
    );
  }
  const sysInfo = unpickle(bytes, protocol.end, source);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw new FormatError(`${source}: big-endian checkpoints are not supported`);
  }
  const main = unpickle(bytes, sysInfo.end, source);
  const keysPickle = unpickle(bytes, main.end, source);
  const keys = keysPickle.value;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw new FormatError(`${source}: the storage key list is not a list of strings`);
  }
  // Element sizes come from the storage types the main pickle names.
  const dtypes = new Map<string, TorchDtype>();
  collectStorages(main.value, (ref) => {
    dtypes.set(ref.key, ref.dtype);
    if (ref.view) dtypes.set(ref.view.key, ref.dtype);
  });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storages = new Map<string, Uint8Array>();
  let pos = keysPickle.end;
  for (const key of keys as string[]) {
    const dtype = dtypes.get(key);
    if (dtype === undefined) throw new FormatError(`${source}: storage ${key} is listed but no tensor uses it`);
    if (pos + 8 > bytes.length) throw new FormatError(`${source}: truncated before storage ${key}`);
    const count = view.getBigInt64(pos, true);
    const nbytes = count * BigInt(dtypeBytes[dtype]);
    if (count < 0n || nbytes > BigInt(bytes.length - pos - 8)) {
      throw new FormatError(
        `${source}: storage ${key} claims ${count} elements (${nbytes} bytes) but only ${bytes.length - pos - 8} bytes remain (truncated file?)`,
      );
    }
    storages.set(key, bytes.subarray(pos + 8, pos + 8 + Number(nbytes)));
    pos += 8 + Number(nbytes);
  }
  return finish(main.value, 'legacy', source, (ref) => {
    if (ref.view) {
      const base = storages.get(ref.view.key);
      if (base === undefined) throw new FormatError(`${source}: storage ${ref.view.key} is missing`);
      const size = dtypeBytes[ref.dtype];
      if ((ref.view.offset + ref.view.size) * size > base.length) {
        throw new FormatError(`${source}: storage view ${ref.key} lies outside storage ${ref.view.key}`);
      }
      return base.subarray(ref.view.offset * size, (ref.view.offset + ref.view.size) * size);
    }
    const data = storages.get(ref.key);
    if (data === undefined) throw new FormatError(`${source}: storage ${ref.key} is missing from the file`);
    return data;
  });
}

/** Finds the state dict, then materialises only its tensors. */
function finish(
  root: PickleValue,
  format: 'zip' | 'legacy',
  source: string,
  storageBytes: (ref: StorageRef) => Uint8Array,
): TorchCheckpoint {
  const { dict, wrapper } = findStateDict(root, source);
  const cache = new Map<StorageRef, Uint8Array>();
  const stateDict = new Map<string, TorchTensor>();
  for (const [key, value] of dict) {
    if (!(value instanceof TensorRef)) continue; // e.g. nested metadata: not weights
    if (typeof key !== 'string') throw new FormatError(`${source}: state dict key ${describe(key)} is not a string`);
    let bytes = cache.get(value.storage);
    if (bytes === undefined) {
      bytes = storageBytes(value.storage);
      cache.set(value.storage, bytes);
    }
    stateDict.set(key, { tensor: materialise(value, bytes, `${source}: tensor "${key}"`), dtype: value.storage.dtype });
  }
  if (stateDict.size === 0) throw new FormatError(`${source}: the state dict holds no tensors`);
  return { format, stateDict, wrapper };
}

function findStateDict(root: PickleValue, source: string): { dict: Map<PickleValue, PickleValue>; wrapper: string[] } {
  if (!(root instanceof Map)) {
    throw new FormatError(`${source}: the file holds a ${describe(root)}, not a dict of tensors (a state dict)`);
  }
  const hasTensors = (m: Map<PickleValue, PickleValue>): boolean => [...m.values()].some((v) => v instanceof TensorRef);
  if (hasTensors(root)) return { dict: root, wrapper: [] };
  for (const key of stateDictWrappers) {
    const inner = root.get(key);
    if (inner instanceof Map && hasTensors(inner)) return { dict: inner, wrapper: [key] };
  }
  const keys = [...root.keys()].map((k) => describe(k)).slice(0, 8);
  throw new FormatError(
    `${source}: found no state dict: the top-level dict has keys ${keys.join(', ')} and none of ${stateDictWrappers.join(', ')} holds tensors`,
  );
}

/** Copies a (possibly strided) tensor view out of its storage into a contiguous Float32 tensor. */
function materialise(ref: TensorRef, storage: Uint8Array, what: string): Tensor {
  const elementBytes = dtypeBytes[ref.storage.dtype];
  const storageNumel = Math.floor(storage.length / elementBytes);
  if (storageNumel < ref.storage.numel) {
    throw new FormatError(
      `${what}: storage ${ref.storage.key} should hold ${ref.storage.numel} elements but has ${storageNumel}`,
    );
  }
  let numel = 1;
  let last = ref.offset;
  for (let d = 0; d < ref.shape.length; d++) {
    numel *= ref.shape[d]!;
    if (ref.shape[d]! > 0) last += (ref.shape[d]! - 1) * ref.stride[d]!;
  }
  if (numel === 0) return new Tensor(ref.shape);
  if (!Number.isSafeInteger(last) || last >= ref.storage.numel) {
    throw new FormatError(
      `${what}: shape [${ref.shape.join(', ')}] with strides [${ref.stride.join(', ')}] at offset ${ref.offset} reaches element ${last} of a ${ref.storage.numel}-element storage`,
    );
  }
  // Overlapping views (stride 0) could claim far more elements than the file holds.
  if (numel > ref.storage.numel) {
    throw new FormatError(
      `${what}: views ${numel} elements of a ${ref.storage.numel}-element storage (overlapping views are not supported)`,
    );
  }
  const view = new DataView(storage.buffer, storage.byteOffset, storage.byteLength);
  const read = reader(ref.storage.dtype, view);
  const out = new Float32Array(numel);
  const rank = ref.shape.length;
  const index = new Array<number>(rank).fill(0);
  let at = ref.offset;
  for (let i = 0; i < numel; i++) {
    out[i] = read(at);
    // Odometer over the shape, innermost dimension fastest.
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d]! < ref.shape[d]!) {
        at += ref.stride[d]!;
        break;
      }
      at -= (ref.shape[d]! - 1) * ref.stride[d]!;
      index[d] = 0;
    }
  }
  return new Tensor(ref.shape, out);
}

function reader(dtype: TorchDtype, v: DataView): (i: number) => number {
  switch (dtype) {
    case 'float32':
      return (i) => v.getFloat32(i * 4, true);
    case 'float64':
      return (i) => v.getFloat64(i * 8, true);
    case 'float16':
      return (i) => halfToFloat(v.getUint16(i * 2, true));
    case 'bfloat16':
      return (i) => bfloat16ToFloat(v.getUint16(i * 2, true));
    case 'int64':
      return (i) => Number(v.getBigInt64(i * 8, true));
    case 'int32':
      return (i) => v.getInt32(i * 4, true);
    case 'int16':
      return (i) => v.getInt16(i * 2, true);
    case 'int8':
      return (i) => v.getInt8(i);
    default: // uint8, bool
      return (i) => v.getUint8(i);
  }
}

/** Visits every storage reference in a pickled value (iteratively: hostile files can nest deeply or loop). */
function collectStorages(root: PickleValue, visit: (ref: StorageRef) => void): void {
  const seen = new Set<object>();
  const todo: PickleValue[] = [root];
  while (todo.length > 0) {
    const v = todo.pop()!;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof TensorRef) visit(v.storage);
    else if (v instanceof StorageRef) visit(v);
    else if (v instanceof Map) for (const [k, x] of v) todo.push(k, x);
    else if (v instanceof PyTuple) for (const x of v.items) todo.push(x);
    else if (Array.isArray(v)) for (const x of v) todo.push(x);
  }
}
