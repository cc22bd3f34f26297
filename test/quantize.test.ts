/**
 * Int8 (issue 11): the reference int8 kernels against float arithmetic on the same integers, and
 * whole quantized networks against onnxruntime-node running our QDQ export of them, value by value;
 * int8 model files round-trip and refuse bad fields naming them.
 */
import * as ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { conv2dReference, type Conv2dGeometry } from '../src/kernels/reference/conv2d.js';
import { qconv2dAccumulators, quantizeLinear, requantize, roundHalfEven } from '../src/kernels/reference/quantized.js';
import { sevenBitWeights } from '../src/kernels/wasm/pack.js';
import { loadModelFile, saveModelFile } from '../src/io/modelfile.js';
import { readSafetensors, writeSafetensors, type IntegerTensor } from '../src/io/safetensors.js';
import { architectureOf, createModel, type ModelOptions } from '../src/models/registry.js';
import { describeStep } from '../src/runtime/lower.js';
import { Calibrator } from '../src/runtime/quant/calibrate.js';
import { runQuantized } from '../src/runtime/quant/execute.js';
import { loadQuantizedModelFile, saveQuantizedModelFile } from '../src/runtime/quant/file.js';
import { chooseQParams, type QuantizedNetwork } from '../src/runtime/quant/network.js';
import { exportQdq, importQdq } from '../src/runtime/quant/qdq.js';
import { QuantizedPlan } from '../src/runtime/quant/plan.js';
import { startHelpers } from '../src/runtime/session.js';
import { prepareHelper } from '../src/runtime/threads/team.js';
import { spawnNodeWorker } from '../src/node/session.js';
import { decodeModelProto, encodeModelProto } from '../src/io/onnx/codec.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import { importOnnx } from '../src/io/onnx/import.js';
import { loadFashionMnist } from '../src/node/data/mnist.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { FormatError } from '../src/errors.js';
import { randomInput, randomizeBuffers } from './helpers/random-state.js';

describe('reference int8 arithmetic', () => {
  it('rounds half to even, as ONNX QuantizeLinear and f32x4.nearest do', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, 3]);
    const out = new Uint8Array(5);
    quantizeLinear(Float32Array.of(-1, 0, 0.25, 0.3, 100), { scale: 0.1, zeroPoint: 10 }, out);
    expect([...out]).toEqual([0, 10, 12, 13, 255]); // 0.25/0.1 = 2.5 → 2; saturation at both ends
  });

  it('requantizes in float32, ReLU as a clamp at the zero point', () => {
    expect(requantize(100, 0.5, null, 1, 3)).toBe(53);
    expect(requantize(-100, 0.5, 'relu', 1, 3)).toBe(3);
    expect(requantize(-100, 0.5, null, 1, 3)).toBe(0); // saturates
    // ReLU6 at scale 0.05: at most 6/0.05 = 120 steps above the zero point.
    expect(requantize(1000, 1, 'relu6', 0.05, 7)).toBe(127);
  });

  it('convolution accumulators equal float convolution of the same integers (odd shapes, groups, stride, padding, dilation)', () => {
    const rng = new Random(5);
    const shapes = [
      { c: 6, o: 9, g: 3, h: 7, w: 5, k: 1, s: 1, p: 0, d: 1 },
      { c: 4, o: 4, g: 4, h: 9, w: 6, k: 3, s: 2, p: 1, d: 1 },
      { c: 3, o: 5, g: 1, h: 11, w: 8, k: 3, s: 2, p: 1, d: 1 },
      { c: 2, o: 3, g: 1, h: 9, w: 9, k: 3, s: 1, p: 2, d: 2 },
      { c: 5, o: 5, g: 5, h: 8, w: 7, k: 5, s: 1, p: 2, d: 1 },
    ];
    for (const t of shapes) {
      const oh = Math.floor((t.h + 2 * t.p - t.d * (t.k - 1) - 1) / t.s) + 1;
      const ow = Math.floor((t.w + 2 * t.p - t.d * (t.k - 1) - 1) / t.s) + 1;
      const g: Conv2dGeometry = {
        batch: 2,
        inChannels: t.c,
        inHeight: t.h,
        inWidth: t.w,
        outChannels: t.o,
        outHeight: oh,
        outWidth: ow,
        kernelHeight: t.k,
        kernelWidth: t.k,
        strideHeight: t.s,
        strideWidth: t.s,
        padTop: t.p,
        padLeft: t.p,
        dilationHeight: t.d,
        dilationWidth: t.d,
        groups: t.g,
      };
      const zero = 97;
      const x = Uint8Array.from({ length: 2 * t.c * t.h * t.w }, () => rng.int(256));
      const w = Int8Array.from({ length: (t.o * t.c * t.k * t.k) / t.g }, () => rng.int(255) - 127);
      const b = Int32Array.from({ length: t.o }, () => rng.int(20000) - 10000);
      const acc = new Int32Array(2 * t.o * oh * ow);
      qconv2dAccumulators(x, zero, w, b, g, acc);
      const expected = new Float32Array(acc.length);
      conv2dReference(
        Float32Array.from(x, (v) => v - zero),
        Float32Array.from(w),
        Float32Array.from(b),
        expected,
        g,
      );
      expect([...acc]).toEqual([...expected]);
    }
  });

  it('chooses a range that holds zero exactly', () => {
    const p = chooseQParams(0.5, 2); // widened to [0, 2]
    expect(p.zeroPoint).toBe(0);
    expect(p.scale).toBe(Math.fround(2 / 255));
    const q = chooseQParams(-1, 3);
    expect(q.scale * q.zeroPoint).toBeCloseTo(1, 2);
    expect(chooseQParams(0, 0)).toEqual({ scale: 1, zeroPoint: 0 });
  });
});

