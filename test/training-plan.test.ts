/**
 * The WASM training plan against two independent oracles: PyTorch's whole-network gradients (the
 * fixture of test/autograd-networks.test.ts) and the reference tape, over several SGD steps of
 * networks that exercise every fast kernel (grouped and dense 1×1, depthwise at stride 1 and 2, the
 * 3×3 stems, training-mode BN, ReLU, shuffle, add, concat, avg and max pool, global pool) and the
 * reference fallback (SE's sigmoid and channel scaling, the classifier).
 */
import { describe, expect, it } from 'vitest';
import { backward, crossEntropy, forwardWithTape, type Tape } from '../src/autograd/index.js';
import type { Graph } from '../src/graph/graph.js';
import { createModel, type ModelOptions } from '../src/models/registry.js';
import { Sgd } from '../src/optim/sgd.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { TrainingPlan } from '../src/train/plan.js';
import { trainStep } from '../src/train/step.js';
import { maxAbs, maxAbsDiff } from './helpers/fixtures.js';
import { relativeError } from './helpers/compare.js';
import { gradNetworks, gradTensor, modelWithFixtureState, structurallyZero } from './helpers/network-grads.js';

describe('training plan: one step against PyTorch', () => {
  for (const net of gradNetworks) {
    it(`${net.name} ${JSON.stringify(net.options)} on [${net.input.join(', ')}]`, async () => {
      const model = modelWithFixtureState(net);

      const plan = await TrainingPlan.compile(model.trace(net.input, { training: true }));
      const labels = Array.from(gradTensor(net, 'labels').data);
      const { loss, gradients } = plan.forwardBackward(gradTensor(net, 'input'), labels, {
        labelSmoothing: net.labelSmoothing,
      });
      const expectedLoss = gradTensor(net, 'loss').data[0]!;
      expect(Math.abs(loss - expectedLoss) / expectedLoss).toBeLessThan(1e-4);

      const parameters = model.namedParameters();
      expect([...gradients.keys()].sort()).toEqual([...parameters.keys()].sort());
      const expected = (name: string): Tensor => gradTensor(net, `grad/${name}`);
      for (const name of parameters.keys()) {
        if (structurallyZero(name)) {
          expect(maxAbs(gradients.get(name)!), name).toBeLessThan(
            1e-4 * maxAbs(expected(name.replace(/bias$/, 'weight'))),
          );
          continue;
        }
        expect(relativeError(gradients.get(name)!, expected(name)), name).toBeLessThan(1e-4);
      }
      for (const [name, tensor] of model.stateDict()) {
        if (!name.includes('running_')) continue;
        expect(relativeError(tensor, gradTensor(net, `after/${name}`)), name).toBeLessThan(1e-5);
      }
    });
  }
});

/**
 * Several SGD steps on one model: at each step the plan and the tape see the same weights, and
 * must give the same loss, logits, parameter gradients and running-statistics update; then the
 * tape's update is applied. (Comparing two separately trained copies instead would measure how
 * training amplifies rounding differences, not whether the plan is right.)
 *
 * A ReLU input within float32 rounding of 0 lets two correct engines route that element's gradient
 * differently (and batch norm spreads the difference over whole tensors), so each step draws its
 * batch until every nonzero ReLU input is at least 1e-5 away from 0, as the PyTorch fixtures do.
 */
