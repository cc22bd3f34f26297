/**
 * The fields every network config shares, with their ranges: the one place their bounds are
 * written. Each family adds its own (`shuffleNetConfigFields`, …); constructors, model files and
 * the CLI check against them (src/validate.ts).
 */
import { booleanField, integerField, seedField, type Fields } from '../validate.js';

/** Most classifier outputs (ImageNet-21k has 21,841 classes). */
export const maxClasses = 100_000;
/** Most image channels a network takes. */
export const maxInputChannels = 64;

export const networkFields: Fields = {
  numClasses: integerField(1, maxClasses),
  inputChannels: integerField(1, maxInputChannels),
  smallInput: booleanField,
  seed: seedField,
  initialize: booleanField,
};
