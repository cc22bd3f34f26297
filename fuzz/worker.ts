/**
 * A fuzz worker: a child process that runs one case at a time for fuzz/pool.ts.
 *
 * Protocol (IPC, advanced serialization):
 *   parent → {type: 'case', task}: the worker generates case `task.index`, sends {type: 'started'}
 *            (the parent's 5 s clock starts there), {type: 'step', name} before each library call,
 *            and {type: 'done', result} with the outcome, the time and its memory after the case;
 *   parent → {type: 'artifact', task, dir}: the worker writes the case's input to dir and answers
 *            {type: 'artifact', path, what} (a failing case's input, written here so that the
 *            parent never stalls its clocks generating one).
 * Messages that precede a call that may block are awaited until sent. A case that crashes, hangs
 * or grows past the memory limit is ended by the parent (SIGKILL), which starts a fresh worker.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { classifyError, type CaseResult } from './outcome.js';
import { caseArtifact, generateCase, readers, type ReaderName } from './readers.js';

// Every frame: under a stack overflow's thousands of repeated frames lies the src/ frame that
// started the recursion (classifyError keeps the frames that matter).
Error.stackTraceLimit = Infinity;
// Two workers share two cores: one libvips thread each, and no cache holding decoded images.
sharp.concurrency(1);
sharp.cache(false);

export interface CaseTask {
  reader: ReaderName;
  seed: number;
  index: number;
}

export type ParentMessage = { type: 'case'; task: CaseTask } | { type: 'artifact'; task: CaseTask; dir: string };

export type WorkerMessage =
  | { type: 'ready'; scratch: string }
  | { type: 'started' }
  | { type: 'step'; name: string }
  | { type: 'done'; result: CaseResult }
  | { type: 'artifact'; path: string; what: string }
  | { type: 'harness-error'; message: string };

const scratch = mkdtempSync(join(tmpdir(), 'shufflenet-fuzz-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const send = (message: WorkerMessage): Promise<void> =>
  new Promise((resolve, reject) => process.send!(message, undefined, undefined, (e) => (e ? reject(e) : resolve())));

process.on('message', (m: ParentMessage) => {
  void (m.type === 'case' ? runCase(m.task) : writeArtifact(m.task, m.dir)).catch(async (e: unknown) => {
    // A bug of the harness, not of the reader: the parent stops the run.
    await send({ type: 'harness-error', message: (e as Error).stack ?? String(e) });
  });
});

async function runCase(task: CaseTask): Promise<void> {
  const c = await generateCase(task.reader, task.seed, task.index);
  await send({ type: 'started' });
  const start = performance.now();
  let result: Omit<CaseResult, 'ms'>;
  try {
    await readers[task.reader].run(c, scratch, (name) => send({ type: 'step', name }));
    result = { outcome: 'accepted' };
  } catch (e) {
    result = classifyError(e);
  }
  const ms = performance.now() - start;
  await send({
    type: 'done',
    result: { ...result, ms, rss: process.memoryUsage().rss, maxRss: process.resourceUsage().maxRSS * 1024 },
  });
}

async function writeArtifact(task: CaseTask, dir: string): Promise<void> {
  const c = await generateCase(task.reader, task.seed, task.index);
  const { ext, bytes } = caseArtifact(c);
  const path = join(dir, `${task.reader}-${task.seed}-${task.index}.${ext}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, bytes);
  await send({ type: 'artifact', path, what: c.what });
}

await send({ type: 'ready', scratch });