async function compareWithTape(name: string, options: ModelOptions, input: number[], steps: number): Promise<void> {
  const model = createModel(name, { ...options, seed: 7 });
  const sgd = new Sgd(model.namedParameters(), { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 4e-5 });
  const plan = await TrainingPlan.compile(model.trace(input, { training: true }));
  const graph = model.trace(input, { training: true });
  const random = new Random(11);
  const classes = options.numClasses ?? 1000;
  const buffers = [...model.stateDict()].filter(([key]) => key.includes('running_'));
  const snapshot = (): Float32Array[] => buffers.map(([, t]) => t.data.slice());
  for (let step = 0; step < steps; step++) {
    const before = snapshot();
    let images: Tensor;
    let tape: Tape;
    let draws = 0;
    do {
      expect(draws++, 'draws of a batch without ReLU inputs near 0').toBeLessThan(30);
      images = new Tensor(
        input,
        Float32Array.from({ length: input.reduce((a, b) => a * b) }, () => random.normal()),
      );
      tape = forwardWithTape(graph, images, { runningStatistics: 'frozen' });
    } while (reluMargin(graph, tape) < 1e-5);
    const labels = Array.from({ length: input[0]! }, () => random.int(classes));
    const fast = plan.forwardBackward(images, labels, { labelSmoothing: 0.1 });
    const fastStatistics = snapshot();
    buffers.forEach(([, t], i) => t.data.set(before[i]!));
    tape = forwardWithTape(graph, images);
    const { loss, gradient } = crossEntropy(tape.output, labels, { labelSmoothing: 0.1 });
    const slow = backward(tape, gradient).parameters;

    expect(Math.abs(fast.loss - loss), `loss at step ${step}`).toBeLessThan(1e-5 * Math.max(1, loss));
    expect(relativeError(fast.logits, tape.output), `logits at step ${step}`).toBeLessThan(1e-4);
    // Per tensor, relative to its largest gradient, with a floor at 1e-2 of the largest one: the
    // gamma of a BN followed (through ReLU and a conv) by another BN gets a gradient ~1e-5 of the
    // others, a sum of cancelling terms whose float32 rounding (~1e-7 absolute) is all that differs.
    // 2e-3, not the PyTorch test's 1e-4: these shapes leave the last batch norms a handful of
    // values per channel (3 at MobileNet's 1×1 maps), where the plan's float32 normalisation and the
    // tape's float64 one part by ~1e-3 (the PyTorch test, on larger maps, holds the plan to 1e-4).
    const largest = Math.max(...[...slow.values()].map(maxAbs));
    for (const [key, expected] of slow) {
      const error = maxAbsDiff(fast.gradients.get(key)!, expected) / Math.max(maxAbs(expected), 1e-2 * largest);
      expect(error, `${key} at step ${step}`).toBeLessThan(2e-3);
    }
    buffers.forEach(([key, t], i) => {
      // (A BN after a bias-free conv after a BN whose bias gets no gradient sees a batch mean of
      // rounding noise: hence the absolute floor.)
      const error = maxAbsDiff(new Tensor(t.shape, fastStatistics[i]!), t) / Math.max(maxAbs(t), 1e-2);
      expect(error, `${key} at step ${step}`).toBeLessThan(1e-4);
    });
    sgd.step(slow, 0.01);
  }
}

/** The smallest |x| over the nonzero inputs of every ReLU (exact zeros, e.g. pooled ReLU zeros, are safe). */
function reluMargin(graph: Graph, tape: Tape): number {
  let margin = Infinity;
  for (const node of graph.nodes) {
    if (node.op !== 'relu') continue;
    for (const v of tape.values.get(node.inputs[0]!)!.data) if (v !== 0 && Math.abs(v) < margin) margin = Math.abs(v);
  }
  return margin;
}

describe('training plan: several SGD steps against the reference tape', () => {
  it('g3 0.25x, small-input stem, odd spatial sizes (14 → 7 → 4 → 2)', async () => {
    await compareWithTape(
      'shufflenet_v1_g3_0.25x',
      { numClasses: 10, inputChannels: 1, smallInput: true },
      [4, 1, 14, 14],
      3,
    );
  });
  it('g8 0.25x with the ImageNet stem (3×3/2 conv, max pool) at 44×44', async () => {
    await compareWithTape('shufflenet_v1_g8_0.25x', { numClasses: 10, smallInput: false }, [3, 3, 44, 44], 3);
  });
  it('MobileNet v1 0.25 (dense 1×1, depthwise at stride 1 and 2)', async () => {
    await compareWithTape(
      'mobilenet_v1_0.25',
      { numClasses: 10, inputChannels: 1, smallInput: true },
      [4, 1, 24, 24],
      3,
    );
  });
  it('g3 0.5x shallow', async () => {
    await compareWithTape(
      'shufflenet_v1_g3_0.5x_shallow',
      { numClasses: 10, inputChannels: 1, smallInput: true },
      [2, 1, 11, 11],
      3,
    );
  });
  it('ShuffleNet V2 1.0× (channel split, two branches at stride 2, concat + shuffle)', async () => {
    await compareWithTape(
      'shufflenet_v2_1.0x',
      { numClasses: 10, inputChannels: 1, smallInput: true },
      [2, 1, 12, 12],
      3,
    );
  });
});

