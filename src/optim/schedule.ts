import { ShuffleNetError } from '../errors.js';

export interface ScheduleConfig {
  /** Peak learning rate. */
  lr: number;
  /** Total optimiser steps of the run, warm-up included. */
  totalSteps: number;
  /** Shape after warm-up: `linear` decays to 0 at the end (the paper), `cosine` too, `constant` stays. */
  kind: 'linear' | 'cosine' | 'constant';
  /** Steps of linear warm-up from `warmupStartFactor · lr` to `lr`; default 0. */
  warmupSteps?: number;
  /** Learning-rate factor at step 0 of the warm-up; default 0.1. */
  warmupStartFactor?: number;
}

/**
 * The learning rate for step t (0-based), the same values as torch.optim.lr_scheduler's LinearLR
 * (to 0), CosineAnnealingLR and, with warm-up, SequentialLR([LinearLR warm-up, main], [W]):
 *   warm-up  t < W: lr · (f + (1 − f) · t / W)
 *   linear:  lr · (1 − s / S)          cosine: lr · (1 + cos(π s / S)) / 2
 * with s = t − W and S = totalSteps − W.
 *
 * @example
 * const lrAt = (t: number) => learningRate({ lr: 0.1, totalSteps: 1000, kind: 'linear', warmupSteps: 50 }, t);
 */
export function learningRate(config: ScheduleConfig, step: number): number {
  const { lr, totalSteps, kind } = config;
  const warmup = config.warmupSteps ?? 0;
  const start = config.warmupStartFactor ?? 0.1;
  if (!(Number.isInteger(totalSteps) && totalSteps > 0)) {
    throw new ShuffleNetError(`schedule: totalSteps must be a positive integer but is ${totalSteps}`);
  }
  if (!(Number.isInteger(warmup) && warmup >= 0 && warmup < totalSteps)) {
    throw new ShuffleNetError(`schedule: warmupSteps must be an integer in [0, ${totalSteps}) but is ${warmup}`);
  }
  if (step < warmup) return lr * (start + ((1 - start) * step) / warmup);
  const s = Math.min(step - warmup, totalSteps - warmup);
  const span = totalSteps - warmup;
  switch (kind) {
    case 'linear':
      return lr * (1 - s / span);
    case 'cosine':
      return (lr * (1 + Math.cos((Math.PI * s) / span))) / 2;
    case 'constant':
      return lr;
    default:
      throw new ShuffleNetError(`schedule: unknown kind ${JSON.stringify(kind)}; known: linear, cosine, constant`);
  }
}