/** A network of the registry with random weights and batch norm statistics, calibrated on random images. */
function quantizedNetwork(
  name: string,
  options: ModelOptions,
  size: number,
  method: 'minmax' | 'percentile' | 'mse' = 'minmax',
  weightBits: 7 | 8 = 8,
): QuantizedNetwork {
  const model = createModel(name, options);
  randomizeBuffers(model);
  const graph = model.trace([1, options.inputChannels ?? 3, size, size]);
  const calibrator = new Calibrator(graph, { method, images: 4, weightBits });
  for (let i = 0; i < 4; i++) calibrator.observe(positiveInput(graph.input.shape, 10 + i));
  return calibrator.finish();
}

/** Images in [0, 1], as a ÷255 preprocessing gives. */
function positiveInput(shape: readonly number[], seed: number): Tensor {
  const x = randomInput(shape, seed);
  return new Tensor(
    x.shape,
    x.data.map((v) => Math.min(1, Math.abs(v) / 2)),
  );
}

interface Agreement {
  values: number;
  /** Values that differ by one step, and by more. */
  offByOne: number;
  offByMore: number;
  sameTop1: boolean;
  logitsMaxDiff: number;
}

/** Our int8 executor and onnxruntime-node on our QDQ export, value by value. */
async function compareWithOrt(network: QuantizedNetwork, input: Tensor): Promise<Agreement> {
  const session = await ort.InferenceSession.create(exportQdq(network, { inspect: true }));
  const ours = new Map<string, Uint8Array>();
  const logits = runQuantized(network, input, (v, q) => ours.set(v, q.slice())).data;
  const out = await session.run({ input: new ort.Tensor('float32', input.data, input.shape) });
  const theirs = out['logits']!.data as Float32Array;
  const result: Agreement = { values: 0, offByOne: 0, offByMore: 0, sameTop1: false, logitsMaxDiff: 0 };
  for (const [value, q] of ours) {
    if (value === network.graph.input.name) continue;
    const other = out[`${value}:q`]?.data as Uint8Array | undefined;
    expect(other, `onnxruntime output for ${value}`).toBeDefined();
    expect(other!.length).toBe(q.length);
    for (let i = 0; i < q.length; i++) {
      const d = Math.abs(q[i]! - other![i]!);
      if (d === 1) result.offByOne++;
      if (d > 1) result.offByMore++;
    }
    result.values += q.length;
  }
  const argmax = (a: ArrayLike<number>): number => Array.prototype.indexOf.call(a, Math.max(...Array.from(a)));
  result.sameTop1 = argmax(logits) === argmax(theirs);
  for (let i = 0; i < logits.length; i++)
    result.logitsMaxDiff = Math.max(result.logitsMaxDiff, Math.abs(logits[i]! - theirs[i]!));
  return result;
}

