/** Channel shuffle: the paper's (g, n) → (n, g) definition, and the official code's inverse variant. */
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../src/errors.js';
import { channelShuffleBackwardReference } from '../src/kernels/reference/channels-backward.js';
import { channelShuffleSource, channelShuffleTransposePerm } from '../src/kernels/reference/channels.js';
import { channelShuffle, reshapeOp, runOp, transposeOp } from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture } from './helpers/fixtures.js';

/** A [1, C, 1, 1] tensor whose channel c holds the value c. */
const channelIndex = (c: number): Tensor =>
  Tensor.from(
    [1, c, 1, 1],
    Array.from({ length: c }, (_, i) => i),
  );

describe('channel shuffle', () => {
  it('turns groups AAA BBB CCC into ABC ABC ABC (g = 3, n = 3)', () => {
    const out = channelShuffle(channelIndex(9), 3);
    expect([...out.data]).toEqual([0, 3, 6, 1, 4, 7, 2, 5, 8]);
  });

  it('sends channel i·n + j to j·g + i for every g of the paper', () => {
    for (const g of [1, 2, 3, 4, 8]) {
      const n = 5;
      const out = channelShuffle(channelIndex(g * n), g);
      for (let i = 0; i < g; i++) for (let j = 0; j < n; j++) expect(out.data[j * g + i]).toBe(i * n + j);
    }
  });

  it('keeps each spatial plane intact', () => {
    const x = Tensor.from(
      [2, 4, 2, 3],
      Array.from({ length: 48 }, (_, i) => i),
    );
    const y = channelShuffle(x, 2);
    // Output channel 1 is input channel 2 (i = 1, j = 0), for each sample.
    expect([...y.data.subarray(6, 12)]).toEqual([...x.data.subarray(12, 18)]);
    expect([...y.data.subarray(24 + 6, 24 + 12)]).toEqual([...x.data.subarray(24 + 12, 24 + 18)]);
  });

  it("the official code's reshape-(C/g, g) variant is the inverse permutation", () => {
    for (const [g, n] of [
      [3, 4],
      [8, 3],
      [2, 5],
      [4, 4],
    ] as const) {
      const x = channelIndex(g * n);
      // The official variant for g groups is the paper's shuffle with C/g = n groups.
      const official = (t: Tensor): Tensor => channelShuffle(t, n);
      expect([...official(channelShuffle(x, g)).data]).toEqual([...x.data]);
      expect([...channelShuffle(official(x), g).data]).toEqual([...x.data]);
      if (g !== n) expect([...official(x).data]).not.toEqual([...channelShuffle(x, g).data]);
    }
  });

  it("matches PyTorch's official-variant output in the fixture", () => {
    const fixture = loadFixture('ops.safetensors');
    const x = get(fixture, 'shuffle_official_g3/in0');
    const expected = get(fixture, 'shuffle_official_g3/out');
    expect([...channelShuffle(x, 12 / 3).data]).toEqual([...expected.data]);
    // …and undoing it with the paper's g = 3 shuffle restores the input.
    expect([...channelShuffle(expected, 3).data]).toEqual([...x.data]);
  });
});

describe('channelShuffleSource, the one definition of the permutation', () => {
  it("is the paper's (g, n) → (n, g): output channel j·g + i reads input channel i·n + j", () => {
    expect([...channelShuffleSource(6, 3)]).toEqual([0, 2, 4, 1, 3, 5]);
    expect([...channelShuffleSource(6, 2)]).toEqual([0, 3, 1, 4, 2, 5]);
    expect([...channelShuffleSource(5, 1)]).toEqual([0, 1, 2, 3, 4]);
    for (const [g, n] of [
      [3, 4],
      [8, 3],
      [4, 1],
    ] as const) {
      const source = channelShuffleSource(g * n, g);
      for (let i = 0; i < g; i++) for (let j = 0; j < n; j++) expect(source[j * g + i]).toBe(i * n + j);
    }
  });

  it('is what the kernel gathers, and what its gradient scatters back', () => {
    const [g, c, spatial] = [3, 12, 2];
    const x = Tensor.from(
      [2, c, 1, spatial],
      Array.from({ length: 2 * c * spatial }, (_, i) => i),
    );
    const y = channelShuffle(x, g);
    const source = channelShuffleSource(c, g);
    for (let n = 0; n < 2; n++) {
      for (let k = 0; k < c; k++) {
        const at = (ch: number): number[] => [...x.data.subarray((n * c + ch) * spatial, (n * c + ch + 1) * spatial)];
        expect([...y.data.subarray((n * c + k) * spatial, (n * c + k + 1) * spatial)]).toEqual(at(source[k]!));
      }
    }
    const back = new Float32Array(x.size).fill(Number.NaN); // every element must be written
    channelShuffleBackwardReference(y.data, back, 2, c, spatial, g);
    expect([...back]).toEqual([...x.data]);
  });

  it('equals its reshape → transpose → reshape form (what ONNX export writes and import fuses)', () => {
    for (const [g, n] of [
      [3, 4],
      [8, 2],
      [2, 5],
    ] as const) {
      const c = g * n;
      const x = channelIndex(c);
      const split = runOp(reshapeOp, [x], { shape: [1, g, n, 1, 1] });
      const swapped = runOp(transposeOp, [split], { perm: channelShuffleTransposePerm });
      const y = runOp(reshapeOp, [swapped], { shape: [1, c, 1, 1] });
      expect([...y.data]).toEqual([...channelShuffleSource(c, g)]);
    }
  });

  it('refuses groups that do not divide the channels, with a typed error naming both', () => {
    expect(() => channelShuffleSource(10, 3)).toThrow(ShapeError);
    expect(() => channelShuffleSource(10, 3)).toThrow('groups=3 must be a positive divisor of the 10 channels');
    expect(() => channelShuffleSource(6, 0)).toThrow(ShapeError);
    expect(() => channelShuffleSource(6, -2)).toThrow(ShapeError);
    expect(() => channelShuffleSource(6, 1.5)).toThrow(ShapeError);
  });
});
