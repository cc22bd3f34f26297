/**
 * Operator variants that PyTorch's exporter does not write (asymmetric pads, Clip as attributes,
 * Gemm with transA/alpha/beta, initializers in typed fields, old opsets), checked against
 * onnxruntime-node on hand-written models; and export → import round trips.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { complexity } from '../src/analysis/complexity.js';
import { runGraph } from '../src/graph/execute.js';
import { withInputShape } from '../src/graph/reshape.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import { importOnnx } from '../src/io/onnx/import.js';
import { createModel } from '../src/models/registry.js';
import { Tensor } from '../src/tensor/tensor.js';
import { maxAbs, maxAbsDiff } from './helpers/fixtures.js';
import { floatField, floatRaw, int64Field, int64Raw, model, node, randomFloats } from './helpers/onnx-builder.js';
import { randomInput, randomizeBuffers } from './helpers/random-state.js';

async function onnxruntime(bytes: Uint8Array, input: Tensor, output: string): Promise<Tensor> {
  const session = await ort.InferenceSession.create(bytes);
  const result = await session.run({ x: new ort.Tensor('float32', input.data, input.shape) });
  const t = result[output]!;
  return new Tensor(t.dims, t.data as Float32Array);
}

async function expectSameAsOnnxruntime(bytes: Uint8Array, input: Tensor, output = 'y'): Promise<void> {
  const expected = await onnxruntime(bytes, input, output);
  const graph = withInputShape(importOnnx(bytes, 'test.onnx'), input.shape);
  const actual = runGraph(graph, input);
  expect(actual.shape).toEqual(expected.shape);
  const relative = maxAbsDiff(actual, expected) / maxAbs(expected);
  console.log(`onnxruntime vs import: max |Δ| / max |out| = ${relative.toExponential(2)}`);
  expect(relative).toBeLessThan(1e-5);
}

describe('imported operator variants equal onnxruntime', () => {
  it('opset 13: grouped conv with asymmetric pads, strides and dilations; Clip with only min; pools with asymmetric pads; Reshape; Gemm with alpha, beta and C broadcast; Softmax', async () => {
    const bytes = model({
      opset: 13,
      input: ['x', ['batch', 4, 9, 8]],
      output: 'y',
      initializers: [
        floatField('w', [6, 2, 3, 2], randomFloats(72, 1, 0.5)),
        floatRaw('b', [6], randomFloats(6, 2)),
        floatRaw('lo', [], [-0.25]),
        int64Field('shape', [0, -1]),
        floatRaw('fc', [5, 6 * 3 * 3], randomFloats(270, 3, 0.2)), // [N, 6, 5, 7] → [N, 6, 3, 3]
        floatField('fc_bias', [1, 5], randomFloats(5, 4)),
      ],
      nodes: [
        node('Conv', ['x', 'w', 'b'], ['c'], { group: 2, pads: [0, 1, 2, 0], strides: [2, 1], dilations: [1, 2] }),
        node('Clip', ['c', 'lo'], ['r']),
        node('AveragePool', ['r'], ['a'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 1, 1] }),
        node('MaxPool', ['a'], ['m'], { kernel_shape: [2, 2], pads: [0, 0, 1, 1] }),
        node('Reshape', ['m', 'shape'], ['f']),
        node('Gemm', ['f', 'fc', 'fc_bias'], ['g'], { transB: 1, alpha: { float: 0.7 }, beta: { float: 1.3 } }),
        node('Softmax', ['g'], ['y']),
      ],
    });
    await expectSameAsOnnxruntime(bytes, randomInput([2, 4, 9, 8], 5));
  });

  it('opset 9: BatchNormalization, Clip with attributes, AveragePool counting its padding, Flatten, MatMul, broadcast Add, Softmax over axis 1', async () => {
    const bytes = model({
      opset: 9,
      input: ['x', [3, 3, 6, 6]],
      output: 'y',
      initializers: [
        floatRaw('w', [4, 3, 3, 3], randomFloats(108, 6, 0.4)),
        floatRaw('scale', [4], [0.5, 1, 1.5, 2]),
        floatRaw('bias', [4], [0.1, -0.2, 0.3, 0]),
        floatRaw('mean', [4], [0.2, 0, -0.1, 0.4]),
        floatRaw('var', [4], [0.5, 1.5, 1, 2]),
        floatRaw('mat', [4 * 3 * 3, 7], randomFloats(252, 7, 0.3)),
        floatRaw('add', [7], randomFloats(7, 8)),
      ],
      nodes: [
        node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1], strides: [2, 2] }),
        node('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['n'], { epsilon: { float: 1e-3 } }),
        node('Clip', ['n'], ['r'], { min: { float: 0 }, max: { float: 6 } }),
        node('AveragePool', ['r'], ['p'], { kernel_shape: [2, 2], pads: [1, 1, 0, 0], count_include_pad: 1 }),
        node('Flatten', ['p'], ['f']),
        node('MatMul', ['f', 'mat'], ['mm']),
        node('Add', ['mm', 'add'], ['s']),
        node('Softmax', ['s'], ['y']),
      ],
    });
    await expectSameAsOnnxruntime(bytes, randomInput([3, 3, 6, 6], 9));
  });

  it('opset 11: Pad folded into AveragePool, Slice on two axes with int64 raw data, Transpose, Concat of slices, Sigmoid · Mul', async () => {
    const bytes = model({
      opset: 11,
      input: ['x', ['N', 6, 5, 5]],
      output: 'y',
      initializers: [
        int64Raw('pads', [0, 0, 1, 2, 0, 0, 1, 0]),
        int64Raw('starts', [1, -4]),
        int64Raw('ends', [9_007_199_254_740_991, 4]),
        int64Raw('axes', [1, 3]),
        floatRaw('s', [1, 5, 1, 1], randomFloats(5, 10)),
      ],
      nodes: [
        node('Pad', ['x', 'pads'], ['padded']),
        node('AveragePool', ['padded'], ['a'], { kernel_shape: [3, 3], strides: [2, 1] }), // [N, 6, 3, 5]
        node('Slice', ['a', 'starts', 'ends', 'axes'], ['sl']),
        node('Sigmoid', ['s'], ['gate']),
        node('Mul', ['sl', 'gate'], ['scaled']),
        node('Transpose', ['scaled'], ['t'], { perm: [0, 1, 3, 2] }),
        node('Concat', ['t', 'scaled'], ['y'], { axis: 1 }),
      ],
    });
    await expectSameAsOnnxruntime(bytes, randomInput([2, 6, 5, 5], 11));
  });
  it('opset 7, as Caffe2 conversions write it: BatchNormalization, a shuffle with a literal batch, Sum of three', async () => {
    const bytes = model({
      opset: 7,
      input: ['x', [1, 6, 4, 4]],
      output: 'y',
      initializers: [
        floatRaw('w', [6, 6, 1, 1], randomFloats(36, 12, 0.5)),
        floatRaw('scale', [6], [1, 2, 0.5, 1, 1.5, 0.75]),
        floatRaw('bias', [6], [0, 0.1, -0.1, 0.2, 0, 0.3]),
        floatRaw('mean', [6], [0.1, 0, 0, -0.2, 0.3, 0]),
        floatRaw('var', [6], [1, 0.5, 2, 1, 1.5, 0.8]),
        int64Field('split', [1, 2, 3, 4, 4]),
        int64Field('merge', [1, 6, 4, 4]),
      ],
      nodes: [
        node('Conv', ['x', 'w'], ['c'], { group: 1 }),
        node('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['n'], { spatial: 1 }),
        node('Relu', ['n'], ['r']),
        node('Reshape', ['r', 'split'], ['r5']),
        node('Transpose', ['r5'], ['t5'], { perm: [0, 2, 1, 3, 4] }),
        node('Reshape', ['t5', 'merge'], ['shuffled']),
        node('Sum', ['x', 'shuffled', 'c'], ['y']),
      ],
    });
    const graph = importOnnx(bytes, 'caffe2.onnx');
    expect(graph.nodes.filter((n) => n.op === 'channelShuffle').map((n) => n.attrs['groups'])).toEqual([2]);
    await expectSameAsOnnxruntime(bytes, randomInput([1, 6, 4, 4], 13));
  });
});

describe('export → import round trip', () => {
  for (const name of ['shufflenet_v1_g3_0.25x_se', 'mobilenet_v1_0.25']) {
    it(`${name}: the imported graph computes the exported one, shuffles fused again`, () => {
      const net = createModel(name, { numClasses: 10, smallInput: true });
      randomizeBuffers(net);
      const graph = net.trace([1, 3, 32, 32]);
      const imported = importOnnx(exportOnnx(graph), `${name}.onnx`);
      expect(imported.nodes.map((n) => n.op)).toEqual(graph.nodes.map((n) => n.op));
      // The complexity counter reads the imported graph as it reads a traced one.
      expect(complexity(imported)).toMatchObject({ macs: complexity(graph).macs, params: complexity(graph).params });
      const input = randomInput([2, 3, 32, 32], 4);
      const expected = runGraph(net.trace(input.shape), input);
      const actual = runGraph(withInputShape(imported, input.shape), input);
      // Not bit-equal: ONNX stores batch norm's epsilon as a float32 (1e-5 → 9.99999975e-6).
      expect(maxAbsDiff(actual, expected) / maxAbs(expected)).toBeLessThan(1e-6);
    });
  }
});
