/**
 * Every op's gradient rule against PyTorch (fixtures from scripts/make_grad_fixtures.py) and
 * against central finite differences of our own forward, on odd shapes.
 */
import { describe, expect, it } from 'vitest';
import { createModel, modelNames } from '../src/models/registry.js';
import { backward, crossEntropy, differentiableOps, forwardWithTape, getGradientRule } from '../src/autograd/index.js';
import { UnknownNameError, ShapeError } from '../src/errors.js';
import { runGraph } from '../src/graph/execute.js';
import { opTypes, type OpAttrs, type OpType } from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';
import { centralDifference, project, sampleIndices, singleOpGraph } from './helpers/gradcheck.js';

const fixture = loadFixture('grads.safetensors');
const cases = JSON.parse(fixture.metadata['ops']!) as {
  name: string;
  op: OpType;
  attrs: OpAttrs[OpType];
  inputs: number;
  differentiable: number;
}[];
const losses = JSON.parse(fixture.metadata['losses']!) as { name: string; labelSmoothing: number }[];

function relativeError(actual: Tensor, expected: Tensor): number {
  return maxAbsDiff(actual, expected) / Math.max(maxAbs(expected), 1e-6);
}

/** Fresh copies of a case's inputs (the batch-norm running statistics are updated in place). */
function caseInputs(name: string, count: number): Tensor[] {
  return Array.from({ length: count }, (_, i) => get(fixture, `${name}/in${i}`).clone());
}

/** Forward with tape and backward of Σ r ⊙ y: gradients of every differentiable input, in order. */
function analyticGradients(c: (typeof cases)[number], inputs: Tensor[]): { output: Tensor; grads: Tensor[] } {
  const trainable = inputs.map((_, i) => i < c.differentiable);
  const graph = singleOpGraph(c.op, inputs, c.attrs, trainable);
  const tape = forwardWithTape(graph, inputs[0]!, { runningStatistics: 'frozen' });
  const gradOut = get(fixture, `${c.name}/gradOut`);
  const { parameters, input } = backward(tape, gradOut, { inputGradient: true });
  const grads = [input!];
  for (let i = 1; i < c.differentiable; i++) grads.push(parameters.get(`p${i}`)!);
  return { output: tape.output, grads };
}

describe('gradient rules', () => {
  it('exist for every op of the family, and the fixtures cover every one', () => {
    // Generic ops that only imported ONNX graphs use have no gradient (yet); the list is explicit so
    // that a new op must be given a rule or added here on purpose.
    const importOnly = ['gemm', 'matmul', 'reshape', 'transpose'];
    expect(differentiableOps().sort()).toEqual(
      opTypes()
        .filter((op) => !importOnly.includes(op))
        .sort(),
    );
    const used = new Set<string>();
    for (const name of modelNames()) {
      const model = createModel(name, { initialize: false });
      for (const node of model.trace([1, 3, 224, 224], { training: true }).nodes) used.add(node.op);
    }
    for (const op of used) expect(differentiableOps(), op).toContain(op);
    const covered = new Set(cases.map((c) => c.op));
    for (const op of differentiableOps()) expect(covered, op).toContain(op);
    expect(() => getGradientRule('nonsense')).toThrow(UnknownNameError);
  });
});

describe('op gradients match PyTorch', () => {
  for (const c of cases) {
    it(`${c.name} (${c.op})`, () => {
      const inputs = caseInputs(c.name, c.inputs);
      const { output, grads } = analyticGradients(c, inputs);
      expect(relativeError(output, get(fixture, `${c.name}/out`))).toBeLessThan(1e-5);
      grads.forEach((g, i) => {
        const expected = get(fixture, `${c.name}/grad${i}`);
        expect(g.shape).toEqual(expected.shape);
        expect(relativeError(g, expected), `input ${i}`).toBeLessThan(1e-4);
      });
    });
  }

  for (const c of cases.filter((k) => k.op === 'batchNormTraining')) {
    it(`${c.name}: running statistics after one training forward`, () => {
      const inputs = caseInputs(c.name, c.inputs);
      const graph = singleOpGraph(c.op, inputs, c.attrs, [true, true, true, false, false]);
      forwardWithTape(graph, inputs[0]!);
      expect(relativeError(inputs[3]!, get(fixture, `${c.name}/running_mean_after`))).toBeLessThan(1e-5);
      expect(relativeError(inputs[4]!, get(fixture, `${c.name}/running_var_after`))).toBeLessThan(1e-5);
    });
  }

  for (const l of losses) {
    it(`cross-entropy ${l.name} (label smoothing ${l.labelSmoothing})`, () => {
      const labels = Array.from(get(fixture, `${l.name}/labels`).data);
      const { loss, gradient } = crossEntropy(get(fixture, `${l.name}/logits`), labels, {
        labelSmoothing: l.labelSmoothing,
      });
      const expected = get(fixture, `${l.name}/loss`).data[0]!;
      expect(Math.abs(loss - expected) / Math.abs(expected)).toBeLessThan(1e-5);
      expect(relativeError(gradient, get(fixture, `${l.name}/grad`))).toBeLessThan(1e-4);
    });
  }
});

