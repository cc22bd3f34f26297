export { trainStep, type TrainStepOptions, type TrainStepResult } from './step.js';
export { reestimateBatchNorm } from './batchnorm.js';
