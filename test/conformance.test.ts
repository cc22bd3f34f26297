/**
 * Conformance: every executor on the same small graphs, against PyTorch.
 *
 * The cases (scripts/make_conformance_fixtures.py, `npm run fixtures:conformance`) sweep every op
 * over its attributes: conv2d over groups 1–8, dilation 1–3, strides 1–2, asymmetric padding, bias
 * on and off, sizes 1–15 and channel counts that are not multiples of 4 or 8, plus the shapes the
 * fast kernels specialise; batch norm in both modes, ReLU, add, concat, channel shuffle, max and
 * average pools, global pool, flatten, linear, channel slices, and the chains the inference plan
 * fuses (ShuffleNet V2's split, branch, concat and shuffle among them). Each case
 * runs through
 *
 *   - runGraph (the reference executor), in inference mode,
 *   - the inference plan at 1 thread (on the build this Node picks: relaxed SIMD with
 *     --experimental-wasm-relaxed-simd, SIMD128 otherwise) and at 2 threads (the shared build),
 *     on the team and in a solo run (threads: 'auto' running the leader alone),
 *   - the tape: training-mode forward, running statistics, loss and ∂loss/∂(every parameter, input),
 *   - the training plan: the same forward and running statistics, then loss and parameter gradients,
 *
 * and each either matches PyTorch within its op's tolerance or refuses with a ShuffleNetError that
 * names a node of the case. A silent wrong answer fails the test named after the case and executor.
 *
 * Int8: each case is also quantized (minmax over its own input's samples) and run on the int8 plan
 * at 1 thread (the build this Node picks) and at 2 threads (the shared build), which must give
 * the reference int8 executor's (runQuantized's) output bit for bit, or refuse by name.
 *
 * The loss is the cross-entropy of the training-mode output flattened to [N, K] against seeded
 * labels (the only loss the training plan takes); its gradient is the upstream gradient.
 *
 * Run on the relaxed build too:
 *   SHUFFLENET_EXPECT_VARIANT=relaxed-simd npx vitest run test/conformance.test.ts --execArgv=--experimental-wasm-relaxed-simd
 * With SHUFFLENET_EXPECT_VARIANT set (simd | relaxed-simd), the suite fails unless the
 * single-thread plans and the training plans run that build.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backward, crossEntropy, forwardWithTape } from '../src/autograd/index.js';
import { ShuffleNetError } from '../src/errors.js';
import { GraphBuilder, type Value } from '../src/graph/builder.js';
import { runGraph } from '../src/graph/execute.js';
import type { Graph } from '../src/graph/graph.js';
import { kernelVariant, type KernelVariant } from '../src/kernels/wasm/module.js';
import { spawnNodeWorker } from '../src/node/session.js';
import { getOp, type Conv2dAttrs } from '../src/ops/index.js';
import { compilePlan } from '../src/runtime/plan.js';
import { Calibrator } from '../src/runtime/quant/calibrate.js';
import { runQuantizedBatch } from '../src/runtime/quant/execute.js';
import { QuantizedPlan } from '../src/runtime/quant/plan.js';
import { startHelpers, type SpawnWorker, type WorkerPort } from '../src/runtime/session.js';
import { Tensor } from '../src/tensor/tensor.js';
import { TrainingPlan } from '../src/train/plan.js';
import { elementwiseMismatch, type Tolerance } from './helpers/compare.js';
import { get, loadFixture, maxAbs } from './helpers/fixtures.js';

interface NodeSpec {
  id: string;
  op: string;
  inputs: string[];
  params: string[];
  attrs: Record<string, unknown>;
}

interface ConformanceCase {
  name: string;
  /** The op under test (`conv2d`, `avgPool2d`, …) or `chain`: which tolerance applies. */
  family: string;
  input: number[];
  nodes: NodeSpec[];
  output: string;
  trainable: string[];
  buffers: string[];
}

const fixture = loadFixture('conformance.safetensors');
const cases = JSON.parse(fixture.metadata['cases']!) as ConformanceCase[];
const expectedVariant = process.env['SHUFFLENET_EXPECT_VARIANT'] as KernelVariant | undefined;

