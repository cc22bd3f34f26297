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
 * The worker script next to this module: session-worker.js when running from dist/, or
 * session-worker.ts through tsx when running from the sources (tests, tsx scripts).
 */
function newWorker(): Worker {
  const js = new URL('./session-worker.js', import.meta.url);
  // Workers inherit the parent's flags; --input-type (node -e scripts) is refused for file workers,
  // and V8 flags such as --experimental-wasm-relaxed-simd are refused too (they are process-wide).
  const execArgv = process.execArgv.filter(
    (a) => !a.startsWith('--input-type') && !a.startsWith('--experimental-wasm'),
  );
  if (existsSync(fileURLToPath(js))) return new Worker(js, { execArgv });
  // From the sources: register tsx's loader inside the worker, then import the TypeScript entry.
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  const ts = new URL('./session-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(code, { eval: true, execArgv });
}

/** Spawns one worker_threads Worker running the session worker. */
export const spawnNodeWorker: SpawnWorker = (): WorkerPort => {
  const worker = newWorker();
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
};

/** createSession with worker_threads for `threads > 1`. */
export function createNodeSession(model: SessionModel, options: SessionOptions = {}): Promise<Session> {
  return createSession(model, { spawnWorker: spawnNodeWorker, ...options });
}
