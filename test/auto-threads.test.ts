/**
 * `threads: 'auto'`: the policy (src/runtime/threads/auto.ts) on scripted times, then a real
 * session: whichever way a sample runs (team or leader alone), its output is the single-threaded
 * plan's, bit for bit, and the session says what it chose.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { WasmKernels } from '../src/kernels/wasm/module.js';
import { createModel } from '../src/models/registry.js';
import { createNodeSession, spawnNodeWorker } from '../src/node/session.js';
import { compilePlan } from '../src/runtime/plan.js';
import { createSession, SessionError, startHelpers, type Session } from '../src/runtime/session.js';
import {
  AutoThreads,
  BLOCK,
  MARGIN,
  MAX_PAIRS,
  MIN_PAIRS,
  PAIRS_TO_WIN,
  REPROBE_EVERY,
  REPROBE_PAIRS,
  SLOWDOWN,
  SWITCH,
  WINDOW,
} from '../src/runtime/threads/auto.js';
import { Random } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { randomiseRunningStatistics } from './helpers/compare.js';

/** Feeds `auto` samples whose time is `ms(onTeam)` until `until` holds; returns the ways run, in order. */
function drive(auto: AutoThreads, ms: (onTeam: boolean) => number, until: () => boolean): boolean[] {
  const ways: boolean[] = [];
  for (let i = 0; i < 10_000 && !until(); i++) {
    const onTeam = auto.next();
    ways.push(onTeam);
    auto.record(onTeam, ms(onTeam));
  }
  expect(until()).toBe(true);
  return ways;
}

