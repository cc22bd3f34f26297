/**
 * Where each image format keeps its width and height, so a case can claim extreme dimensions that
 * the decoder believes: PNG IHDR (with its CRC fixed, or libpng stops at the CRC), the GIF logical
 * screen and frame descriptors, JPEG SOF, WebP VP8/VP8L/VP8X, TIFF tags 256/257, the HEIF/AVIF
 * `ispe` box and SVG attributes. Also a CRC fixer for PNG chunks after any byte mutation.
 */
import type { Random } from '../src/tensor/random.js';
import { chance, type Mutated, pick, writeUint } from './mutate.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif' | 'svg';

export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  const ascii = (at: number, text: string): boolean => [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));
  if (ascii(1, 'PNG')) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpeg';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (ascii(0, 'GIF8')) return 'gif';
  if (ascii(0, 'II*\0') || ascii(0, 'MM\0*')) return 'tiff';
  if (ascii(4, 'ftyp')) return 'avif';
  if (new TextDecoder().decode(bytes.subarray(0, 200)).includes('<svg')) return 'svg';
  return null;
}

/** Dimensions an attacker picks: issue 15's aspect ratios, the pixel limit's edges, zero, 2^16 - 1. */
export const extremeSizes: readonly (readonly [number, number])[] = [
  [1_000_000, 1],
  [1, 1_000_000],
  [65535, 65535],
  [11778, 1],
  [1, 11778],
  [4, 32769],
  [32769, 4],
  [65535, 1],
  [1, 65535],
  [8192, 8192],
  [8193, 8192],
  [16384, 4096],
  [4096, 16384],
  [16383, 16383],
  [100_000, 100_000],
  [2 ** 31 - 1, 1],
  [3, 20000],
  [20000, 3],
  [0, 0],
  [0, 7],
  [7, 0],
  [1, 1],
  [2, 3],
  [28, 1],
  [1, 224],
  [300, 2],
];

// ---- CRC-32 (PNG) --------------------------------------------------------------------------

const crcTable = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---- PNG -----------------------------------------------------------------------------------

export interface PngChunk {
  at: number;
  length: number;
  type: string;
}

export function pngChunks(bytes: Uint8Array): PngChunk[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: PngChunk[] = [];
  for (let p = 8; p + 12 <= bytes.length && out.length < 10000;) {
    const length = view.getUint32(p); // big-endian;
    const type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    out.push({ at: p, length, type });
    if (p + 12 + length > bytes.length) break;
    p += 12 + length;
  }
  return out;
}

/** Recomputes the CRC of every chunk that lies inside the file, in place. */
export function fixPngCrcs(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const c of pngChunks(bytes)) {
    if (c.at + 12 + c.length > bytes.length) continue;
    view.setUint32(c.at + 8 + c.length, crc32(bytes.subarray(c.at + 4, c.at + 8 + c.length)));
  }
}

// ---- GIF -----------------------------------------------------------------------------------

/**
 * The classic 43-byte GIF (GIF89a, 2-colour table, graphic control, one frame of a 1×1 pixel's
 * LZW data) with the logical screen and the frame claiming `width`×`height`: the decoder fills a
 * frame of that size from 43 bytes.
 */
export function tinyGif(width: number, height: number): Uint8Array {
  const bytes = Uint8Array.from([
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
  ]);
  for (const at of [6, 32]) {
    writeUint(bytes, at, 2, BigInt(width));
    writeUint(bytes, at + 2, 2, BigInt(height));
  }
  return bytes;
}

