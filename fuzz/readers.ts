/**
 * The readers under fuzz, each as data: the valid seed files it starts from (made in code or read
 * from test/fixtures), the fixed cases that open its sequence (the unmutated seeds and issue 15's
 * reproducers), how case i is generated from its generator, and what is run on it (the same calls
 * the CLI makes on a file).
 */
import sharp, { type Sharp } from 'sharp';
import { zipSync } from 'fflate';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { complexity } from '../src/analysis/complexity.js';
import { preprocessImage, type RawImage } from '../src/data/image.js';
import { infoSummary } from '../src/cli/commands/info.js';
import { printableJson } from '../src/cli/format.js';
import { preprocessingPresets } from '../src/data/preprocessing.js';
import { loadModel, type LoadedModel } from '../src/io/load.js';
import { saveModelFile } from '../src/io/modelfile.js';
import { decodeModelProto, encodeModelProto } from '../src/io/onnx/codec.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import type { ModelProto } from '../src/io/onnx/proto.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { isZip } from '../src/io/torch/zip.js';
import { architectureOf, buildArchitecture, createModel, type Architecture } from '../src/models/registry.js';
import { decodeImage } from '../src/node/image.js';
import { loadImageFolder } from '../src/node/data/imagefolder.js';
import { Calibrator } from '../src/runtime/quant/calibrate.js';
import { runQuantized } from '../src/runtime/quant/execute.js';
import { isQuantizedModelFile, loadQuantizedModelFile, saveQuantizedModelFile } from '../src/runtime/quant/file.js';
import type { QuantizedNetwork } from '../src/runtime/quant/network.js';
import { exportQdq, importQdqModel, isQdqModel } from '../src/runtime/quant/qdq.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import {
  extremeSizes,
  fixPngCrcs,
  imageHot,
  mutatePngHeader,
  setDimensions,
  sniffFormat,
  tinyGif,
} from './image-formats.js';
import {
  legacyLayout,
  mutateField,
  mutateOnnx,
  mutateProtobufVarint,
  mutateSafetensors,
  pickleFields,
  protobufFields,
  protobufHot,
  splitSafetensors,
  joinSafetensors,
  zipEntryRange,
  zipFields,
  type Field,
  type VarintField,
} from './model-formats.js';
import { between, caseRandom, chance, type Mutated, mutateBytesTimes, pick, weighted, writeUint } from './mutate.js';

export const readerNames = ['safetensors', 'onnx', 'torch', 'image', 'imagefolder'] as const;
export type ReaderName = (typeof readerNames)[number];

export interface FuzzFile {
  /** Path inside the case (an image folder's `class/file.png`); the extension names the format. */
  name: string;
  /** Bytes, or null for a directory. */
  bytes: Uint8Array | null;
}

export interface FuzzCase {
  files: FuzzFile[];
  /** What the case is: the seed and the mutations, for the failure report. */
  what: string;
  /** Reader options the case chose (image-folder sizes). */
  options?: Record<string, unknown>;
}

export type Step = (name: string) => Promise<void>;

export interface Seed {
  name: string;
  bytes: Uint8Array;
  /** Relative frequency of this seed among the mutated cases. */
  weight: number;
}

export interface Prepared {
  seeds: Seed[];
  /** Cases 0 … fixed.length - 1: each seed unmutated, then the reproducers. */
  fixed: FuzzCase[];
}

export interface Reader {
  name: ReaderName;
  /** What one case runs, for the report. */
  calls: string;
  prepare(): Promise<Prepared>;
  /** Case `index` (≥ fixed.length) from its own generator. */
  mutate(prepared: Prepared, rng: Random, index: number): FuzzCase;
  /**
   * Runs the case; throws what the library throws. `scratch` is a private folder; `step` names each
   * library call before it starts (a timeout or a blow-up is reported with the last one).
   */
  run(c: FuzzCase, scratch: string, step: Step): Promise<void>;
}

const fixtures = new URL('../test/fixtures/', import.meta.url);
const fixture = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(path, fixtures)));

const one = (name: string, bytes: Uint8Array, what: string): FuzzCase => ({ files: [{ name, bytes }], what });

function pickSeed(rng: Random, seeds: readonly Seed[]): Seed {
  return weighted(
    rng,
    seeds.map((s) => [s.weight, s] as const),
  );
}