/**
 * Tolerances, |ours − PyTorch| ≤ atol · scale + rtol · |expected| per element, where scale is the
 * tensor's max |expected| (for gradients at least 1% of the case's largest gradient, see below).
 *
 * Forward. PyTorch and our kernels both compute in float32 but sum in other orders (the relaxed
 * build fuses multiply-adds; the inference plan folds batch norm into the weights, one more
 * rounding). A dot product of K ≤ 5 · 9 = 45 terms then differs by about √K · 2⁻²⁴ ≈ 4e-7 of its
 * terms' magnitude: 1e-6 of the scale and of each element (observed worst: 2e-7). Batch norm and
 * the chains round the batch statistics and the folded weights once more: 2e-6.
 *
 * Gradients pass through the cross-entropy's softmax and sums over N·H·W ≤ 450 positions that
 * cancel: the bias gradient of a one-channel convolution in front of shift-invariant ops is zero up
 * to rounding, as is a bias in front of training-mode batch norm. That rounding is relative to the
 * case's largest gradient, hence the floor of every gradient's scale at 1% of it. Convolutions and
 * the ops that move values: 2e-5 (observed worst 5e-6). Training-mode batch norm's Σ∂y, Σ∂y·x̂ over
 * N·H·W: 1e-4 (observed 3e-5). Pools behind a one-channel convolution, whose bias gradient sums 420
 * cancelling terms: 3e-4 (observed 1.1e-4). A wrong attribute is off by O(1) of the scale.
 */
const convLike = { forward: { atol: 1e-6, rtol: 1e-6 }, gradient: { atol: 2e-5, rtol: 2e-5 } };
const tolerances: Record<string, { forward: Tolerance; gradient: Tolerance }> = {
  conv2d: convLike,
  linear: convLike,
  relu: convLike,
  add: convLike,
  concat: convLike,
  channelShuffle: convLike,
  globalAvgPool: convLike,
  flatten: convLike,
  slice: convLike,
  maxPool2d: { forward: { atol: 1e-6, rtol: 1e-6 }, gradient: { atol: 3e-4, rtol: 1e-4 } },
  avgPool2d: { forward: { atol: 1e-6, rtol: 1e-6 }, gradient: { atol: 3e-4, rtol: 1e-4 } },
  batchNorm: { forward: { atol: 2e-6, rtol: 2e-6 }, gradient: { atol: 1e-4, rtol: 1e-4 } },
  chain: { forward: { atol: 2e-6, rtol: 2e-6 }, gradient: { atol: 1e-4, rtol: 1e-4 } },
  // The fast sigmoid is a float32 polynomial exp (a few ulp); behind a BN as the chains are.
  activation: { forward: { atol: 2e-6, rtol: 2e-6 }, gradient: { atol: 1e-4, rtol: 1e-4 } },
};
/** The loss is one number, a mean over N rows of a log-sum-exp: float32 rounding (observed 1.2e-7). */
const lossTolerance: Tolerance = { atol: 0, rtol: 1e-6 };
/** Running statistics: the batch mean and unbiased variance, then one blend (observed 2.4e-7). */
const runningTolerance: Tolerance = { atol: 2e-6, rtol: 2e-6 };

const tensor = (c: ConformanceCase, key: string): Tensor => get(fixture, `${c.name}/${key}`);
const trainOutput = (c: ConformanceCase): Tensor => fixture.tensors.get(`${c.name}/train`) ?? tensor(c, 'eval'); // no batch norm: the same output

/**
 * The case as a Graph, with fresh copies of its parameters (training-mode executors update the
 * running statistics in place). Training mode turns batch norm into batchNormTraining and
 * flattens the output to [N, K] for the cross-entropy.
 */
