export { Sgd, decayAllButOneDimensional, type SgdConfig } from './sgd.js';
export { learningRate, type ScheduleConfig } from './schedule.js';
export { clipGradientNorm } from './clip.js';
