/**
 * Issue 16's zoo: torchvision's classification CNNs exported by PyTorch's own exporter
 * (scripts/make_zoo_fixtures.py: MobileNet V3 small and large with HardSwish and HardSigmoid at
 * opset 14 and 13, SqueezeNet's Fire blocks and GoogLeNet's Inception blocks with their ceil_mode
 * max pools, MnasNet, EfficientNet-B0's blocks with SiLU and squeeze-and-excitation, RegNet X and Y,
 * ResNet's basic and bottleneck blocks) import, and their outputs match PyTorch to 1e-4 of the
 * largest logit on the reference executor and on the inference plan; onnxruntime-node on the same
 * file agrees too. The plan runs every step of every one on a fast kernel.
 */
import * as ortNode from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runGraph } from '../src/graph/execute.js';
import { withInputShape } from '../src/graph/reshape.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import { importOnnx } from '../src/io/onnx/import.js';
import { hardSigmoid, hardSwish, maxPool2d } from '../src/ops/index.js';
import { InferencePlan } from '../src/runtime/plan.js';
import { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';
import { model as onnxModel, node } from './helpers/onnx-builder.js';

const reference = loadFixture('onnx/zoo/reference.safetensors');
const networks = JSON.parse(reference.metadata['networks']!) as { name: string; input: number[]; opset: number }[];
const file = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/onnx/zoo/${name}.onnx`, import.meta.url)));

/** What each file must hold, so that a re-export that stops using an op cannot pass unnoticed. */
const expectedOps: Record<string, string[]> = {
  'mobilenet_v3_small_0.25': ['HardSwish', 'HardSigmoid'],
  'mobilenet_v3_small_0.25_opset13': ['HardSigmoid', 'Mul'],
  squeezenet_mini: ['MaxPool'],
  googlenet_mini: ['MaxPool'],
  'mobilenet_v3_large_0.25': ['HardSwish', 'HardSigmoid'],
  'mnasnet_0.2': ['ReduceMean'],
  efficientnet_b0_mini: ['Sigmoid', 'Mul'],
  regnet_x_mini: ['Conv'],
  regnet_y_mini: ['Sigmoid', 'Mul'],
  resnet_mini: ['MaxPool', 'Add'],
};

async function onnxRuntime(bytes: Uint8Array, input: Tensor): Promise<Float32Array> {
  const session = await ortNode.InferenceSession.create(bytes);
  const feeds = { [session.inputNames[0]!]: new ortNode.Tensor('float32', input.data, [...input.shape]) };
  const out = await session.run(feeds);
  return out[session.outputNames[0]!]!.data as Float32Array;
}

describe('torchvision mobile CNNs from torch.onnx.export', () => {
  it('covers the ops issue 16 names', () => {
    expect(networks.map((n) => n.name).sort()).toEqual(Object.keys(expectedOps).sort());
    for (const [name, ops] of Object.entries(expectedOps)) {
      const text = new TextDecoder('latin1').decode(file(name));
      for (const op of ops) expect(text, `${name} holds ${op}`).toContain(op);
    }
    expect(new TextDecoder('latin1').decode(file('squeezenet_mini'))).toContain('ceil_mode');
  });

  for (const net of networks) {
    it(`${net.name} (opset ${net.opset}): reference executor, inference plan and onnxruntime-node match PyTorch`, async () => {
      const input = get(reference, `${net.name}/input`);
      const expected = get(reference, `${net.name}/logits`);
      const bytes = file(net.name);
      const graph = withInputShape(importOnnx(bytes, `${net.name}.onnx`), input.shape);
      const scale = maxAbs(expected);
      const ours = runGraph(graph, input);
      expect(ours.shape).toEqual(expected.shape);
      const plan = await InferencePlan.compile(graph);
      // Every step on a fast kernel: activations fused, the SE rescale, 5×5 depthwise, every max pool.
      expect(plan.summary.steps.filter((line) => line.startsWith('reference'))).toEqual([]);
      // Every activation fused into the step that makes its input (SiLU and hard swish written as
      // x · gate(x) too): none runs on its own.
      expect(plan.summary.steps.filter((line) => line.startsWith('activation'))).toEqual([]);
      const fast = plan.run(input);
      const ort = new Tensor(expected.shape, await onnxRuntime(bytes, input));
      const errors = {
        reference: maxAbsDiff(ours, expected) / scale,
        plan: maxAbsDiff(fast, expected) / scale,
        ort: maxAbsDiff(ort, expected) / scale,
      };
      console.log(`${net.name}: max |Δ| / max |logit| ${JSON.stringify(errors)}`);
      expect(errors.reference).toBeLessThan(1e-4);
      expect(errors.plan).toBeLessThan(1e-4);
      expect(errors.ort).toBeLessThan(1e-4);
      // And back out: our export of the imported graph runs in onnxruntime-node with the same outputs.
      const again = new Tensor(expected.shape, await onnxRuntime(exportOnnx(graph), input));
      expect(maxAbsDiff(again, expected) / scale).toBeLessThan(1e-4);
    });
  }
});

describe('the ops behind them', () => {
  it('hard sigmoid and hard swish: the kinks, both sides of them, and ONNX defaults', () => {
    const x = new Tensor([8], Float32Array.from([-4, -3, -1.5, 0, 1.5, 3, 4, Number.NaN]));
    expect([...hardSigmoid(x).data].slice(0, 7)).toEqual([0, 0, 0.25, 0.5, 0.75, 1, 1]);
    expect([...hardSwish(x).data].slice(0, 7)).toEqual([-0, -0, -0.375, 0, 1.125, 3, 4]);
    expect(hardSigmoid(x, 0.2, 0.5).data[2]).toBeCloseTo(0.2, 7);
    expect(Number.isNaN(hardSwish(x).data[7])).toBe(true);
  });

  it('ceil_mode pools are floor-mode pools over extra bottom/right padding: checked against onnxruntime', async () => {
    // A 3×3/2 max pool with ceil_mode on odd and even sizes, through the importer's ceilModePadding.
    for (const [h, w, pad] of [
      [7, 8, 0],
      [6, 6, 0],
      [9, 10, 1],
      [5, 5, 1],
    ] as const) {
      const bytes = onnxModel({
        opset: 13,
        input: ['x', [1, 2, h, w]],
        output: 'y',
        initializers: [],
        nodes: [
          node('MaxPool', ['x'], ['y'], {
            kernel_shape: [3, 3],
            strides: [2, 2],
            pads: [pad, pad, pad, pad],
            ceil_mode: 1,
          }),
        ],
      });
      const x = new Tensor(
        [1, 2, h, w],
        Float32Array.from({ length: 2 * h * w }, (_, i) => Math.sin(i * 1.7) * 3),
      );
      const ours = runGraph(importOnnx(bytes, 'pool.onnx'), x);
      const ort = await onnxRuntime(bytes, x);
      expect(ours.data.length, `${h}×${w} pad ${pad}`).toBe(ort.length);
      expect(maxAbsDiff(ours, new Tensor(ours.shape, ort))).toBe(0);
      // The floor-mode pool of the same input has fewer windows whenever ceil mode adds one.
      const floor = maxPool2d(x, { kernel: 3, stride: 2, padding: pad });
      expect(ours.size).toBeGreaterThanOrEqual(floor.size);
    }
  });

  it('refuses ceil_mode on an average pool that counts padding, naming the node and why', () => {
    const bytes = onnxModel({
      opset: 13,
      input: ['x', [1, 2, 8, 8]], // 7×7 would need no partial window: ceil_mode would change nothing
      output: 'y',
      initializers: [],
      nodes: [
        node(
          'AveragePool',
          ['x'],
          ['y'],
          { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1, count_include_pad: 1 },
          'avg',
        ),
      ],
    });
    expect(() => runGraph(importOnnx(bytes, 'avg.onnx'), new Tensor([1, 2, 8, 8]))).toThrow(
      /avg\.onnx: node "avg" \(AveragePool\) has ceil_mode=1 with count_include_pad=1/,
    );
  });
});
