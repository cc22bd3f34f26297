// Entry point of the inference kernels alone: the shared-memory build (threads) compiles this one,
// so that it has no static scratch (the training kernels keep some) and every thread can
// instantiate it over the same memory. index.ts exports these and the training kernels.
export { gemm4x8, dense8 } from './gemm';
export {
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
} from './spatial';
export { paddedPlaneFloats, paddedPlaneFloatsBy } from './common';

/** First free byte after the module's static data: the JS side allocates from here. */
export function heapBase(): usize {
  return __heap_base;
}
