/**
 * PyTorch's whole-network training step (test/fixtures/grads.safetensors, from
 * scripts/make_grad_fixtures.py): per network, its weights by PyTorch name, an input and labels, and
 * the loss, gradients and running statistics after one forward and backward in training mode.
 * test/autograd-networks.test.ts checks the tape against it; test/training-plan.test.ts the plan.
 */
import { createModel, type ModelOptions } from '../../src/models/registry.js';
import type { Module } from '../../src/nn/module.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { get, loadFixture } from './fixtures.js';

export const gradsFixture = loadFixture('grads.safetensors');

export interface GradNetwork {
  name: string;
  options: ModelOptions;
  input: number[];
  labelSmoothing: number;
}

export const gradNetworks = JSON.parse(gradsFixture.metadata['networks']!) as GradNetwork[];

/** A network's fixture tensor: `input`, `labels`, `loss`, `inputGrad`, `grad/<param>`, `after/<buffer>`. */
export function gradTensor(net: GradNetwork, name: string): Tensor {
  return get(gradsFixture, `${net.name}/${name}`);
}

/** The network built with the fixture's weights and buffers (not initialised first). */
export function modelWithFixtureState(net: GradNetwork): Module {
  const model = createModel(net.name, { ...net.options, initialize: false });
  const prefix = `${net.name}/state/`;
  const state = new Map<string, Tensor>();
  for (const [key, tensor] of gradsFixture.tensors) {
    if (key.startsWith(prefix)) state.set(key.slice(prefix.length), tensor);
  }
  model.loadStateDict(state);
  return model;
}

/**
 * Biases of a batch norm that feeds a bias-free conv and another training-mode batch norm (every
 * `bn2.bias`): their gradient is exactly 0, since the next batch norm subtracts any per-channel
 * shift again, so both sides are rounding noise.
 */
export const structurallyZero = (name: string): boolean => /\.bn2\.bias$/.test(name);
