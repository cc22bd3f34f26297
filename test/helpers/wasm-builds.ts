/**
 * The WASM builds a kernel suite runs on: SIMD128 always, and relaxed-SIMD too where this engine
 * runs it (browsers; Node with --experimental-wasm-relaxed-simd, as vitest.config.ts's relaxed-simd
 * project does).
 */
import { describe, expect } from 'vitest';
import { kernelVariant, WasmKernels, type KernelVariant } from '../../src/kernels/wasm/module.js';

export function wasmBuildsUnderTest(): KernelVariant[] {
  return kernelVariant() === 'relaxed-simd' ? ['simd', 'relaxed-simd'] : ['simd'];
}

/**
 * One `describe` per build (`simd build: <what>`). `body` gets `load`, which instantiates that
 * build and checks that it is the build asked for (a flag that stopped working would otherwise
 * turn the relaxed run into a second SIMD128 run unseen).
 *
 * @example
 * let kernels: WasmKernels;
 * describeEachBuild('training kernels', (load) => {
 *   beforeAll(async () => (kernels = await load()));
 *   it('…', () => kernels.exports.reluForward(…));
 * });
 */
export function describeEachBuild(what: string, body: (load: () => Promise<WasmKernels>) => void): void {
  for (const variant of wasmBuildsUnderTest()) {
    describe(what === '' ? `${variant} build` : `${variant} build: ${what}`, () => {
      body(async () => {
        const kernels = await WasmKernels.create({ relaxedSimd: variant === 'relaxed-simd' });
        expect(kernels.variant).toBe(variant);
        return kernels;
      });
    });
  }
}
