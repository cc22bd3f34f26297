/** The fused WASM inference plan against the reference executor (runGraph), whole networks. */
import { describe, expect, it } from 'vitest';
import type { Graph } from '../src/graph/graph.js';
import { runGraph } from '../src/graph/execute.js';
import { createModel } from '../src/models/registry.js';
import { compilePlan } from '../src/runtime/plan.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { worstRelative } from './helpers/compare.js';

/** Gives every batch norm non-trivial statistics, so that folding them is actually tested. */
function randomiseBatchNorms(graph: Graph, random: Random): void {
  for (const [name, param] of graph.params) {
    const data = param.tensor.data;
    if (name.endsWith('running_var')) data.forEach((_, i) => (data[i] = 0.5 + random.next()));
    else if (name.endsWith('running_mean') || /bn\d\.bias$/.test(name))
      data.forEach((_, i) => (data[i] = 0.2 * random.normal()));
    else if (/bn\d\.weight$/.test(name)) data.forEach((_, i) => (data[i] = 0.5 + random.next()));
  }
}

function randomInput(shape: number[], random: Random): Tensor {
  const t = new Tensor(shape);
  t.data.forEach((_, i) => (t.data[i] = random.normal()));
  return t;
}

async function compare(arch: string, shape: number[], options: Record<string, unknown> = {}): Promise<string[]> {
  const random = new Random(11);
  const graph = createModel(arch, options).trace(shape);
  randomiseBatchNorms(graph, random);
  const input = randomInput(shape, random);
  const plan = await compilePlan(graph);
  const actual = plan.run(input);
  const expected = runGraph(graph, input);
  expect(actual.shape).toEqual(expected.shape);
  expect(worstRelative(actual, expected)).toBeLessThanOrEqual(1e-4);
  if (process.env['PLAN_STEPS']) console.log(plan.summary.steps.join('\n'));
  return plan.summary.steps;
}

describe('inference plan (WASM SIMD, fused) equals runGraph', () => {
  it('shufflenet_v1_g3_1.0x at 224×224, with every conv, BN, ReLU, shuffle, add and concat fused', async () => {
    const steps = await compare('shufflenet_v1_g3_1.0x', [1, 3, 224, 224]);
    // Everything maps to a fast kernel: no reference fallback, no separate shuffle, concat or add.
    expect(steps.filter((s) => s.startsWith('reference'))).toEqual([]);
    expect(steps.filter((s) => s.includes('shuffle(3)')).length).toBe(16);
    expect(steps.filter((s) => s.includes('+add')).length).toBe(13);
    // Stem, max pool, 3 per unit, 3 average pools, 3 concats written in place (no-ops), GAP, flatten, FC.
    expect(steps.length).toBe(1 + 1 + 16 * 3 + 3 + 3 + 3);
    expect(steps.filter((s) => s.startsWith('concat stage')).length).toBe(3);
    expect(steps.filter((s) => s.startsWith('avgpool3x3s2') && s.endsWith('+relu')).length).toBe(3);
  }, 60_000);

  it('other widths and groups, batches, small inputs, MobileNet, AlexNet and SE', async () => {
    await compare('shufflenet_v1_g8_0.5x', [2, 3, 64, 64]);
    await compare('shufflenet_v1_g1_0.25x', [1, 3, 45, 37]);
    // SE: its sigmoid fused into the second 1×1 convolution, its rescale on its own kernel.
    const se = await compare('shufflenet_v1_g2_1.5x_se', [1, 3, 64, 64]);
    expect(se.filter((s) => s.startsWith('reference'))).toEqual([]);
    expect(se.filter((s) => s.startsWith('scale-channels')).length).toBe(16);
    expect(se.filter((s) => s.startsWith('gemm1x1') && s.endsWith('+sigmoid')).length).toBe(16);
    await compare('shufflenet_v1_g3_0.5x', [3, 1, 28, 28], { numClasses: 10, inputChannels: 1, smallInput: true });
    await compare('mobilenet_v1_0.25', [1, 3, 96, 96]);
    // 11×11/4 and 5×5 convs (two groups) through im2col + GEMM, unpadded max pools, FC + ReLU.
    const alexnet = await compare('alexnet', [1, 3, 67, 67], { inputSize: 67 });
    expect(alexnet.filter((s) => s.startsWith('im2col-gemm')).length).toBe(5);
    expect(alexnet.filter((s) => s.startsWith('reference'))).toEqual([]);
  }, 60_000);

  it('ShuffleNet V2: split halves are aliases, each concat + shuffle(2) is written by the branches in place', async () => {
    const steps = await compare('shufflenet_v2_1.0x', [1, 3, 224, 224]);
    expect(steps.filter((s) => s.startsWith('reference'))).toEqual([]);
    expect(steps.filter((s) => s.startsWith('channel-slice')).length).toBe(2 * 13); // 13 stride-1 units
    expect(steps.filter((s) => s.startsWith('concat') && s.endsWith('+shuffle(2)')).length).toBe(16);
    // Stem, max pool, 5 per stride-2 unit, 3 + 2 slices per stride-1 unit, 16 concats, conv5, GAP, flatten, FC.
    expect(steps.length).toBe(2 + 3 * 5 + 13 * 5 + 16 + 4);
    // torchvision's widths, odd sizes, batch 2, a one-channel small input.
    await compare('shufflenet_v2_0.5x', [2, 3, 45, 37], { stride2Split: 'half' });
    await compare('shufflenet_v2_1.5x', [1, 1, 28, 28], { numClasses: 10, inputChannels: 1, smallInput: true });
  }, 60_000);

  it('runs from its arena: WASM memory does not grow over repeated runs', async () => {
    const plan = await compilePlan(createModel('shufflenet_v1_g3_0.25x').trace([1, 3, 32, 32]));
    const input = randomInput([1, 3, 32, 32], new Random(5));
    const first = plan.run(input);
    const bytes = plan.memoryBytes;
    for (let i = 0; i < 300; i++) plan.run(input);
    expect(plan.memoryBytes).toBe(bytes);
    expect(Array.from(plan.run(input).data)).toEqual(Array.from(first.data)); // and stays deterministic
  });

  it('refuses an input of the wrong shape', async () => {
    const plan = await compilePlan(createModel('shufflenet_v1_g3_0.25x').trace([1, 3, 32, 32]));
    expect(() => plan.run(new Tensor([1, 3, 32, 33]))).toThrow(/plan: input has shape \[1, 3, 32, 33\]/);
  });
});
