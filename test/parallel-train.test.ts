/**
 * Data-parallel training over worker threads against the one-thread training plan: the same loss,
 * logits, gradients and running statistics for the whole batch (batch norm combines the parts'
 * figures), uneven splits, determinism, clear errors, and dispose.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createModel } from '../src/models/registry.js';
import { spawnTrainingWorker } from '../src/node/session.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { ThreadError } from '../src/runtime/threads/barrier.js';
import type { WorkerPort } from '../src/runtime/threads/ports.js';
import { ParallelTrainingEngine, TrainingWorkerError } from '../src/train/parallel.js';
import { TrainingPlan } from '../src/train/plan.js';
import { maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const options = { numClasses: 10, inputChannels: 1, smallInput: true };
const engines: ParallelTrainingEngine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.dispose()));
});

function batch(seed: number, n: number, size: number): { images: Tensor; labels: number[] } {
  const random = new Random(seed);
  const images = new Tensor(
    [n, 1, size, size],
    Float32Array.from({ length: n * size * size }, () => random.normal()),
  );
  return { images, labels: Array.from({ length: n }, () => random.int(10)) };
}

describe('parallel training', () => {
  for (const [threads, n] of [
    [2, 6],
    [2, 5],
    [3, 7],
  ] as const) {
    it(`${threads} threads on a batch of ${n} equal one thread on the whole batch`, async () => {
      const one = createModel('shufflenet_v1_g3_0.25x', { ...options, seed: 4 });
      const many = createModel('shufflenet_v1_g3_0.25x', { ...options, seed: 4 });
      const single = await TrainingPlan.compile(one.trace([n, 1, 12, 12], { training: true }));
      const parallel = await ParallelTrainingEngine.create(
        many.trace([n, 1, 12, 12], { training: true }),
        threads,
        spawnTrainingWorker,
      );
      engines.push(parallel);
      expect(parallel.threads).toBe(threads);
      const { images, labels } = batch(threads * 10 + n, n, 12);
      const a = single.forwardBackward(images, labels, { labelSmoothing: 0.1 });
      const expected = new Map([...a.gradients].map(([k, v]) => [k, new Tensor(v.shape, v.data.slice())]));
      const b = parallel.forwardBackward(images, labels, { labelSmoothing: 0.1 });

      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5 * a.loss);
      expect(maxAbsDiff(a.logits, b.logits) / maxAbs(a.logits)).toBeLessThan(1e-4);
      const largest = Math.max(...[...expected.values()].map(maxAbs));
      for (const [key, g] of expected) {
        const error = maxAbsDiff(b.gradients.get(key)!, g) / Math.max(maxAbs(g), 1e-2 * largest);
        expect(error, key).toBeLessThan(1e-3);
      }
      const runningA = one.stateDict();
      for (const [key, t] of many.stateDict()) {
        if (key.includes('running_')) expect(maxAbsDiff(t, runningA.get(key)!), key).toBeLessThan(1e-5);
      }
      const forward = parallel.forward(images, 'frozen');
      expect(maxAbsDiff(forward, a.logits) / maxAbs(a.logits)).toBeLessThan(1e-4);
    });
  }

  it('is deterministic, refuses a bad label before starting, and keeps working', async () => {
    const model = createModel('shufflenet_v1_g2_0.25x', { ...options, seed: 1 });
    const engine = await ParallelTrainingEngine.create(
      model.trace([4, 1, 10, 10], { training: true }),
      2,
      spawnTrainingWorker,
    );
    engines.push(engine);
    const { images, labels } = batch(3, 4, 10);
    const first = engine.forwardBackward(images, labels).loss;
    expect(() => engine.forwardBackward(images, [0, 1, 2, 10])).toThrow(
      /label 3 is 10 but must be an integer in \[0, 10\)/,
    );
    expect(engine.forwardBackward(images, labels).loss).toBe(first);
  });

  it('refuses more threads than samples, and any use after dispose', async () => {
    const model = createModel('shufflenet_v1_g3_0.25x', options);
    const graph = model.trace([2, 1, 10, 10], { training: true });
    await expect(ParallelTrainingEngine.create(graph, 3, spawnTrainingWorker)).rejects.toThrow(
      /threads must be an integer in \[2, 2\]/,
    );
    const engine = await ParallelTrainingEngine.create(graph, 2, spawnTrainingWorker);
    await engine.dispose();
    const { images, labels } = batch(1, 2, 10);
    expect(() => engine.forwardBackward(images, labels)).toThrow(/disposed/);
  });

  /** A training worker whose init message is changed by `corrupt` on its way. */
  const corrupted =
    (
      corrupt: (init: { graph: { nodes: { op: string }[] }; layout: { batchNorms: { statistics: number }[] } }) => void,
    ) =>
    (): WorkerPort => {
      const port = spawnTrainingWorker();
      return {
        ...port,
        postMessage(message) {
          const copy = structuredClone(message); // the main thread keeps the true layout
          corrupt(copy as Parameters<typeof corrupt>[0]);
          port.postMessage(copy);
        },
      };
    };

  it('a worker that cannot compile its part fails create with its message, naming it', async () => {
    const graph = createModel('shufflenet_v1_g3_0.25x', options).trace([4, 1, 10, 10], { training: true });
    const spawn = corrupted((init) => (init.graph.nodes[0]!.op = 'noSuchOp'));
    const creating = ParallelTrainingEngine.create(graph, 2, spawn);
    await expect(creating).rejects.toThrow(TrainingWorkerError);
    await expect(creating).rejects.toThrow(/parallel training: worker 1: .*noSuchOp/);
  });

  it('a worker that fails mid-step releases the main thread at once; the next call reports its message', async () => {
    const model = createModel('shufflenet_v1_g3_0.25x', { ...options, seed: 2 });
    // The worker's first batch norm writes its statistics beyond the shared buffer: a RangeError.
    const spawn = corrupted((init) => (init.layout.batchNorms[0]!.statistics = 1e9));
    const engine = await ParallelTrainingEngine.create(model.trace([4, 1, 10, 10], { training: true }), 2, spawn);
    engines.push(engine);
    const { images, labels } = batch(5, 4, 10);
    expect(() => engine.forwardBackward(images, labels)).toThrow(ThreadError);
    await expect
      .poll(() => {
        try {
          engine.forward(images);
          return 'ran';
        } catch (error) {
          return (error as Error).message;
        }
      })
      .toMatch(/parallel training: worker 1: .*(offset|range|bounds)/i);
    expect(() => engine.forward(images)).toThrow(TrainingWorkerError);
    await engine.dispose();
  });
});
