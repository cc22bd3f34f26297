// Entry point of the WASM kernels module: everything exported here is callable from JS.
export { gemm4x8, dense8, dwconv3x3, pool3x3s2, padPlanes, im2col3x3s2, im2col, globalAvgPool, paddedPlaneFloats, heapBase } from './inference';
export { convWeightGrad, dwconv3x3BackwardInput, dwconv3x3BackwardWeight, dwBackwardScratchFloats } from './conv-backward';
export { batchNormStatistics, batchNormApply, batchNormBackwardSums, batchNormBackwardApply } from './batchnorm';
export {
  batchNormTrainForward,
  batchNormTrainBackward,
  relu,
  reluBackward,
  add,
  accumulate,
  scale,
  avgPool3x3s2Backward,
  maxPool3x3s2Backward,
  globalAvgPoolBackward,
  sgdStep,
} from './train';
