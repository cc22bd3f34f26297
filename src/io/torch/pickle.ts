/**
 * A safe unpickler for the subset of Python's pickle protocol (0–5 opcodes, as written by
 * protocol 2, which `torch.save` uses) that PyTorch checkpoints need.
 *
 * Safety: nothing in the file is ever executed. GLOBAL may only name an allow-listed callable
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, the torch.*Storage
 * types); any other global (os.system, builtins.eval, a model class, …) is refused with a
 * FormatError that names it, the moment the opcode is read. REDUCE and BUILD only ever apply
 * allow-listed callables, which build plain data.
 *
 * Bounds: every length is checked against the bytes that remain before anything is sliced; the
 * memo is a Map (a hostile LONG_BINPUT index cannot make it allocate), and the stack and memo can
 * only grow by one entry per opcode, so both are bounded by the file length.
 */
import { FormatError } from '../../errors.js';

/** A storage reference from a persistent id: ('storage', StorageType, key, location, numel, …). */
export class StorageRef {
  constructor(
    readonly dtype: TorchDtype,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
    /** Legacy format only: (view key, offset, view size) when the tensor views part of a storage. */
    readonly view: { key: string; offset: number; size: number } | null,
  ) {}
}

/** A tensor as the pickle describes it; its bytes are read later from the storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** An allow-listed global, as pushed by GLOBAL. Only REDUCE can apply it. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python tuple (kept apart from lists only for messages). */
export class PyTuple {
  constructor(readonly items: PickleValue[]) {}
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PyTuple
  | Map<PickleValue, PickleValue>
  | PyGlobal
  | StorageRef
  | TensorRef;

export type TorchDtype =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const dtypeBytes: Readonly<Record<TorchDtype, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** The storage types `torch.save` names, by class name (module `torch`). */
const storageTypes: Readonly<Record<string, TorchDtype>> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** Every global a checkpoint may name. Anything else is refused. */
const allowedGlobals = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(storageTypes).map((s) => `torch.${s}`),
]);

export interface UnpickleResult {
  value: PickleValue;
  /** Offset of the byte after STOP. */
  end: number;
}

/**
 * Unpickles one pickle starting at `start`. `source` names the file in errors. Persistent ids
 * must be torch storage tuples.
 */
