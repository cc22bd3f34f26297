/**
 * Bad PyTorch files: truncated, garbage, hostile sizes, wrong shapes, and fast-check mutations of
 * valid files of each format. Every outcome is a model or one clear ShuffleNetError line naming
 * the file; never another exception, a hang or a huge allocation.
 */
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { insertBytes, removeBytes, writeUint } from '../fuzz/mutate.js';
import { ShuffleNetError } from '../src/errors.js';
import { importShuffleNet, importTorchCheckpoint, readTorchCheckpoint, unpickle } from '../src/io/torch/index.js';
import { Tensor } from '../src/tensor/tensor.js';

const dir = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(dir + file));

/** Runs the whole import and returns the error message, or null when the file loads. */
function outcome(bytes: Uint8Array, name: string): string | null {
  try {
    importTorchCheckpoint(bytes, name);
    return null;
  } catch (e) {
    if (!(e instanceof ShuffleNetError)) {
      throw new Error(`${name}: ${(e as Error).name} instead of a ShuffleNetError: ${(e as Error).message}`, {
        cause: e,
      });
    }
    return e.message;
  }
}

function expectClearError(bytes: Uint8Array, name: string, pattern?: RegExp): void {
  const message = outcome(bytes, name);
  expect(message).not.toBeNull();
  expect(message!.startsWith(`${name}:`)).toBe(true);
  expect(message).not.toContain('\n');
  if (pattern) expect(message).toMatch(pattern);
}

// ---- A tiny pickle writer (protocol 2), to build hostile files by hand ----------------------
const enc = new TextEncoder();
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const str = (s: string): number[] => {
  const b = enc.encode(s);
  return [0x58, ...u32(b.length), ...b];
};
const int = (v: number): number[] => [0x4a, ...u32(v)];
const global = (m: string, n: string): number[] => [0x63, ...enc.encode(`${m}\n${n}\n`)];
const tuple = (...items: number[][]): number[] => [0x28, ...items.flat(), 0x74];

/** {name: _rebuild_tensor_v2(storage(key, numel), offset, size, stride, False, OrderedDict())} */
function tensorPickle(name: string, numel: number, offset: number, size: number[], stride: number[]): Uint8Array {
  const storage = [...tuple(str('storage'), global('torch', 'FloatStorage'), str('0'), str('cpu'), int(numel)), 0x51];
  const hooks = [...global('collections', 'OrderedDict'), 0x29, 0x52];
  const args = tuple(storage, int(offset), tuple(...size.map(int)), tuple(...stride.map(int)), [0x89], hooks);
  return new Uint8Array([
    0x80,
    0x02,
    0x7d,
    ...str(name),
    ...global('torch._utils', '_rebuild_tensor_v2'),
    ...args,
    0x52,
    0x73,
    0x2e,
  ]);
}

function zipCheckpoint(pickle: Uint8Array, storage: Uint8Array, level: 0 | 6 = 0): Uint8Array {
  return zipSync(
    { 'archive/data.pkl': pickle, 'archive/data/0': storage, 'archive/version': enc.encode('3\n') },
    { level },
  );
}

