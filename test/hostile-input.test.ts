/**
 * Issue 15's reproducers, each refused with a typed error that names the field (or answered
 * correctly), never an internal error: extreme images, hostile model metadata, escape sequences in
 * names, CLI numbers out of range. The validation layer's design: docs/input-safety.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { imageLimits, planImage, preprocessImage, ImageSizeError } from '../src/data/image.js';
import { preprocessingPresets } from '../src/data/preprocessing.js';
import { FormatError, ShapeError, ShuffleNetError } from '../src/errors.js';
import { loadModel } from '../src/io/load.js';
import { loadModelFile, saveModelFile } from '../src/io/modelfile.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { architectureOf, createModel } from '../src/models/registry.js';
import { ShuffleNet } from '../src/models/shufflenet.js';
import { decodeImage } from '../src/node/image.js';
import { loadImageFolder } from '../src/node/data/imagefolder.js';
import { Tensor, withElementBudget } from '../src/tensor/tensor.js';
import { checkField, FieldError, integerField } from '../src/validate.js';
import { printable, printableJson } from '../src/cli/format.js';
import { model as onnxModel, node as onnxNode } from './helpers/onnx-builder.js';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const run = (...args: string[]): { code: number; stdout: string; stderr: string } => {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};
const dir = mkdtempSync(join(tmpdir(), 'shufflenet-hostile-'));

/** The smallest GIF (1×1, 43 bytes), with its logical screen and image set to `width`×`height`. */
function gif(width: number, height: number): Uint8Array {
  // prettier-ignore
  const bytes = Uint8Array.from([
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
  ]);
  const view = new DataView(bytes.buffer);
  for (const at of [6, 32]) {
    view.setUint16(at, width, true);
    view.setUint16(at + 2, height, true);
  }
  return bytes;
}

/** A small model file whose `shufflenet` metadata is changed by `edit`. */
function withMetadata(edit: (meta: Record<string, unknown>) => void, name = 'shufflenet_v1_g3_0.25x'): Uint8Array {
  const options = { numClasses: 10, inputChannels: 1, smallInput: true };
  const model = createModel(name, { ...options, initialize: false });
  const bytes = saveModelFile(model, {
    architecture: architectureOf(name, options),
    arch: name,
    preprocessing: preprocessingPresets.mnist,
    labels: Array.from({ length: 10 }, (_, i) => `class ${i}`),
  });
  const meta = JSON.parse(readSafetensors(bytes).metadata['shufflenet']!) as Record<string, unknown>;
  edit(meta);
  return writeSafetensors(model.stateDict(), { shufflenet: JSON.stringify(meta) });
}

/** The message of the typed error `f` throws (and fails if it throws anything else, or nothing). */
function typedError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ShuffleNetError);
    return (e as Error).message;
  }
  throw new Error('expected a typed error, got none');
}

afterEach(() => vi.restoreAllMocks());