describe('training plan: behaviour', () => {
  it('is deterministic: the same steps give bit-identical losses and weights', async () => {
    const run = async (): Promise<{ losses: number[]; weights: Float32Array }> => {
      const model = createModel('shufflenet_v1_g2_0.25x', {
        numClasses: 10,
        inputChannels: 1,
        smallInput: true,
        seed: 3,
      });
      const sgd = new Sgd(model.namedParameters(), { lr: 0.1, momentum: 0.9 });
      const plan = await TrainingPlan.compile(model.trace([4, 1, 16, 16], { training: true }));
      const random = new Random(5);
      const losses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const images = new Tensor(
          [4, 1, 16, 16],
          Float32Array.from({ length: 4 * 256 }, () => random.normal()),
        );
        losses.push(trainStep(plan, sgd, images, [0, 1, 2, 3], { lr: 0.1 }).loss);
      }
      return { losses, weights: model.stateDict().get('stage3.0.gconv1.weight')!.data.slice() };
    };
    const [a, b] = [await run(), await run()];
    expect(a.losses).toEqual(b.losses);
    expect(a.weights).toEqual(b.weights);
    expect(new Set(a.losses).size).toBe(3); // it trains: the loss moves
  });

  it('keeps no state between steps: after training, it equals a freshly compiled plan bit for bit', async () => {
    const model = createModel('shufflenet_v1_g8_0.25x', { numClasses: 10, smallInput: false, seed: 3 });
    const sgd = new Sgd(model.namedParameters(), { lr: 0.1, momentum: 0.9 });
    const input = [3, 3, 40, 40];
    const plan = await TrainingPlan.compile(model.trace(input, { training: true }));
    const random = new Random(9);
    const batch = (): Tensor =>
      new Tensor(
        input,
        Float32Array.from({ length: 3 * 3 * 1600 }, () => random.normal()),
      );
    for (let i = 0; i < 3; i++) trainStep(plan, sgd, batch(), [1, 2, 3], { lr: 0.1 });
    const fresh = await TrainingPlan.compile(model.trace(input, { training: true }));
    const images = batch();
    const a = plan.forwardBackward(images, [4, 5, 6]);
    const copies = new Map([...a.gradients].map(([k, v]) => [k, v.data.slice()]));
    const b = fresh.forwardBackward(images, [4, 5, 6]);
    expect(a.loss).toBe(b.loss);
    for (const [key, g] of b.gradients) expect(copies.get(key), key).toEqual(g.data);
  });

  it('rejects an input of the wrong shape, naming both shapes', async () => {
    const model = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, inputChannels: 1, smallInput: true });
    const plan = await TrainingPlan.compile(model.trace([2, 1, 16, 16], { training: true }));
    expect(() => plan.forward(new Tensor([2, 1, 28, 28]))).toThrow(/\[2, 1, 28, 28\].*\[2, 1, 16, 16\]/);
  });

  it('runs every node of a ShuffleNet, V1 and V2, on a fast kernel', async () => {
    for (const name of ['shufflenet_v1_g3_0.5x', 'shufflenet_v2_0.5x']) {
      const model = createModel(name, { numClasses: 10, inputChannels: 1, smallInput: true });
      const plan = await TrainingPlan.compile(model.trace([2, 1, 28, 28], { training: true }));
      const slow = plan.steps.filter((s) => s.includes(': reference'));
      expect(slow, name).toEqual([]);
    }
  });
});
