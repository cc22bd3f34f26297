/**
 * shufflenet: the ShuffleNet family in TypeScript. This entry point is browser-safe: nothing here
 * imports Node-only modules (the CLI under src/cli does). It is the browser runtime entry
 * (./browser.ts) plus what a page does not ship: tracing, the plan, every layer and model, the
 * writers, ONNX and PyTorch import/export, autograd, optimisers and training.
 */
export * from './browser.js';
export { Random } from './tensor/random.js';
export * as ops from './ops/index.js';
export * as kernels from './kernels/reference/index.js';
export { GraphBuilder, type TraceOptions, type Value } from './graph/builder.js';
export { compilePlan, InferencePlan, type PlanSummary } from './runtime/plan.js';
export { serveSessionWorker, type SessionModel, type SessionStats } from './runtime/session.js';
// The browser entry exports Module as a type only; here it is the class, to subclass.
export { Module } from './nn/module.js';
export * from './nn/layers.js';
export { ShuffleUnit, shuffleNetWidths } from './models/shufflenet.js';
export { MobileNetV1, type MobileNetConfig } from './models/mobilenet.js';
export { AlexNet, type AlexNetConfig } from './models/alexnet.js';
export { registerModel, type ModelEntry } from './models/registry.js';
export { paperFigures, type PaperFigure } from './models/paper.js';
export { type LayerCost } from './analysis/complexity.js';
export { writeSafetensors } from './io/safetensors.js';
export { saveModelFile } from './io/modelfile.js';
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
// Int8 (docs/int8.md): calibration, the reference int8 executor, int8 model files, ONNX QDQ.
export {
  Calibrator,
  calibrationMethods,
  type CalibrationMethod,
  type CalibrationOptions,
} from './runtime/quant/calibrate.js';
export { runQuantized, runQuantizedBatch } from './runtime/quant/execute.js';
export { loadQuantizedModelFile, saveQuantizedModelFile, type QuantizationInfo } from './runtime/quant/file.js';
export { QuantizationError, type QParams, type QuantizedNetwork } from './runtime/quant/network.js';
export { exportQdq, importQdq } from './runtime/quant/qdq.js';
export { QuantizedPlan, type QuantizedPlanOptions } from './runtime/quant/plan.js';
