/**
 * A seeded slice of the fuzz suite (`npm run fuzz` runs 10,000 cases per reader): the first cases
 * of every reader (its unmutated seeds and issue 15's reproducers come first), each in a worker
 * process bounded in time (10 s here) and memory (1 GB). Every outcome must be accepted or a one-line
 * ShuffleNetError; a failure names its reader, seed and case, and the command that replays it and
 * writes its input to fuzz-failures/.
 *
 * FUZZ_SEED=n runs another slice.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { CaseResult } from '../fuzz/outcome.js';
import { FuzzPool } from '../fuzz/pool.js';
import { readerNames, type ReaderName } from '../fuzz/readers.js';

const seed = Number(process.env['FUZZ_SEED'] ?? 15);
/** Cases per reader: a few hundred, fewer for the readers whose cases cost more. */
const slice: Record<ReaderName, number> = { safetensors: 200, onnx: 300, torch: 300, image: 200, imagefolder: 100 };

describe(`fuzz slice, seed ${seed}`, () => {
  // NOTE: 10 s, not the suite's 5 s: npm test runs other files beside this one, and a slow
  // machine must not make the slice flaky. The benchmark (npm run fuzz) holds the 5 s line.
  const pool = new FuzzPool({ workers: 2, timeLimitMs: 10_000 });
  afterAll(() => pool.close());

  for (const reader of readerNames) {
    it(`${reader}: ${slice[reader]} cases, each accepted or a one-line typed error`, async () => {
      const outcomes = { accepted: 0, typed: 0, failure: 0 };
      const failures: string[] = [];
      let slowest = 0;
      const tasks = Array.from({ length: slice[reader] }, (_, index) => ({ reader, seed, index }));
      await pool.run(tasks, (task, r: CaseResult) => {
        outcomes[r.outcome]++;
        slowest = Math.max(slowest, r.ms);
        if (r.outcome === 'failure') {
          failures.push(
            `${reader} seed=${seed} case=${task.index}: ${r.failure}${r.error ? ` ${r.error}` : ''}: ` +
              `${(r.message ?? '').slice(0, 200)} (replay: npm run fuzz -- --reader ${reader} --seed ${seed} --case ${task.index})`,
          );
        }
      });
      console.log(
        `${reader}, seed ${seed}: ${outcomes.accepted} accepted, ${outcomes.typed} typed errors, ` +
          `${outcomes.failure} failures; slowest case ${slowest.toFixed(0)} ms`,
      );
      failures.sort((a, b) => Number(/case=(\d+)/.exec(a)![1]) - Number(/case=(\d+)/.exec(b)![1]));
      expect(failures).toEqual([]);
      // Both kinds of clean outcome occur, or the mutations exercise nothing.
      expect(outcomes.accepted).toBeGreaterThan(0);
      expect(outcomes.typed).toBeGreaterThan(0);
    }, 300_000);
  }
});