/** What `shufflenet info` computes from a loaded model (src/cli/commands/info.ts), and its JSON. */
export async function describeLoaded(model: LoadedModel, step: Step): Promise<unknown> {
  await step('graph, complexity and JSON summary (info)');
  return printableJson(infoSummary('x', model));
}

// ---- safetensors ---------------------------------------------------------------------------

const smallOptions = { numClasses: 10, inputChannels: 1, smallInput: true };
const tinyArchitecture: Architecture = {
  family: 'shufflenet_v1',
  config: { groups: 2, scale: 0.25, shallow: true, widths: { conv1: 8, stages: [16, 32, 64] }, ...smallOptions },
} as Architecture;

function modelFile(architecture: Architecture, extra: Record<string, unknown> = {}): Uint8Array {
  const model = buildArchitecture({ ...architecture, config: { ...architecture.config, seed: 1 } } as Architecture);
  return saveModelFile(model, {
    architecture,
    preprocessing: preprocessingPresets.mnist,
    labels: Array.from({ length: 10 }, (_, i) => `class ${i}`),
    notes: { source: 'fuzz seed' },
    ...extra,
  });
}

/** Rewrites the model metadata of a seed (for the reproducers). */
function withMetadata(seed: Uint8Array, edit: (meta: Record<string, unknown>) => void): Uint8Array {
  const { header, data } = splitSafetensors(seed);
  const parsed = JSON.parse(header) as { __metadata__: Record<string, string> };
  const meta = JSON.parse(parsed.__metadata__['shufflenet']!) as Record<string, unknown>;
  edit(meta);
  parsed.__metadata__['shufflenet'] = JSON.stringify(meta);
  return joinSafetensors(JSON.stringify(parsed), data);
}

/** The tiny shufflenet of the seeds, quantized to int8 on two random images (docs/int8.md). */
function tinyInt8(): QuantizedNetwork {
  const model = buildArchitecture({
    ...tinyArchitecture,
    config: { ...tinyArchitecture.config, seed: 1 },
  } as Architecture);
  const graph = model.trace([1, 1, 28, 28]);
  const calibrator = new Calibrator(graph, { method: 'minmax', images: 2 });
  const rng = new Random(3);
  for (let i = 0; i < 2; i++)
    calibrator.observe(
      new Tensor(
        [1, 1, 28, 28],
        Float32Array.from({ length: 784 }, () => rng.next()),
      ),
    );
  return calibrator.finish();
}

/** Runs an int8 network once on zeros (its traced shape): what eval and classify do with it. */
async function runInt8(network: QuantizedNetwork, step: Step): Promise<void> {
  await step(`runQuantized [${network.graph.input.shape.join(', ')}]`);
  runQuantized(network, new Tensor(network.graph.input.shape));
}

const configOf = (meta: Record<string, unknown>): Record<string, unknown> =>
  (meta['architecture'] as { config: Record<string, unknown> }).config;

/** A safetensors file of every dtype, written by hand (writeSafetensors writes F32 only). */
function allDtypes(): Uint8Array {
  const dtypes: [string, number][] = [
    ['F64', 8],
    ['F32', 4],
    ['F16', 2],
    ['BF16', 2],
    ['I64', 8],
    ['I32', 4],
    ['I16', 2],
    ['I8', 1],
    ['U8', 1],
    ['BOOL', 1],
    ['U16', 2],
    ['U32', 4],
    ['U64', 8],
  ];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [dtype, size] of dtypes) {
    header[dtype.toLowerCase()] = { dtype, shape: [2, 3], data_offsets: [offset, offset + 6 * size] };
    offset += 6 * size;
  }
  const data = Uint8Array.from({ length: offset }, (_, i) => (i * 37) & 0x3f);
  return joinSafetensors(JSON.stringify(header), data);
}

