/**
 * The engine seam: the page only asks an engine to compile a traced graph into something that runs
 * one input. Today the only engine is the reference executor (`runGraph`, pure TypeScript kernels,
 * one thread); a faster engine (WASM) slots in by implementing `Engine` and being listed first in
 * `engines`, with no change to the page or the worker protocol.
 */
import type { Graph } from '../../src/graph/graph.js';
import { runGraph } from '../../src/graph/execute.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export interface CompiledModel {
  /** Logits for one input of the traced shape. */
  run(input: Tensor): Tensor;
}

export interface Engine {
  /** Shown in the UI next to every latency. */
  readonly name: string;
  /** Threads the engine computes with. */
  readonly threads: number;
  /** Whether it can run here (e.g. WebAssembly SIMD present); the first available engine is used. */
  available(): Promise<boolean>;
  compile(graph: Graph): Promise<CompiledModel>;
}

export const referenceEngine: Engine = {
  name: 'reference engine',
  threads: 1,
  available: () => Promise.resolve(true),
  compile: (graph) => Promise.resolve({ run: (input) => runGraph(graph, input) }),
};

/** In order of preference. */
export const engines: readonly Engine[] = [referenceEngine];

export async function chooseEngine(): Promise<Engine> {
  for (const engine of engines) if (await engine.available()) return engine;
  return referenceEngine;
}
