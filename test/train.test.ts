/**
 * Training as a whole: training-mode tracing shares the inference definition, a step is seeded
 * and deterministic, a network learns a fixed batch, gradients of a whole network agree with
 * finite differences, and batch-norm re-estimation averages batch statistics.
 */
import { describe, expect, it } from 'vitest';
import { backward, crossEntropy, forwardWithTape } from '../src/autograd/index.js';
import { complexity } from '../src/analysis/complexity.js';
import { createModel, modelNames } from '../src/models/registry.js';
import { conv2d } from '../src/ops/index.js';
import { learningRate, Sgd } from '../src/optim/index.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { reestimateBatchNorm, trainStep } from '../src/train/index.js';

const tiny = (seed = 0) =>
  createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, inputChannels: 1, smallInput: true, seed });

function randomBatch(rng: Random, n: number, size: number): { images: Tensor; labels: number[] } {
  const images = new Tensor([n, 1, size, size]);
  for (let i = 0; i < images.size; i++) images.data[i] = rng.normal();
  return { images, labels: Array.from({ length: n }, () => rng.int(10)) };
}

describe('training-mode tracing', () => {
  it('changes only the batch norms, and nothing the complexity counter sees', () => {
    const model = tiny();
    const inference = model.trace([2, 1, 16, 16]);
    const training = model.trace([2, 1, 16, 16], { training: true });
    expect(inference.nodes.some((n) => n.op === 'batchNormTraining')).toBe(false);
    const swapped = inference.nodes.map((n) => (n.op === 'batchNorm' ? 'batchNormTraining' : n.op));
    expect(training.nodes.map((n) => n.op)).toEqual(swapped);
    expect(training.nodes.map((n) => n.inputs)).toEqual(inference.nodes.map((n) => n.inputs));
    expect([...training.params.keys()]).toEqual([...inference.params.keys()]);
    expect(complexity(training).macs).toBe(complexity(inference).macs);
  });
});

describe('seeded determinism', () => {
  function lossCurve(seed: number): number[] {
    const model = tiny(seed);
    const graph = model.trace([4, 1, 16, 16], { training: true });
    const sgd = new Sgd(model.namedParameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 4e-5 });
    const rng = new Random(seed);
    const schedule = { lr: 0.05, totalSteps: 4, kind: 'cosine' as const, warmupSteps: 1 };
    return Array.from({ length: 4 }, (_, t) => {
      const { images, labels } = randomBatch(rng, 4, 16);
      return trainStep(graph, sgd, images, labels, {
        lr: learningRate(schedule, t),
        labelSmoothing: 0.1,
        maxGradNorm: 5,
      }).loss;
    });
  }

  it('gives the same loss curve for the same seed, and another for another seed', () => {
    const a = lossCurve(7);
    expect(a.every(Number.isFinite)).toBe(true);
    expect(lossCurve(7)).toEqual(a);
    expect(lossCurve(8)).not.toEqual(a);
  });
});

describe('a training step', () => {
  it('fits a fixed batch: the loss falls and the running statistics move', () => {
    const model = tiny(3);
    const graph = model.trace([8, 1, 16, 16], { training: true });
    const sgd = new Sgd(model.namedParameters(), { lr: 0.02, momentum: 0.9, weightDecay: 4e-5 });
    const { images, labels } = randomBatch(new Random(3), 8, 16);
    const runningMean = model.stateDict().get('stage2.0.bn1.running_mean')!;
    const before = runningMean.clone();
    const losses = Array.from({ length: 12 }, () => trainStep(graph, sgd, images, labels, { lr: 0.02 }).loss);
    expect(losses[11]!).toBeLessThan(0.5 * losses[0]!);
    expect(runningMean.data).not.toEqual(before.data);
  });

  it('clips the gradient norm it reports', () => {
    const model = tiny(4);
    const graph = model.trace([2, 1, 16, 16], { training: true });
    const params = model.namedParameters();
    const initial = new Map([...params].map(([k, v]) => [k, v.clone()]));
    const { images, labels } = randomBatch(new Random(4), 2, 16);
    const sgd = new Sgd(params, { lr: 1, momentum: 0 });
    const { gradNorm } = trainStep(graph, sgd, images, labels, { lr: 1, maxGradNorm: 1e-3 });
    expect(gradNorm).toBeGreaterThan(1e-3);
    // With lr 1 and no momentum, the update is the clipped gradient: its norm is the bound.
    let squares = 0;
    for (const [k, v] of params)
      for (let i = 0; i < v.size; i++) squares += (v.data[i]! - initial.get(k)!.data[i]!) ** 2;
    expect(Math.sqrt(squares)).toBeCloseTo(1e-3, 6);
  });
});

