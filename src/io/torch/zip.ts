/**
 * A small zip reader: the central directory, stored and deflated entries, zip64 records. This is
 * all `torch.save` (≥ 1.6) needs: it writes stored entries aligned to 64 bytes, with data
 * descriptors (so sizes come from the central directory, never from local headers).
 *
 * Every offset and size is checked against the file before anything is sliced or inflated.
 */
import { inflateSync } from 'fflate';
import { FormatError } from '../../errors.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export interface ZipArchive {
  entries: Map<string, ZipEntry>;
  /** The bytes of one entry (a view for stored entries, inflated for deflated ones). */
  read(name: string): Uint8Array;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export function readZip(bytes: Uint8Array, source = 'zip'): ZipArchive {
  const fail = (why: string): never => {
    throw new FormatError(`${source}: zip archive: ${why}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  // The end-of-central-directory record is 22 bytes plus a comment of at most 65535 bytes.
  let eocd = -1;
  for (let i = n - 22; i >= Math.max(0, n - 22 - 65535); i--) {
    if (view.getUint32(i, true) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record (truncated file?)');
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== ZIP64_LOCATOR) fail('zip64 locator missing');
    const record = safeNumber(view.getBigUint64(locator + 8, true), n, 'zip64 record offset', fail);
    if (record + 56 > n || view.getUint32(record, true) !== ZIP64_EOCD) fail('zip64 end record missing');
    count = safeNumber(view.getBigUint64(record + 32, true), n, 'entry count', fail);
    cdSize = safeNumber(view.getBigUint64(record + 40, true), n, 'central directory size', fail);
    cdOffset = safeNumber(view.getBigUint64(record + 48, true), n, 'central directory offset', fail);
  }
  if (cdOffset + cdSize > n) fail(`central directory (${cdSize} bytes at ${cdOffset}) lies outside the ${n}-byte file`);
  if (count * 46 > cdSize) fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);

  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let p = cdOffset;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdOffset + cdSize || view.getUint32(p, true) !== CENTRAL)
      fail(`central directory entry ${k} is corrupt`);
    const method = view.getUint16(p + 10, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    let localHeaderOffset = view.getUint32(p + 42, true);
    const end = p + 46 + nameLength + extraLength + commentLength;
    if (end > cdOffset + cdSize) fail(`central directory entry ${k} overruns the directory`);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLength));
    // zip64 extra field (id 1): the saturated fields, in order size, compressed size, offset.
    let e = p + 46 + nameLength;
    while (e + 4 <= p + 46 + nameLength + extraLength) {
      const id = view.getUint16(e, true);
      const len = view.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        const next = (): number => {
          if (q + 8 > e + 4 + len) fail(`zip64 field of "${name}" is too short`);
          const v = safeNumber(view.getBigUint64(q, true), n, 'zip64 size', fail);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
      }
      e += 4 + len;
    }
    if (method !== 0 && method !== 8)
      fail(`entry "${name}" uses compression method ${method} (only stored and deflate)`);
    if (entries.has(name)) fail(`entry "${name}" appears twice`);
    entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
    p = end;
  }

  const read = (name: string): Uint8Array => {
    const entry = entries.get(name);
    if (entry === undefined) return fail(`no entry "${name}"`);
    const h = entry.localHeaderOffset;
    if (h + 30 > n || view.getUint32(h, true) !== LOCAL) return fail(`local header of "${name}" is missing or corrupt`);
    const start = h + 30 + view.getUint16(h + 26, true) + view.getUint16(h + 28, true);
    if (start + entry.compressedSize > n) {
      return fail(
        `entry "${name}" (${entry.compressedSize} bytes at ${start}) runs past the end of the ${n}-byte file`,
      );
    }
    const raw = bytes.subarray(start, start + entry.compressedSize);
    if (entry.method === 0) {
      if (entry.size !== entry.compressedSize) return fail(`stored entry "${name}" has two different sizes`);
      return raw;
    }
    // NOTE: deflate can expand ~1000×; the declared size bounds the output we accept.
    if (entry.size > 1032 * entry.compressedSize + 64)
      return fail(`entry "${name}" claims an impossible size ${entry.size}`);
    let out: Uint8Array;
    try {
      out = inflateSync(raw, { out: new Uint8Array(entry.size) });
    } catch (err) {
      return fail(`entry "${name}" does not inflate (${(err as Error).message})`);
    }
    if (out.length !== entry.size) return fail(`entry "${name}" inflates to ${out.length} bytes, not ${entry.size}`);
    return out;
  };
  return { entries, read };
}

function safeNumber(v: bigint, limit: number, what: string, fail: (why: string) => never): number {
  if (v > BigInt(limit)) fail(`${what} ${v} exceeds the file size ${limit}`);
  return Number(v);
}
