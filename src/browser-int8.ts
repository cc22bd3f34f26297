/**
 * The browser int8 entry: what a web page needs to run a network in int8 (docs/int8.md), kept out
 * of 'shufflenet/browser' so that the float runtime stays within its budget. A page imports it
 * with a dynamic `import('shufflenet/browser-int8')` when int8 is asked for, and its bundler emits
 * it (the int8 kernels' WASM, the int8 file reader, calibration) as a chunk loaded on demand; the
 * modules it shares with 'shufflenet/browser' (tensors, graphs, the lowering) load once.
 *
 * Its size alone (it also counts what it shares with the float runtime):
 *   node bench/size.mjs --entry src/browser-int8.ts
 *
 * @example
 * const { loadQuantizedModelFile, QuantizedPlan } = await import('shufflenet/browser-int8');
 * const { network } = loadQuantizedModelFile(bytes, 'model-int8.safetensors');
 * const plan = await QuantizedPlan.create(network); // one thread
 * const logits = plan.run(input); // [1, classes], float32
 */
export {
  Calibrator,
  calibrationMethods,
  type CalibrationMethod,
  type CalibrationOptions,
} from './runtime/quant/calibrate.js';
export { runQuantized } from './runtime/quant/execute.js';
export { isQuantizedModelFile, loadQuantizedModelFile, type QuantizationInfo } from './runtime/quant/file.js';
export { QuantizationError, type QParams, type QuantizedNetwork } from './runtime/quant/network.js';
export { QuantizedPlan, type QuantizedPlanOptions } from './runtime/quant/plan.js';