function buildGraph(c: ConformanceCase, mode: 'inference' | 'training', batch?: number): Graph {
  const g = new GraphBuilder(batch === undefined ? c.input : [batch, ...c.input.slice(1)], 'x');
  const values = new Map<string, Value>([['x', g.input]]);
  for (const node of c.nodes) {
    const params = node.params.map((p) => g.param(p, tensor(c, `p/${p}`).clone(), !c.buffers.includes(p)));
    let op = node.op;
    let attrs: Record<string, unknown> = node.attrs;
    if (op === 'batchNorm') {
      op = mode === 'training' ? 'batchNormTraining' : 'batchNorm';
      attrs = mode === 'training' ? { eps: attrs['eps'], momentum: attrs['momentum'] } : { eps: attrs['eps'] };
    }
    const inputs = [...node.inputs.map((v) => values.get(v)!), ...params];
    values.set(node.id, g.apply(getOp(op), inputs, attrs as never, node.id));
  }
  let output = values.get(c.output)!;
  if (mode === 'training' && output.shape.length !== 2)
    output = g.apply(getOp('flatten'), [output], {}, 'loss.flatten');
  return g.finish(output);
}

/** Refusals seen, printed at the end so that a refused case is visible without failing. */
const refusals: string[] = [];

/**
 * Runs an executor: its result is checked, or its error must be a ShuffleNetError naming a node of
 * the case (a typed refusal). Anything else fails.
 */
async function conform<T>(
  c: ConformanceCase,
  executor: string,
  run: () => T | Promise<T>,
  check: (result: T) => void,
): Promise<void> {
  let result: T;
  try {
    result = await run();
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    expect(error instanceof ShuffleNetError, `${executor} threw an untyped error: ${message}`).toBe(true);
    const named = c.nodes.some((n) => message.includes(n.id));
    expect(
      named,
      `${executor} refused without naming a node (${c.nodes.map((n) => n.id).join(', ')}): ${message}`,
    ).toBe(true);
    refusals.push(`${c.name} · ${executor}: ${message}`);
    return;
  }
  check(result);
}

function expectClose(actual: Tensor, expected: Tensor, tolerance: Tolerance, what: string, floor = 0): void {
  const mismatch = elementwiseMismatch(actual, expected, tolerance, floor);
  expect(mismatch, `${what}: ${mismatch}`).toBeNull();
}

function expectOutput(actual: Tensor, expected: Tensor, tolerance: Tolerance, flattened = false): void {
  if (flattened) expect(actual.shape).toEqual([expected.shape[0], expected.size / expected.shape[0]!]);
  else expect(actual.shape).toEqual(expected.shape);
  expectClose(actual, expected, tolerance, 'output');
}

function expectRunningStatistics(c: ConformanceCase, graph: Graph): void {
  for (const name of c.buffers) {
    expectClose(graph.params.get(name)!.tensor, tensor(c, `running/${name}`), runningTolerance, name);
  }
}

/**
 * The largest gradient of the case: the floor of every gradient's scale, since a gradient that
 * cancels to zero (a bias in front of a training-mode batch norm) carries rounding of that size.
 */
function gradientScale(c: ConformanceCase): number {
  return Math.max(...['x', ...c.trainable].map((name) => maxAbs(tensor(c, `grad/${name}`))));
}

function expectGradients(c: ConformanceCase, gradients: ReadonlyMap<string, Tensor>, tolerance: Tolerance): void {
  expect([...gradients.keys()].sort()).toEqual([...c.trainable].sort());
  const floor = 1e-2 * gradientScale(c);
  for (const name of c.trainable) {
    expectClose(gradients.get(name)!, tensor(c, `grad/${name}`), tolerance, `∂loss/∂${name}`, floor);
  }
}

const labelsOf = (c: ConformanceCase): number[] => Array.from(tensor(c, 'labels').data);
const lossOf = (c: ConformanceCase): Tensor => tensor(c, 'loss');

/**
 * One helper thread for every 2-thread plan: a worker serves one plan until the plan is disposed,
 * then takes the next, so the suite spawns one worker instead of one per case. The port handed to
 * startHelpers forwards to that worker and leaves it running when "terminated".
 */
