/** Every op against PyTorch on odd shapes (fixtures from scripts/make_fixtures.py). */
import { describe, expect, it } from 'vitest';
import { ShapeError, UnknownNameError } from '../src/errors.js';
import { GraphBuilder } from '../src/graph/builder.js';
import { channelShuffleOp, conv2dOp, getOp, opTypes, runOp, type OpAttrs, type OpType } from '../src/ops/index.js';
import { createModel } from '../src/models/registry.js';
import { sameShape, Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

interface OpCase {
  name: string;
  op: OpType;
  attrs: OpAttrs[OpType];
  inputs: number;
}

const fixture = loadFixture('ops.safetensors');
const cases = JSON.parse(fixture.metadata['cases']!) as OpCase[];

describe('reference ops match PyTorch', () => {
  it('covers every registered op', () => {
    const covered = new Set<string>(cases.map((c) => c.op));
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

describe('typed op attributes', () => {
  it('a node of the wrong attributes for its op is a type error, and an error at run time', () => {
    const g = new GraphBuilder([1, 6, 3, 3]);
    // @ts-expect-error: batch norm's attributes are not channel shuffle's
    expect(() => g.apply(channelShuffleOp, [g.input], { eps: 1e-5 })).toThrow(ShapeError);
    const w = g.param('w', new Tensor([6, 3, 1, 1]), true);
    // @ts-expect-error: conv2d needs stride, padding and dilation as well
    expect(() => g.apply(conv2dOp, [g.input, w], { groups: 2 })).toThrow();
  });

  it('testing a node op types its attributes', () => {
    const graph = createModel('shufflenet_v1_g3_0.25x', { numClasses: 4, smallInput: true }).trace([1, 3, 8, 8]);
    const groups = graph.nodes.flatMap((n) => (n.op === 'channelShuffle' ? [n.attrs.groups] : []));
    expect(groups.length).toBeGreaterThan(0);
    expect(new Set(groups)).toEqual(new Set([3]));
  });

  it('the registry holds each op under its own type, and names the known ones for an unknown type', () => {
    for (const type of opTypes()) expect(getOp(type).type).toBe(type);
    expect(() => getOp('fancyOp')).toThrow(UnknownNameError);
    expect(() => getOp('fancyOp')).toThrow(/known ops: conv2d, batchNorm/);
    expect(() => getOp('toString')).toThrow(UnknownNameError); // not an op, though every object has it
  });
});
