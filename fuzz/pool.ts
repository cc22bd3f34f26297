/**
 * Runs fuzz cases in child processes (fuzz/worker.ts), at most two at a time, so that a crash, a
 * hang or a memory blow-up is one recorded failure and the run goes on with a fresh worker:
 * - time: a case still running `timeLimitMs` after it started is killed (SIGKILL);
 * - memory: the parent reads the worker's resident set from /proc every 50 ms while a case runs and
 *   kills it past `rssLimitBytes`; after each case the worker reports its peak (getrusage maxRSS)
 *   too, which also catches a spike shorter than the polling interval;
 * - attribution: a worker whose peak passes half the limit is replaced after its case, so a case
 *   that takes a worker past the limit has itself added at least half of it; a timeout or a
 *   blow-up names the last library call the case started (the worker reports each).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rssLimitBytes as defaultRssLimit, timeLimitMs as defaultTimeLimit, type CaseResult } from './outcome.js';
import type { CaseTask, ParentMessage, WorkerMessage } from './worker.js';

export interface PoolOptions {
  /** 1 or 2 (the machine is shared: never more). */
  workers?: number;
  timeLimitMs?: number;
  rssLimitBytes?: number;
}

export interface Artifact {
  path: string;
  what: string;
}

const root = fileURLToPath(new URL('..', import.meta.url));
const workerPath = fileURLToPath(new URL('./worker.ts', import.meta.url));
/** Starting a worker, generating a case (and building a reader's seeds, on its first case). */
const startupLimitMs = 120_000;

/** Resident set of a process from /proc (Linux), or null where there is none. */
function residentBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

const megabytes = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

class Worker {
  readonly child: ChildProcess;
  private output = '';
  private listener: ((m: WorkerMessage) => void) | null = null;
  private exitListener: ((code: number | null, signal: string | null) => void) | null = null;
  private exited = false;
  private killed = false;
  readonly ready: Promise<void>;

  constructor() {
    this.child = fork(workerPath, [], {
      cwd: root,
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, UV_THREADPOOL_SIZE: '2' },
    });
    const keepTail = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-4000);
    };
    this.child.stdout!.on('data', keepTail);
    this.child.stderr!.on('data', keepTail);
    this.child.on('message', (m: WorkerMessage) => this.listener?.(m));
    let scratch: string | null = null;
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      // A killed worker leaves its scratch folder (an image-folder case's files) behind.
      if (scratch !== null) rmSync(scratch, { recursive: true, force: true });
      this.exitListener?.(code, signal);
    });
    this.ready = this.exchange(
      null,
      (m, done) => {
        if (m.type !== 'ready') return;
        scratch = m.scratch;
        done(undefined);
      },
      startupLimitMs,
    );
  }

  get dead(): boolean {
    return this.killed || this.exited;
  }

  kill(): void {
    this.killed = true;
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /** Sends `message` and resolves with what `handle` settles on; rejects if the worker dies or is silent for `limitMs`. */
  private exchange<T>(
    message: ParentMessage | null,
    handle: (m: WorkerMessage, done: (v: T) => void) => void,
    limitMs: number,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill();
        end(new Error(`fuzz worker: no answer in ${limitMs} ms. ${this.output.trim()}`));
      }, limitMs);
      const end = (v: T | Error): void => {
        clearTimeout(timer);
        this.listener = null;
        this.exitListener = null;
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      this.listener = (m) => {
        if (m.type === 'harness-error') end(new Error(`fuzz harness error: ${m.message}`));
        else handle(m, end);
      };
      this.exitListener = (code, signal) =>
        end(new Error(`fuzz worker exited (code ${code}, signal ${signal}): ${this.output.trim()}`));
      if (message !== null) this.child.send(message);
    });
  }

  /** Writes a case's input to `dir` (the worker regenerates it). */
  artifact(task: CaseTask, dir: string): Promise<Artifact> {
    return this.exchange(
      { type: 'artifact', task, dir },
      (m, done) => m.type === 'artifact' && done({ path: m.path, what: m.what }),
      startupLimitMs,
    );
  }

  /** Runs one case; resolves with its result, killing the worker on a timeout or over the memory limit. */
  run(task: CaseTask, timeLimitMs: number, rssLimitBytes: number): Promise<CaseResult> {
    return new Promise((resolve, reject) => {
      let started = 0;
      let peak = 0;
      let step: string | undefined;
      let poll: NodeJS.Timeout | undefined;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const finish = (result: CaseResult | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.listener = null;
        this.exitListener = null;
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const elapsed = (): number => (started === 0 ? 0 : performance.now() - started);
      const failure = (kind: 'timeout' | 'memory' | 'crash', message: string): CaseResult => ({
        outcome: 'failure',
        failure: kind,
        ms: elapsed(),
        maxRss: peak,
        message,
        ...(step !== undefined ? { step } : {}),
      });
      timer = setTimeout(() => {
        this.kill();
        finish(new Error(`fuzz worker did not start ${task.reader} case ${task.index} in ${startupLimitMs} ms`));
      }, startupLimitMs);
      this.listener = (m) => {
        if (m.type === 'started') {
          started = performance.now();
          clearTimeout(timer);
          timer = setTimeout(() => {
            // A 'done' already in the pipe (this process was busy) is read in this loop turn's
            // poll phase, before setImmediate runs: only a case that is really still running dies.
            setImmediate(() => {
              if (settled) return;
              this.kill();
              finish(failure('timeout', `over ${timeLimitMs} ms${step ? ` (in ${step})` : ''}`));
            });
          }, timeLimitMs);
          poll = setInterval(() => {
            const rss = residentBytes(this.child.pid!);
            if (rss === null) return;
            peak = Math.max(peak, rss);
            if (rss > rssLimitBytes) {
              this.kill();
              finish(
                failure(
                  'memory',
                  `resident set ${megabytes(rss)}, over ${megabytes(rssLimitBytes)}${step ? ` (in ${step})` : ''}`,
                ),
              );
            }
          }, 50);
        } else if (m.type === 'step') step = m.name;
        else if (m.type === 'done') {
          const result: CaseResult = {
            ...m.result,
            maxRss: Math.max(m.result.maxRss ?? 0, peak),
            ...(step !== undefined ? { step } : {}),
          };
          if (result.maxRss! > rssLimitBytes) {
            const ended = `${result.outcome}${result.error ? `, ${result.error}: ${result.message}` : ''}`;
            finish({
              ...result,
              outcome: 'failure',
              failure: 'memory',
              message: `peak resident set ${megabytes(result.maxRss!)}, over ${megabytes(rssLimitBytes)} (the case ended: ${ended})`,
            });
          } else finish(result);
        } else if (m.type === 'harness-error') {
          finish(new Error(`fuzz harness error in ${task.reader} case ${task.index}: ${m.message}`));
        }
      };
      this.exitListener = (code, signal) => {
        const tail = this.output.trim().split('\n').slice(-3).join(' / ');
        finish(failure('crash', `worker exited (code ${code}, signal ${signal})${step ? ` in ${step}` : ''}: ${tail}`));
      };
      this.child.send({ type: 'case', task } satisfies ParentMessage);
    });
  }
}