let helperWorker: WorkerPort | null = null;
let handlers: { message: (m: unknown) => void; error: (e: Error) => void } | null = null;
const reusedHelper: SpawnWorker = () => {
  if (helperWorker === null) {
    helperWorker = spawnNodeWorker();
    helperWorker.listen(
      (m) => handlers?.message(m),
      (e) => handlers?.error(e),
    );
  }
  const worker = helperWorker;
  return {
    postMessage: (message, transfer) => worker.postMessage(message, transfer),
    listen: (message, error) => {
      handlers = { message, error };
    },
    terminate: () => undefined,
  };
};

afterAll(async () => {
  await helperWorker?.terminate();
  if (refusals.length > 0) console.log(`conformance: ${refusals.length} typed refusals\n  ${refusals.join('\n  ')}`);
});

describe('conformance: the WASM build', () => {
  it(`runs the ${kernelVariant({})} build${expectedVariant ? ` (expected: ${expectedVariant})` : ''}`, () => {
    if (expectedVariant !== undefined) expect(kernelVariant({})).toBe(expectedVariant);
    expect(cases.length).toBeGreaterThan(100);
  });

  it('covers every op and every conv attribute value the suite promises', () => {
    const nodes = cases.flatMap((c) => c.nodes);
    const ops = new Set(nodes.map((n) => n.op));
    const promised = [
      'conv2d',
      'batchNorm',
      'relu',
      'add',
      'concat',
      'channelShuffle',
      'slice',
      'maxPool2d',
      'avgPool2d',
    ];
    expect(promised.concat(['globalAvgPool', 'flatten', 'linear']).filter((op) => !ops.has(op))).toEqual([]);
    const convs = nodes.filter((n) => n.op === 'conv2d').map((n) => n.attrs as unknown as Conv2dAttrs);
    const seen = (f: (a: Conv2dAttrs) => number[]): number[] => [...new Set(convs.flatMap(f))].sort((a, b) => a - b);
    expect(seen((a) => [a.groups]).filter((g) => g <= 8)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]); // and depthwise above
    expect(seen((a) => [...a.dilation])).toEqual([1, 2, 3]);
    expect(seen((a) => [...a.stride])).toEqual([1, 2]);
    expect(convs.some((a) => new Set(a.padding).size > 1)).toBe(true); // asymmetric padding
    const sizes = new Set(cases.flatMap((c) => c.input.slice(2)));
    expect(Array.from({ length: 15 }, (_, i) => i + 1).filter((s) => !sizes.has(s))).toEqual([]);
  });
});

