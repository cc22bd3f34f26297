/**
 * The Web Worker entry of a browser session worker: a page spawns it as a module worker and wraps
 * it with `webWorkerPort`, e.g.
 *   createSession(model, {
 *     threads: 2,
 *     spawnWorker: () => webWorkerPort(new Worker(new URL('shufflenet/browser-worker', import.meta.url), { type: 'module' })),
 *   });
 * Threads need a cross-origin isolated page; without it the session runs single-threaded.
 */
import { serveSessionWorker } from './runtime/session.js';
import { webWorkerHostPort } from './runtime/threads/ports.js';

serveSessionWorker(webWorkerHostPort());