export function unpickle(bytes: Uint8Array, start = 0, source = 'pickle'): UnpickleResult {
  const fail = (at: number, why: string): never => {
    throw new FormatError(`${source}: pickle at byte ${at}: ${why}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  let pos = start;

  const need = (n: number, what: string): void => {
    if (!(n >= 0) || pos + n > bytes.length) {
      fail(pos, `${what} needs ${n} bytes but only ${bytes.length - pos} remain (truncated file?)`);
    }
  };
  const u8 = (): number => {
    need(1, 'an argument');
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2, 'an argument');
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, 'an argument');
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4, 'an argument');
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8, 'an argument');
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(pos - 8, `length ${v} exceeds the file size ${bytes.length}`);
    return Number(v);
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = (what: string): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(pos, `${what} has no terminating newline (truncated file?)`);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const text = (n: number, what: string): string => {
    const raw = take(n, what);
    try {
      return utf8.decode(raw);
    } catch {
      return fail(pos - n, `${what} is not valid UTF-8`);
    }
  };
  const pop = (at: number): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) {
      fail(at, 'stack underflow');
    }
    return stack.pop()!;
  };
  const top = (at: number): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) {
      fail(at, 'stack underflow');
    }
    return stack[stack.length - 1]!;
  };
  const popMark = (at: number): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) fail(at, 'no MARK to pop to');
    return stack.splice(m!);
  };
  const put = (index: number, at: number): void => {
    memo.set(index, top(at));
  };
  const get = (index: number, at: number): void => {
    if (!memo.has(index)) fail(at, `memo entry ${index} was never stored`);
    stack.push(memo.get(index)!);
  };
  const setItems = (dict: PickleValue, items: PickleValue[], at: number): void => {
    if (!(dict instanceof Map)) fail(at, `SETITEM(S) on a ${describe(dict)}, not a dict`);
    if (items.length % 2 !== 0) fail(at, 'SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) (dict as Map<PickleValue, PickleValue>).set(items[i]!, items[i + 1]!);
  };
  const global = (module: string, name: string, at: number): PyGlobal => {
    const qualified = `${module}.${name}`;
    if (!allowedGlobals.has(qualified)) {
      fail(
        at,
        `refusing global ${globalName(qualified)}: only tensors, storages and plain containers are loaded ` +
          '(nothing in the file is executed; save model.state_dict() rather than a whole model)',
      );
    }
    return new PyGlobal(module, name);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(at, `pickle protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME (protocol 4): the frame length is advisory
        take(8, 'FRAME');
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(at, `STOP with ${stack.length} values on the stack`);
        return { value: stack[0]!, end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        const n = u8();
        stack.push(longFromBytes(take(n, 'LONG1')));
        break;
      }
      case 0x8b: {
        // LONG4
        const n = u32();
        if (n > 64) fail(at, `LONG4 of ${n} bytes is too large for a checkpoint`);
        stack.push(longFromBytes(take(n, 'LONG4')));
        break;
      }
      case 0x49: {
        // INT (text): also True/False as I01/I00
        const s = line('INT');
        if (s === '01' || s === '00') stack.push(s === '01');
        else {
          const v = Number(s);
          if (!Number.isInteger(v)) fail(at, `INT ${JSON.stringify(s.slice(0, 40))} is not an integer`);
          stack.push(v);
        }
        break;
      }
      case 0x4c: {
        // LONG (text)
        const s = line('LONG').replace(/L$/, '');
        if (!/^-?\d{1,40}$/.test(s)) fail(at, `LONG ${JSON.stringify(s.slice(0, 40))} is not an integer`);
        const v = BigInt(s);
        stack.push(Number.isSafeInteger(Number(v)) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8, 'BINFLOAT');
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: {
        // FLOAT (text)
        const v = Number(line('FLOAT'));
        if (Number.isNaN(v)) fail(at, 'FLOAT is not a number');
        stack.push(v);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(text(u32(), 'BINUNICODE'));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8(), 'SHORT_BINUNICODE'));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64(), 'BINUNICODE8'));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(latin1.decode(take(u32(), 'BINSTRING')));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8(), 'SHORT_BINSTRING')));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32(), 'BINBYTES').slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8(), 'SHORT_BINBYTES').slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(take(u64(), 'BINBYTES8').slice());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop(at)]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop(at);
        stack.push(new PyTuple([pop(at), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop(at);
        const b = pop(at);
        stack.push(new PyTuple([pop(at), b, c]));
        break;
      }
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark(at)));
        break;
      case 0x6c: // LIST
        stack.push(popMark(at));
        break;
      case 0x64: {
        // DICT
        const items = popMark(at);
        const dict = new Map<PickleValue, PickleValue>();
        setItems(dict, items, at);
        stack.push(dict);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop(at);
        const list = top(at);
        if (!Array.isArray(list)) fail(at, `APPEND to a ${describe(list)}, not a list`);
        (list as PickleValue[]).push(item);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark(at);
        const list = top(at);
        if (!Array.isArray(list)) fail(at, `APPENDS to a ${describe(list)}, not a list`);
        for (const item of items) (list as PickleValue[]).push(item);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop(at);
        const key = pop(at);
        setItems(top(at), [key, value], at);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark(at);
        setItems(top(at), items, at);
        break;
      }
      case 0x30: // POP
        pop(at);
        break;
      case 0x31: // POP_MARK
        popMark(at);
        break;
      case 0x32: // DUP
        stack.push(top(at));
        break;
      case 0x70: {
        // PUT (text index)
        const index = Number(line('PUT'));
        if (!Number.isSafeInteger(index)) fail(at, 'PUT index is not an integer');
        put(index, at);
        break;
      }
      case 0x71: // BINPUT
        put(u8(), at);
        break;
      case 0x72: // LONG_BINPUT
        put(u32(), at);
        break;
      case 0x94: // MEMOIZE
        put(memo.size, at);
        break;
      case 0x67: {
        // GET (text index)
        const index = Number(line('GET'));
        if (!Number.isSafeInteger(index)) fail(at, 'GET index is not an integer');
        get(index, at);
        break;
      }
      case 0x68: // BINGET
        get(u8(), at);
        break;
      case 0x6a: // LONG_BINGET
        get(u32(), at);
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line('GLOBAL module');
        const name = line('GLOBAL name');
        stack.push(global(module, name, at));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop(at);
        const module = pop(at);
        if (typeof module !== 'string' || typeof name !== 'string') fail(at, 'STACK_GLOBAL needs two strings');
        stack.push(global(module as string, name as string, at));
        break;
      }
      case 0x52: {
        // REDUCE: callable(*args), only for allow-listed callables
        const args = pop(at);
        const callable = pop(at);
        stack.push(reduce(callable, args, at, fail));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args); only OrderedDict is an allowed class
        const args = pop(at);
        const cls = pop(at);
        if (!(cls instanceof PyGlobal) || cls.qualifiedName !== 'collections.OrderedDict') {
          fail(at, `NEWOBJ of ${describe(cls)} is not allowed`);
        }
        void args;
        stack.push(new Map());
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state). Only for dicts (OrderedDict's _metadata), where it is ignored.
        const state = pop(at);
        const obj = top(at);
        if (!(obj instanceof Map)) fail(at, `BUILD on a ${describe(obj)} is not allowed`);
        void state;
        break;
      }
      case 0x51: {
        // BINPERSID: torch storages
        const pid = pop(at);
        stack.push(persistentLoad(pid, at, fail));
        break;
      }
      case 0x50: // PERSID (text)
        fail(at, 'text persistent ids (PERSID) are not used by torch.save');
        break;
      default:
        fail(
          at,
          `unsupported opcode 0x${op.toString(16).padStart(2, '0')}${isPrintable(op) ? ` ('${String.fromCharCode(op)}')` : ''} (not a PyTorch checkpoint, or a corrupt one)`,
        );
    }
  }
}