describe('hand-made checkpoints', () => {
  it('reads a strided view from a zip, stored or deflated', () => {
    const storage = new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5, 6]).buffer);
    // [3, 2] view with strides [1, 3] at offset 1: rows (1, 4), (2, 5), (3, 6)
    const pickle = tensorPickle('w', 7, 1, [3, 2], [1, 3]);
    for (const level of [0, 6] as const) {
      const { stateDict } = readTorchCheckpoint(zipCheckpoint(pickle, storage, level), 'view.pth');
      const t = stateDict.get('w')!.tensor;
      expect(t.shape).toEqual([3, 2]);
      expect([...t.data]).toEqual([1, 4, 2, 5, 3, 6]);
    }
  });

  it('refuses views outside their storage and overlapping views, before allocating', () => {
    const storage = new Uint8Array(16);
    const cases: [number[], number[], number, RegExp][] = [
      [[5], [1], 0, /reaches element 4 of a 4-element storage/],
      [[2], [1], 3, /reaches element 4/],
      [[1_000_000_000, 1_000_000_000], [0, 0], 0, /views 1000000000000000000 elements of a 4-element storage/],
      [[100_000, 100_000], [1, 1], 0, /reaches element/],
    ];
    for (const [size, stride, offset, pattern] of cases) {
      expectClearError(zipCheckpoint(tensorPickle('w', 4, offset, size, stride), storage), 'hostile.pth', pattern);
    }
  });

  it('refuses a storage whose declared size exceeds its bytes', () => {
    expectClearError(
      zipCheckpoint(tensorPickle('w', 1 << 30, 0, [4], [1]), new Uint8Array(16)),
      'big.pth',
      /storage 0 should hold 1073741824 elements but has 4/,
    );
  });

  it('refuses hostile pickle lengths and memo indices without allocating', () => {
    const hugeString = new Uint8Array([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x61]);
    expectClearError(hugeString, 'str.pth', /BINUNICODE needs 2147483647 bytes but only 1 remain/);
    const hugeMemo = new Uint8Array([0x80, 0x02, 0x6a, 0xff, 0xff, 0xff, 0xff, 0x2e]);
    expectClearError(hugeMemo, 'memo.pth', /memo entry 4294967295 was never stored/);
    const unknownOpcode = new Uint8Array([0x80, 0x02, 0xff]);
    expectClearError(unknownOpcode, 'op.pth', /unsupported opcode 0xff/);
    const underflow = new Uint8Array([0x80, 0x02, 0x73, 0x2e]);
    expectClearError(underflow, 'under.pth', /stack underflow/);
    const noStop = new Uint8Array([0x80, 0x02, 0x7d]);
    expectClearError(noStop, 'nostop.pth', /truncated/);
  });

  it('quotes and cuts a GLOBAL name of binary bytes, so the refusal is one short line (fuzz: torch seed 1 case 1347)', () => {
    // A corrupt GLOBAL reads up to the next newline byte: here 5,000 bytes with \r and an escape sequence.
    const junk = `os\rsys\u001b[2J${'\u0001x'.repeat(2500)}`;
    const file = new Uint8Array([0x80, 0x02, ...global(junk, 'system'), 0x2e]);
    expectClearError(file, 'global.pth', /refusing global "os\\rsys\\u001b\[2J\\u0001x.*…": only tensors/);
    expect(outcome(file, 'global.pth')!.length).toBeLessThan(400);
    // A plain dotted name is still named as written.
    expectClearError(
      new Uint8Array([0x80, 0x02, ...global('os', 'system'), 0x2e]),
      'os.pth',
      /refusing global os\.system:/,
    );
  });

  it('a state dict key with a control character stays one line (fuzz: torch seed 1 case 8285)', () => {
    // A corrupt key of a real file: "num_batches_tr\ncked" is no longer a counter, so it is unexpected.
    const file = read('official_tiny_g3.zip.pth');
    const key = enc.encode('features.13.branch_main_1.1.num_batches_tracked');
    const at = Buffer.from(file).indexOf(Buffer.from(key));
    expect(at).toBeGreaterThan(0);
    file[at + key.length - 5] = 0x0a; // tr[a]cked
    expectClearError(file, 'key.pth', /unexpected tensor\(s\) features\.13\.branch_main_1\.1\.num_batches_tr\\ncked/);
  });

  it('handles a legacy file whose main pickle is a 200,000-item tuple (no recursion, no argument spread)', () => {
    // The three header pickles of a legacy file, then the hostile main pickle and an empty key list.
    const legacy = read('official_tiny_g3.legacy.pth');
    let end = 0;
    for (let i = 0; i < 3; i++) end = unpickle(legacy, end).end;
    const main = new Uint8Array(200_004);
    main.set([0x80, 0x02, 0x28]);
    main.fill(0x4e, 3, 200_003);
    main[200_003] = 0x74;
    const file = new Uint8Array([...legacy.subarray(0, end), ...main, 0x2e, 0x80, 0x02, 0x5d, 0x2e]);
    expectClearError(file, 'tuple.pth', /the file holds a tuple of 200000, not a dict of tensors/);
  });

  it('recognises a TorchScript archive and says what to save instead', () => {
    const archive = zipSync(
      { 'm/data.pkl': new Uint8Array([0x80, 0x02, 0x7d, 0x2e]), 'm/code/__torch__/m.py': enc.encode('') },
      { level: 0 },
    );
    expectClearError(archive, 'scripted.pt', /TorchScript archive \(torch\.jit\.save\), not a checkpoint/);
  });

  it('refuses a zip whose central directory claims more entries than fit', () => {
    const good = zipCheckpoint(tensorPickle('w', 4, 0, [4], [1]), new Uint8Array(16));
    const bad = good.slice();
    const eocd = bad.length - 22;
    bad[eocd + 10] = 0xfe; // entry count
    bad[eocd + 11] = 0xff;
    expectClearError(bad, 'cd.pth', /65534 entries cannot fit/);
  });

  it('refuses legacy storages that claim more bytes than remain', () => {
    const file = read('official_tiny_g3.legacy.pth');
    // The last storage's element count sits 8 bytes before its data: make it enormous.
    const bad = file.slice();
    const view = new DataView(bad.buffer);
    const lastCount = findLastStorageCount(file);
    view.setBigInt64(lastCount, 1n << 60n, true);
    expectClearError(bad, 'legacy.pth', /claims 1152921504606846976 elements/);
  });

  it('names the file and the problem for truncated, empty and garbage files', () => {
    for (const base of ['official_tiny_g3.zip.pth', 'official_tiny_g3.legacy.pth']) {
      const file = read(base);
      for (const length of [0, 1, 2, 10, 100, 1000, 5000, Math.floor(file.length / 2), file.length - 1]) {
        expectClearError(file.subarray(0, length), `cut-${length}-${base}`);
      }
    }
    let seed = 7;
    const garbage = Uint8Array.from({ length: 4096 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    expectClearError(garbage, 'garbage.pth', /not a PyTorch checkpoint/);
    expectClearError(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]), 'pk.pth', /zip archive/);
    expectClearError(new Uint8Array([0x80, 0x02, 0x4b, 0x05, 0x2e]), 'int.pth', /wrong magic number/);
  });
});

