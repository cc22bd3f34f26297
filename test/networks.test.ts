/**
 * Whole networks against independent PyTorch implementations: random weights with non-trivial
 * batch-norm statistics, loaded by PyTorch name; logits must agree to 1e-4 of the largest logit.
 */
import { describe, expect, it } from 'vitest';
import { createModel, type ModelOptions } from '../src/models/registry.js';
import { forward } from '../src/nn/forward.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const fixture = loadFixture('networks.safetensors');
const networks = JSON.parse(fixture.metadata['networks']!) as {
  name: string;
  options: ModelOptions;
  input: number[];
}[];

describe('networks match PyTorch', () => {
  it('covers the networks the issue names', () => {
    const names = networks.map((n) => n.name);
    expect(names.length).toBeGreaterThanOrEqual(6);
    for (const required of [
      'shufflenet_v1_g3_1.0x',
      'shufflenet_v1_g8_0.5x',
      'mobilenet_v1_0.25',
      'shufflenet_v2_1.0x',
    ]) {
      expect(names).toContain(required);
    }
    expect(names.some((n) => n.endsWith('_noshuffle'))).toBe(true);
    expect(names.some((n) => n.endsWith('_se'))).toBe(true);
  });

  for (const net of networks) {
    it(`${net.name} ${JSON.stringify(net.options)} on [${net.input.join(', ')}]`, () => {
      const model = createModel(net.name, { ...net.options, initialize: false });
      const prefix = `${net.name}/`;
      const state = new Map<string, Tensor>();
      for (const [key, tensor] of fixture.tensors) {
        if (key.startsWith(prefix) && key !== `${prefix}input` && key !== `${prefix}logits`) {
          state.set(key.slice(prefix.length), tensor);
        }
      }
      model.loadStateDict(state); // strict: every tensor present, every shape equal
      const expected = get(fixture, `${prefix}logits`);
      const logits = forward(model, get(fixture, `${prefix}input`));
      expect(logits.shape).toEqual(expected.shape);
      const relative = maxAbsDiff(logits, expected) / maxAbs(expected);
      expect(relative).toBeLessThan(1e-4);
    });
  }
});