describe('AutoThreads, the policy', () => {
  it('warms up each way once, then alternates blocks whose order flips, and picks the faster team', () => {
    const auto = new AutoThreads(2);
    expect(auto.choice).toBeNull();
    expect(auto.describe()).toMatch(/has not calibrated yet/);
    const ways = drive(
      auto,
      (team) => (team ? 5 : 7.5),
      () => auto.choice !== null,
    );
    // 12.5 ms of warm-up: 1000 ms fits many pairs of blocks, so the first probe runs MAX_PAIRS.
    const pairs = MAX_PAIRS;
    const block = (team: boolean): boolean[] => new Array<boolean>(BLOCK).fill(team);
    const alternating = Array.from({ length: pairs }, (_, i) =>
      i % 2 === 0 ? [...block(false), ...block(true)] : [...block(true), ...block(false)],
    ).flat();
    expect(ways).toEqual([false, true, ...alternating]);
    expect(auto.choice).toEqual({
      threads: 2,
      soloMs: 7.5,
      teamMs: 5,
      pairs,
      teamWon: pairs,
      atSample: 0,
      reason: 'first',
    });
    expect(auto.threads).toBe(2);
    expect(auto.next()).toBe(true);
    expect(auto.describe()).toMatch(
      /runs 2 threads: 5\.00 ms per sample on 2 threads against 7\.50 ms on 1 \(medians of 15 runs each, in alternating blocks; the team faster in 5 of 5 pairs; first calibration; 1 probe so far\)/,
    );
  });

  it('keeps one thread when the team is not faster by the margin, runs fewer pairs for a slow network, and does not count a switch', () => {
    // The first run of every block pays for the switch (a sleeping helper): it must not decide.
    const switching = new AutoThreads(2);
    let last: boolean | null = null;
    let run = 0;
    drive(
      switching,
      (team) => {
        // The first SWITCH runs of a block pay for the switch (a sleeping helper; a displaced process).
        run = last === team ? run + 1 : 0;
        const ms = run < SWITCH ? 50 : team ? 5 : 7.5;
        last = team;
        return ms;
      },
      () => switching.choice !== null,
    );
    expect(switching.choice).toMatchObject({ threads: 2, teamMs: 5, soloMs: 7.5 });

    const auto = new AutoThreads(4);
    // The team at 0.98 of one thread: within the margin, so one thread wins (the other cores stay free).
    drive(
      auto,
      (team) => (team ? 980 * 0.98 : 980),
      () => auto.choice !== null,
    );
    expect(MARGIN).toBeLessThan(0.98);
    expect(auto.choice).toMatchObject({ threads: 1, pairs: MIN_PAIRS });
    expect(auto.threads).toBe(1);
    expect(auto.next()).toBe(false);
  });

  it('probes again when the chosen way slows down, and again every REPROBE_EVERY samples', () => {
    const auto = new AutoThreads(2);
    let busy = false; // another process takes a core: the team now waits for its partner
    const ms = (team: boolean): number => (team ? (busy ? 12 : 5) : busy ? 8 : 7.5);
    drive(auto, ms, () => auto.choice !== null);
    expect(auto.choice!.threads).toBe(2);
    // Steady and quiet: no probe before REPROBE_EVERY samples.
    const start = auto.probes;
    for (let i = 0; i < REPROBE_EVERY - 1; i++) auto.record(auto.next(), ms(auto.next()));
    expect(auto.probes).toBe(start);
    busy = true;
    const ways = drive(auto, ms, () => auto.probes === start + 1);
    // The last steady sample before the load changed hit REPROBE_EVERY: a periodic probe came first,
    // measured under load, and chose one thread.
    expect(auto.choice).toMatchObject({ threads: 1, soloMs: 8, teamMs: 12, pairs: REPROBE_PAIRS, reason: 'periodic' });
    expect(ways.length).toBe(1 + 2 * BLOCK * REPROBE_PAIRS);
    // Quiet again: one thread's median does not rise, so only the periodic probe finds the team.
    busy = false;
    const quiet = drive(auto, ms, () => auto.probes === start + 2);
    expect(quiet.length).toBe(REPROBE_EVERY + 2 * BLOCK * REPROBE_PAIRS);
    expect(auto.choice).toMatchObject({ threads: 2, reason: 'periodic' });
    // Load again: the team's last WINDOW samples have a median above SLOWDOWN × 5 ms.
    busy = true;
    expect(12).toBeGreaterThan(SLOWDOWN * 5);
    const slow = drive(auto, ms, () => auto.probes === start + 3);
    expect(slow.length).toBe(WINDOW + 2 * BLOCK * REPROBE_PAIRS);
    expect(auto.choice).toMatchObject({ threads: 1, reason: 'slowdown' });
    expect(auto.describe()).toMatch(/runs 1 thread: .* re-checked at sample \d+ \(slowdown\); 4 probes so far/);
  });

  it('keeps one thread when the team is faster overall but loses too many pairs (a noisy machine)', () => {
    // Team 5 ms, solo 7.5 ms, except in the team blocks of the pairs listed, which run at 9 ms.
    const probe = (slowPairs: number[]): AutoThreads => {
      const auto = new AutoThreads(2);
      let sample = 0;
      drive(
        auto,
        (team) => {
          const pair = Math.floor((sample++ - 2) / (2 * BLOCK)); // after the two warm-up runs
          return team ? (slowPairs.includes(pair) ? 9 : 5) : 7.5;
        },
        () => auto.choice !== null,
      );
      return auto;
    };
    expect(Math.ceil(PAIRS_TO_WIN * MAX_PAIRS)).toBe(4);
    // One preempted block of five: still the team.
    expect(probe([2]).choice).toMatchObject({ threads: 2, pairs: MAX_PAIRS, teamWon: 4 });
    // Two of five: too noisy to tell, so one thread.
    const noisy = probe([1, 3]);
    expect(noisy.choice).toMatchObject({ threads: 1, teamMs: 5, soloMs: 7.5, pairs: MAX_PAIRS, teamWon: 3 });
    expect(noisy.describe()).toMatch(/runs 1 thread: .*the team faster in 3 of 5 pairs/);
  });

  it('refuses a team of fewer than 2 threads', () => {
    expect(() => new AutoThreads(1)).toThrow(/at least 2 threads/);
  });
});

