// Entry point of the WASM kernels module: everything exported here is callable from JS, and
// scripts/build-wasm.mjs generates the TypeScript interface of these exports (KernelExports).
export {
  gemm4x8,
  dense8,
  dwconv3x3,
  dwconvKxK,
  maxPoolKxK,
  poolPlaneFloats,
  pool3x3s2,
  padPlanes,
  im2col3x3s2,
  im2col,
  globalAvgPool,
  copyPlanes,
  activation,
  addActivation,
  scaleChannels,
  paddedPlaneFloats,
  paddedPlaneFloatsBy,
  heapBase,
} from './inference';
export { convWeightGrad, dwconv3x3BackwardInput, dwconv3x3BackwardWeight } from './conv-backward';
export {
  batchNormStatistics,
  batchNormApply,
  batchNormTrainForward,
  batchNormBackwardSums,
  batchNormBackwardApply,
  batchNormTrainBackward,
} from './batchnorm';
export {
  relu,
  reluBackward,
  add,
  accumulate,
  avgPool3x3s2Backward,
  maxPool3x3s2Backward,
  globalAvgPoolBackward,
} from './train';
