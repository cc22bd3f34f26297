/** Node-only additions to the library (import from 'shufflenet/node'). */
export { createNodeSession, spawnNodeWorker } from './session.js';
