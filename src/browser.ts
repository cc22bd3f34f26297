/**
 * The browser runtime entry: what a web page needs to build or load a network, preprocess an image
 * and run it in a session (threads where the page is cross-origin isolated), without the ONNX codec
 * (protobufjs) or the training and dataset tooling. The page in web/ imports nothing else (and
 * 'shufflenet/browser-worker' for its helper threads, 'shufflenet/browser-int8' on demand for int8).
 * `npm run size` bundles this entry (esbuild, minified) against the 150 KB budget of issue 4; the
 * full library is src/index.ts.
 *
 * @example
 * import { createModel, createSession, Tensor } from 'shufflenet/browser';
 * const session = await createSession(createModel('shufflenet_v1_g3_1.0x'), { threads: 1 });
 * const logits = await session.run(Tensor.zeros([1, 3, 224, 224])); // [1, 1000]
 */
export { Tensor, shapeSize, formatShape, type Shape } from './tensor/tensor.js';
// Seeded (mulberry32): a page's random inputs are the same in every browser and in Node.
export { Random } from './tensor/random.js';
export type { Graph, GraphNode, GraphParam } from './graph/graph.js';
export { runGraph } from './graph/execute.js';
export { softmax } from './ops/index.js';
export {
  createSession,
  webWorkerPort,
  SessionError,
  type Session,
  type SessionOptions,
  type SpawnWorker,
  type WorkerPort,
} from './runtime/session.js';
export { kernelVariant, WasmUnavailableError, type KernelVariant } from './kernels/wasm/module.js';
export { withInputShape } from './graph/reshape.js';
export { forward } from './nn/forward.js';
export type { Module } from './nn/module.js';
export { ShuffleNet, type ShuffleNetConfig } from './models/shufflenet.js';
export {
  architectureOf,
  buildArchitecture,
  createModel,
  getModelEntry,
  modelNames,
  type Architecture,
  type ModelOptions,
} from './models/registry.js';
export { loadModelFile, type ModelInfo } from './io/modelfile.js';
export { readSafetensors, type SafetensorsFile } from './io/safetensors.js';
export { preprocessingPresets, type Preprocessing, type PresetName } from './data/preprocessing.js';
export {
  preprocessImage,
  planImage,
  imageLimits,
  ImageSizeError,
  type RawImage,
  type ImagePlan,
} from './data/image.js';
export { fashionMnistClasses } from './data/labels.js';
export { complexity, type Complexity } from './analysis/complexity.js';
export * from './errors.js';
