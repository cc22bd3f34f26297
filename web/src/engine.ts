/**
 * The engine seam: the page only asks an engine to compile a traced graph into something that runs
 * one input. Today the only engine is the reference executor (`runGraph`, pure TypeScript kernels,
 * one thread) and the fused WASM SIMD plan, preferred wherever WebAssembly SIMD validates. Another
 * engine slots in by implementing `Engine` and being listed in `engines`.
 */
import type { Graph } from '../../src/graph/graph.js';
import { runGraph } from '../../src/graph/execute.js';
import { compilePlan } from '../../src/runtime/plan.js';
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

/** The fused inference plan on the WASM SIMD kernels (src/runtime/plan.ts). */
export const wasmEngine: Engine = {
  name: 'WASM SIMD engine',
  threads: 1,
  async available() {
    try {
      // The smallest module using a v128 instruction: validates only where SIMD128 is supported.
      const probe = Uint8Array.from([
        0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
      ]);
      return WebAssembly.validate(probe);
    } catch {
      return false;
    }
  },
  async compile(graph) {
    const plan = await compilePlan(graph);
    return { run: (input) => plan.run(input) };
  },
};

/** In order of preference. */
export const engines: readonly Engine[] = [wasmEngine, referenceEngine];

export async function chooseEngine(): Promise<Engine> {
  for (const engine of engines) if (await engine.available()) return engine;
  return referenceEngine;
}
