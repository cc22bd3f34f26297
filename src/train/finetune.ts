/**
 * Fine-tuning: a network rebuilt for new data (its classes, its image size) that starts from the
 * weights of a trained one, with a fresh classifier when the label set changes (`newHead`).
 *
 *   model file / checkpoint ──► its architecture + weights
 *                                   │  numClasses, smallInput, seed ← the new data
 *                                   ▼
 *                         buildArchitecture ──► every tensor copied by name, except the head's
 *                                               (the last linear layer) with newHead
 */
import { ShuffleNetError } from '../errors.js';
import { buildArchitecture, type Architecture } from '../models/registry.js';
import type { Module } from '../nn/module.js';
import { formatShape, sameShape } from '../tensor/tensor.js';

/** Why a fine-tuning start was refused: names the file and what does not fit. */
export class FineTuneError extends ShuffleNetError {
  override name = 'FineTuneError';
}

export interface FineTuneTarget {
  numClasses: number;
  inputChannels: number;
  /** Square image size of the new data (the small-input stem up to 64, as `train` builds). */
  size: number;
  seed: number;
}

/** The state dict names of a network's classifier: the weight and bias of its last linear layer. */
export function headTensors(model: Module, inputShape: readonly number[]): string[] {
  const graph = model.trace(inputShape);
  const last = [...graph.nodes].reverse().find((n) => n.op === 'linear');
  if (last === undefined) throw new FineTuneError('the network has no linear classifier to replace');
  return last.inputs.slice(1);
}

/**
 * The network of `from` rebuilt for `target`, with `from`'s weights. The classes must match unless
 * `newHead`, which keeps the new network's freshly drawn classifier; image channels must match.
 */
export function fineTuneModel(
  from: { module: Module; architecture: Architecture; source: string },
  target: FineTuneTarget,
  newHead: boolean,
): { model: Module; architecture: Architecture; head: string[] } {
  const config = from.architecture.config as { numClasses?: number; inputChannels?: number };
  const classes = config.numClasses ?? 1000;
  const channels = config.inputChannels ?? 3;
  if (channels !== target.inputChannels) {
    throw new FineTuneError(
      `${from.source} takes ${channels}-channel images, the data has ${target.inputChannels}-channel ones`,
    );
  }
  if (classes !== target.numClasses && !newHead) {
    throw new FineTuneError(
      `${from.source} has ${classes} classes, the data ${target.numClasses}: add --new-head for a new classifier`,
    );
  }
  const architecture = {
    family: from.architecture.family,
    config: {
      ...from.architecture.config,
      numClasses: target.numClasses,
      smallInput: target.size <= 64,
      seed: target.seed,
      ...(from.architecture.family === 'alexnet' ? { inputSize: target.size } : {}),
    },
  } as Architecture;
  const model = buildArchitecture(architecture);
  const head = headTensors(model, [1, target.inputChannels, target.size, target.size]);
  const source = from.module.stateDict();
  for (const [name, tensor] of model.stateDict()) {
    if (newHead && head.includes(name)) continue;
    const weights = source.get(name);
    if (weights === undefined) throw new FineTuneError(`${from.source} has no tensor "${name}"`);
    if (!sameShape(weights.shape, tensor.shape)) {
      throw new FineTuneError(
        `${from.source}: "${name}" is ${formatShape(weights.shape)} but the network for this data needs ${formatShape(tensor.shape)}`,
      );
    }
    tensor.data.set(weights.data);
  }
  return { model, architecture, head };
}
