/**
 * The browser runtime entry: what a web page needs to build or load a network and run it, without
 * the ONNX codec (protobufjs) or the training and dataset tooling. `npm run size` bundles this
 * entry (esbuild, minified) against the 150 KB budget of issue 4; the full library is src/index.ts.
 *
 * @example
 * import { createModel, runGraph, Tensor } from 'shufflenet/browser';
 * const graph = createModel('shufflenet_v1_g3_1.0x').trace([1, 3, 224, 224]);
 * const logits = runGraph(graph, Tensor.zeros([1, 3, 224, 224])); // [1, 1000]
 */
export { Tensor, shapeSize, formatShape, type Shape } from './tensor/tensor.js';
export type { Graph, GraphNode, GraphParam } from './graph/graph.js';
export { runGraph } from './graph/execute.js';
export { createSession, webWorkerPort, SessionError, type Session, type SessionOptions } from './runtime/session.js';
export { withInputShape } from './graph/reshape.js';
export { forward } from './nn/forward.js';
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
export * from './errors.js';
