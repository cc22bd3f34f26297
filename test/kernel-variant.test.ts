/**
 * The WASM build each vitest project runs is the one it names (vitest.config.ts): SIMD128 in the
 * `simd` project, relaxed SIMD in `relaxed-simd`, whose V8 flag makes Node validate that build.
 * Without this check, a flag that stopped working would make the relaxed run a second SIMD128 run
 * that still passes: the WASM suites test the relaxed build only where the engine validates it.
 */
import { expect, it } from 'vitest';
import { kernelVariant, WasmKernels } from '../src/kernels/wasm/module.js';
import { createModel } from '../src/models/registry.js';
import { compilePlan } from '../src/runtime/plan.js';
import { expectedKernelVariant } from './helpers/requirements.js';

it('loads the WASM build this project names, in the kernels and in an inference plan', async () => {
  const expected = expectedKernelVariant();
  expect(kernelVariant()).toBe(expected);
  expect((await WasmKernels.create()).variant).toBe(expected);
  const graph = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }).trace([1, 3, 32, 32]);
  const plan = await compilePlan(graph);
  expect(plan.summary.variant).toBe(expected);
  plan.dispose();
});