describe('wrong shapes in a real state dict', () => {
  const { stateDict } = readTorchCheckpoint(read('official_tiny_g3.zip.pth'), 'tiny.pth');
  const replaced = (key: string, tensor: Tensor): typeof stateDict =>
    new Map([...stateDict].map(([k, v]) => [k, k === key ? { tensor, dtype: v.dtype } : v]));

  it('a depthwise conv weight of the wrong shape', () => {
    const bad = replaced('features.5.branch_main_1.3.weight', new Tensor([12, 1, 3, 1]));
    expect(() => importShuffleNet(bad, 'tiny.pth')).toThrow(
      /tiny\.pth: features\.5: the depthwise conv weight has shape \[12, 1, 3, 1\] but should be \[12, 1, 3, 3\]/,
    );
  });

  it('a BN vector of the wrong length, a missing tensor, an extra tensor', () => {
    expect(() => importShuffleNet(replaced('features.2.branch_main_1.1.bias', new Tensor([5])), 'tiny.pth')).toThrow(
      /^tiny\.pth: features\.2\.branch_main_1\.1\.bias has shape \[5\] but the bottleneck has 6 channels$/,
    );
    expect(() => importShuffleNet(replaced('features.2.branch_main_2.1.bias', new Tensor([5])), 'tiny.pth')).toThrow(
      /tiny\.pth: loadStateDict: "stage2\.2\.bn3\.bias" has shape \[5\] but the model expects \[24\]/,
    );
    const missing = new Map(stateDict);
    missing.delete('features.7.branch_main_2.1.running_var');
    expect(() => importShuffleNet(missing, 'tiny.pth')).toThrow(
      /missing tensor "features\.7\.branch_main_2\.1\.running_var"/,
    );
    const extra = new Map(stateDict);
    extra.set('features.3.extra.weight', { tensor: new Tensor([1]), dtype: 'float32' });
    expect(() => importShuffleNet(extra, 'tiny.pth')).toThrow(/unexpected tensor\(s\) features\.3\.extra\.weight/);
  });

  it('non-finite weights', () => {
    const t = new Tensor([5, 96]);
    t.data[7] = NaN;
    expect(() => importShuffleNet(replaced('classifier.0.weight', t), 'tiny.pth')).toThrow(
      /tensor "fc\.weight" holds NaN at index 7/,
    );
  });
});

