/**
 * shufflenet: the ShuffleNet family in TypeScript. This entry point is browser-safe: nothing here
 * imports Node-only modules (the CLI under src/cli does).
 */
export { Tensor, shapeSize, formatShape, type Shape } from './tensor/tensor.js';
export { Random } from './tensor/random.js';
export * as ops from './ops/index.js';
export * as kernels from './kernels/reference/index.js';
export { GraphBuilder, type TraceOptions, type Value } from './graph/builder.js';
export type { Graph, GraphNode, GraphParam } from './graph/graph.js';
export { runGraph } from './graph/execute.js';
export { withInputShape } from './graph/reshape.js';
export { compilePlan, InferencePlan, type PlanSummary } from './runtime/plan.js';
export {
  createSession,
  serveSessionWorker,
  webWorkerPort,
  SessionError,
  type Session,
  type SessionModel,
  type SessionOptions,
  type SessionStats,
  type SpawnWorker,
  type WorkerPort,
} from './runtime/session.js';
export { Module } from './nn/module.js';
export * from './nn/layers.js';
export { forward } from './nn/forward.js';
export { ShuffleNet, ShuffleUnit, shuffleNetWidths, type ShuffleNetConfig } from './models/shufflenet.js';
export { MobileNetV1, type MobileNetConfig } from './models/mobilenet.js';
export { AlexNet, type AlexNetConfig } from './models/alexnet.js';
export {
  architectureOf,
  buildArchitecture,
  createModel,
  getModelEntry,
  modelNames,
  registerModel,
  type Architecture,
  type ModelEntry,
  type ModelOptions,
} from './models/registry.js';
export { paperFigures, type PaperFigure } from './models/paper.js';
export { complexity, type Complexity, type LayerCost } from './analysis/complexity.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile } from './io/safetensors.js';
export { saveModelFile, loadModelFile, type ModelInfo } from './io/modelfile.js';
export { preprocessingPresets, type Preprocessing, type PresetName } from './data/preprocessing.js';
export { loadModel, modelLoaders, type LoadedModel, type ModelLoader } from './io/load.js';
export { exportOnnx, type OnnxExportOptions } from './io/onnx/export.js';
export { importOnnx, type OnnxImportOptions } from './io/onnx/import.js';
export {
  importTorchCheckpoint,
  readTorchCheckpoint,
  type ImportedModel,
  type TorchCheckpoint,
} from './io/torch/index.js';
export { complexityTable, layerBreakdown, paperComparison, type ComplexityRow } from './analysis/table.js';
export * as autograd from './autograd/index.js';
export { forwardWithTape, backward, crossEntropy, type Tape, type Gradients } from './autograd/index.js';
export * as optim from './optim/index.js';
export { Sgd, learningRate, clipGradientNorm, type SgdConfig, type ScheduleConfig } from './optim/index.js';
export { trainStep, reestimateBatchNorm, type TrainStepOptions, type TrainStepResult } from './train/index.js';
export * from './errors.js';
