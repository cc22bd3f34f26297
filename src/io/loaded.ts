/**
 * What a model loader gives (src/io/load.ts): its own module, so that the format loaders
 * (onnx/loader.ts, torch/index.ts) and the loader table import it without importing each other
 * through load.ts, whatever module a program imports first.
 */
import type { Graph } from '../graph/graph.js';
import type { Module } from '../nn/module.js';
import type { Shape } from '../tensor/tensor.js';
import type { ModelInfo } from './modelfile.js';

export interface LoadedModel {
  /** The graph for one input shape (traced, or re-shaped for imported graphs). */
  graphFor(inputShape: Shape): Graph;
  /** The module, when the format rebuilds one of our networks (not for generic imported graphs). */
  module?: Module;
  info?: Partial<ModelInfo>;
  /** The input shape the file declares (imported graphs), batch included. */
  inputShape?: Shape;
  /** What was loaded, for messages: `safetensors model file (shufflenet_v1_g3_0.5x)`. */
  description: string;
}

export interface ModelLoader {
  readonly name: string;
  matches(fileName: string, bytes: Uint8Array): boolean;
  /** `arch` is the --arch the user gave, for formats that carry weights without an architecture. */
  load(bytes: Uint8Array, fileName: string, arch?: string): LoadedModel;
}

export function moduleModel(module: Module, description: string, info?: Partial<ModelInfo>): LoadedModel {
  return { graphFor: (shape) => module.trace(shape), module, description, ...(info ? { info } : {}) };
}
