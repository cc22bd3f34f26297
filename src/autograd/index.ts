export {
  forwardWithTape,
  backward,
  type Tape,
  type TapeOptions,
  type BackwardOptions,
  type Gradients,
} from './tape.js';
export { crossEntropy, type CrossEntropyOptions } from './loss.js';
export { getGradientRule, differentiableOps, type GradientRule, type BackwardContext } from './rules.js';
