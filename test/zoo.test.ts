/** Smoke the whole zoo: every registered network builds, traces, and runs forward without NaN. */
import { describe, expect, it } from 'vitest';
import { complexity } from '../src/analysis/complexity.js';
import { createModel, getModelEntry, modelNames } from '../src/models/registry.js';
import { forward } from '../src/nn/forward.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';

function randomInput(shape: number[], seed: number): Tensor {
  const rng = new Random(seed);
  const t = new Tensor(shape);
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal();
  return t;
}

describe('the zoo', () => {
  it('every network traces at 224×224 to [1, 1000] logits', () => {
    for (const name of modelNames()) {
      const graph = createModel(name, { initialize: false }).trace([1, 3, 224, 224]);
      expect(graph.shapes.get(graph.output), name).toEqual([1, 1000]);
    }
  });

  const small = modelNames().filter((n) => n !== 'alexnet');
  it.each(small)('%s runs forward without NaN', (name) => {
    // The ImageNet stem on 32×32 reaches Stage 4 at 1×1: every op runs, at 1/49 of the 224 cost.
    const model = createModel(name, { numClasses: 10, seed: 7 });
    const logits = forward(model, randomInput([2, 3, 32, 32], 1));
    expect(logits.shape).toEqual([2, 10]);
    expect(logits.data.every(Number.isFinite)).toBe(true);
    // Different inputs give different logits: the network is not a constant.
    expect(logits.data.slice(0, 10)).not.toEqual(logits.data.slice(10, 20));
  });

  it('alexnet runs on small inputs and follows the input size', () => {
    const model = createModel('alexnet', { numClasses: 10, smallInput: true, inputSize: 32 });
    const logits = forward(model, randomInput([1, 3, 32, 32], 2));
    expect(logits.shape).toEqual([1, 10]);
    expect(logits.data.every(Number.isFinite)).toBe(true);
    expect(() => createModel('alexnet', { inputSize: 40, initialize: false })).toThrow(/input size 40 is too small/);
  });

  it('builders honour numClasses, inputChannels and the small-input stem', () => {
    const model = createModel('shufflenet_v1_g8_0.5x', {
      numClasses: 7,
      inputChannels: 1,
      smallInput: true,
      initialize: false,
    });
    const graph = model.trace([1, 1, 28, 28]);
    expect(graph.shapes.get(graph.output)).toEqual([1, 7]);
    const conv1 = graph.nodes.filter((n) => n.op === 'conv2d').find((n) => n.name === 'conv1')!;
    expect(conv1.attrs.stride).toEqual([1, 1]);
    expect(graph.nodes.some((n) => n.op === 'maxPool2d')).toBe(false);
    // Stage 4 still sees 4×4 at 28×28.
    const last = [...graph.nodes].reverse().find((n) => n.name.startsWith('stage4'))!;
    expect(graph.shapes.get(last.output)!.slice(2)).toEqual([4, 4]);
  });

  it('variants differ only where they should', () => {
    const plain = createModel('shufflenet_v1_g3_1.0x', { initialize: false }).trace([1, 3, 224, 224]);
    const noshuffle = createModel('shufflenet_v1_g3_1.0x_noshuffle', { initialize: false }).trace([1, 3, 224, 224]);
    const shallow = createModel('shufflenet_v1_g3_1.0x_shallow', { initialize: false }).trace([1, 3, 224, 224]);
    const count = (g: typeof plain, op: string): number => g.nodes.filter((n) => n.op === op).length;
    expect(count(plain, 'channelShuffle')).toBe(16);
    expect(count(noshuffle, 'channelShuffle')).toBe(0);
    expect(complexity(noshuffle).macs).toBe(complexity(plain).macs);
    // 50 layers deep: Conv1 + 16 units × 3 + FC; shallow: Conv1 + 8 × 3 + FC = 26.
    const weighted = (g: typeof plain): number => g.nodes.filter((n) => n.op === 'conv2d' || n.op === 'linear').length;
    expect(weighted(plain)).toBe(50);
    expect(weighted(shallow)).toBe(26);
    expect(getModelEntry('shufflenet_v1_g3_2.0x_se').config).toMatchObject({ se: true, groups: 3, scale: 2 });
  });

  it('the same seed gives the same weights, another seed other weights', () => {
    const a = createModel('shufflenet_v1_g3_0.25x', { seed: 1 }).stateDict().get('conv1.weight')!;
    const b = createModel('shufflenet_v1_g3_0.25x', { seed: 1 }).stateDict().get('conv1.weight')!;
    const c = createModel('shufflenet_v1_g3_0.25x', { seed: 2 }).stateDict().get('conv1.weight')!;
    expect([...a.data]).toEqual([...b.data]);
    expect([...a.data]).not.toEqual([...c.data]);
  });
});