for (const c of cases) {
  const tolerance = tolerances[c.family];
  describe(c.name, () => {
    it('has a tolerance', () => {
      expect(tolerance, `no tolerance for family ${c.family}`).toBeDefined();
    });
    const { forward, gradient } = tolerance!;

    it('runGraph', () =>
      conform(
        c,
        'runGraph',
        () => runGraph(buildGraph(c, 'inference'), tensor(c, 'x')),
        (y) => expectOutput(y, tensor(c, 'eval'), forward),
      ));

    it('inference plan, 1 thread', () =>
      conform(
        c,
        'inference plan (1 thread)',
        async () => {
          const plan = await compilePlan(buildGraph(c, 'inference'));
          if (expectedVariant !== undefined) expect(plan.summary.variant).toBe(expectedVariant);
          return plan.run(tensor(c, 'x'));
        },
        (y) => expectOutput(y, tensor(c, 'eval'), forward),
      ));

    /** The case on a 2-thread plan with its helper; `solo` runs it as threads: 'auto' running the leader alone. */
    const twoThreads = async (solo: boolean): Promise<Tensor> => {
      const plan = await compilePlan(buildGraph(c, 'inference'), { threads: 2 });
      expect(plan.summary.variant).toBe('simd-shared'); // threads share one memory: the shared build
      const stop = await startHelpers(plan, reusedHelper);
      try {
        // The policy's first sample is its solo warm-up: the leader runs every unit alone.
        if (solo) expect(plan.useAuto().next()).toBe(false);
        return plan.run(tensor(c, 'x'));
      } finally {
        await stop();
      }
    };

    it('inference plan, 2 threads', () =>
      conform(
        c,
        'inference plan (2 threads)',
        () => twoThreads(false),
        (y) => expectOutput(y, tensor(c, 'eval'), forward),
      ));

    it('inference plan, 2 threads, a solo run (threads: auto)', () =>
      conform(
        c,
        'inference plan (2 threads, solo)',
        () => twoThreads(true),
        (y) => expectOutput(y, tensor(c, 'eval'), forward),
      ));

    /** The case quantized (minmax over its input's samples), on the int8 plan and the reference int8 executor. */
    const int8 = async (threads: number): Promise<{ got: Tensor; expected: Tensor }> => {
      const x = tensor(c, 'x');
      const graph = buildGraph(c, 'inference', 1);
      const batch = x.shape[0]!;
      const per = x.size / batch;
      const samples = Array.from(
        { length: batch },
        (_, n) => new Tensor(graph.input.shape, x.data.slice(n * per, (n + 1) * per)),
      );
      const calibrator = new Calibrator(graph, { method: 'minmax', images: batch });
      for (const sample of samples) calibrator.observe(sample);
      const network = calibrator.finish();
      const plan = await QuantizedPlan.create(network, { threads });
      const stop = threads > 1 ? await startHelpers(plan, reusedHelper) : null;
      try {
        return { got: plan.runBatch(x), expected: runQuantizedBatch(network, x) };
      } finally {
        await stop?.();
      }
    };
    for (const threads of [1, 2]) {
      it(`int8 plan, ${threads} thread${threads > 1 ? 's' : ''}, against the int8 reference executor`, () =>
        conform(
          c,
          `int8 plan (${threads} thread${threads > 1 ? 's' : ''})`,
          () => int8(threads),
          ({ got, expected }) => {
            expect(got.shape).toEqual(expected.shape);
            expect([...got.data], 'int8 plan against runQuantized, bit for bit').toEqual([...expected.data]);
          },
        ));
    }

    it('tape forward', () => {
      const graph = buildGraph(c, 'training');
      return conform(
        c,
        'tape forward',
        () => forwardWithTape(graph, tensor(c, 'x')).output,
        (y) => {
          expectOutput(y, trainOutput(c), forward, true);
          expectRunningStatistics(c, graph);
        },
      );
    });

    it('tape gradients', () =>
      conform(
        c,
        'tape gradients',
        () => {
          const tape = forwardWithTape(buildGraph(c, 'training'), tensor(c, 'x'), { runningStatistics: 'frozen' });
          const { loss, gradient: upstream } = crossEntropy(tape.output, labelsOf(c));
          return { loss, ...backward(tape, upstream, { inputGradient: true }) };
        },
        ({ loss, parameters, input }) => {
          expectClose(Tensor.from([1], [loss]), lossOf(c), lossTolerance, 'loss');
          expectGradients(c, parameters, gradient);
          expectClose(input!, tensor(c, 'grad/x'), gradient, '∂loss/∂x', 1e-2 * gradientScale(c));
        },
      ));

    it('training plan forward', () => {
      const graph = buildGraph(c, 'training');
      return conform(
        c,
        'training plan forward',
        async () => (await TrainingPlan.compile(graph)).forward(tensor(c, 'x')),
        (y) => {
          if (expectedVariant !== undefined) expect(kernelVariant({})).toBe(expectedVariant);
          expectOutput(y, trainOutput(c), forward, true);
          expectRunningStatistics(c, graph);
        },
      );
    });

    it('training plan gradients', () =>
      conform(
        c,
        'training plan gradients',
        async () =>
          (await TrainingPlan.compile(buildGraph(c, 'training'))).forwardBackward(tensor(c, 'x'), labelsOf(c)),
        ({ loss, gradients }) => {
          expectClose(Tensor.from([1], [loss]), lossOf(c), lossTolerance, 'loss');
          expectGradients(c, gradients, gradient);
        },
      ));
  });
}