/** Offset of the int64 element count of the last storage in a legacy file (for a hostile edit). */
function findLastStorageCount(file: Uint8Array): number {
  // The storages are float32 except num_batches_tracked (int64, 1 element); the last key sorts last.
  // Walk from the storage-key list: every record is an int64 count followed by the data.
  const { stateDict } = readTorchCheckpoint(file, 'x');
  void stateDict;
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  // Scan backwards for a count whose record ends exactly at the end of the file.
  for (let p = file.length - 16; p >= 0; p--) {
    const count = view.getBigInt64(p, true);
    if (count > 0n && (count * 4n === BigInt(file.length - p - 8) || count * 8n === BigInt(file.length - p - 8)))
      return p;
  }
  throw new Error('no storage record found');
}

describe('fast-check: mutated files of each format', () => {
  const mutation = (length: number) =>
    fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: position(length), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        kind: fc.constant('u32' as const),
        at: position(length),
        value: fc.constantFrom(0, 1, 0x7f, 0xff, 0xffff, 0x7fffffff, 0xffffffff),
      }),
      fc.record({ kind: fc.constant('truncate' as const), at: position(length) }),
      fc.record({ kind: fc.constant('delete' as const), at: position(length), count: fc.integer({ min: 1, max: 64 }) }),
      fc.record({
        kind: fc.constant('insert' as const),
        at: position(length),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      }),
    );
  // The structure (pickle, local headers, central directory) sits at the ends of the file.
  const position = (length: number) =>
    fc.oneof(
      fc.integer({ min: 0, max: Math.min(length - 1, 4096) }),
      fc.integer({ min: Math.max(0, length - 2048), max: length - 1 }),
      fc.integer({ min: 0, max: length - 1 }),
    );
  type Mutation =
    | { kind: 'set'; at: number; value: number }
    | { kind: 'u32'; at: number; value: number }
    | { kind: 'truncate'; at: number }
    | { kind: 'delete'; at: number; count: number }
    | { kind: 'insert'; at: number; bytes: Uint8Array };
  const apply = (base: Uint8Array, mutations: Mutation[]): Uint8Array => {
    let bytes: Uint8Array = base.slice();
    for (const m of mutations) {
      const at = Math.min(m.at, bytes.length);
      if (m.kind === 'set' && at < bytes.length) bytes[at] = m.value;
      else if (m.kind === 'u32' && at + 4 <= bytes.length) writeUint(bytes, at, 4, BigInt(m.value));
      else if (m.kind === 'truncate') bytes = bytes.slice(0, at);
      else if (m.kind === 'delete') bytes = removeBytes(bytes, at, m.count);
      else if (m.kind === 'insert') bytes = insertBytes(bytes, at, m.bytes);
    }
    return bytes;
  };

  const bases: [string, number][] = [
    ['official_tiny_g3.zip.pth', 1500],
    ['official_tiny_g3.legacy.pth', 1500],
    ['mmpretrain_tiny_g3.zip.pth', 500],
    ['official_tiny_g8_half.legacy.pth', 500],
  ];
  for (const [file, runs] of bases) {
    it(`${file}: ${runs} mutations, each a model or a ShuffleNetError`, () => {
      const base = read(file);
      let failures = 0;
      let slowest = 0;
      fc.assert(
        fc.property(fc.array(mutation(base.length), { minLength: 1, maxLength: 3 }), (mutations) => {
          const bytes = apply(base, mutations);
          const start = performance.now();
          const message = outcome(bytes, 'mutated.pth'); // throws on anything but a ShuffleNetError
          slowest = Math.max(slowest, performance.now() - start);
          if (message !== null) {
            failures++;
            expect(message.startsWith('mutated.pth')).toBe(true);
            expect(message).not.toContain('\n');
          }
        }),
        { numRuns: runs, seed: 20180701 },
      );
      // Both outcomes must occur, or the mutations exercise nothing.
      expect(failures).toBeGreaterThan(runs / 10);
      expect(failures).toBeLessThan(runs);
      console.log(`${file}: ${failures}/${runs} mutated files refused; slowest import ${slowest.toFixed(1)} ms`);
    });
  }
});
