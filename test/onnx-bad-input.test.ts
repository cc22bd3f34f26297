/**
 * Bad ONNX files: each fails with one FormatError that names the file and the problem, without a
 * huge allocation; and a property-based test mutates valid files thousands of times: every outcome
 * is a graph that validates, or a ShuffleNetError — never another exception, never a hang.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { insertBytes, overwriteVarint5, removeBytes } from '../fuzz/mutate.js';
import { FormatError, ShuffleNetError } from '../src/errors.js';
import { runGraph } from '../src/graph/execute.js';
import { withInputShape } from '../src/graph/reshape.js';
import { loadModel } from '../src/io/load.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import { importOnnx } from '../src/io/onnx/import.js';
import type { TensorProto } from '../src/io/onnx/proto.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { createModel } from '../src/models/registry.js';
import { Tensor } from '../src/tensor/tensor.js';
import { floatField, floatRaw, int64Field, model, node } from './helpers/onnx-builder.js';

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/onnx/${name}.onnx`, import.meta.url)));

/** A one-conv model whose weight initializer is `weight`. */
function convModel(weight: TensorProto, extra: { nodes?: ReturnType<typeof node>[] } = {}): Uint8Array {
  return model({
    opset: 13,
    input: ['x', ['N', 2, 5, 5]],
    output: 'y',
    initializers: [weight],
    nodes: extra.nodes ?? [node('Conv', ['x', 'w'], ['y'], {}, 'the_conv')],
  });
}

function expectFormatError(bytes: Uint8Array, message: RegExp | string, file = 'bad.onnx'): void {
  let error: unknown;
  try {
    importOnnx(bytes, file);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FormatError);
  const text = (error as Error).message;
  expect(text.startsWith(`${file}: `)).toBe(true);
  expect(text).toMatch(message);
  expect(text).not.toContain('\n');
}

