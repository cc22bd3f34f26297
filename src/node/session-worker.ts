/** The worker_threads entry of a session worker (see src/runtime/session.ts). Emitted to dist/node. */
import { parentPort } from 'node:worker_threads';
import { serveSessionWorker } from '../runtime/session.js';
// Registers the int8 kernel family, so that this worker can be a threaded int8 plan's helper.
import '../runtime/quant/plan.js';

if (parentPort === null) throw new Error('session-worker.js must run as a worker_threads Worker');
const port = parentPort;
serveSessionWorker({
  postMessage: (message, transfer) => port.postMessage(message, (transfer ?? []) as ArrayBuffer[]),
  listen: (onMessage) => port.on('message', onMessage),
});
