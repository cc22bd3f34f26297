/**
 * The layer rules of eslint.layers.js, run through ESLint with the repository's own configuration
 * on probe files that exist only in memory: an upward import must be reported, a downward one must
 * not. (The real tree is checked by `npm run lint`.)
 */
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

/** The layer-rule messages ESLint gives for `code` as if it were the file at `path`. */
async function layerProblems(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${path}`, warnIgnored: true });
  expect(result, `ESLint returned no result for ${path}`).toBeDefined();
  // A parse error would also leave the layer rules silent; it must not pass as "allowed".
  expect(result!.messages.filter((m) => m.fatal)).toEqual([]);
  return result!.messages.filter((m) => m.ruleId?.startsWith('layers/')).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('layer order (layers/layer-order)', () => {
  it('reports an ops module that imports from runtime', async () => {
    const problems = await layerProblems(
      'src/ops/layers-probe.ts',
      "import { compilePlan } from '../runtime/plan.js';\nexport const probe = compilePlan;\n",
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('layers/layer-order');
    expect(problems[0]).toContain('ops imports ../runtime/plan.js from runtime');
  });

  it('reports upward imports however they are written: nested folders, types, re-exports, import()', async () => {
    const problems = await layerProblems(
      'src/kernels/wasm/layers-probe.ts',
      [
        "import type { Graph } from '../../graph/graph.js';",
        "export { Trainer } from '../../train/trainer.js';",
        "export * from '../../index.js';",
        "export const later = () => import('../../cli/main.js');",
        "export type Session = import('../../runtime/session.js').Session;",
        'export type Probe = Graph;',
      ].join('\n'),
    );
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toContain('kernels imports ../../graph/graph.js from graph');
    expect(problems.join('\n')).toContain('from the entry src/index.ts');
  });

  it('allows imports from the same layer, layers to the left and src/errors.ts', async () => {
    const problems = await layerProblems(
      'src/train/layers-probe.ts',
      [
        "import { ShuffleNetError } from '../errors.js';",
        "import { Tensor } from '../tensor/tensor.js';",
        "import { createSession } from '../runtime/session.js';",
        "import { Trainer } from './trainer.js';",
        "import { Sgd } from '../optim/index.js';",
        'export const probe = [ShuffleNetError, Tensor, createSession, Trainer, Sgd];',
      ].join('\n'),
    );
    expect(problems).toEqual([]);
    // Same layer, sideways: nn and autograd are one layer, as are io and analysis; io reads data.
    expect(await layerProblems('src/nn/layers-probe.ts', "export * from '../autograd/index.js';\n")).toEqual([]);
    expect(await layerProblems('src/io/layers-probe.ts', "export * from '../analysis/table.js';\n")).toEqual([]);
    expect(await layerProblems('src/io/layers-probe.ts', "export * from '../data/preprocessing.js';\n")).toEqual([]);
    expect(await layerProblems('src/data/layers-probe.ts', "export * from '../io/modelfile.js';\n")).toHaveLength(1);
  });

  it('reports a folder that is in no layer, so a new one is placed on purpose', async () => {
    const problems = await layerProblems('src/quant/layers-probe.ts', 'export const probe = 1;\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('src/quant/layers-probe.ts is in no layer');
  });

  it('lets the entry files import every layer', async () => {
    expect(await layerProblems('src/browser.ts', "export * from './cli/main.js';\n")).toEqual([]);
  });
});

describe('the page uses the public browser entry (layers/browser-entry)', () => {
  it('reports web/ importing a module of src/ other than the browser entries', async () => {
    const problems = await layerProblems(
      'web/src/layers-probe.ts',
      [
        "import { compilePlan } from '../../src/runtime/plan.js';",
        "import { createModel } from 'shufflenet';",
        "const worker = new URL('../../src/node/session-worker.ts', import.meta.url);",
        'export const probe = [compilePlan, createModel, worker];',
      ].join('\n'),
    );
    expect(problems).toHaveLength(3);
    expect(problems.every((p) => p.startsWith('layers/browser-entry'))).toBe(true);
  });

  it('allows the browser entry, the session worker entry, the int8 entry and web/ itself', async () => {
    const problems = await layerProblems(
      'web/src/layers-probe.ts',
      [
        "import { createSession } from '../../src/browser.js';",
        "import { Tensor } from 'shufflenet/browser';",
        "import { decodeImage } from './decode.js';",
        "const worker = new URL('../../src/browser-worker.ts', import.meta.url);",
        "const int8 = import('shufflenet/browser-int8');",
        "import { QuantizedPlan } from '../../src/browser-int8.js';",
        'export const probe = [createSession, Tensor, decodeImage, worker, int8, QuantizedPlan];',
      ].join('\n'),
    );
    expect(problems).toEqual([]);
  });
});
