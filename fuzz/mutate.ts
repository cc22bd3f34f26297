/**
 * Format-blind mutations: bytes and JSON values, driven by one seeded generator so that a case is a
 * pure function of (seed, reader, index). The byte primitives (`insertBytes`, `removeBytes`, …) are
 * also what the property tests in test/ mutate with.
 */
import { Random } from '../src/tensor/random.js';

/** The generator of case `index` of `reader` under base seed `seed`: FNV-1a of the three. */
export function caseRandom(seed: number, reader: string, index: number): Random {
  let h = 0x811c9dc5;
  for (const ch of `${seed}/${reader}/${index}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  return new Random(h >>> 0);
}

export const pick = <T>(rng: Random, items: readonly T[]): T => items[rng.int(items.length)]!;
export const chance = (rng: Random, p: number): boolean => rng.next() < p;
/** Integer in [lo, hi]. */
export const between = (rng: Random, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);

/** Picks by weight: `[[3, 'a'], [1, 'b']]` gives 'a' three times as often as 'b'. */
export function weighted<T>(rng: Random, choices: readonly (readonly [number, T])[]): T {
  let r = rng.next() * choices.reduce((s, [w]) => s + w, 0);
  for (const [w, v] of choices) if ((r -= w) < 0) return v;
  return choices[choices.length - 1]![1];
}

// ---- Byte primitives -----------------------------------------------------------------------

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A copy with `insert` placed at `at` (clamped to the length). */
export function insertBytes(bytes: Uint8Array, at: number, insert: Uint8Array): Uint8Array {
  const p = Math.min(Math.max(at, 0), bytes.length);
  return concat(bytes.subarray(0, p), insert, bytes.subarray(p));
}

/** A copy without the `count` bytes from `at` (clamped to the length). */
export function removeBytes(bytes: Uint8Array, at: number, count: number): Uint8Array {
  const p = Math.min(Math.max(at, 0), bytes.length);
  return concat(bytes.subarray(0, p), bytes.subarray(Math.min(bytes.length, p + count)));
}

/** A copy with `bytes.subarray(at, at + count)` replaced by `insert`. */
export function spliceBytes(bytes: Uint8Array, at: number, count: number, insert: Uint8Array): Uint8Array {
  return insertBytes(removeBytes(bytes, at, count), at, insert);
}

/** Writes `value` as a 5-byte protobuf varint over the bytes at `at` (as far as they go), in place. */
export function overwriteVarint5(bytes: Uint8Array, at: number, value: number): void {
  let v = value;
  for (let i = 0; i < 5 && at + i < bytes.length; i++, v = Math.floor(v / 128)) {
    bytes[at + i] = (v & 0x7f) | (i < 4 ? 0x80 : 0);
  }
}

/** A protobuf varint (negative values as 10-byte two's complement, as int64 fields are). */
export function encodeVarint(value: bigint | number): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? low | 0x80 : low);
  } while (v > 0n);
  return Uint8Array.from(out);
}

/** Writes an unsigned integer of `width` bytes (1, 2, 4 or 8), clipped to the file, in place. */
export function writeUint(bytes: Uint8Array, at: number, width: number, value: bigint, littleEndian = true): void {
  const v = BigInt.asUintN(width * 8, value);
  for (let i = 0; i < width && at + i < bytes.length; i++) {
    const shift = BigInt(8 * (littleEndian ? i : width - 1 - i));
    if (at + i >= 0) bytes[at + i] = Number((v >> shift) & 0xffn);
  }
}

// ---- Hostile values ------------------------------------------------------------------------

/** Sizes, lengths and counts an attacker writes: zero, one, sign bits, all ones, just past 2^31. */
export const hostileU16 = [0, 1, 0x7f, 0xff, 0x7fff, 0x8000, 0xfffe, 0xffff] as const;
export const hostileU32 = [0, 1, 0x7f, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff] as const;
export const hostileU64 = [
  0n,
  1n,
  0xffffffffn,
  0x100000000n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 1n,
] as const;
/** Numbers for JSON fields and protobuf ints: issue 15's (1e9, -12, 100000, 2^53, 0.5) and kin. */
export const hostileNumbers = [
  1e9,
  -12,
  100000,
  2 ** 53,
  0.5,
  0,
  -1,
  1,
  2,
  3,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  1e12,
  -1e9,
  1e308,
  -0.5,
  1.5,
] as const;
/** Number literals JSON can hold but `JSON.stringify` cannot write (Infinity, -0, denormals). */
export const hostileNumberLiterals = [
  '1e9',
  '-12',
  '100000',
  '9007199254740992',
  '9007199254740993',
  '0.5',
  '1e999',
  '-1e999',
  '-0',
  '5e-324',
  '18446744073709551616',
  '1e21',
  '0',
  '-1',
  '2147483648',
  '4294967296',
] as const;

// ---- Byte mutations ------------------------------------------------------------------------

export interface Mutated {
  bytes: Uint8Array;
  /** What was done, for the failure report: `u32 0xffffffff at 1234`. */
  what: string;
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** A position: half the time inside one of the `hot` ranges [start, end) (the headers), else anywhere. */
export function position(rng: Random, length: number, hot: readonly (readonly [number, number])[] = []): number {
  if (length === 0) return 0;
  const ranges = hot.filter(([a, b]) => b > a && a < length);
  if (ranges.length > 0 && chance(rng, 0.5)) {
    const [a, b] = pick(rng, ranges);
    return Math.min(length - 1, a + rng.int(Math.min(b, length) - a));
  }
  return rng.int(length);
}

/**
 * One format-blind mutation: a random or special byte, a flipped bit, truncation, insertion,
 * deletion, duplication, or a hostile 16/32/64-bit integer (either endianness) or varint written
 * over the bytes.
 */
export function mutateBytes(
  rng: Random,
  source: Uint8Array,
  hot: readonly (readonly [number, number])[] = [],
): Mutated {
  const at = position(rng, source.length, hot);
  const kind = weighted(rng, [
    [3, 'byte'],
    [3, 'bit'],
    [1, 'special'],
    [1, 'truncate'],
    [1, 'insert'],
    [1, 'delete'],
    [1, 'duplicate'],
    [2, 'u32'],
    [1, 'u16'],
    [1, 'u64'],
    [1, 'varint'],
  ] as const);
  const bytes = source.slice();
  switch (kind) {
    case 'byte': {
      const v = rng.int(256);
      if (at < bytes.length) bytes[at] = v;
      return { bytes, what: `byte ${hex(v)} at ${at}` };
    }
    case 'bit': {
      const bit = rng.int(8);
      if (at < bytes.length) bytes[at]! ^= 1 << bit;
      return { bytes, what: `bit ${bit} flipped at ${at}` };
    }
    case 'special': {
      const v = pick(rng, [0, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x22, 0x7b, 0x5b]);
      if (at < bytes.length) bytes[at] = v;
      return { bytes, what: `byte ${hex(v)} at ${at}` };
    }
    case 'truncate':
      return { bytes: source.slice(0, at), what: `truncated to ${at} bytes` };
    case 'insert': {
      const insert = Uint8Array.from({ length: between(rng, 1, 16) }, () => rng.int(256));
      return { bytes: insertBytes(source, at, insert), what: `${insert.length} random bytes inserted at ${at}` };
    }
    case 'delete': {
      const count = between(rng, 1, 64);
      return { bytes: removeBytes(source, at, count), what: `${count} bytes deleted at ${at}` };
    }
    case 'duplicate': {
      const count = between(rng, 1, 256);
      const block = source.slice(at, at + count);
      return { bytes: insertBytes(source, at, block), what: `${block.length} bytes at ${at} duplicated` };
    }
    case 'u16':
    case 'u32':
    case 'u64': {
      const width = kind === 'u16' ? 2 : kind === 'u32' ? 4 : 8;
      const value =
        kind === 'u16'
          ? BigInt(pick(rng, hostileU16))
          : kind === 'u32'
            ? BigInt(pick(rng, hostileU32))
            : pick(rng, hostileU64);
      const little = chance(rng, 0.7);
      writeUint(bytes, at, width, value, little);
      return { bytes, what: `${kind} ${hex(value)} (${little ? 'LE' : 'BE'}) at ${at}` };
    }
    case 'varint': {
      const value = pick(rng, [0xffffffff, 0x7fffffff, 1 << 20, 1 << 28, between(rng, 1 << 20, 0x7fffffff)]);
      overwriteVarint5(bytes, at, value);
      return { bytes, what: `varint ${value} written at ${at}` };
    }
  }
}

/** `count` byte mutations in a row. */
export function mutateBytesTimes(
  rng: Random,
  source: Uint8Array,
  count: number,
  hot: readonly (readonly [number, number])[] = [],
): Mutated {
  let bytes = source;
  const what: string[] = [];
  for (let i = 0; i < count; i++) {
    const m = mutateBytes(rng, bytes, hot);
    bytes = m.bytes;
    what.push(m.what);
  }
  return { bytes, what: what.join('; ') };
}

// ---- JSON mutations ------------------------------------------------------------------------

/**
 * A JSON value that may contain raw literals (`{ raw: '1e999' }`), written by `stringifyRaw`, for
 * numbers JSON.stringify cannot produce.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue } | RawLiteral;
export class RawLiteral {
  constructor(readonly text: string) {}
}

/** JSON.stringify that writes RawLiteral as its text and handles any nesting depth. */
export function stringifyRaw(value: JsonValue): string {
  const parts: string[] = [];
  // An explicit stack (deep nesting is one of the mutations, and must not overflow ours); brackets
  // and separators go on it as RawLiterals.
  const stack: JsonValue[] = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (v instanceof RawLiteral) parts.push(v.text);
    else if (Array.isArray(v)) {
      parts.push('[');
      stack.push(new RawLiteral(']'));
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push(v[i]!);
        if (i > 0) stack.push(new RawLiteral(','));
      }
    } else if (v !== null && typeof v === 'object') {
      parts.push('{');
      stack.push(new RawLiteral('}'));
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        stack.push(entries[i]![1], new RawLiteral(`${JSON.stringify(entries[i]![0])}:`));
        if (i > 0) stack.push(new RawLiteral(','));
      }
    } else parts.push(JSON.stringify(v) ?? 'null');
  }
  return parts.join('');
}

interface Slot {
  path: string;
  get(): JsonValue;
  set(v: JsonValue): void;
  remove?(): void;
}

/** Every value in the tree (the root excluded), with a setter. */
function slots(root: JsonValue): Slot[] {
  const out: Slot[] = [];
  const visit = (v: JsonValue, path: string, depth: number): void => {
    if (depth > 64 || v === null || typeof v !== 'object' || v instanceof RawLiteral) return;
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        out.push({
          path: `${path}[${i}]`,
          get: () => v[i]!,
          set: (x) => (v[i] = x),
          remove: () => v.splice(i, 1),
        });
        visit(item, `${path}[${i}]`, depth + 1);
      });
    } else {
      for (const [k, item] of Object.entries(v)) {
        out.push({ path: `${path}.${k}`, get: () => v[k]!, set: (x) => (v[k] = x), remove: () => delete v[k] });
        visit(item, `${path}.${k}`, depth + 1);
      }
    }
  };
  visit(root, '$', 0);
  return out;
}

/** `depth` nested arrays (or objects) around `inner`. */
export function deeplyNested(depth: number, inner: JsonValue = 0, objects = false): RawLiteral {
  const open = objects ? '{"a":' : '[';
  const close = objects ? '}' : ']';
  return new RawLiteral(open.repeat(depth) + stringifyRaw(inner) + close.repeat(depth));
}

/** A hostile replacement for a JSON value: a huge/negative/fractional number, a wrong type, depth. */
export function hostileJson(rng: Random, current: JsonValue): JsonValue {
  const kind = weighted(rng, [
    [typeof current === 'number' ? 6 : 2, 'number'],
    [2, 'literal'],
    [1, 'string'],
    [1, 'null'],
    [1, 'bool'],
    [1, 'array'],
    [1, 'object'],
    [1, 'deep'],
    [1, 'long'],
  ] as const);
  switch (kind) {
    case 'number':
      return pick(rng, hostileNumbers);
    case 'literal':
      return new RawLiteral(pick(rng, hostileNumberLiterals));
    case 'string':
      return pick(rng, ['', 'NaN', 'Infinity', '1e9', '-12', '\u001b[2J\n', 'x'.repeat(between(rng, 1, 300))]);
    case 'null':
      return null;
    case 'bool':
      return chance(rng, 0.5);
    case 'array':
      return pick(rng, [[], [1e9], [-12, -12, -12], Array.from({ length: 100000 }, () => 0)]);
    case 'object':
      return pick<JsonValue>(rng, [{}, { conv1: -12, stages: [-12, 24, 48] }, { length: 1e9 }]);
    case 'deep':
      return deeplyNested(
        pick(rng, [100, 1000, 10000, 100000]),
        current instanceof RawLiteral ? 0 : current,
        chance(rng, 0.3),
      );
    case 'long':
      return 'a'.repeat(pick(rng, [1000, 100000, 1000000]));
  }
}

/** Replaces (or removes, or adds beside) one value anywhere in `root`, in place. */
export function mutateJson(rng: Random, root: JsonValue): string {
  const all = slots(root);
  if (all.length === 0) return 'nothing to mutate';
  // Numbers are what sizes are made of: prefer them.
  const numbers = all.filter((s) => typeof s.get() === 'number');
  const slot = numbers.length > 0 && chance(rng, 0.6) ? pick(rng, numbers) : pick(rng, all);
  if (slot.remove !== undefined && chance(rng, 0.1)) {
    slot.remove();
    return `${slot.path} removed`;
  }
  const value = hostileJson(rng, slot.get());
  slot.set(value);
  return `${slot.path} = ${describeJson(value)}`;
}

export function describeJson(v: JsonValue): string {
  const text = v instanceof RawLiteral ? v.text : stringifyRaw(v);
  return text.length > 40 ? `${text.slice(0, 20)}…(${text.length} chars)` : text;
}
