/**
 * Sessions in Node: the core's createSession with worker_threads as the worker factory.
 *
 * @example
 * import { createNodeSession } from 'shufflenet/node';
 * const session = await createNodeSession(createModel('shufflenet_v1_g3_1.0x'), { threads: 2 });
 * const logits = await session.run(batch); // the batch is split across 2 worker threads
 * await session.dispose();
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  createSession,
  type Session,
  type SessionModel,
  type SessionOptions,
  type SpawnWorker,
  type WorkerPort,
} from '../runtime/session.js';

/**
 * A worker script next to this module: `<script>.js` when running from dist/, or `<script>.ts`
 * through tsx when running from the sources (tests, tsx scripts).
 */
function newWorker(script: string): Worker {
  const js = new URL(`./${script}.js`, import.meta.url);
  // Workers inherit the parent's flags, except those worker_threads refuse: --input-type (node -e
  // scripts) for file workers, and process-wide V8 flags (--expose-gc, --experimental-wasm-*).
  const execArgv = process.execArgv.filter(
    (a) => !a.startsWith('--input-type') && !a.startsWith('--expose-gc') && !a.startsWith('--experimental-wasm'),
  );
  if (existsSync(fileURLToPath(js))) return new Worker(js, { execArgv });
  // From the sources: register tsx's loader inside the worker, then import the TypeScript entry.
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  const ts = new URL(`./${script}.ts`, import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(code, { eval: true, execArgv });
}

/** A SpawnWorker over worker_threads running `script` (a module next to this one). */
function spawner(script: string): SpawnWorker {
  return (): WorkerPort => nodeWorkerPort(newWorker(script));
}

function nodeWorkerPort(worker: Worker): WorkerPort {
  return {
    postMessage: (message, transfer) => worker.postMessage(message, (transfer ?? []) as ArrayBuffer[]),
    listen(onMessage, onError) {
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', (code) => {
        if (code !== 0) onError(new Error(`worker exited with code ${code}`));
      });
    },
    terminate: () => worker.terminate(),
  };
}

/** Spawns one worker_threads Worker running the session worker. */
export const spawnNodeWorker: SpawnWorker = spawner('session-worker');

/** Spawns one worker_threads Worker running a data-parallel training worker (src/train/parallel.ts). */
export const spawnTrainingWorker: SpawnWorker = spawner('train-worker');

/** Session options for Node: worker_threads as the factory, this machine's cores for 'auto'. */
export function nodeSessionOptions(options: SessionOptions = {}): SessionOptions {
  return { spawnWorker: spawnNodeWorker, cores: availableParallelism(), ...options };
}

/** createSession with worker_threads for `threads > 1` (and 'auto', the default, on this machine's cores). */
export function createNodeSession(model: SessionModel, options: SessionOptions = {}): Promise<Session> {
  return createSession(model, nodeSessionOptions(options));
}
