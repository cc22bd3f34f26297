/**
 * Property-based bad input: thousands of mutations of valid safetensors and model files. Every
 * outcome is a parsed file or a FormatError with a message naming the file, quickly, never another
 * exception, a hang or a huge allocation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { insertBytes, writeUint } from '../fuzz/mutate.js';
import { FormatError } from '../src/errors.js';
import { loadModelFile, saveModelFile } from '../src/io/modelfile.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { architectureOf, createModel } from '../src/models/registry.js';
import { Tensor } from '../src/tensor/tensor.js';

const mutation = (length: number) =>
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(length - 1), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(length - 1) }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(length - 1),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
    fc.record({ kind: fc.constant('length' as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  );

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'length'; value: bigint };

function apply(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let out: Uint8Array = bytes.slice();
  for (const m of mutations) {
    if (m.kind === 'flip') out[m.at % out.length] = m.value;
    else if (m.kind === 'truncate') out = out.subarray(0, m.at % (out.length + 1));
    else if (m.kind === 'insert') out = insertBytes(out, m.at % (out.length + 1), m.bytes);
    else if (out.length >= 8) writeUint(out, 0, 8, m.value);
  }
  return out;
}

function expectCleanOutcome(read: () => unknown, file: string): void {
  const start = performance.now();
  try {
    read();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message.startsWith(`${file}: `)).toBe(true);
    expect((e as Error).message).not.toContain('\n');
  }
  expect(performance.now() - start).toBeLessThan(1000);
}

describe('mutated files', () => {
  it('safetensors: 3,000 mutations', () => {
    const valid = writeSafetensors(
      new Map([
        ['a', Tensor.from([2, 3], [1, 2, 3, 4, 5, 6])],
        ['b', Tensor.from([4], [7, 8, 9, 10])],
      ]),
      { note: 'x' },
    );
    fc.assert(
      fc.property(fc.array(mutation(valid.length), { minLength: 1, maxLength: 4 }), (ms) => {
        expectCleanOutcome(() => readSafetensors(apply(valid, ms as Mutation[]), 'f.safetensors'), 'f.safetensors');
      }),
      { numRuns: 3000, seed: 42 },
    );
  });

  it('model files: 1,500 mutations', () => {
    const options = { numClasses: 3, inputChannels: 1, smallInput: true };
    const model = createModel('shufflenet_v1_g1_0.25x', options);
    const valid = saveModelFile(model, {
      architecture: architectureOf('shufflenet_v1_g1_0.25x', options),
      labels: ['a', 'b', 'c'],
    });
    // Mutate the header (where the structure is) more often than the weights.
    const headerEnd = 8 + Number(new DataView(valid.buffer).getBigUint64(0, true));
    fc.assert(
      fc.property(fc.array(mutation(headerEnd), { minLength: 1, maxLength: 3 }), (ms) => {
        expectCleanOutcome(() => loadModelFile(apply(valid, ms as Mutation[]), 'm.safetensors'), 'm.safetensors');
      }),
      { numRuns: 1500, seed: 7 },
    );
  });
});