describe("threads: 'auto' on a real plan", () => {
  const random = new Random(8);
  const model = createModel('shufflenet_v1_g3_0.5x', { numClasses: 10, smallInput: true });
  const graph = model.trace([1, 3, 32, 32]);
  randomiseRunningStatistics(graph, random);
  const input = (batch: number): Tensor => {
    const t = new Tensor([batch, 3, 32, 32]);
    t.data.forEach((_, i) => (t.data[i] = random.normal()));
    return t;
  };
  const sessions: Session[] = [];
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.dispose()));
  });

  it('runs samples on the team and on the leader alone, each bit-identical to the single-threaded plan', async () => {
    const single = await compilePlan(graph, await WasmKernels.create({ relaxedSimd: false }));
    const plan = await compilePlan(graph, { threads: 2 });
    const stop = await startHelpers(plan, spawnNodeWorker);
    try {
      const auto = plan.useAuto();
      expect(plan.useAuto()).toBe(auto);
      // Probing runs both ways; every sample of these batches must equal the single plan's.
      const ways: boolean[] = [];
      for (let i = 0; i < 6; i++) {
        const x = input(3);
        const before = auto.probes;
        ways.push(auto.next());
        const out = plan.run(x);
        const expected = single.run(x);
        expect(out.data.findIndex((v, j) => !Object.is(v, expected.data[j]))).toBe(-1);
        expect(auto.probes).toBeGreaterThanOrEqual(before);
      }
      expect(ways).toContain(true);
      expect(ways).toContain(false);
      plan.calibrate();
      expect(auto.choice).not.toBeNull();
      expect([1, 2]).toContain(auto.threads);
    } finally {
      plan.dispose();
      await stop();
    }
  });

  it('is the default: calibrated at creation, with its choice in notes and threads', async () => {
    const session = await createNodeSession(graph, { cores: 2 });
    sessions.push(session);
    expect(session.notes).toMatch(
      /^threads: 'auto' runs (1 thread|2 threads): [\d.]+ ms per sample on 2 threads against [\d.]+ ms on 1 \(medians of \d+ runs each, in alternating blocks; the team faster in \d of \d pairs; first calibration; 1 probe so far\)$/,
    );
    expect(session.threads).toBe(session.notes.includes('runs 2 threads') ? 2 : 1);
    const x = input(2);
    const single = await compilePlan(graph, await WasmKernels.create({ relaxedSimd: false }));
    const expected = single.run(x);
    const out = await session.run(x);
    expect(out.data.findIndex((v, j) => !Object.is(v, expected.data[j]))).toBe(-1);
  });

  it('runs one thread and says why on one core, or without workers', async () => {
    const oneCore = await createNodeSession(graph, { cores: 1 });
    sessions.push(oneCore);
    expect(oneCore.threads).toBe(1);
    expect(oneCore.notes).toBe("threads: 'auto' runs 1 thread: this machine has 1 core");
    expect((await oneCore.stats()).workers).toBe(0);
    const noFactory = await createSession(graph, { cores: 2 });
    sessions.push(noFactory);
    expect(noFactory.threads).toBe(1);
    expect(noFactory.notes).toMatch(/^threads: 'auto' runs 1 thread: no spawnWorker factory/);
  });

  it('refuses what it cannot honour, naming the option', async () => {
    await expect(createNodeSession(graph, { parallelism: 'batch' })).rejects.toThrow(
      new SessionError("createSession: parallelism 'batch' needs a thread count (threads: N), not 'auto'"),
    );
    await expect(createNodeSession(graph, { cores: 0 })).rejects.toThrow(/cores must be a positive integer, got 0/);
    await expect(createNodeSession(graph, { threads: 'all' as unknown as number })).rejects.toThrow(
      /threads must be a positive integer or 'auto', got all/,
    );
    const single = await compilePlan(graph);
    expect(() => single.useAuto()).toThrow(/single-threaded plan has nothing to choose/);
  });
});
