// Two projects, both run by `npm test`:
// - simd: every test file, on the WASM SIMD128 build (what Node 20 validates without flags);
// - relaxed-simd: the suites that run WASM kernels through a plan or directly, again with V8's
//   --experimental-wasm-relaxed-simd, so they run the relaxed build that Chrome runs.
// Each project names the build it must load in SHUFFLENET_EXPECT_VARIANT, and
// test/kernel-variant.test.ts (in both) fails if WasmKernels.create() loads another: a flag that
// stops working cannot turn the relaxed run into a second SIMD128 run unseen.
// A stray .only fails where CI is set (vitest's allowOnly defaults to !process.env.CI; .ci/run sets it).
import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

const relaxedSuites = [
  'test/kernel-variant.test.ts',
  'test/wasm-kernels.test.ts',
  'test/wasm-conv-backward.test.ts',
  'test/wasm-train-kernels.test.ts',
  'test/plan.test.ts',
  'test/training-plan.test.ts',
  'test/conformance.test.ts',
  'test/int8-kernels.test.ts',
];
// NOTE: test/threads.test.ts is not here: a threaded plan runs the shared-memory SIMD128 build
// (there is no relaxed shared build), so under the flag it would repeat its simd run exactly.
// parallel-train and wasm-batchnorm load only SIMD128 builds; a one-thread session runs the plan
// that plan.test.ts covers.
// A renamed suite would silently leave the relaxed run: refuse to start instead.
const absent = relaxedSuites.filter((file) => !existsSync(new URL(file, import.meta.url)));
if (absent.length > 0) throw new Error(`vitest.config.ts: relaxed-SIMD suites not found: ${absent.join(', ')}`);

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'simd',
          include: ['test/**/*.test.ts'],
          env: { SHUFFLENET_EXPECT_VARIANT: 'simd' },
        },
      },
      {
        extends: true,
        test: {
          name: 'relaxed-simd',
          include: relaxedSuites,
          execArgv: ['--experimental-wasm-relaxed-simd'],
          env: { SHUFFLENET_EXPECT_VARIANT: 'relaxed-simd' },
        },
      },
    ],
  },
});