/** Offsets of the image descriptors (0x2C) of a GIF, found by walking its blocks. */
export function gifFrames(bytes: Uint8Array): number[] {
  const frames: number[] = [];
  let p = 13;
  if ((bytes[10] ?? 0) & 0x80) p += 3 * 2 ** (((bytes[10] ?? 0) & 7) + 1);
  const skipSubBlocks = (q: number): number => {
    while (q < bytes.length && bytes[q] !== 0) q += bytes[q]! + 1;
    return q + 1;
  };
  while (p < bytes.length && frames.length < 1000) {
    const block = bytes[p]!;
    if (block === 0x21) p = skipSubBlocks(p + 2);
    else if (block === 0x2c) {
      frames.push(p);
      const packed = bytes[p + 9] ?? 0;
      p += 10;
      if (packed & 0x80) p += 3 * 2 ** ((packed & 7) + 1);
      p = skipSubBlocks(p + 1);
    } else break;
  }
  return frames;
}

// ---- Dimensions, per format ----------------------------------------------------------------

function jpegFrames(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 2; p + 4 <= bytes.length;) {
    if (bytes[p] !== 0xff) break;
    const marker = bytes[p + 1]!;
    if (marker === 0xd9 || marker === 0xda) break;
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) out.push(p);
    p += 2 + length;
  }
  return out;
}

function riffChunks(bytes: Uint8Array): { at: number; type: string; size: number }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: { at: number; type: string; size: number }[] = [];
  for (let p = 12; p + 8 <= bytes.length && out.length < 100;) {
    const size = view.getUint32(p + 4, true);
    out.push({ at: p, type: String.fromCharCode(...bytes.subarray(p, p + 4)), size });
    p += 8 + size + (size & 1);
  }
  return out;
}

interface IfdEntry {
  at: number;
  tag: number;
}

function tiffEntries(bytes: Uint8Array): { entries: IfdEntry[]; little: boolean } {
  const little = bytes[0] === 0x49;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: IfdEntry[] = [];
  if (bytes.length < 8) return { entries, little };
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > bytes.length) return { entries, little };
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count && ifd + 2 + 12 * (i + 1) <= bytes.length; i++) {
    const at = ifd + 2 + 12 * i;
    entries.push({ at, tag: view.getUint16(at, little) });
  }
  return { entries, little };
}

/**
 * Claims `width`×`height` in the file's header(s) (clipped to each field's width). Returns null for
 * a file whose structure was not found.
 */
