/**
 * The optimiser against PyTorch (fixtures from scripts/make_grad_fixtures.py): SGD steps,
 * learning-rate schedules and gradient clipping.
 */
import { describe, expect, it } from 'vitest';
import { ShuffleNetError } from '../src/errors.js';
import { clipGradientNorm, learningRate, Sgd, type ScheduleConfig } from '../src/optim/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const fixture = loadFixture('optim.safetensors');
const sgdMeta = JSON.parse(fixture.metadata['sgd']!) as {
  steps: number;
  lrs: number[];
  configs: { name: string; momentum: number; nesterov: boolean; weightDecay: number }[];
};
const names = ['fc.weight', 'bn.bias', 'conv.weight'];

describe('SGD matches torch.optim.SGD', () => {
  for (const c of sgdMeta.configs) {
    it(`${c.name}: momentum ${c.momentum}, nesterov ${c.nesterov}, weight decay ${c.weightDecay} (not on 1-D)`, () => {
      const params = new Map(names.map((n) => [n, get(fixture, `sgd/initial/${n}`).clone()]));
      const sgd = new Sgd(params, { lr: 1, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay });
      for (let step = 0; step < sgdMeta.steps; step++) {
        const grads = new Map(names.map((n) => [n, get(fixture, `sgd/grad${step}/${n}`)]));
        sgd.step(grads, sgdMeta.lrs[step]);
        for (const n of names) {
          const expected = get(fixture, `sgd/${c.name}/step${step}/${n}`);
          expect(maxAbsDiff(params.get(n)!, expected) / maxAbs(expected), `${n} after step ${step}`).toBeLessThan(1e-6);
        }
      }
    });
  }

  it('decays 1-D parameters when told to, and the difference shows', () => {
    const make = () => new Map([['bias', Tensor.filled([2], 1)]]);
    const skipped = make();
    const decayed = make();
    const grads = new Map([['bias', Tensor.zeros([2])]]);
    new Sgd(skipped, { lr: 0.1, momentum: 0, weightDecay: 0.5 }).step(grads);
    new Sgd(decayed, { lr: 0.1, momentum: 0, weightDecay: 0.5, decays: () => true }).step(grads);
    expect(Array.from(skipped.get('bias')!.data)).toEqual([1, 1]);
    expect(decayed.get('bias')!.data[0]).toBeCloseTo(0.95, 6);
  });

  it('refuses bad settings and foreign gradients', () => {
    const params = new Map([['w', Tensor.zeros([2, 2])]]);
    expect(() => new Sgd(params, { lr: -1 })).toThrow(ShuffleNetError);
    expect(() => new Sgd(params, { lr: 0.1, momentum: 1 })).toThrow(/momentum must be in \[0, 1\)/);
    expect(() => new Sgd(params, { lr: 0.1, momentum: 0, nesterov: true })).toThrow(/Nesterov/);
    const sgd = new Sgd(params, { lr: 0.1 });
    expect(() => sgd.step(new Map([['x', Tensor.zeros([2, 2])]]))).toThrow(/unknown parameter "x"/);
    expect(() => sgd.step(new Map([['w', Tensor.zeros([4])]]))).toThrow(/gradient of "w" has shape \[4\]/);
  });

  it('saves and restores its momentum, continuing exactly', () => {
    const run = (resumeAt: number | null): Float32Array => {
      let params = new Map([['w', Tensor.from([3], [1, -2, 3])]]);
      let sgd = new Sgd(params, { lr: 0.1, momentum: 0.9, nesterov: true });
      for (let t = 0; t < 6; t++) {
        if (t === resumeAt) {
          const state = sgd.state();
          params = new Map([['w', params.get('w')!.clone()]]);
          sgd = new Sgd(params, { lr: 0.1, momentum: 0.9, nesterov: true });
          sgd.loadState(state);
        }
        sgd.step(new Map([['w', Tensor.from([3], [t, 1 - t, 0.5])]]));
      }
      return params.get('w')!.data;
    };
    expect(run(3)).toEqual(run(null));
  });
});

describe('schedules match torch.optim.lr_scheduler', () => {
  const s = JSON.parse(fixture.metadata['schedules']!) as Record<string, number[]> & {
    total: number;
    base: number;
    warmup: number;
    warmupStartFactor: number;
  };
  const cases: [string, Partial<ScheduleConfig>][] = [
    ['linear', { kind: 'linear' }],
    ['cosine', { kind: 'cosine' }],
    ['warmup_cosine', { kind: 'cosine', warmupSteps: s.warmup, warmupStartFactor: s.warmupStartFactor }],
    ['warmup_linear', { kind: 'linear', warmupSteps: s.warmup, warmupStartFactor: s.warmupStartFactor }],
  ];
  for (const [name, config] of cases) {
    it(`${name} at every step of ${s.total}`, () => {
      const full = { lr: s.base, totalSteps: s.total, kind: 'linear' as const, ...config };
      s[name]!.forEach((expected, step) => {
        expect(Math.abs(learningRate(full, step) - expected), `step ${step}`).toBeLessThan(1e-6 * s.base);
      });
    });
  }

  it('ends at 0 for linear and cosine, stays for constant', () => {
    expect(learningRate({ lr: 0.1, totalSteps: 10, kind: 'linear' }, 10)).toBe(0);
    expect(learningRate({ lr: 0.1, totalSteps: 10, kind: 'cosine' }, 10)).toBeCloseTo(0, 12);
    expect(learningRate({ lr: 0.1, totalSteps: 10, kind: 'constant', warmupSteps: 2 }, 5)).toBe(0.1);
  });

  it('refuses a warm-up as long as the run', () => {
    expect(() => learningRate({ lr: 0.1, totalSteps: 10, kind: 'linear', warmupSteps: 10 }, 0)).toThrow(/warmupSteps/);
    expect(() => learningRate({ lr: 0.1, totalSteps: 0, kind: 'linear' }, 0)).toThrow(/totalSteps/);
  });
});

describe('gradient clipping matches torch.nn.utils.clip_grad_norm_', () => {
  const cases = JSON.parse(fixture.metadata['clip']!) as { name: string; maxNorm: number; count: number }[];
  for (const c of cases) {
    it(`${c.name} (max norm ${c.maxNorm})`, () => {
      const grads = Array.from({ length: c.count }, (_, i) => get(fixture, `${c.name}/grad${i}`).clone());
      const norm = clipGradientNorm(grads, c.maxNorm);
      const expectedNorm = get(fixture, `${c.name}/norm`).data[0]!;
      expect(Math.abs(norm - expectedNorm) / expectedNorm).toBeLessThan(1e-6);
      grads.forEach((g, i) => {
        const expected = get(fixture, `${c.name}/clipped${i}`);
        expect(maxAbsDiff(g, expected) / maxAbs(expected)).toBeLessThan(1e-6);
      });
    });
  }

  it('leaves non-finite gradients alone and reports the norm', () => {
    const g = Tensor.from([2], [Infinity, 1]);
    expect(clipGradientNorm([g], 1)).toBe(Infinity);
    expect(g.data[1]).toBe(1);
  });
});
