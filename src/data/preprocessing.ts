/**
 * How an image becomes the input tensor a model was trained on. Presets travel with the weights in
 * model files, because getting them wrong gives confident wrong answers, not errors.
 */
import {
  FieldError,
  arrayField,
  checkFields,
  integerField,
  numberField,
  stringField,
  type Fields,
} from '../validate.js';

/** Largest resize and crop a preprocessing may ask for (docs/input-safety.md). */
export const maxPreprocessingSize = 4096;

export interface Preprocessing {
  /** Channel order of the input tensor. */
  channels: 'RGB' | 'BGR' | 'gray';
  /** Pixel values are divided by this before normalisation: 255 maps to [0, 1], 1 keeps 0–255. */
  divisor: number;
  /** Per-channel mean and std subtracted/divided after scaling (in the tensor's channel order). */
  mean: readonly number[];
  std: readonly number[];
  /** Resize the short side to this, then centre-crop `crop`×`crop`. */
  resize: number;
  crop: number;
}

/** The type and range of each field; `checkPreprocessing` adds the rules between fields. */
export const preprocessingFields: Fields = {
  channels: stringField(4, ['RGB', 'BGR', 'gray']),
  divisor: numberField(0, 65_536, true),
  mean: arrayField(numberField(-65_536, 65_536), 1, 3),
  std: arrayField(numberField(0, 65_536, true), 1, 3),
  resize: integerField(1, maxPreprocessingSize),
  crop: integerField(1, maxPreprocessingSize),
};

/** Checks a preprocessing read from outside (a model file, an argument); `path` names it in errors. */
export function checkPreprocessing(value: unknown, path: string): Preprocessing {
  checkFields(value, preprocessingFields, path, Object.keys(preprocessingFields));
  const p = value as Preprocessing;
  const channels = p.channels === 'gray' ? 1 : 3;
  for (const name of ['mean', 'std'] as const) {
    if (p[name].length !== channels)
      throw new FieldError(`${path}.${name} has ${p[name].length} values; ${p.channels} needs ${channels}`);
  }
  if (p.crop > p.resize) throw new FieldError(`${path}.crop ${p.crop} is larger than its resize ${p.resize}`);
  return p;
}

export const preprocessingPresets = {
  /** torchvision-style ImageNet models: RGB in [0, 1], ImageNet mean/std, 256 → 224. */
  imagenet: {
    channels: 'RGB',
    divisor: 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    resize: 256,
    crop: 224,
  },
  /** megvii's official ShuffleNetV1 checkpoints: BGR, 0–255, no normalisation, 256 → 224. */
  official_shufflenet_v1: { channels: 'BGR', divisor: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 256, crop: 224 },
  /** Fashion-MNIST and MNIST models trained here: one channel in [0, 1], 28×28. */
  mnist: { channels: 'gray', divisor: 255, mean: [0], std: [1], resize: 28, crop: 28 },
} as const satisfies Record<string, Preprocessing>;

export type PresetName = keyof typeof preprocessingPresets;