const networks: { name: string; options: ModelOptions; size: number }[] = [
  { name: 'shufflenet_v1_g3_0.25x', options: { numClasses: 10 }, size: 64 },
  { name: 'shufflenet_v1_g8_0.25x', options: { numClasses: 10, smallInput: true }, size: 32 },
  { name: 'shufflenet_v1_g2_0.25x_se', options: { numClasses: 10, smallInput: true }, size: 32 },
  { name: 'mobilenet_v1_0.25', options: { numClasses: 10 }, size: 64 },
  { name: 'alexnet', options: { numClasses: 10, smallInput: true, inputSize: 32 }, size: 32 },
  { name: 'shufflenet_v2_0.5x', options: { numClasses: 5, inputChannels: 1, smallInput: true }, size: 28 },
];

describe('int8 networks against onnxruntime-node on their QDQ export', () => {
  for (const { name, options, size } of networks) {
    it(`${name} at ${size}×${size}: top-1 identical, every uint8 value within one step`, async () => {
      const network = quantizedNetwork(name, options, size);
      let offByOne = 0;
      let values = 0;
      for (const seed of [40, 41]) {
        const a = await compareWithOrt(network, positiveInput(network.graph.input.shape, seed));
        expect(a.sameTop1).toBe(true);
        expect(a.offByMore).toBe(0);
        offByOne += a.offByOne;
        values += a.values;
      }
      // Off by one step: float rounding inside a runtime's ops at an exact half. Stated: < 0.1%.
      expect(offByOne / values).toBeLessThan(1e-3);
      // And the QDQ file imports back as the same int8 network: the same logits, bit for bit.
      const back = importQdq(exportQdq(network), `${name}.onnx`);
      const x = positiveInput(network.graph.input.shape, 42);
      expect([...runQuantized(back, x).data]).toEqual([...runQuantized(network, x).data]);
    });
  }

  it('the int8 plan (fast int8 kernels) computes what the reference executor computes, bit for bit', async () => {
    for (const { name, options, size } of networks) {
      const network = quantizedNetwork(name, options, size);
      const plan = await QuantizedPlan.create(network);
      for (const seed of [60, 61]) {
        const x = positiveInput(network.graph.input.shape, seed);
        expect([...plan.run(x).data], `${name}, input ${seed}`).toEqual([...runQuantized(network, x).data]);
      }
    }
  });

  it('on 2 threads (helper workers over one shared memory), the int8 plan computes the same logits, bit for bit', async () => {
    for (const { name, options, size } of [networks[0]!, networks[3]!, networks[5]!]) {
      const network = quantizedNetwork(name, options, size);
      const plan = await QuantizedPlan.create(network, { threads: 2 });
      expect(plan.threads).toBe(2);
      expect(plan.variant.build).toBe('simd-shared');
      const stop = await startHelpers(plan, spawnNodeWorker);
      try {
        for (const seed of [66, 67, 68]) {
          const x = positiveInput(network.graph.input.shape, seed);
          expect([...plan.run(x).data], `${name}, input ${seed}`).toEqual([...runQuantized(network, x).data]);
        }
        expect(plan.profile(positiveInput(network.graph.input.shape, 69), 2)).toHaveLength(network.steps.length);
      } finally {
        await stop();
      }
      expect(() => plan.run(positiveInput(network.graph.input.shape, 70))).toThrow(/int8 plan: the plan was disposed/);
    }
    // A helper whose worker never loaded a family's kernels says so instead of calling the wrong ones.
    const setup = (
      await QuantizedPlan.create(quantizedNetwork('mobilenet_v1_0.25', { numClasses: 10 }, 64), { threads: 2 })
    ).helpers[0]!;
    expect(setup.family).toBe('int8');
    await expect(prepareHelper({ ...setup, family: 'int9' as 'int8' })).rejects.toThrow(
      /threaded plan: this worker has no int9 kernels/,
    );
    await expect(
      QuantizedPlan.create(quantizedNetwork('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }, 32), {
        threads: 0,
      }),
    ).rejects.toThrow(/threads must be an integer from 1 to 64, got 0/);
  });

  it('7-bit weights: every weight within [−63, 63]; the 8-bit dot product GEMM (qgemm7) bit for bit', async () => {
    for (const { name, options, size } of networks.slice(0, 3)) {
      const network = quantizedNetwork(name, options, size, 'minmax', 7);
      let steps = 0;
      for (const [weight, w] of network.weights) {
        expect(sevenBitWeights(w.weight), weight).toBe(true);
        expect(Math.max(...w.weight.map(Math.abs)), weight).toBeLessThanOrEqual(63);
        steps++;
      }
      expect(steps).toBeGreaterThan(3);
      // On Node's SIMD128 build qgemm7 runs its exact SIMD128 form; Chromium runs the relaxed
      // instruction (test/int8-browser.test.ts).
      const plan = await QuantizedPlan.create(network, { gemm: 'quads' });
      const auto = await QuantizedPlan.create(network);
      // Where the time goes: one entry per step, named as the lowering names it.
      const profile = plan.profile(positiveInput(network.graph.input.shape, 64), 3);
      expect(profile.map((p) => p.step)).toEqual(network.steps.map(describeStep));
      for (const { step, ms } of profile) expect(ms, step).toBeGreaterThanOrEqual(0);
      for (const seed of [62, 63]) {
        const x = positiveInput(network.graph.input.shape, seed);
        const expected = [...runQuantized(network, x).data];
        expect([...plan.run(x).data], `${name}, input ${seed}, qgemm7`).toEqual(expected);
        expect([...auto.run(x).data], `${name}, input ${seed}, ${auto.variant.build}`).toEqual(expected);
      }
    }
    expect(
      () =>
        new Calibrator(quantizedNetwork('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }, 32).graph, {
          method: 'minmax',
          images: 1,
          weightBits: 6 as 7,
        }),
    ).toThrow(/weight bits is 6; expected 7 or 8/);
  });

  it('QDQ import refuses what our int8 steps cannot compute as the file means, naming the value', () => {
    const network = quantizedNetwork('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }, 32);
    const model = decodeModelProto(exportQdq(network), 'q.onnx');
    // Drop the Q → DQ pair of the first convolution's output (its consumers read the float value).
    const nodes = model.graph!.node!;
    const q = nodes.findIndex((n) => n.op_type === 'QuantizeLinear' && n.input![0] === 'relu:2');
    const dq = nodes[q + 1]!;
    for (const n of nodes) n.input = n.input!.map((i) => (i === dq.output![0] ? 'relu:2' : i));
    model.graph!.node = nodes.filter((_, i) => i !== q && i !== q + 1);
    expect(() => importQdq(encodeModelProto(model), 'q.onnx')).toThrow(
      /q\.onnx: value "relu\/Relu:1" is not quantized \(no QuantizeLinear → DequantizeLinear\), but our int8 steps store it as uint8/,
    );
    // A float file is not an int8 one; the float importer says what a QDQ file is.
    const float = exportOnnx(createModel('shufflenet_v1_g3_0.25x', { numClasses: 10 }).trace([1, 3, 64, 64]));
    expect(() => importQdq(float, 'f.onnx')).toThrow(/f\.onnx: has no QuantizeLinear → DequantizeLinear pairs/);
    expect(() => importOnnx(exportQdq(network), 'q.onnx')).toThrow(/this is an int8 \(QDQ\) file; load it as one/);
  });

  it('the bundled Fashion-MNIST model on real test images (all three calibration methods)', async () => {
    const { model } = loadModelFile(readFileSync('models/fashion-mnist-shufflenet.safetensors'));
    const graph = model.trace([1, 1, 28, 28]);
    const test = loadFashionMnist('test').dataset;
    const image = (i: number): Tensor =>
      new Tensor(
        [1, 1, 28, 28],
        Float32Array.from(test.pixels(i), (v) => v / 255),
      );
    for (const method of ['minmax', 'percentile', 'mse'] as const) {
      const calibrator = new Calibrator(graph, { method, images: 16 });
      for (let i = 0; i < 16; i++) calibrator.observe(image(100 + i * 7));
      const network = calibrator.finish();
      for (const i of [0, 1, 2]) {
        const a = await compareWithOrt(network, image(i));
        expect(a.sameTop1, `${method}, image ${i}`).toBe(true);
        expect(a.offByMore).toBe(0);
        expect(a.offByOne / a.values).toBeLessThan(1e-3);
      }
    }
  });
});

describe('int8 model files', () => {
  const architecture = architectureOf('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true });
  const network = (() => {
    const model = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true });
    randomizeBuffers(model);
    const graph = model.trace([1, 3, 32, 32]);
    const calibrator = new Calibrator(graph, { method: 'percentile', images: 3, percentile: 99.9 });
    for (let i = 0; i < 3; i++) calibrator.observe(positiveInput(graph.input.shape, 20 + i));
    return calibrator.finish();
  })();
  const recipe = { calibration: { method: 'percentile', images: 3, percentile: 99.9, data: 'random' } };
  const bytes = saveQuantizedModelFile(network, { architecture, arch: 'shufflenet_v1_g3_0.25x' }, recipe);

  it('round-trip: the loaded network computes the same logits, and keeps its recipe', () => {
    const loaded = loadQuantizedModelFile(bytes, 'q.safetensors');
    const x = positiveInput([1, 3, 32, 32], 50);
    expect([...runQuantized(loaded.network, x).data]).toEqual([...runQuantized(network, x).data]);
    expect(loaded.quantization.calibration).toEqual(recipe.calibration);
    expect(loaded.quantization.inputShape).toEqual([1, 3, 32, 32]);
    expect(loaded.info.arch).toBe('shufflenet_v1_g3_0.25x');
    // Int8 weights: a quarter of the float file's bytes, give or take scales and biases.
    const float = saveModelFile(createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }), {
      architecture,
    });
    expect(bytes.length).toBeLessThan(float.length * 0.4);
  });

  it('the float loader says what an int8 file is instead of failing on its fields', () => {
    expect(() => loadModelFile(bytes, 'q.safetensors')).toThrow(/q\.safetensors: an int8 model file/);
  });

  /** The file with its metadata's quantization entry edited, or its tensors. */
  // Metadata as JSON.parse gives it: edited freely, as a hostile file would be.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Json = Record<string, any>;
  function edited(
    editMeta: (q: Json) => void,
    editTensors?: (tensors: Map<string, Tensor>, integers: Map<string, IntegerTensor>) => void,
  ): Uint8Array {
    const file = readSafetensors(bytes);
    const meta = JSON.parse(file.metadata['shufflenet']!);
    editMeta(meta.quantization);
    const tensors = new Map<string, Tensor>();
    const integers = new Map<string, IntegerTensor>();
    for (const [name, t] of file.tensors) {
      const dtype = file.dtypes.get(name)!;
      if (dtype === 'F32') tensors.set(name, t);
      else integers.set(name, { dtype: dtype as 'I8' | 'I32', shape: t.shape, data: file.integers.get(name)! });
    }
    editTensors?.(tensors, integers);
    return writeSafetensors(tensors, { shufflenet: JSON.stringify(meta) }, integers);
  }
  const first = Object.keys(JSON.parse(readSafetensors(bytes).metadata['shufflenet']!).quantization.activations)[1]!;
  const cases: [string, Uint8Array, RegExp][] = [
    ['a missing scale', edited((q) => delete q.activations[first]), /activations has no scale for value "relu:2"/],
    [
      'a zero scale',
      edited((q) => (q.activations[first].scale = 0)),
      /activations\["relu:2"\]\.scale is 0; expected a number above 0/,
    ],
    ['a negative scale', edited((q) => (q.activations[first].scale = -0.1)), /activations\["relu:2"\]\.scale is -0\.1/],
    [
      'a zero point of 256',
      edited((q) => (q.activations[first].zeroPoint = 256)),
      /activations\["relu:2"\]\.zeroPoint is 256; expected an integer from 0 to 255/,
    ],
    [
      'a zero point of -1',
      edited((q) => (q.activations[first].zeroPoint = -1)),
      /activations\["relu:2"\]\.zeroPoint is -1/,
    ],
    ['a fractional zero point', edited((q) => (q.activations[first].zeroPoint = 1.5)), /zeroPoint is 1\.5/],
    [
      'a scale for an unknown value',
      edited((q) => (q.activations['nope'] = { scale: 1, zeroPoint: 0 })),
      /activations\["nope"\] is not a calibrated value/,
    ],
    ['an unknown scheme', edited((q) => (q.scheme = 'int4')), /quantization\.scheme is "int4"/],
    ['a batch of 2', edited((q) => (q.inputShape = [2, 3, 32, 32])), /inputShape \[2, 3, 32, 32\] must have batch 1/],
    ['an input shape the network cannot take', edited((q) => (q.inputShape = [1, 5, 32, 32])), /q\.safetensors: .*5/],
    [
      'a missing weight scale tensor',
      edited(
        () => {},
        (t) => t.delete('conv1.weight:scale'),
      ),
      /tensor "conv1\.weight:scale" is missing/,
    ],
    [
      'a zero weight scale',
      edited(
        () => {},
        (t) =>
          t.set(
            'conv1.weight:scale',
            new Tensor(
              t.get('conv1.weight:scale')!.shape,
              t.get('conv1.weight:scale')!.data.map(() => 0),
            ),
          ),
      ),
      /tensor "conv1\.weight:scale" holds 0 at index 0; weight scales must be positive/,
    ],
    [
      'int8 weights stored as float',
      edited(
        () => {},
        (t, i) => {
          const w = i.get('conv1.weight')!;
          i.delete('conv1.weight');
          t.set('conv1.weight', new Tensor(w.shape, Float32Array.from(w.data)));
        },
      ),
      /tensor "conv1\.weight" has dtype "F32", expected I8/,
    ],
    [
      'a bias of the wrong shape',
      edited(
        () => {},
        (_, i) => i.set('conv1.weight:bias', { dtype: 'I32', shape: [3], data: new Int32Array(3) }),
      ),
      /tensor "conv1\.weight:bias" has shape \[3\]/,
    ],
    [
      'an extra tensor',
      edited(
        () => {},
        (t) => t.set('extra', new Tensor([1], new Float32Array(1))),
      ),
      /tensor "extra" is not part of this network's int8 form/,
    ],
  ];
  for (const [what, file, message] of cases) {
    it(`refuses ${what}, naming it`, () => {
      expect(() => loadQuantizedModelFile(file, 'q.safetensors')).toThrow(FormatError);
      expect(() => loadQuantizedModelFile(file, 'q.safetensors')).toThrow(message);
    });
  }
});