function reduce(
  callable: PickleValue,
  args: PickleValue,
  at: number,
  fail: (at: number, why: string) => never,
): PickleValue {
  if (!(callable instanceof PyGlobal)) return fail(at, `REDUCE of a ${describe(callable)}, which is not callable`);
  if (!(args instanceof PyTuple))
    return fail(at, `REDUCE of ${callable.qualifiedName} with a ${describe(args)} as arguments`);
  const a = args.items;
  switch (callable.qualifiedName) {
    case 'collections.OrderedDict': {
      const dict = new Map<PickleValue, PickleValue>();
      if (a.length > 0) {
        const pairs = a[0];
        if (!Array.isArray(pairs)) return fail(at, 'OrderedDict(…) expects a list of pairs');
        for (const pair of pairs) {
          if (!(pair instanceof PyTuple) && !Array.isArray(pair)) return fail(at, 'OrderedDict(…) expects pairs');
          const items = pair instanceof PyTuple ? pair.items : pair;
          if (items.length !== 2) return fail(at, 'OrderedDict(…) expects pairs');
          dict.set(items[0]!, items[1]!);
        }
      }
      return dict;
    }
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [storage, offset, size, stride] = a;
      if (a.length < 4 || !(storage instanceof StorageRef)) {
        return fail(at, '_rebuild_tensor_v2 expects (storage, offset, size, stride, …)');
      }
      const shape = intTuple(size, 'size', at, fail);
      const strides = intTuple(stride, 'stride', at, fail);
      if (shape.length !== strides.length) {
        return fail(at, `tensor has ${shape.length} sizes but ${strides.length} strides`);
      }
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
        return fail(at, `tensor storage offset ${String(offset)} is not a non-negative integer`);
      }
      return new TensorRef(storage, offset, shape, strides);
    }
    case 'torch._utils._rebuild_parameter': {
      // (data, requires_grad, backward_hooks): a Parameter is its tensor
      if (!(a[0] instanceof TensorRef)) return fail(at, '_rebuild_parameter expects a tensor');
      return a[0];
    }
    default:
      return fail(at, `REDUCE of ${callable.qualifiedName} is not allowed (storage types are not callable)`);
  }
}

function persistentLoad(pid: PickleValue, at: number, fail: (at: number, why: string) => never): StorageRef {
  const items = pid instanceof PyTuple ? pid.items : null;
  if (items === null || items[0] !== 'storage' || items.length < 5) {
    return fail(at, `persistent id ${describe(pid)} is not a torch storage reference`);
  }
  const [, type, key, location, numel, viewMetadata] = items;
  if (!(type instanceof PyGlobal) || type.module !== 'torch' || !(type.name in storageTypes)) {
    return fail(at, `storage type ${describe(type!)} is not a known torch storage`);
  }
  if (typeof key !== 'string' || typeof location !== 'string')
    return fail(at, 'storage key and location must be strings');
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    return fail(at, `storage ${key} has an invalid size ${String(numel)}`);
  }
  let view: StorageRef['view'] = null;
  if (viewMetadata !== undefined && viewMetadata !== null) {
    const v = viewMetadata instanceof PyTuple ? viewMetadata.items : [];
    const [vkey, voffset, vsize] = v;
    if (typeof vkey !== 'string' || !isCount(voffset) || !isCount(vsize)) {
      return fail(at, `storage ${key} has invalid view metadata`);
    }
    view = { key: vkey, offset: voffset as number, size: vsize as number };
  }
  return new StorageRef(storageTypes[type.name]!, key, location, numel, view);
}

function isCount(v: PickleValue | undefined): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function intTuple(
  v: PickleValue | undefined,
  what: string,
  at: number,
  fail: (at: number, why: string) => never,
): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (items === null || items.length > 8 || !items.every(isCount)) {
    return fail(at, `tensor ${what} ${describe(v ?? null)} is not a tuple of at most 8 non-negative integers`);
  }
  return items as number[];
}

function longFromBytes(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
}

function isPrintable(op: number): boolean {
  return op >= 0x20 && op < 0x7f;
}

/**
 * A global's dotted name for a message: as written when it is one (`os.system`), else quoted and
 * cut like any string from the file (a corrupt GLOBAL runs to the next newline byte: kilobytes of
 * binary, control characters included).
 */
function globalName(qualified: string): string {
  return /^[\w.]{1,200}$/.test(qualified) ? qualified : describe(qualified);
}

/** A short description of a value for error messages. */
export function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (v instanceof PyGlobal) return globalName(v.qualifiedName);
  if (v instanceof PyTuple) return `tuple of ${v.items.length}`;
  if (Array.isArray(v)) return `list of ${v.length}`;
  if (v instanceof Map) return `dict of ${v.size}`;
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  if (v instanceof StorageRef) return `storage ${v.key}`;
  if (v instanceof TensorRef) return 'tensor';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return typeof v;
}