describe('whole-network gradients match finite differences', () => {
  it('shufflenet_v1_g3_0.25x_se in training mode: the slope along the gradient is its norm', () => {
    // Per-element differences of a deep float32 network are dominated by rounding noise and by
    // ReLU kinks; the directional derivative along the whole gradient (input and every
    // parameter at once) has the largest possible signal, |g|, and converges as h shrinks
    // (measured: 16% off at h = 3e-3, 1.1% at 1e-4, 0.1% at 3e-5).
    const model = createModel('shufflenet_v1_g3_0.25x_se', {
      numClasses: 5,
      inputChannels: 1,
      smallInput: true,
      seed: 5,
    });
    const graph = model.trace([3, 1, 16, 16], { training: true });
    const { images } = randomBatch(new Random(5), 3, 16);
    const labels = [1, 4, 2];
    const loss = (): number =>
      crossEntropy(forwardWithTape(graph, images, { runningStatistics: 'frozen' }).output, labels).loss;
    const tape = forwardWithTape(graph, images, { runningStatistics: 'frozen' });
    const { parameters, input } = backward(tape, crossEntropy(tape.output, labels).gradient, { inputGradient: true });
    const params = model.namedParameters();
    expect(parameters.size).toBe(params.size);
    const pairs: [Tensor, Tensor][] = [
      [images, input!],
      ...[...params].map(([k, v]): [Tensor, Tensor] => [v, parameters.get(k)!]),
    ];
    let squares = 0;
    for (const [, g] of pairs) for (let i = 0; i < g.size; i++) squares += g.data[i]! ** 2;
    const norm = Math.sqrt(squares);
    const saved = pairs.map(([t]) => t.data.slice());
    const moveAlongGradient = (step: number): void =>
      pairs.forEach(([t, g], k) => {
        for (let i = 0; i < t.size; i++) t.data[i] = saved[k]![i]! + (step * g.data[i]!) / norm;
      });
    const h = 3e-5;
    moveAlongGradient(h);
    const up = loss();
    moveAlongGradient(-h);
    const down = loss();
    moveAlongGradient(0);
    expect(Math.abs((up - down) / (2 * h) - norm) / norm).toBeLessThan(1e-2);
  });
});

describe('batch-norm re-estimation', () => {
  it('replaces the running statistics with the average of the batches', () => {
    const model = tiny(6);
    const rng = new Random(6);
    const batches = [randomBatch(rng, 3, 12).images, randomBatch(rng, 3, 12).images, randomBatch(rng, 5, 12).images];
    const state = model.stateDict();
    state.get('bn1.running_mean')!.data.fill(42);
    const paramsBefore = [...model.namedParameters().values()].map((t) => t.clone());
    expect(reestimateBatchNorm(model, batches)).toBe(3);

    // bn1 sees conv1's output: compute each batch's per-channel mean and unbiased variance directly.
    const conv1 = model.stateDict().get('conv1.weight')!;
    const channels = conv1.shape[0]!;
    const mean = new Float64Array(channels);
    const variance = new Float64Array(channels);
    for (const x of batches) {
      const y = conv2d(x, conv1, null, { padding: 1 });
      const [n, , h, w] = y.shape;
      const count = n! * h! * w!;
      for (let c = 0; c < channels; c++) {
        const values: number[] = [];
        for (let i = 0; i < n!; i++)
          for (let s = 0; s < h! * w!; s++) values.push(y.data[(i * channels + c) * h! * w! + s]!);
        const m = values.reduce((a, b) => a + b, 0) / count;
        mean[c] += m / batches.length;
        variance[c] += values.reduce((a, b) => a + (b - m) ** 2, 0) / (count - 1) / batches.length;
      }
    }
    const runningMean = state.get('bn1.running_mean')!;
    const runningVar = state.get('bn1.running_var')!;
    for (let c = 0; c < channels; c++) {
      expect(runningMean.data[c]).toBeCloseTo(mean[c]!, 5);
      expect(runningVar.data[c]! / variance[c]!).toBeCloseTo(1, 5);
    }
    // Parameters are untouched.
    [...model.namedParameters().values()].forEach((t, i) => expect(t.data).toEqual(paramsBefore[i]!.data));
  });
});

describe('every small variant of the family trains', () => {
  // timm-style smoke: each 0.25× ShuffleNet (every g, plain / no-shuffle / SE / shallow) and the
  // smallest MobileNet take one backward pass with a finite gradient for every parameter.
  const names = modelNames().filter((n) => n.includes('_0.25x') || n === 'mobilenet_v1_0.25');
  it('covers every group count and variant', () => expect(names.length).toBe(21));
  for (const name of names) {
    it(name, () => {
      const model = createModel(name, { numClasses: 4, inputChannels: 1, smallInput: true, seed: 1 });
      const graph = model.trace([2, 1, 16, 16], { training: true });
      const { images, labels } = randomBatch(new Random(1), 2, 16);
      const tape = forwardWithTape(graph, images);
      const { loss, gradient } = crossEntropy(
        tape.output,
        labels.map((l) => l % 4),
        { labelSmoothing: 0.1 },
      );
      const { parameters } = backward(tape, gradient);
      expect(Number.isFinite(loss)).toBe(true);
      expect([...parameters.keys()].sort()).toEqual([...model.namedParameters().keys()].sort());
      for (const [key, g] of parameters) expect(g.data.every(Number.isFinite), key).toBe(true);
    });
  }
});