/**
 * Largest disagreement between analytic and numerical gradients, relative to the largest analytic
 * gradient of that tensor, over a sample of elements. Non-smooth ops (ReLU, clip, max pool) are
 * checked away from their kinks: an element whose one-sided differences disagree (a kink, or a
 * near-tie in a max, lies within h) is skipped, and at most a quarter of them may be.
 */
function finiteDifferenceError(c: (typeof cases)[number], h: number): number {
  const inputs = caseInputs(c.name, c.inputs);
  const { grads } = analyticGradients(c, inputs);
  const r = get(fixture, `${c.name}/gradOut`);
  const graph = singleOpGraph(
    c.op,
    inputs,
    c.attrs,
    inputs.map(() => false),
  );
  const loss = (): number => project(runGraph(graph, inputs[0]!), r);
  const smooth = !['relu', 'clip', 'maxPool2d'].includes(c.op);
  let worst = 0;
  let checked = 0;
  let skipped = 0;
  grads.forEach((g, i) => {
    const scale = Math.max(maxAbs(g), 1e-3);
    for (const index of sampleIndices(g.size, 40)) {
      if (!smooth) {
        const x = inputs[i]!;
        const saved = x.data[index]!;
        const center = loss();
        x.data[index] = saved + h;
        const up = loss();
        x.data[index] = saved - h;
        const down = loss();
        x.data[index] = saved;
        if (Math.abs(up - center - (center - down)) > 1e-3 * h * scale) {
          skipped++;
          continue;
        }
      }
      const numeric = centralDifference(inputs[i]!, index, h, loss);
      worst = Math.max(worst, Math.abs(numeric - g.data[index]!) / scale);
      checked++;
    }
  });
  if (skipped > checked / 3) throw new Error(`${c.name}: ${skipped} of ${checked + skipped} elements sit on kinks`);
  return worst;
}

describe('op gradients match finite differences', () => {
  for (const c of cases) {
    it(`${c.name} (${c.op})`, () => {
      // float32 forward: h = 1e-2 keeps rounding noise (~1e-7 · |L| / h) below the tolerance, and
      // the O(h²) truncation of central differences is smaller still for these smooth ops.
      expect(finiteDifferenceError(c, 1e-2)).toBeLessThan(5e-3);
    });
  }

  for (const l of losses) {
    it(`cross-entropy ${l.name}`, () => {
      const logits = get(fixture, `${l.name}/logits`).clone();
      const labels = Array.from(get(fixture, `${l.name}/labels`).data);
      const options = { labelSmoothing: l.labelSmoothing };
      const { gradient } = crossEntropy(logits, labels, options);
      for (let i = 0; i < logits.size; i++) {
        const numeric = centralDifference(logits, i, 1e-2, () => crossEntropy(logits, labels, options).loss);
        expect(Math.abs(numeric - gradient.data[i]!)).toBeLessThan(1e-3 * Math.max(maxAbs(gradient), 1e-3));
      }
    });
  }
});

describe('bad input', () => {
  it('refuses labels out of range, a wrong label count and bad smoothing', () => {
    const logits = Tensor.zeros([2, 3]);
    expect(() => crossEntropy(logits, [0, 3])).toThrow(/label 1 is 3 but must be an integer in \[0, 3\)/);
    expect(() => crossEntropy(logits, [0, 1.5])).toThrow(ShapeError);
    expect(() => crossEntropy(logits, [0])).toThrow(/2 rows of logits but 1 labels/);
    expect(() => crossEntropy(logits, [0, 1], { labelSmoothing: 1.5 })).toThrow(/labelSmoothing/);
    expect(() => crossEntropy(Tensor.zeros([2, 3, 1]), [0, 1])).toThrow(/logits must have shape/);
  });

  it('refuses a training-mode batch norm with one value per channel, like PyTorch', () => {
    const x = Tensor.zeros([1, 2, 1, 1]);
    const stats = [1, 2, 3, 4].map(() => Tensor.zeros([2]));
    expect(() => singleOpGraph('batchNormTraining', [x, ...stats], { eps: 1e-5, momentum: 0.1 }, [])).toThrow(
      /has 1 value per channel; training needs more than 1/,
    );
  });

  it('refuses an output gradient of the wrong shape', () => {
    const x = Tensor.from([1, 3], [1, -2, 3]);
    const tape = forwardWithTape(singleOpGraph('relu', [x], {}, [false]), x);
    expect(() => backward(tape, Tensor.zeros([3]))).toThrow(
      /output gradient has shape \[3\] but the output has \[1, 3\]/,
    );
  });
});
