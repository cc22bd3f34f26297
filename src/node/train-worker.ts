/** The worker_threads entry of a data-parallel training worker (see src/train/parallel.ts). Emitted to dist/node. */
import { parentPort } from 'node:worker_threads';
import { serveTrainingWorker } from '../train/parallel.js';

if (parentPort === null) throw new Error('train-worker.js must run as a worker_threads Worker');
const port = parentPort;
serveTrainingWorker({
  postMessage: (message) => port.postMessage(message),
  listen: (onMessage) => port.on('message', onMessage),
});