describe('bad ONNX files fail with one clear FormatError', () => {
  const valid = fixture('mixed_ops');

  it('empty, truncated and garbage files', () => {
    expectFormatError(new Uint8Array(0), /empty/);
    expectFormatError(valid.subarray(0, valid.length >> 1), /not a valid ONNX protobuf/);
    expectFormatError(new TextEncoder().encode('this is not a model at all'), /not a valid ONNX protobuf|no graph/);
    expectFormatError(writeSafetensors(new Map([['w', Tensor.zeros([2])]])), /not a valid ONNX protobuf|no graph/);
    // A length prefix of 2^32 for the graph field.
    expectFormatError(Uint8Array.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]), /not a valid ONNX protobuf/);
  });

  it('hostile tensor sizes are refused before anything is allocated', () => {
    expectFormatError(
      convModel(floatRaw('w', [1e12], [1, 2, 3])),
      /"w" has shape \[1000000000000\].*raw_data holds 12 bytes/,
    );
    expectFormatError(convModel(floatField('w', [1e9, 1e9, 1e9], [1])), /"w" has dims .* too large/);
    expectFormatError(convModel(floatField('w', [3, -2, 1, 1], [1, 2])), /"w" has an invalid dimension -2/);
    expectFormatError(
      convModel(floatField('w', [400_000_000], [1, 2, 3])),
      /400000000 values\) but its float_data holds 3/,
    );
    const hugeInt: TensorProto = { name: 'w', dims: [2], data_type: 7, int64_data: ['9223372036854775807' as never] };
    expectFormatError(convModel(hugeInt), /"w" has shape \[2\] \(2 values\) but its int64_data holds 1/);
  });

  it('external data, unknown data types and missing pieces', () => {
    const external: TensorProto = {
      name: 'w',
      dims: [1, 2, 1, 1],
      data_type: 1,
      data_location: 1,
      external_data: [{ key: 'location', value: 'weights.bin' }],
    };
    expectFormatError(convModel(external), /initializer "w" stores its data in an external file \("weights.bin"\)/);
    expectFormatError(convModel({ name: 'w', dims: [1], data_type: 8 }), /data type STRING, which is not supported/);
    expectFormatError(
      convModel(floatField('w', [1, 2, 1, 1], [1, 1]), { nodes: [node('Conv', ['x', 'v'], ['y'], {}, 'c1')] }),
      /node "c1" \(Conv\) reads "v" before any node computes it/,
    );
  });

  it('an unsupported operator is named with its node', () => {
    const bytes = convModel(floatField('w', [1, 2, 1, 1], [1, 1]), {
      nodes: [node('Conv', ['x', 'w'], ['c']), node('LRN', ['c'], ['y'], { size: 3 }, 'norm1')],
    });
    expectFormatError(bytes, /node "norm1" \(LRN\) uses operator LRN, which is not supported \(supported: .*Conv/);
  });

  it('names and op types with control characters stay one line (fuzz: onnx seed 2 case 85)', () => {
    const weight = floatField('w', [1, 2, 1, 1], [1, 1]);
    // A newline in the name of an edge: found by `npm run fuzz` as a FormatError of two lines.
    const edge = convModel(weight, {
      nodes: [node('Conv', ['x', 'w'], ['c']), node('Relu', ['c\nut_0'], ['y'], {}, 'relu')],
    });
    expectFormatError(edge, /node "relu" \(Relu\) reads "c\\nut_0" before any node computes it$/);
    // A terminal escape sequence in a node name and an op type.
    const op = convModel(weight, {
      nodes: [node('Conv', ['x', 'w'], ['c']), node('LRN\u001b[2J', ['c'], ['y'], {}, 'norm\r\n1')],
    });
    expectFormatError(op, /^bad\.onnx: node "norm\\r\\n1" \(LRN\\u001b\[2J\) uses operator LRN\\u001b\[2J,/);
    let message = '';
    try {
      importOnnx(op, 'bad.onnx');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).not.toMatch(/\p{Cc}/u);
  });

  it('wrong tensor shapes and impossible attributes name the node and the op', () => {
    expectFormatError(
      convModel(floatField('w', [4, 3, 3, 3], new Array(108).fill(0))),
      /node "the_conv" \(Conv\) is invalid: conv2d: weight \[4, 3, 3, 3\] expects 3 input channels per group but the input has 2/,
    );
    const pads = convModel(floatField('w', [1, 2, 1, 1], [1, 1]), {
      nodes: [node('Conv', ['x', 'w'], ['y'], { pads: [1e12, 0, 1e12, 0] }, 'wide')],
    });
    expectFormatError(
      pads,
      /node "wide" \(Conv\) .*a value of shape \[1, 1, 2000000000005, 5\] would hold .* over the limit/,
    );
    const auto = convModel(floatField('w', [1, 2, 1, 1], [1, 1]), {
      nodes: [node('Conv', ['x', 'w'], ['y'], { auto_pad: 'SAME_UPPER' }, 'same')],
    });
    expectFormatError(auto, /auto_pad SAME_UPPER, which is not supported/);
    const reshape = model({
      opset: 13,
      input: ['x', ['N', 2, 5, 5]],
      output: 'y',
      initializers: [int64Field('s', [0, 7, -1])],
      nodes: [node('Reshape', ['x', 's'], ['y'], {}, 'r')],
    });
    expectFormatError(reshape, /node "r" \(Reshape\) is invalid: reshape: cannot reshape \[1, 2, 5, 5\] \(50 values\)/);
  });

  it('a Reshape with two -1s, of an activation or of a constant: the one reshape rule refuses both', () => {
    const reshape = (data: string, initializers: TensorProto[]) =>
      model({
        opset: 13,
        input: ['x', ['N', 2, 5, 5]],
        output: 'y',
        initializers: [int64Field('s', [-1, -1]), ...initializers],
        nodes: [node('Reshape', [data, 's'], ['r'], {}, 'r'), node('Add', ['x', 'r'], ['y'], {}, 'add')],
      });
    const twice = /node "r" \(Reshape\) is invalid: reshape: target shape \[-1, -1\] has more than one -1/;
    expectFormatError(reshape('x', []), twice);
    expectFormatError(reshape('c', [floatField('c', [2, 3], [1, 2, 3, 4, 5, 6])]), twice);
  });

  it('graphs this importer cannot take: opsets, inputs, symbolic sizes', () => {
    const one = (opset: number, shape: (number | string)[]) =>
      model({ opset, input: ['x', shape], output: 'y', initializers: [], nodes: [node('Relu', ['x'], ['y'])] });
    expectFormatError(one(5, ['N', 3, 8, 8]), /opset 5; opsets 7 to 21 are supported/);
    expectFormatError(one(13, ['N', 3, 'H', 'W']), /symbolic dimension 2 .*pass the input shape/);
    expectFormatError(one(13, ['N', 3, 8]), /rank 3; an image input \[N, C, H, W\] is expected/);
    expectFormatError(one(13, [1, 3, 100000, 100000]), /more than 134217728 values/);
    expect(importOnnx(one(13, ['N', 3, 'H', 'W']), 'x.onnx', { inputShape: [2, 3, 8, 8] }).input.shape).toEqual([
      2, 3, 8, 8,
    ]);
  });

  it('through the loader table, as `infer --model x.onnx` sees it', () => {
    expect(() => loadModel(valid.subarray(0, 100), 'cut.onnx')).toThrow(/^cut\.onnx: not a valid ONNX protobuf/);
  });
});

describe('mutated ONNX files (fast-check)', () => {
  type Mutation =
    | { kind: 'set'; at: number; value: number }
    | { kind: 'truncate'; at: number }
    | { kind: 'insert'; at: number; bytes: Uint8Array }
    | { kind: 'delete'; at: number; length: number }
    | { kind: 'varint'; at: number; value: number };

  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('delete' as const),
        at: fc.nat(),
        length: fc.integer({ min: 1, max: 16 }),
      }),
    },
    // A hostile length or dimension: a 5-byte varint of a large value written over the file.
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('varint' as const),
        at: fc.nat(),
        value: fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 1 << 20, max: 0x7fffffff })),
      }),
    },
  );

  function mutate(source: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
    let bytes: Uint8Array = Uint8Array.from(source);
    for (const m of mutations) {
      const at = bytes.length === 0 ? 0 : m.at % bytes.length;
      if (m.kind === 'set') bytes[at] = m.value;
      else if (m.kind === 'truncate') bytes = bytes.slice(0, at);
      else if (m.kind === 'insert') bytes = insertBytes(bytes, at, m.bytes);
      else if (m.kind === 'delete') bytes = removeBytes(bytes, at, m.length);
      else overwriteVarint5(bytes, at, m.value);
    }
    return bytes;
  }

  /** Import, and if that succeeds, re-shape and (when small) run: only ShuffleNetErrors may escape. */
  function check(bytes: Uint8Array): 'graph' | 'error' {
    try {
      const graph = importOnnx(bytes, 'fuzz.onnx');
      const reshaped = withInputShape(graph, [2, ...graph.input.shape.slice(1)]);
      let size = 0;
      for (const s of reshaped.shapes.values()) size += s.reduce((a, b) => a * b, 1);
      if (size < 2_000_000) {
        const input = new Tensor(reshaped.input.shape);
        runGraph(reshaped, input);
      }
      return 'graph';
    } catch (e) {
      if (e instanceof ShuffleNetError) return 'error';
      throw e;
    }
  }

  const sources: [string, Uint8Array, number][] = [
    ['mixed_ops (PyTorch export)', fixture('mixed_ops'), 2500],
    [
      'a small ShuffleNet (our export)',
      exportOnnx(
        createModel('shufflenet_v1_g2_0.25x_se', { numClasses: 3, inputChannels: 1, smallInput: true }).trace([
          1, 1, 8, 8,
        ]),
      ),
      1000,
    ],
  ];

  for (const [name, source, runs] of sources) {
    it(`${name}: ${runs} mutated files each give a graph or a ShuffleNetError`, () => {
      expect(check(source)).toBe('graph');
      const outcomes = { graph: 0, error: 0 };
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
          outcomes[check(mutate(source, mutations))]++;
        }),
        { numRuns: runs, seed: Number(process.env['FUZZ_SEED'] ?? 20260401) },
      );
      console.log(`${name}: ${outcomes.graph} graphs, ${outcomes.error} ShuffleNetErrors`);
      // Both outcomes occur: the mutations are neither all harmless nor all fatal.
      expect(outcomes.graph).toBeGreaterThan(0);
      expect(outcomes.error).toBeGreaterThan(0);
    });
  }
});