/** A pool of fuzz workers; `run` hands out cases as workers free up. */
export class FuzzPool {
  private readonly idle: Worker[] = [];
  private readonly size: number;
  private readonly timeLimitMs: number;
  private readonly rssLimitBytes: number;
  /** Workers started, replacements included (each timeout, blow-up or crash costs one). */
  workersStarted = 0;

  constructor(options: PoolOptions = {}) {
    this.size = Math.max(1, Math.min(options.workers ?? 2, 2));
    this.timeLimitMs = options.timeLimitMs ?? defaultTimeLimit;
    this.rssLimitBytes = options.rssLimitBytes ?? defaultRssLimit;
  }

  private async take(): Promise<Worker> {
    const worker = this.idle.pop();
    if (worker !== undefined && !worker.dead) return worker;
    const fresh = new Worker();
    this.workersStarted++;
    try {
      await fresh.ready;
    } catch (e) {
      fresh.kill();
      throw e;
    }
    return fresh;
  }

  private release(worker: Worker, maxRss = 0): void {
    if (worker.dead || maxRss > this.rssLimitBytes / 2) worker.kill();
    else this.idle.push(worker);
  }

  /**
   * Runs every task, calling `onResult` as each finishes (in completion order). With `artifacts`,
   * a failing case's input is written there first and passed along.
   */
  async run(
    tasks: Iterable<CaseTask>,
    onResult: (task: CaseTask, result: CaseResult, artifact: Artifact | null) => void,
    artifacts?: string,
  ): Promise<void> {
    const iterator = tasks[Symbol.iterator]();
    const lane = async (): Promise<void> => {
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        const task = next.value;
        let worker = await this.take();
        let result: CaseResult;
        try {
          result = await worker.run(task, this.timeLimitMs, this.rssLimitBytes);
        } catch (e) {
          worker.kill();
          throw e;
        }
        this.release(worker, result.maxRss);
        let artifact: Artifact | null = null;
        if (result.outcome === 'failure' && artifacts !== undefined) {
          worker = await this.take();
          artifact = await worker.artifact(task, artifacts);
          this.release(worker);
        }
        onResult(task, result, artifact);
      }
    };
    await Promise.all(Array.from({ length: this.size }, lane));
  }

  close(): void {
    for (const w of this.idle.splice(0)) {
      w.child.disconnect();
      w.kill();
    }
  }
}