export function setDimensions(bytes: Uint8Array, width: number, height: number, rng: Random): Mutated | null {
  const format = sniffFormat(bytes);
  const out = bytes.slice();
  const w = BigInt(width);
  const h = BigInt(height);
  let where: string;
  switch (format) {
    case 'png': {
      writeUint(out, 16, 4, w, false);
      writeUint(out, 20, 4, h, false);
      fixPngCrcs(out);
      where = 'IHDR';
      break;
    }
    case 'gif': {
      const frames = gifFrames(out);
      const target = chance(rng, 0.5) ? 'screen' : chance(rng, 0.5) ? 'frame' : 'both';
      if (target !== 'frame' || frames.length === 0) {
        writeUint(out, 6, 2, w);
        writeUint(out, 8, 2, h);
      }
      if (target !== 'screen') {
        for (const f of frames) {
          writeUint(out, f + 5, 2, w);
          writeUint(out, f + 7, 2, h);
        }
      }
      where = `GIF ${target}`;
      break;
    }
    case 'jpeg': {
      const frames = jpegFrames(out);
      if (frames.length === 0) return null;
      for (const f of frames) {
        writeUint(out, f + 5, 2, h, false);
        writeUint(out, f + 7, 2, w, false);
      }
      where = 'SOF';
      break;
    }
    case 'webp': {
      const chunks = riffChunks(out);
      const parts: string[] = [];
      for (const c of chunks) {
        const d = c.at + 8;
        if (c.type === 'VP8 ') {
          writeUint(out, d + 6, 2, w & 0x3fffn);
          writeUint(out, d + 8, 2, h & 0x3fffn);
        } else if (c.type === 'VP8L') {
          const bits = ((w - 1n) & 0x3fffn) | (((h - 1n) & 0x3fffn) << 14n) | ((BigInt(out[d + 4] ?? 0) >> 4n) << 28n);
          writeUint(out, d + 1, 4, bits);
        } else if (c.type === 'VP8X') {
          writeUint(out, d + 4, 3, w - 1n);
          writeUint(out, d + 7, 3, h - 1n);
        } else continue;
        parts.push(c.type.trim());
      }
      if (parts.length === 0) return null;
      where = parts.join('+');
      break;
    }
    case 'tiff': {
      const { entries, little } = tiffEntries(out);
      const view = new DataView(out.buffer);
      let found = 0;
      for (const e of entries) {
        if (e.tag !== 256 && e.tag !== 257) continue;
        view.setUint16(e.at + 2, 4, little); // LONG
        view.setUint32(e.at + 4, 1, little);
        view.setUint32(e.at + 8, Number(BigInt.asUintN(32, e.tag === 256 ? w : h)), little);
        found++;
      }
      if (found === 0) return null;
      where = 'tags 256/257';
      break;
    }
    case 'avif': {
      const text = Buffer.from(out.buffer, out.byteOffset, out.length).toString('latin1');
      let at = text.indexOf('ispe');
      if (at < 0) return null;
      for (; at >= 0; at = text.indexOf('ispe', at + 4)) {
        writeUint(out, at + 8, 4, w, false);
        writeUint(out, at + 12, 4, h, false);
      }
      where = 'ispe';
      break;
    }
    case 'svg': {
      const text = new TextDecoder().decode(out);
      const svg = text
        .replace(/width="[^"]*"/, `width="${width}"`)
        .replace(/height="[^"]*"/, `height="${height}"`)
        .replace(/viewBox="[^"]*"/, chance(rng, 0.5) ? `viewBox="0 0 ${width} ${height}"` : '$&');
      return { bytes: new TextEncoder().encode(svg), what: `svg size ${width}×${height}` };
    }
    default:
      return null;
  }
  return { bytes: out, what: `${format} ${where} size ${width}×${height}` };
}

/** Hot ranges: the headers of each format, where a byte mutation is most likely to matter. */
export function imageHot(bytes: Uint8Array): [number, number][] {
  const format = sniffFormat(bytes);
  if (format === 'png') {
    const chunks = pngChunks(bytes).filter((c) => c.type !== 'IDAT');
    return [[0, 64], ...chunks.map((c): [number, number] => [c.at, c.at + 12 + Math.min(c.length, 256)])];
  }
  if (format === 'gif') return [[0, 13], ...gifFrames(bytes).map((f): [number, number] => [f, f + 12])];
  if (format === 'jpeg')
    return jpegFrames(bytes)
      .map((f): [number, number] => [f, f + 20])
      .concat([[0, 200]]);
  return [[0, Math.min(bytes.length, 256)]];
}

/** A PNG-specific header field: bit depth, colour type, interlace or a chunk length, CRCs fixed. */
export function mutatePngHeader(rng: Random, bytes: Uint8Array): Mutated {
  const out = bytes.slice();
  const chunks = pngChunks(out);
  const field = pick(rng, ['depth', 'colour', 'interlace', 'length'] as const);
  let what: string;
  if (field === 'length' && chunks.length > 0) {
    const c = pick(rng, chunks);
    const value = pick(rng, [0, 1, 0x7fffffff, 0xffffffff, c.length + 1, c.length - 1]);
    writeUint(out, c.at, 4, BigInt(value), false);
    what = `PNG ${c.type} length = ${value}`;
  } else {
    const at = field === 'depth' ? 24 : field === 'colour' ? 25 : 28;
    const value = pick(rng, field === 'depth' ? [0, 1, 2, 3, 4, 8, 16, 32, 255] : [0, 1, 2, 3, 4, 5, 6, 7, 255]);
    out[at] = value;
    what = `PNG IHDR ${field} = ${value}`;
  }
  fixPngCrcs(out);
  return { bytes: out, what };
}
