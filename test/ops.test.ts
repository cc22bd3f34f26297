/** Every op against PyTorch on odd shapes (fixtures from scripts/make_fixtures.py). */
import { describe, expect, it } from 'vitest';
import { getOp, runOp } from '../src/ops/index.js';
import { sameShape } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

interface OpCase {
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  inputs: number;
}

const fixture = loadFixture('ops.safetensors');
const cases = JSON.parse(fixture.metadata['cases']!) as OpCase[];

describe('reference ops match PyTorch', () => {
  it('covers every registered op', () => {
    const covered = new Set(cases.map((c) => c.op));
    const missing = [
      'conv2d',
      'batchNorm',
      'relu',
      'clip',
      'sigmoid',
      'add',
      'mulChannels',
      'maxPool2d',
      'avgPool2d',
      'globalAvgPool',
      'channelShuffle',
      'concat',
      'flatten',
      'linear',
      'softmax',
    ].filter((op) => !covered.has(op));
    expect(missing).toEqual([]);
  });

  for (const c of cases) {
    it(`${c.name} (${c.op})`, () => {
      const inputs = Array.from({ length: c.inputs }, (_, i) => get(fixture, `${c.name}/in${i}`));
      const expected = get(fixture, `${c.name}/out`);
      const actual = runOp(getOp(c.op), inputs, c.attrs);
      expect(sameShape(actual.shape, expected.shape), `shape ${actual.shape} vs ${expected.shape}`).toBe(true);
      // float32 in PyTorch vs float64 accumulation here: 1e-5 of the output's scale.
      expect(maxAbsDiff(actual, expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(expected)));
    });
  }
});
