// Lint configuration: typescript-eslint's recommended rules, plus the rules that hold the
// architecture: the core stays browser-safe (only the CLI, benchmarks, scripts and tests may import
// Node's built-in modules), src/ imports only downward through its layers, and web/ uses only the
// public browser entry (both in eslint.layers.js).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import layers from './eslint.layers.js';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'coverage/',
      'web/dist/',
      '**/*.wasm',
      'src/kernels/wasm/assembly/',
      'bench/layout/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['scripts/**/*.{js,mjs}', 'bench/**/*.{js,mjs,ts}', 'test/**/*.ts', '*.config.{js,ts}'],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/node/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*'],
              message: 'The core must run in browsers: Node-only modules belong in src/cli or src/node.',
            },
            // Bare names too ('fs', 'worker_threads'): every built-in Node lists, as test/browser-safe.test.ts checks.
            ...builtinModules.map((m) => ({ group: [m], message: 'The core must run in browsers.' })),
          ],
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts', 'web/**/*.ts'],
    plugins: { layers },
    rules: { 'layers/layer-order': 'error', 'layers/browser-entry': 'error' },
  },
);
