/** safetensors and model files: round trips, and every kind of bad file refused clearly. */
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { loadModelFile, saveModelFile } from '../src/io/modelfile.js';
import { preprocessingPresets } from '../src/data/preprocessing.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { architectureOf, createModel } from '../src/models/registry.js';
import { forward } from '../src/nn/forward.js';
import { Tensor } from '../src/tensor/tensor.js';

function file(
  header: Record<string, unknown>,
  data: Uint8Array = new Uint8Array(0),
  lengthOverride?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips tensors and metadata', () => {
    const tensors = new Map([
      ['b', Tensor.from([2, 3], [1, 2, 3, 4, 5, -6.5])],
      ['a', Tensor.from([1], [Math.PI])],
      ['empty', Tensor.zeros([0, 4])],
    ]);
    const bytes = writeSafetensors(tensors, { hello: 'world' });
    const back = readSafetensors(bytes);
    expect(back.metadata).toEqual({ hello: 'world' });
    expect([...back.tensors.keys()].sort()).toEqual(['a', 'b', 'empty']);
    expect([...back.tensors.get('b')!.data]).toEqual([1, 2, 3, 4, 5, -6.5]);
    expect(back.tensors.get('a')!.data[0]).toBeCloseTo(Math.PI, 6);
    expect(back.tensors.get('empty')!.shape).toEqual([0, 4]);
    // The header is padded to 8 bytes, as the reference implementation does.
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
  });

  it('reads F16, BF16, F64 and integer dtypes as float32', () => {
    const data = new Uint8Array(2 + 2 + 8 + 8);
    const view = new DataView(data.buffer);
    view.setUint16(0, 0x3c00, true); // F16 1.0
    view.setUint16(2, 0xc000, true); // BF16 -2.0
    view.setFloat64(4, 0.25, true);
    view.setBigInt64(12, -7n, true);
    const bytes = file(
      {
        h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
        b: { dtype: 'BF16', shape: [1], data_offsets: [2, 4] },
        d: { dtype: 'F64', shape: [1], data_offsets: [4, 12] },
        i: { dtype: 'I64', shape: [1], data_offsets: [12, 20] },
      },
      data,
    );
    const t = readSafetensors(bytes).tensors;
    expect([t.get('h')!.data[0], t.get('b')!.data[0], t.get('d')!.data[0], t.get('i')!.data[0]]).toEqual([
      1, -2, 0.25, -7,
    ]);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /5 bytes, too short/],
    [
      'a hostile header length',
      file({}, new Uint8Array(0), 2n ** 62n),
      /header length 4611686018427387904 exceeds the 2 bytes/,
    ],
    [
      'a header that is not JSON',
      (() => {
        const f = file({ a: 1 });
        f[9] = 0x7b;
        f[10] = 0x7b;
        return f;
      })(),
      /not valid UTF-8 JSON/,
    ],
    [
      'an unknown dtype',
      file({ x: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
      /unsupported dtype "F8"/,
    ],
    [
      'a negative dimension',
      file({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /invalid shape \[-1\]/,
    ],
    [
      'offsets past the end',
      file({ x: { dtype: 'F32', shape: [1000000], data_offsets: [0, 4000000] } }, new Uint8Array(4)),
      /ends at byte 4000000 but the data section has 4 bytes/,
    ],
    [
      'a size that disagrees with the shape',
      file({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /needs 12 bytes but its offsets span 8/,
    ],
    [
      'overlapping tensors',
      file(
        {
          x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        },
        new Uint8Array(8),
      ),
      /gap or overlap/,
    ],
    [
      'trailing bytes',
      file({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)),
      /cover 4 bytes but the data section has 8/,
    ],
    ['non-string metadata', file({ __metadata__: { a: 1 } }), /__metadata__ value for "a" is not a string/],
  ];
  it.each(bad)('refuses %s with a clear error', (_what, bytes, message) => {
    expect(() => readSafetensors(bytes, 'x.safetensors')).toThrow(FormatError);
    expect(() => readSafetensors(bytes, 'x.safetensors')).toThrow(message);
  });

  it('never throws anything but FormatError on truncations and byte flips of a valid file', () => {
    const valid = writeSafetensors(new Map([['w', Tensor.from([2, 2], [1, 2, 3, 4])]]), { k: 'v' });
    for (let cut = 0; cut < valid.length; cut++) {
      expect(() => readSafetensors(valid.subarray(0, cut))).toThrow(FormatError);
    }
    for (let i = 0; i < valid.length; i++) {
      const mutated = valid.slice();
      mutated[i] = mutated[i]! ^ 0xa5;
      try {
        readSafetensors(mutated);
      } catch (e) {
        expect(e).toBeInstanceOf(FormatError);
      }
    }
  });
});

describe('model files', () => {
  const options = { numClasses: 10, inputChannels: 1, smallInput: true };

  it('carry the architecture, preprocessing and labels: the file alone rebuilds the same network', () => {
    const model = createModel('shufflenet_v1_g2_0.25x', options);
    const labels = Array.from({ length: 10 }, (_, i) => `class ${i}`);
    const bytes = saveModelFile(model, {
      architecture: architectureOf('shufflenet_v1_g2_0.25x', options),
      arch: 'shufflenet_v1_g2_0.25x',
      preprocessing: preprocessingPresets.mnist,
      labels,
    });
    const { model: again, info } = loadModelFile(bytes, 'm.safetensors');
    expect(info.arch).toBe('shufflenet_v1_g2_0.25x');
    expect(info.labels).toEqual(labels);
    expect(info.preprocessing).toEqual(preprocessingPresets.mnist);
    const x = Tensor.filled([1, 1, 28, 28], 0.5);
    expect([...forward(again, x).data]).toEqual([...forward(model, x).data]);
  });

  it('refuse files that are not ours, have no architecture, or hold non-finite weights', () => {
    const plain = writeSafetensors(new Map([['w', Tensor.zeros([1])]]));
    expect(() => loadModelFile(plain, 'p.safetensors')).toThrow('p.safetensors: not a shufflenet model file');
    const noArch = writeSafetensors(new Map(), {
      shufflenet: JSON.stringify({ format: 'shufflenet-model', version: 1 }),
    });
    expect(() => loadModelFile(noArch, 'n.safetensors')).toThrow('n.safetensors: metadata.architecture is missing');
    const future = writeSafetensors(new Map(), {
      shufflenet: JSON.stringify({ format: 'shufflenet-model', version: 99 }),
    });
    expect(() => loadModelFile(future, 'f.safetensors')).toThrow(/version 99 is not supported/);

    const model = createModel('shufflenet_v1_g1_0.25x', options);
    model.stateDict().get('fc.bias')!.data[3] = NaN;
    const bytes = saveModelFile(model, { architecture: architectureOf('shufflenet_v1_g1_0.25x', options) });
    expect(() => loadModelFile(bytes, 'nan.safetensors')).toThrow(
      'nan.safetensors: tensor "fc.bias" holds NaN at index 3; weights must be finite',
    );
  });

  it('refuse weights that do not fit the stated architecture, naming the tensor', () => {
    const model = createModel('shufflenet_v1_g1_0.25x', options);
    const bytes = saveModelFile(model, {
      architecture: architectureOf('shufflenet_v1_g1_0.25x', { ...options, numClasses: 5 }),
    });
    expect(() => loadModelFile(bytes, 'w.safetensors')).toThrow(
      /w.safetensors: loadStateDict: "fc\.(weight" has shape \[10, 144\] but the model expects \[5, 144\]|bias" has shape \[10\] but the model expects \[5\])/,
    );
  });
});