describe('shufflenet quantize, info and eval (the built CLI)', () => {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const run = (...args: string[]): { code: number; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const dir = mkdtempSync(join(tmpdir(), 'quantize-'));
  const out = join(dir, 'int8.safetensors');
  const bundled = 'models/fashion-mnist-shufflenet.safetensors';

  it('quantizes the bundled model, records recipe and accuracy, and info and eval read the file', () => {
    const q = run(
      'quantize',
      '--model',
      bundled,
      '--calibration',
      '20',
      '--method',
      'mse',
      '--eval',
      '30',
      '--out',
      out,
    );
    expect(q.stderr).toBe('');
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/calibrated on 20 fashion-mnist images by mse/);
    expect(q.stdout).toMatch(/accuracy on 30 test images: float \d+\.\d\d%, int8 \d+\.\d\d%/);
    const info = run('info', out);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/int8 model file .*shufflenet_v1_g3_0\.5x/);
    expect(info.stdout).toMatch(/calibration {3}mse on 20 images of fashion-mnist; 8-bit weights/);
    expect(info.stdout).toMatch(/accuracy {6}float \d+\.\d\d%, int8 \d+\.\d\d% on 30 test images/);
    expect(info.stdout).toMatch(/\n {4}input +0\.00392157 +0\n/); // ÷255 images: exactly 1/255, zero 0
    const json = JSON.parse(run('info', out, '--json').stdout);
    expect(json.quantization.calibration).toEqual({ method: 'mse', images: 20, data: 'fashion-mnist', weightBits: 8 });
    const evaluated = run('eval', '--model', out, '--max-test', '30', '--json');
    expect(evaluated.code).toBe(0);
    const result = JSON.parse(evaluated.stdout);
    expect(result.examples).toBe(30);
    expect(result.threads).toBe('int8 kernels, 1 thread');
    // The same 30 class-balanced images as quantize --eval: the same accuracy.
    expect(result.accuracy).toBeCloseTo(json.quantization.accuracy.int8, 10);
  });

  it('refuses bad flags naming them; classify runs an int8 file; train --init says what one is', () => {
    const bad: [string[], RegExp][] = [
      [['--method', 'kl'], /--method <name>' argument 'kl' is invalid/],
      [['--calibration', '0'], /--calibration <n>' argument '0' is invalid/],
      [['--method', 'percentile', '--percentile', '30'], /--percentile <p>' argument '30' is invalid/],
      [['--method', 'mse', '--percentile', '99'], /--percentile applies to --method percentile, not mse/],
      [['--weight-bits', '6'], /--weight-bits <n>' argument '6' is invalid/],
    ];
    for (const [flags, message] of bad) {
      const r = run('quantize', '--model', bundled, '--out', join(dir, 'x.safetensors'), ...flags);
      expect(r.code, flags.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    // classify runs an int8 file like a float one; fine-tuning needs float weights, and says so.
    const classify = run('classify', '--model', out, 'test/fixtures/web/trouser.png');
    expect(classify.stderr).toBe('');
    expect(classify.stdout).toMatch(/^test\/fixtures\/web\/trouser\.png: Trouser \d+\.\d%/);
    const init = run('train', '--init', out, '--data', 'mnist', '--epochs', '1', '--out', join(dir, 'ft.safetensors'));
    expect(init.code).not.toBe(0);
    expect(init.stderr).toMatch(/an int8 model file \(written by shufflenet quantize\), not a float one/);
  });

  it('--weight-bits 7: every weight of the file within [−63, 63], the recipe says so', () => {
    const seven = join(dir, 'int8-w7.safetensors');
    const q = run(
      'quantize',
      '--model',
      bundled,
      '--calibration',
      '10',
      '--eval',
      '0',
      '--weight-bits',
      '7',
      '--out',
      seven,
    );
    expect(q.stderr).toBe('');
    expect(q.stdout).toMatch(/7-bit weights, calibrated on 10 fashion-mnist images by percentile/);
    const { network, quantization } = loadQuantizedModelFile(readFileSync(seven), 'int8-w7.safetensors');
    expect(quantization.calibration.weightBits).toBe(7);
    expect(network.weights.size).toBeGreaterThan(10);
    for (const [name, w] of network.weights) expect(sevenBitWeights(w.weight), name).toBe(true);
    expect(run('info', seven).stdout).toMatch(/; 7-bit weights/);
  });
});
