/** Inference sessions: threads, batches, concurrency and dispose, against the reference runGraph. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runGraph } from '../src/graph/execute.js';
import { kernelVariant } from '../src/kernels/wasm/module.js';
import { createModel } from '../src/models/registry.js';
import { createNodeSession } from '../src/node/session.js';
import { createSession, SessionError, type Session, type WorkerPort } from '../src/runtime/session.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { randomiseRunningStatistics, worstRelative as relativeToScale } from './helpers/compare.js';

/** The output's error over its scale (see helpers/compare.ts), once its shape is right. */
function worstRelative(actual: Tensor, expected: Tensor): number {
  expect(actual.shape).toEqual(expected.shape);
  return relativeToScale(actual, expected);
}

const run = promisify(execFile);

function randomInput(shape: number[], random: Random): Tensor {
  const t = new Tensor(shape);
  t.data.forEach((_, i) => (t.data[i] = random.normal()));
  return t;
}

const random = new Random(5);
// A small ShuffleNet (g=3, 0.5×, 10 classes) at 32×32: every kind of fused step, cheap reference.
const model = createModel('shufflenet_v1_g3_0.5x', { numClasses: 10, smallInput: true });
const graph = model.trace([1, 3, 32, 32]);
randomiseRunningStatistics(graph, random);
const sessions: Session[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.dispose()));
});

async function open(threads: number, parallelism: 'intra' | 'batch' = 'intra'): Promise<Session> {
  const session = await createNodeSession(graph, { threads, parallelism });
  sessions.push(session);
  return session;
}

describe('createSession', () => {
  for (const [threads, parallelism] of [
    [1, 'intra'],
    [2, 'intra'],
    [2, 'batch'],
  ] as const) {
    it(`equals runGraph for batch 1 and batch 5 at ${threads} thread(s), ${parallelism}`, async () => {
      const session = await open(threads, parallelism);
      expect(session.threads).toBe(threads);
      expect(session.notes).toBe('');
      // Its kernel build: an intra-op threaded plan runs the shared-memory build; one thread and
      // each batch worker run the build this process validates (workers report theirs).
      expect(session.variant).toBe(threads > 1 && parallelism === 'intra' ? 'simd-shared' : kernelVariant());
      for (const batch of [1, 5]) {
        const input = randomInput([batch, 3, 32, 32], random);
        const expected = runGraph(model.trace([batch, 3, 32, 32]), input);
        expect(worstRelative(await session.run(input), expected)).toBeLessThanOrEqual(1e-4);
      }
    });

    it(`gives 20 concurrent callers their own results at ${threads} thread(s), ${parallelism}`, async () => {
      const session = await open(threads, parallelism);
      const inputs = Array.from({ length: 20 }, (_, i) => randomInput([1 + (i % 3), 3, 32, 32], random));
      const outputs = await Promise.all(inputs.map((x) => session.run(x)));
      inputs.forEach((x, i) => {
        expect(worstRelative(outputs[i]!, runGraph(model.trace([...x.shape]), x))).toBeLessThanOrEqual(1e-4);
      });
      // Distinct inputs give distinct logits, so a swapped result could not pass.
      expect(outputs[0]!.data[0]).not.toBe(outputs[3]!.data[0]);
    });
  }

  it('takes a Module with an input shape, and rejects a wrong input shape clearly', async () => {
    const session = await createSession(model, { inputShape: [3, 32, 32] });
    sessions.push(session);
    const input = randomInput([2, 3, 32, 32], random);
    expect(worstRelative(await session.run(input), runGraph(model.trace([2, 3, 32, 32]), input))).toBeLessThanOrEqual(
      1e-4,
    );
    await expect(session.run(new Tensor([1, 3, 16, 16]))).rejects.toThrow(/\[1, 3, 16, 16\].*\[N, 3, 32, 32\]/);
    const threaded = await open(2);
    await expect(threaded.run(new Tensor([1, 3, 16, 16]))).rejects.toThrow(/\[N, 3, 32, 32\]/);
  });

  it('runs single-threaded and says why without workers or without cross-origin isolation', async () => {
    const noFactory = await createSession(graph, { threads: 2 });
    expect(noFactory.threads).toBe(1);
    expect(noFactory.notes).toMatch(/single-threaded.*spawnWorker/);
    const scope = globalThis as { crossOriginIsolated?: boolean };
    let spawned = 0;
    const spawnWorker = (): WorkerPort => {
      spawned++;
      throw new Error('must not spawn');
    };
    scope.crossOriginIsolated = false;
    try {
      const page = await createSession(graph, { threads: 2, spawnWorker });
      expect(page.threads).toBe(1);
      expect(page.notes).toMatch(/cross-origin isolated/);
      const input = randomInput([1, 3, 32, 32], random);
      expect(worstRelative(await page.run(input), runGraph(graph, input))).toBeLessThanOrEqual(1e-4);
    } finally {
      delete scope.crossOriginIsolated;
    }
    expect(spawned).toBe(0);
    await expect(createSession(graph, { threads: 0 })).rejects.toThrow(SessionError);
  });

  for (const threads of [1, 2]) {
    it(`dispose makes later calls fail clearly and rejects pending runs (${threads} thread(s))`, async () => {
      const session = await createNodeSession(graph, { threads });
      const input = randomInput([4, 3, 32, 32], random);
      // A run still queued when dispose() is called rejects; it never runs on a freed plan.
      const pending = expect(session.run(input)).rejects.toThrow(/disposed/);
      await session.dispose();
      await pending;
      expect(session.threads).toBe(threads); // still says how it ran
      await expect(session.run(input)).rejects.toThrow(SessionError);
      await expect(session.run(input)).rejects.toThrow(/disposed/);
      await expect(session.stats()).rejects.toThrow(/disposed/);
      await session.dispose(); // twice is harmless
    });
  }

  it('does not grow memory or workers over 1,000 runs at each of 1 and 2 threads', async () => {
    for (const [threads, parallelism, workers] of [
      [1, 'intra', 0],
      [2, 'intra', 1], // the calling thread and one helper
    ] as const) {
      const session = await open(threads, parallelism);
      const input = randomInput([1, 3, 32, 32], random);
      await session.run(input);
      const before = await session.stats();
      expect(before.workers).toBe(workers);
      for (let i = 0; i < 1000; i++) await session.run(input);
      expect(await session.stats()).toEqual(before);
    }
  });

  it('from the built dist/: workers from dist/node, and the process exits after dispose', async () => {
    const dist = fileURLToPath(new URL('../dist/', import.meta.url));
    const script = `
      import { createModel } from ${JSON.stringify(dist + 'index.js')};
      import { createNodeSession } from ${JSON.stringify(dist + 'node/index.js')};
      const model = createModel('shufflenet_v1_g3_0.5x', { numClasses: 10, smallInput: true });
      const session = await createNodeSession(model, { threads: 2, inputShape: [3, 32, 32] });
      const out = await session.run(new (await import(${JSON.stringify(dist + 'index.js')})).Tensor([3, 3, 32, 32]));
      console.log(session.threads, (await session.stats()).workers, out.shape.join('x'));
      await session.dispose();`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
    expect(stdout.trim()).toBe('2 1 3x10'); // 2 threads: the calling one and 1 helper worker
  });
});
