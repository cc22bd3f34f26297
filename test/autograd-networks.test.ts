/**
 * Whole networks in training mode against PyTorch: the same random weights (loaded by PyTorch
 * name), one forward with batch statistics, cross-entropy with label smoothing, one backward.
 * The loss, the input gradient, every parameter gradient and every running statistic after the
 * forward must agree to 1e-4 of each tensor's largest value.
 *
 * One exception is principled: a batch-norm bias that feeds a training-mode batch norm through a
 * bias-free conv (every `bn2.bias`) has gradient exactly 0, since the next batch norm subtracts
 * any per-channel shift again. Both sides are then rounding noise (~1e-8), so for those the test
 * asserts that both are below 1e-4 of the median tensor's largest gradient.
 */
import { describe, expect, it } from 'vitest';
import { backward, crossEntropy, forwardWithTape } from '../src/autograd/index.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { maxAbs } from './helpers/fixtures.js';
import { gradNetworks, gradTensor, modelWithFixtureState, structurallyZero } from './helpers/network-grads.js';
import { relativeError } from './helpers/compare.js';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('network gradients match PyTorch', () => {
  it('cover a plain, an SE, a no-shuffle ShuffleNet and the ImageNet stem', () => {
    const names = gradNetworks.map((n) => n.name);
    expect(names).toContain('shufflenet_v1_g3_0.25x');
    expect(names.some((n) => n.endsWith('_se'))).toBe(true);
    expect(names.some((n) => n.endsWith('_noshuffle'))).toBe(true);
    expect(gradNetworks.some((n) => n.options.smallInput === false)).toBe(true); // the max-pool stem
  });

  for (const net of gradNetworks) {
    it(`${net.name} ${JSON.stringify(net.options)} on [${net.input.join(', ')}], smoothing ${net.labelSmoothing}`, () => {
      const model = modelWithFixtureState(net);

      const graph = model.trace(net.input, { training: true });
      const tape = forwardWithTape(graph, gradTensor(net, 'input'));
      const labels = Array.from(gradTensor(net, 'labels').data);
      const { loss, gradient } = crossEntropy(tape.output, labels, { labelSmoothing: net.labelSmoothing });
      const grads = backward(tape, gradient, { inputGradient: true });

      const expectedLoss = gradTensor(net, 'loss').data[0]!;
      expect(Math.abs(loss - expectedLoss) / expectedLoss).toBeLessThan(1e-4);
      expect(relativeError(grads.input!, gradTensor(net, 'inputGrad'))).toBeLessThan(1e-4);

      const parameters = model.namedParameters();
      expect([...grads.parameters.keys()].sort()).toEqual([...parameters.keys()].sort());
      const expected = (name: string): Tensor => gradTensor(net, `grad/${name}`);
      const scale = median([...parameters.keys()].map((name) => maxAbs(expected(name))));
      for (const name of parameters.keys()) {
        const ours = grads.parameters.get(name)!;
        if (structurallyZero(name)) {
          expect(maxAbs(ours), name).toBeLessThan(1e-4 * scale);
          expect(maxAbs(expected(name)), name).toBeLessThan(1e-4 * scale);
          continue;
        }
        expect(relativeError(ours, expected(name)), name).toBeLessThan(1e-4);
      }
      for (const [name, tensor] of model.stateDict()) {
        if (!name.includes('running_')) continue;
        expect(relativeError(tensor, gradTensor(net, `after/${name}`)), name).toBeLessThan(1e-5);
      }
    });
  }
});