describe('images: sides, pixels and aspect ratio, before decoding and on the resize plan', () => {
  it('refuses a 3 KB PNG of 1,000,000 × 1 pixels at once, in the library and in classify', async () => {
    const png = await sharp({ create: { width: 1_000_000, height: 1, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    expect(png.length).toBeLessThan(8000);
    await expect(decodeImage(png, 'wide.png', { resize: 28 })).rejects.toThrow(
      'wide.png: 1000000×1 has a side over the limit of 16,384 pixels',
    );
    writeFileSync(join(dir, 'wide.png'), png);
    const r = run('classify', join(dir, 'wide.png'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^shufflenet: error: .*wide\.png: 1000000×1 has a side over the limit/);
  });

  it('refuses 43-byte GIFs that claim huge or thin sizes, with ImageNet preprocessing too', async () => {
    for (const [w, h, why] of [
      [65535, 65535, /has a side over the limit/],
      [11778, 1, /aspect ratio of 11778:1, over the limit of 32:1/],
      [8000, 8000, /64,000,000 pixels, over the limit of 16,777,216 for gif/],
      [4000, 4000, /truncated or corrupt/],
    ] as const) {
      const bytes = gif(w, h);
      expect(bytes.length).toBe(43);
      const outcome = await decodeImage(bytes, 'x.gif', { resize: preprocessingPresets.imagenet.resize }).then(
        (image) => preprocessImage(image, preprocessingPresets.imagenet, 'x.gif'),
        (e: unknown) => e,
      );
      // 4000×4000 is within the limits: then it decodes (shrunk) or is refused as corrupt, both fine.
      if (outcome instanceof Tensor) expect(outcome.shape).toEqual([1, 3, 224, 224]);
      else {
        expect(outcome).toBeInstanceOf(ShuffleNetError);
        expect((outcome as Error).message).toMatch(why);
      }
    }
  });

  it('plans the resize before decoding: the long side follows the short one, and big images shrink on decode', () => {
    expect(planImage(4000, 3000, 256, 'photo.jpg')).toEqual({
      decodeWidth: 682,
      decodeHeight: 512,
      resizedWidth: 341,
      resizedHeight: 256,
    });
    expect(planImage(300, 200, 256, 'small.png')).toEqual({
      decodeWidth: 300,
      decodeHeight: 200,
      resizedWidth: 384,
      resizedHeight: 256,
    });
    // Within the aspect limit, but the resized image would be too big: 32:1 at a short side of 4096.
    expect(() => planImage(8192, 256, 4096, 'long.png')).toThrow(
      'long.png: 8192×256 resized to a short side of 4096 would be 131072×4096, over the limit of 16,777,216 pixels',
    );
    for (const [w, h] of [
      [0, 10],
      [10, -1],
      [1.5, 10],
    ])
      expect(() => planImage(w!, h!, 28, 'x')).toThrow(ImageSizeError);
    expect(imageLimits.maxPixels).toBe(8192 * 8192);
  });

  it('shrinks a large image on decode, and the result stays close to resizing the full image', async () => {
    const { data, info } = await sharp({
      create: { width: 1600, height: 1200, channels: 3, background: '#000' },
    })
      .composite([
        { input: Buffer.from('<svg width="1600" height="1200"><circle cx="800" cy="600" r="400" fill="#fff"/></svg>') },
      ])
      .png()
      .toBuffer({ resolveWithObject: true });
    expect(info.width).toBe(1600);
    const shrunk = await decodeImage(data, 'big.png', { resize: 28 });
    expect([shrunk.width, shrunk.height]).toEqual([74, 56]); // short side 2 × 28
    const full = await decodeImage(data, 'big.png');
    expect([full.width, full.height]).toEqual([1600, 1200]);
    const a = preprocessImage(shrunk, preprocessingPresets.mnist).data;
    const b = preprocessImage(full, preprocessingPresets.mnist).data;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(0.06); // of a 0–1 range: an antialiased edge moves by a few levels
    expect(worst).toBeGreaterThan(0); // the two paths really differ (the test would see a no-op)
  });
});

describe('image folders', () => {
  it('skip a directory named like an image with its reason, instead of failing the whole load', async () => {
    const root = mkdtempSync(join(tmpdir(), 'shufflenet-folder-'));
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#444' } })
      .png()
      .toBuffer();
    for (const name of ['cat', 'dog']) {
      mkdirSync(join(root, name));
      writeFileSync(join(root, name, '0.png'), png);
    }
    mkdirSync(join(root, 'dog', 'not-a-file.png'));
    const { dataset, skipped } = await loadImageFolder(root, { size: 8, channels: 'RGB' });
    expect(dataset.length).toBe(2);
    expect(skipped).toEqual([
      {
        file: join(root, 'dog', 'not-a-file.png'),
        reason: `${join(root, 'dog', 'not-a-file.png')}: cannot read (EISDIR)`,
      },
    ]);
  });
});

describe('model metadata: every field typed and bounded before anything is built', () => {
  const cases: [string, (meta: Record<string, unknown>) => void, string][] = [
    [
      '10⁹ classes',
      (m) => ((m['architecture'] as { config: Record<string, unknown> }).config['numClasses'] = 1e9),
      'metadata.architecture.config.numClasses is 1000000000; expected an integer from 1 to 100,000',
    ],
    [
      'negative widths',
      (m) =>
        ((m['architecture'] as { config: Record<string, unknown> }).config['widths'] = {
          conv1: -12,
          stages: [24, 48, 96],
        }),
      'metadata.architecture.config.widths.conv1 is -12; expected an integer from 1 to 16,384',
    ],
    [
      'a crop of 100000',
      (m) => (m['preprocessing'] = { ...preprocessingPresets.mnist, resize: 100000, crop: 100000 }),
      'metadata.preprocessing.resize is 100000; expected an integer from 1 to 4,096',
    ],
    [
      'a crop larger than its resize',
      (m) => (m['preprocessing'] = { ...preprocessingPresets.mnist, crop: 30 }),
      'metadata.preprocessing.crop 30 is larger than its resize 28',
    ],
    [
      'an unknown config field (repeats would multiply the units)',
      (m) => ((m['architecture'] as { config: Record<string, unknown> }).config['repeats'] = [1e9, 1, 1]),
      'metadata.architecture.config.repeats is not a known field',
    ],
    [
      'labels that do not match the classes',
      (m) => (m['labels'] = ['a', 'b']),
      'metadata.labels has 2 names for 10 classes',
    ],
    [
      'a label of 10,000 characters',
      (m) => (m['labels'] = Array(10).fill('x'.repeat(10_000))),
      'metadata.labels[0] is',
    ],
    [
      'a family we do not have',
      (m) => (m['architecture'] = { family: 'vgg', config: {} }),
      'metadata.architecture.family is "vgg"',
    ],
    [
      'a string where a number goes',
      (m) => ((m['architecture'] as { config: Record<string, unknown> }).config['groups'] = '3'),
      'metadata.architecture.config.groups is "3"; expected an integer from 1 to 8',
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(`refuses ${what}, naming the field and the allowed range`, () => {
      const text = typedError(() => loadModelFile(withMetadata(edit), 'hostile.safetensors'));
      expect(text).toContain(`hostile.safetensors: ${message}`);
    });
  }

  it('within every range, a network that needs more elements than its file stores is refused before it is built', () => {
    const bytes = withMetadata((m) => {
      const config = (m['architecture'] as { config: Record<string, unknown> }).config;
      config['numClasses'] = 100_000;
      m['labels'] = undefined;
    });
    const text = typedError(() => loadModelFile(bytes, 'big.safetensors'));
    expect(text).toMatch(
      /^big\.safetensors: the network in its metadata \(the file stores [\d,]+ values\): needs more than/,
    );
  });

  it('the tensor budget counts every allocation and restores the outer budget', () => {
    expect(() => withElementBudget(10, 'test', () => new Tensor([11]))).toThrow(ShapeError);
    expect(withElementBudget(10, 'test', () => [new Tensor([5]), new Tensor([5])]).length).toBe(2);
    expect(() => withElementBudget(100, 'outer', () => withElementBudget(1, 'inner', () => new Tensor([2])))).toThrow(
      /^inner: /,
    );
    expect(new Tensor([1000]).size).toBe(1000); // no budget outside
    expect(() => new Tensor([2 ** 20, 2 ** 10])).toThrow(/over the limit of 268435456/);
    expect(() => new Tensor([-12, 1, 3, 3])).toThrow(ShapeError);
  });

  it('the network constructors check their config the same way (the API is outside too)', () => {
    expect(() => new ShuffleNet({ numClasses: 1e9 })).toThrow(FieldError);
    expect(() => new ShuffleNet({ numClasses: 1e9 })).toThrow(
      'shufflenet_v1 config.numClasses is 1000000000; expected an integer from 1 to 100,000',
    );
    expect(() => createModel('mobilenet_v1_0.25', { inputChannels: 0 })).toThrow(/inputChannels is 0/);
  });

  it('a crop that fits the limits but not a graph value is refused when the graph is built', () => {
    const loaded = loadModel(
      withMetadata(() => undefined),
      'ok.safetensors',
    );
    expect(() => loaded.graphFor([1, 1, 100_000, 100_000])).toThrow(
      /input input: a value of shape \[1, 1, 100000, 100000\] would hold 10,000,000,000 elements, over the limit of 134,217,728/,
    );
  });

  it('parses a header once: the model-file loader reuses the parse of the safetensors loader', () => {
    const bytes = withMetadata(() => undefined);
    const parse = vi.spyOn(JSON, 'parse');
    loadModel(bytes, 'once.safetensors');
    expect(parse).toHaveBeenCalledTimes(2); // the header, then the shufflenet entry inside it
  });

  it('refuses a header of 200,000 empty tensors by count, before building a map of them', () => {
    const header: Record<string, unknown> = {};
    for (let i = 0; i < 200_000; i++) header[`t${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const bytes = new Uint8Array(8 + json.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    expect(() => readSafetensors(bytes, 'many.safetensors')).toThrow(
      'many.safetensors: header describes 200000 entries, over the limit of 65536 tensors',
    );
    expect(() => readSafetensors(bytes, 'many.safetensors')).toThrow(FormatError);
  });
});

describe('text from files is escaped for the terminal', () => {
  it('printable shows control characters as escapes and cuts long text', () => {
    expect(printable('a\x1b[2J\nb\tc\u009b\u202e')).toBe('a\\u001b[2J\\nb\\tc\\u009b\\u202e');
    expect(printable('x'.repeat(300), 10)).toBe('xxxxxxxxxx… (290 more characters)');
    const json = printableJson({ label: 'a\x1b\u009bb' });
    expect(json).toBe('{\n "label": "a\\u001b\\u009bb"\n}');
    expect(JSON.parse(json)).toEqual({ label: 'a\x1b\u009bb' });
  });

  it('info prints labels and notes with escape sequences escaped, and cuts a flood', () => {
    const file = join(dir, 'escapes.safetensors');
    writeFileSync(
      file,
      withMetadata((m) => {
        m['labels'] = ['\x1b[2Jcleared', 'line\nbreak', ...Array.from({ length: 8 }, (_, i) => `c${i}`)];
        m['notes'] = { command: '\x1b]0;title\x07', '\x1b[31mkey': 'y'.repeat(5000) };
      }),
    );
    const r = run('info', file);
    expect(r.code, r.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex -- nothing but newlines and text
    expect(r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(r.stdout).toContain('\\u001b[2Jcleared, line\\nbreak');
    expect(r.stdout).toContain('\\u001b]0;title\\u0007');
    expect(r.stdout).toContain('more characters)');
    const json = run('info', file, '--json');
    expect(JSON.parse(json.stdout).labels[0]).toBe('\x1b[2Jcleared');
  });

  it('an ONNX op type with ESC[2J and a newline reaches the terminal escaped, in one line', () => {
    const file = join(dir, 'optype.onnx');
    writeFileSync(
      file,
      onnxModel({
        opset: 13,
        input: ['x', [1, 2, 4, 4]],
        output: 'y',
        initializers: [],
        nodes: [onnxNode('Relu\x1b[2J\nfake line', ['x'], ['y'], {}, 'n')],
      }),
    );
    const r = run('info', file);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('Relu\\u001b[2J\\nfake line');
  });
});

describe('CLI numbers have the ranges of the fields they fill', () => {
  it('export --num-classes 1000000000 is refused by the flag parser, naming the range', () => {
    const r = run(
      'export',
      '--arch',
      'shufflenet_v1_g3_0.25x',
      '--num-classes',
      '1000000000',
      '--out',
      join(dir, 'x.onnx'),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option '--num-classes <n>' argument '1000000000' is invalid");
    expect(r.stderr).toContain('expected an integer from 1 to 100,000');
    expect(r.stderr).not.toContain('internal error');
  });

  it('train --batch, --epochs and --pad-crop take their TrainConfig ranges', () => {
    for (const [flag, value, range] of [
      ['--batch', '100000000', 'an integer from 1 to 8,192'],
      ['--epochs', '0', 'an integer from 1 to 10,000'],
      ['--pad-crop', '1e9', 'an integer from 0 to 64'],
      ['--momentum', '2', 'a number from 0 to 1'],
    ] as const) {
      const r = run('train', flag, value, '--out', join(dir, 'never.safetensors'));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`expected ${range}, got "${value}"`);
    }
  });

  it('thread counts and batch sizes are bounded where the user gives them', () => {
    for (const args of [
      ['train', '--threads', '100000000', '--out', join(dir, 'never.safetensors')],
      ['eval', '--batch-size', '1000000000'],
      ['experiment', 'groups', '--threads', '100000'],
    ]) {
      const r = run(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(/expected an integer from 1 to (256|8,192), got/);
    }
  });

  it('demo --images is bounded by the test split', () => {
    const r = run('demo', '--images', '100000000', '--threads', '1');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'shufflenet: error: --images 100000000: the Fashion-MNIST test split has 10,000 images',
    );
  });

  it('the field checker refuses non-integers, NaN, strings and booleans for an integer', () => {
    for (const bad of [1.5, NaN, Infinity, '3', true, null, [], {}]) {
      expect(() => checkField(bad, integerField(1, 8), 'x')).toThrow(FieldError);
    }
    expect(() => checkField(8, integerField(1, 8), 'x')).not.toThrow();
  });
});