const safetensorsReader: Reader = {
  name: 'safetensors',
  calls:
    "readSafetensors; with shufflenet metadata: loadModel(bytes, 'x.safetensors') and what `info` does (graphFor([1, C, crop, crop]), complexity, the JSON summary); an int8 file: loadQuantizedModelFile and runQuantized",
  async prepare() {
    const g3 = modelFile(architectureOf('shufflenet_v1_g3_0.25x', smallOptions), { arch: 'shufflenet_v1_g3_0.25x' });
    const tiny = modelFile(tinyArchitecture);
    const int8 = saveQuantizedModelFile(
      tinyInt8(),
      { architecture: tinyArchitecture, preprocessing: preprocessingPresets.mnist },
      { calibration: { method: 'minmax', images: 2 } },
    );
    const mobile = modelFile(architectureOf('mobilenet_v1_0.25', smallOptions), { arch: 'mobilenet_v1_0.25' });
    const plain = writeSafetensors(
      new Map([
        ['a', Tensor.from([2, 3], [1, 2, 3, 4, 5, 6])],
        ['b', Tensor.from([4], [7, 8, 9, 10])],
        ['empty', new Tensor([0, 5])],
      ]),
      { note: 'x' },
    );
    const seeds: Seed[] = [
      { name: 'shufflenet_v1_g3_0.25x model file', bytes: g3, weight: 3 },
      { name: 'tiny shufflenet (explicit widths) model file', bytes: tiny, weight: 4 },
      { name: 'mobilenet_v1_0.25 model file', bytes: mobile, weight: 1 },
      { name: 'int8 model file (tiny shufflenet)', bytes: int8, weight: 3 },
      { name: 'plain safetensors', bytes: plain, weight: 1 },
      { name: 'safetensors of every dtype', bytes: allDtypes(), weight: 1 },
    ];
    const reproducer = (what: string, edit: (meta: Record<string, unknown>) => void): FuzzCase =>
      one('x.safetensors', withMetadata(tiny, edit), what);
    const emptyTensors = (() => {
      const { header, data } = splitSafetensors(tiny);
      const parsed = JSON.parse(header) as Record<string, unknown>;
      for (let i = 0; i < 200_000; i++) parsed[`empty.${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
      return joinSafetensors(JSON.stringify(parsed), data);
    })();
    const hugeLength = tiny.slice();
    writeUint(hugeLength, 0, 8, 2n ** 64n - 1n);
    return {
      seeds,
      fixed: [
        ...seeds.map((s) => one('x.safetensors', s.bytes, `seed ${s.name}, unmutated`)),
        // Issue 15, item 2: model metadata used without bounds.
        reproducer('issue 15: numClasses 1e9', (m) => void (configOf(m)['numClasses'] = 1e9)),
        reproducer(
          'issue 15: negative widths',
          (m) => void (configOf(m)['widths'] = { conv1: -12, stages: [16, 32, 64] }),
        ),
        reproducer('issue 15: preprocessing crop 100000', (m) => {
          (m['preprocessing'] as Record<string, unknown>)['crop'] = 100000;
        }),
        reproducer('inputChannels 1e9', (m) => void (configOf(m)['inputChannels'] = 1e9)),
        reproducer('numClasses 2^53', (m) => void (configOf(m)['numClasses'] = 2 ** 53)),
        reproducer('numClasses 0.5', (m) => void (configOf(m)['numClasses'] = 0.5)),
        reproducer('groups -12', (m) => void (configOf(m)['groups'] = -12)),
        reproducer('scale 100000', (m) => void (configOf(m)['scale'] = 100000)),
        // Issue 15, item 5: a header of 200,000 empty tensors took 2.4 s.
        one('x.safetensors', emptyTensors, 'issue 15: 200,000 empty tensors in the header'),
        one('x.safetensors', hugeLength, 'header length 2^64 - 1'),
      ],
    };
  },
  mutate(prepared, rng) {
    const seed = pickSeed(rng, prepared.seeds);
    let m: Mutated;
    const headerEnd = 8 + Number(new DataView(seed.bytes.buffer, seed.bytes.byteOffset).getBigUint64(0, true));
    if (chance(rng, 0.6)) {
      m = mutateSafetensors(rng, seed.bytes);
      if (chance(rng, 0.15)) {
        const more = mutateBytesTimes(rng, m.bytes, 1, [[0, headerEnd]]);
        m = { bytes: more.bytes, what: `${m.what}; ${more.what}` };
      }
    } else m = mutateBytesTimes(rng, seed.bytes, between(rng, 1, 4), [[0, headerEnd]]);
    return one('x.safetensors', m.bytes, `seed ${seed.name}: ${m.what}`);
  },
  async run(c, _scratch, step) {
    const bytes = c.files[0]!.bytes!;
    await step('readSafetensors');
    const file = readSafetensors(bytes, 'x.safetensors');
    // Without our metadata loadModel only asks for --arch: the header was what there was to read.
    if (file.metadata['shufflenet'] === undefined) return;
    if (isQuantizedModelFile(file)) {
      await step('loadQuantizedModelFile');
      return runInt8(loadQuantizedModelFile(bytes, 'x.safetensors', file).network, step);
    }
    await step('loadModel');
    await describeLoaded(loadModel(bytes, 'x.safetensors'), step);
  },
};

// ---- ONNX ----------------------------------------------------------------------------------

function withOnnx(seed: Uint8Array, edit: (m: ModelProto) => void): Uint8Array {
  const model = decodeModelProto(seed, 'seed.onnx');
  edit(model);
  return encodeModelProto(model);
}

const onnxFields = new Map<Uint8Array, VarintField[]>();

const onnxReader: Reader = {
  name: 'onnx',
  calls:
    "loadModel(bytes, 'x.onnx'), graphFor(its input shape), complexity; a QDQ file: importQdqModel and runQuantized",
  async prepare() {
    const ours = (name: string, shape: number[]): Uint8Array =>
      exportOnnx(createModel(name, smallOptions).trace(shape));
    const seeds: Seed[] = [
      { name: 'mixed_ops.onnx', bytes: fixture('onnx/mixed_ops.onnx'), weight: 4 },
      { name: 'shufflenet_v1_g3_0.25x (our export)', bytes: ours('shufflenet_v1_g3_0.25x', [1, 1, 28, 28]), weight: 3 },
      {
        name: 'shufflenet_v1_g2_0.25x_se (our export)',
        bytes: ours('shufflenet_v1_g2_0.25x_se', [1, 1, 8, 8]),
        weight: 2,
      },
      { name: 'shufflenet_v1_paper.onnx', bytes: fixture('onnx/shufflenet_v1_paper.onnx'), weight: 2 },
      { name: 'shufflenet_v1_official.onnx', bytes: fixture('onnx/shufflenet_v1_official.onnx'), weight: 2 },
      { name: 'mobilenet_v1_relu6.onnx', bytes: fixture('onnx/mobilenet_v1_relu6.onnx'), weight: 1 },
      { name: 'mobilenet_v2_0.25.onnx', bytes: fixture('onnx/mobilenet_v2_0.25.onnx'), weight: 1 },
      { name: 'shufflenet_v2_x0_5.onnx', bytes: fixture('onnx/shufflenet_v2_x0_5.onnx'), weight: 1 },
      { name: 'tiny shufflenet, int8 (our QDQ export)', bytes: exportQdq(tinyInt8()), weight: 2 },
    ];
    for (const s of seeds) onnxFields.set(s.bytes, protobufFields(s.bytes));
    const mixed = seeds[0]!.bytes;
    const inputDims = (dims: number[]) => (m: ModelProto) => {
      m.graph!.input![0]!.type!.tensor_type!.shape!.dim = dims.map((d) => ({ dim_value: d }));
    };
    return {
      seeds,
      fixed: [
        ...seeds.map((s) => one('x.onnx', s.bytes, `seed ${s.name}, unmutated`)),
        one('x.onnx', withOnnx(mixed, inputDims([1, 3, 1e9, 1e9])), 'input 1×3×1e9×1e9'),
        one('x.onnx', withOnnx(mixed, inputDims([1, 3, -12, 16])), 'input height -12'),
        one('x.onnx', withOnnx(mixed, inputDims([1e9, 3, 16, 16])), 'batch 1e9'),
        one('x.onnx', withOnnx(mixed, inputDims([1, 3, 100000, 1])), 'input 100000×1'),
        one(
          'x.onnx',
          withOnnx(mixed, (m) => {
            for (const n of m.graph!.node ?? []) for (const a of n.attribute ?? []) if (a.name === 'group') a.i = 0;
          }),
          'every group attribute 0',
        ),
      ],
    };
  },
  mutate(prepared, rng) {
    const seed = pickSeed(rng, prepared.seeds);
    const kind = weighted(rng, [
      [4, 'object'],
      [2, 'varint'],
      [3, 'bytes'],
      [1, 'object+bytes'],
    ] as const);
    let m: Mutated | null = null;
    if (kind === 'object' || kind === 'object+bytes') m = mutateOnnx(rng, seed.bytes);
    else if (kind === 'varint') m = mutateProtobufVarint(rng, seed.bytes, onnxFields.get(seed.bytes) ?? []);
    if (m === null || kind !== 'object') {
      const base = m?.bytes ?? seed.bytes;
      const more = mutateBytesTimes(rng, base, between(rng, 1, 3), protobufHot(base));
      m = { bytes: more.bytes, what: m === null ? more.what : `${m.what}; ${more.what}` };
    }
    return one('x.onnx', m.bytes, `seed ${seed.name}: ${m.what}`);
  },
  async run(c, _scratch, step) {
    await step('decodeModelProto');
    const proto = decodeModelProto(c.files[0]!.bytes!, 'x.onnx');
    if (isQdqModel(proto)) {
      await step('importQdqModel');
      return runInt8(importQdqModel(proto, 'x.onnx'), step);
    }
    await step('loadModel');
    const model = loadModel(c.files[0]!.bytes!, 'x.onnx');
    await step(`graphFor [${model.inputShape!.join(', ')}]`);
    const graph = model.graphFor(model.inputShape!);
    await step('complexity');
    complexity(graph);
  },
};

// ---- PyTorch -------------------------------------------------------------------------------

interface TorchStructure {
  fields: Field[];
  hot: [number, number][];
}
const torchStructure = new Map<Uint8Array, TorchStructure>();

function torchStructureOf(bytes: Uint8Array): TorchStructure {
  if (isZip(bytes)) {
    const pkl = zipEntryRange(bytes, 'data.pkl');
    const fields = [...zipFields(bytes), ...(pkl ? pickleFields(bytes, pkl[0]) : [])];
    return { fields, hot: [...(pkl ? [pkl] : []), [Math.max(0, bytes.length - 4096), bytes.length]] };
  }
  const { pickles, counts } = legacyLayout(bytes);
  const fields = pickles.flatMap((start) => pickleFields(bytes, start));
  for (const at of counts) fields.push({ at, width: 8, name: 'legacy storage element count', kind: 'size' });
  const mainEnd = counts[0] ?? Math.min(bytes.length, 8192);
  return { fields, hot: [[0, mainEnd]] };
}

const torchReader: Reader = {
  name: 'torch',
  calls: "loadModel(bytes, 'x.pth') (zip and legacy formats) and what `info` does with the model",
  async prepare() {
    const files: [string, number][] = [
      ['official_tiny_g3.zip.pth', 4],
      ['official_tiny_g3.legacy.pth', 4],
      ['mmpretrain_tiny_g3.zip.pth', 2],
      ['mmpretrain_tiny_g3.legacy.pth', 2],
      ['official_tiny_g3_strided.zip.pth', 1],
      ['official_tiny_g3_strided.legacy.pth', 1],
      ['official_tiny_g8_half.legacy.pth', 2],
      ['official_tiny_g3_double.zip.pt', 1],
      ['official_tiny_g4.zip.pth.tar', 1],
      ['malicious_eval.legacy.pth', 1],
      ['malicious_os_system.pth', 1],
      ['malicious_posix_system.zip.pth', 1],
      ['whole_module.zip.pth', 1],
    ];
    const seeds = files.map(([name, weight]): Seed => ({ name, bytes: fixture(`torch/${name}`), weight }));
    for (const s of seeds) torchStructure.set(s.bytes, torchStructureOf(s.bytes));
    return { seeds, fixed: seeds.map((s) => one('x.pth', s.bytes, `seed ${s.name}, unmutated`)) };
  },
  mutate(prepared, rng) {
    const seed = pickSeed(rng, prepared.seeds);
    const structure = torchStructure.get(seed.bytes)!;
    let m: Mutated | null = null;
    const kind = weighted(rng, [
      [5, 'field'],
      [4, 'bytes'],
      [1, 'field+bytes'],
    ] as const);
    if (kind !== 'bytes') m = mutateField(rng, seed.bytes, structure.fields);
    if (m === null || kind !== 'field') {
      const base = m?.bytes ?? seed.bytes;
      const more = mutateBytesTimes(rng, base, between(rng, 1, 3), structure.hot);
      m = { bytes: more.bytes, what: m === null ? more.what : `${m.what}; ${more.what}` };
    }
    return one('x.pth', m.bytes, `seed ${seed.name}: ${m.what}`);
  },
  async run(c, _scratch, step) {
    await step('loadModel');
    await describeLoaded(loadModel(c.files[0]!.bytes!, 'x.pth'), step);
  },
};

// ---- Images --------------------------------------------------------------------------------

const extensionOf = (bytes: Uint8Array): string => {
  const format = sniffFormat(bytes);
  return format === 'jpeg' ? 'jpg' : (format ?? 'bin');
};

/** A 23×17 test picture: smooth gradients with seeded noise, so every codec has something to code. */
async function testPicture(channels: 1 | 3 | 4): Promise<Sharp> {
  const [width, height] = [23, 17];
  const rng = new Random(15);
  const data = Buffer.alloc(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < channels; c++) {
      const base = c === 3 ? 255 - ((i * 7) % 200) : ((i % width) * 11 + Math.floor(i / width) * 13 * (c + 1)) & 0xff;
      data[i * channels + c] = Math.min(255, base + rng.int(24));
    }
  }
  return sharp(data, { raw: { width, height, channels } });
}

async function imageSeeds(): Promise<Seed[]> {
  const rgb = async () => testPicture(3);
  const s = async (name: string, make: Promise<Buffer>, weight = 2): Promise<Seed> => ({
    name,
    bytes: new Uint8Array(await make),
    weight,
  });
  const seeds = [
    await s('png rgb', (await rgb()).png().toBuffer(), 3),
    await s('png gray', (await testPicture(1)).png().toBuffer()),
    await s('png rgba', (await testPicture(4)).png().toBuffer()),
    await s('png palette', (await rgb()).png({ palette: true }).toBuffer()),
    await s('png 16-bit', (await rgb()).toColourspace('rgb16').png().toBuffer(), 1),
    await s('png interlaced', (await rgb()).png({ progressive: true }).toBuffer(), 1),
    await s('jpeg', (await rgb()).jpeg().toBuffer(), 3),
    await s('jpeg progressive', (await rgb()).jpeg({ progressive: true }).toBuffer()),
    await s('jpeg gray', (await testPicture(1)).jpeg().toBuffer(), 1),
    await s('jpeg exif orientation 6', (await rgb()).jpeg().withMetadata({ orientation: 6 }).toBuffer(), 1),
    await s('webp lossy', (await rgb()).webp().toBuffer(), 2),
    await s('webp lossless', (await rgb()).webp({ lossless: true }).toBuffer(), 2),
    await s('webp alpha', (await testPicture(4)).webp().toBuffer(), 1),
    await s('gif', (await rgb()).gif().toBuffer(), 3),
    await s('tiff deflate', (await rgb()).tiff({ compression: 'deflate' }).toBuffer(), 2),
    await s('tiff uncompressed', (await testPicture(1)).tiff({ compression: 'none' }).toBuffer(), 1),
    { name: 'gif 43 bytes', bytes: tinyGif(1, 1), weight: 2 },
    {
      name: 'svg',
      bytes: new TextEncoder().encode(
        '<svg xmlns="http://www.w3.org/2000/svg" width="23" height="17" viewBox="0 0 23 17"><rect x="2" y="3" width="9" height="7" fill="#c33"/><circle cx="16" cy="9" r="5" fill="#36c"/></svg>',
      ),
      weight: 1,
    },
  ];
  // AVIF when this sharp build can write it (the prebuilt binaries can).
  if (sharp.format.heif?.output.buffer) {
    try {
      seeds.push(await s('avif', (await rgb()).avif({ effort: 0 }).toBuffer(), 2));
    } catch {
      // NOTE: without an AV1 encoder there is no AVIF seed; the report's seed list says so.
    }
  }
  return seeds;
}

async function imageReproducers(): Promise<FuzzCase[]> {
  const gray = (width: number, height: number) =>
    sharp({ create: { width, height, channels: 3, background: { r: 40, g: 80, b: 120 } } });
  const oneImage = (what: string, bytes: Uint8Array): FuzzCase => one(`x.${extensionOf(bytes)}`, bytes, what);
  return [
    // Issue 15, item 1: extreme aspect ratios bypass the pixel limit.
    oneImage('issue 15: a 1,000,000×1 PNG', new Uint8Array(await gray(1_000_000, 1).png().toBuffer())),
    oneImage('a 1×1,000,000 PNG', new Uint8Array(await gray(1, 1_000_000).png().toBuffer())),
    oneImage('issue 15: a 43-byte GIF of 4×32769 (imagenet preset)', tinyGif(4, 32769)),
    oneImage('a 43-byte GIF of 1×65535', tinyGif(1, 65535)),
    oneImage('a 43-byte GIF of 65535×1', tinyGif(65535, 1)),
    oneImage('a 43-byte GIF of 65535×65535', tinyGif(65535, 65535)),
    oneImage('a 43-byte GIF of 8192×8192', tinyGif(8192, 8192)),
    oneImage('issue 15: an 11778×1 GIF', tinyGif(11778, 1)),
    oneImage('an 11778×1 GIF (real pixels)', new Uint8Array(await gray(11778, 1).gif().toBuffer())),
  ];
}

/** One image case: an extreme size claimed in the header, byte mutations, or both. */
function mutateImage(rng: Random, seeds: readonly Seed[]): { bytes: Uint8Array; what: string } {
  const seed = pickSeed(rng, seeds);
  let bytes = seed.bytes;
  const what: string[] = [];
  const kind = weighted(rng, [
    [3, 'size'],
    [4, 'bytes'],
    [1, 'png-header'],
    [2, 'size+bytes'],
  ] as const);
  if (kind === 'size' || kind === 'size+bytes') {
    const [w, h] = chance(rng, 0.7)
      ? pick(rng, extremeSizes)
      : [Math.floor(2 ** (rng.next() * 17)), Math.floor(2 ** (rng.next() * 17))];
    const m = setDimensions(bytes, w, h, rng);
    if (m !== null) {
      bytes = m.bytes;
      what.push(m.what);
    }
  }
  if (kind === 'png-header' && sniffFormat(bytes) === 'png') {
    const m = mutatePngHeader(rng, bytes);
    bytes = m.bytes;
    what.push(m.what);
  }
  if (what.length === 0 || kind === 'size+bytes' || kind === 'bytes') {
    const m = mutateBytesTimes(rng, bytes, between(rng, 1, 3), imageHot(bytes));
    bytes = m.bytes;
    what.push(m.what);
    // libpng stops at a bad CRC: most of the time, let the mutation through to the decoder.
    if (sniffFormat(bytes) === 'png' && chance(rng, 0.7)) {
      bytes = bytes.slice();
      fixPngCrcs(bytes);
      what.push('CRCs fixed');
    }
  }
  return { bytes, what: `seed ${seed.name}: ${what.join('; ')}` };
}

const imageReader: Reader = {
  name: 'image',
  calls: `decodeImage shrinking on load for each preset's resize, then preprocessImage (as classify does; presets ${Object.keys(preprocessingPresets).join(', ')})`,
  async prepare() {
    const seeds = await imageSeeds();
    return {
      seeds,
      fixed: [
        ...seeds.map((s) => one(`x.${extensionOf(s.bytes)}`, s.bytes, `seed ${s.name}, unmutated`)),
        ...(await imageReproducers()),
      ],
    };
  },
  mutate(prepared, rng) {
    const { bytes, what } = mutateImage(rng, prepared.seeds);
    return one(`x.${extensionOf(bytes)}`, bytes, what);
  },
  async run(c, _scratch, step) {
    const file = c.files[0]!;
    // One decode per distinct resize (imagenet and the official preset share 256), as classify decodes.
    const decoded = new Map<number, RawImage>();
    for (const [name, preset] of Object.entries(preprocessingPresets)) {
      let image = decoded.get(preset.resize);
      if (image === undefined) {
        await step(`decodeImage for a short side of ${preset.resize}`);
        image = await decodeImage(file.bytes!, file.name, { resize: preset.resize });
        decoded.set(preset.resize, image);
      }
      await step(`preprocessImage ${name} (${image.width}×${image.height})`);
      preprocessImage(image, preset, file.name);
    }
  },
};

// ---- Image folders -------------------------------------------------------------------------

const folderOptions = [
  { size: 28, channels: 'gray' },
  { size: 32, channels: 'RGB', resize: 36 },
  { size: 16, channels: 'RGB' },
] as const;

const imageFolderReader: Reader = {
  name: 'imagefolder',
  calls: 'loadImageFolder on a folder of class sub-folders holding fuzzed images (and the odd non-image)',
  async prepare() {
    const image = await prepareReader('image');
    const folder = (files: FuzzFile[], what: string): FuzzCase => ({ files, what, options: { ...folderOptions[0] } });
    const reproducers = image.fixed.filter((c) => c.what.includes('issue 15'));
    return {
      seeds: image.seeds,
      fixed: [
        folder(
          image.seeds.slice(0, 6).map((s, i) => ({
            name: `class${i % 2}/seed${i}.${i % 3 === 0 ? 'png' : i % 3 === 1 ? 'jpg' : 'webp'}`,
            bytes: s.bytes,
          })),
          'six unmutated seeds in two classes',
        ),
        ...reproducers.map((c) =>
          folder(
            [
              { name: 'a/ok.png', bytes: image.seeds[0]!.bytes },
              { name: 'b/hostile.png', bytes: c.files[0]!.bytes },
            ],
            `${c.what}, in a class folder`,
          ),
        ),
      ],
    };
  },
  mutate(prepared, rng) {
    const classes = weighted(rng, [
      [16, ['cat', 'dog']],
      [2, ['a', 'b', 'c']],
      [1, ['only']],
      [1, []],
    ] as const);
    const files: FuzzFile[] = classes.map((c) => ({ name: `${c}/`, bytes: null }));
    const what: string[] = [];
    const count = between(rng, 1, 4);
    for (let i = 0; i < count && classes.length > 0; i++) {
      const dir = pick(rng, classes);
      const odd = weighted(rng, [
        [120, 'image'],
        [2, 'empty'],
        [1, 'directory'],
        [2, 'text'],
      ] as const);
      const ext = pick(rng, ['png', 'jpg', 'jpeg', 'webp', 'PNG']);
      if (odd === 'image') {
        const m = mutateImage(rng, prepared.seeds);
        files.push({ name: `${dir}/${i}.${ext}`, bytes: m.bytes });
        what.push(`${dir}/${i}.${ext}: ${m.what}`);
      } else if (odd === 'empty') {
        files.push({ name: `${dir}/${i}.${ext}`, bytes: new Uint8Array(0) });
        what.push(`${dir}/${i}.${ext}: empty file`);
      } else if (odd === 'directory') {
        files.push({ name: `${dir}/${i}.${ext}/`, bytes: null });
        what.push(`${dir}/${i}.${ext}: a directory`);
      } else {
        files.push({ name: `${dir}/${i}.${ext}`, bytes: new TextEncoder().encode('not an image\n') });
        what.push(`${dir}/${i}.${ext}: text`);
      }
    }
    const options = { ...pick(rng, folderOptions) };
    return { files, what: `classes [${classes.join(', ')}], ${JSON.stringify(options)}: ${what.join(' | ')}`, options };
  },
  async run(c, scratch, step) {
    const root = join(scratch, 'folder');
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root);
    try {
      writeCaseFiles(root, c.files);
      await step('loadImageFolder');
      await loadImageFolder(root, {
        ...(c.options as { size: number; channels: 'RGB' | 'gray' }),
        // Each file in turn: a timeout names the one being read.
        onProgress: (done, total) => void (done < total && step(`loadImageFolder, file ${done + 1} of ${total}`)),
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
};

/** Writes a case's files under `root` (names ending in / are folders). */
export function writeCaseFiles(root: string, files: readonly FuzzFile[]): void {
  for (const f of files) {
    const path = join(root, f.name);
    if (f.bytes === null) mkdirSync(path, { recursive: true });
    else {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, f.bytes);
    }
  }
}

/** One file to keep for a failing case: the input itself, or a zip of a folder case. */
export function caseArtifact(c: FuzzCase): { ext: string; bytes: Uint8Array } {
  if (c.files.length === 1 && c.files[0]!.bytes !== null && c.options === undefined) {
    const name = c.files[0]!.name;
    return { ext: name.slice(name.indexOf('.') + 1), bytes: c.files[0]!.bytes };
  }
  const entries: Record<string, Uint8Array> = {
    'case.json': new TextEncoder().encode(JSON.stringify({ what: c.what, options: c.options ?? null }, null, 1)),
  };
  for (const f of c.files) entries[`folder/${f.name}`] = f.bytes ?? new Uint8Array(0);
  return { ext: 'zip', bytes: zipSync(entries) };
}

export const readers: Record<ReaderName, Reader> = {
  safetensors: safetensorsReader,
  onnx: onnxReader,
  torch: torchReader,
  image: imageReader,
  imagefolder: imageFolderReader,
};

const prepared = new Map<ReaderName, Promise<Prepared>>();

/** Seeds and fixed cases of a reader, built once per process. */
export function prepareReader(name: ReaderName): Promise<Prepared> {
  let p = prepared.get(name);
  if (p === undefined) prepared.set(name, (p = readers[name].prepare()));
  return p;
}

/** Case `index` of `reader` under base seed `seed`: a pure function of the three. */
export async function generateCase(name: ReaderName, seed: number, index: number): Promise<FuzzCase> {
  const p = await prepareReader(name);
  if (index < p.fixed.length) return p.fixed[index]!;
  return readers[name].mutate(p, caseRandom(seed, name, index), index);
}
