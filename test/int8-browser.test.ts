/**
 * The int8 plan in Chromium (Debian's, through playwright-core): there the relaxed-SIMD build of
 * the int8 kernels loads (Chromium validates relaxed SIMD and computes its 8-bit dot product right,
 * unlike Node 20's V8 under its flag), so steps with 7-bit weights run qgemm7 on
 * i32x4.relaxed_dot_i8x16_i7x16_add_s. Both a 7-bit and an 8-bit network must give the reference
 * int8 executor's logits bit for bit. Skips only when /usr/bin/chromium is absent (CI sets
 * SHUFFLENET_REQUIRE_CHROMIUM=1 so that there it fails instead).
 */
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumLaunchOptions, chromiumRequirement } from './helpers/chromium.js';
import { bundlePage, pageResult, servePage } from './helpers/page.js';

const needChromium = chromiumRequirement('the int8 browser tests (test/int8-browser.test.ts)');
const testDir = fileURLToPath(new URL('.', import.meta.url));

const pageSource = `
import { createModel } from '../src/models/registry.js';
import { Calibrator } from '../src/runtime/quant/calibrate.js';
import { runQuantized } from '../src/runtime/quant/execute.js';
import { QuantizedPlan } from '../src/runtime/quant/plan.js';
import { sevenBitWeights } from '../src/kernels/wasm/pack.js';
import { Tensor } from '../src/tensor/tensor.js';
import { randomizeBuffers } from './helpers/random-state.js';

const image = (seed) => {
  const t = new Tensor([1, 3, 32, 32]);
  for (let i = 0; i < t.size; i++) t.data[i] = (Math.sin(i * 0.37 + seed) + 1) / 2;
  return t;
};
const cases = [];
for (const [name, weightBits] of [['shufflenet_v1_g3_0.25x', 7], ['shufflenet_v1_g3_0.25x', 8], ['mobilenet_v1_0.25', 7]]) {
  const model = createModel(name, { numClasses: 10, smallInput: true });
  randomizeBuffers(model);
  const graph = model.trace([1, 3, 32, 32]);
  const calibrator = new Calibrator(graph, { method: 'minmax', images: 3, weightBits });
  for (let i = 0; i < 3; i++) calibrator.observe(image(i));
  const network = calibrator.finish();
  const plan = await QuantizedPlan.create(network);
  let mismatches = 0;
  let values = 0;
  for (const seed of [5, 6]) {
    const x = image(seed);
    const got = plan.run(x).data;
    const expected = runQuantized(network, x).data;
    for (let i = 0; i < expected.length; i++) if (!Object.is(got[i], expected[i])) mismatches++;
    values += expected.length;
  }
  const sevenBitSteps = [...network.weights.values()].filter((w) => sevenBitWeights(w.weight)).length;
  cases.push({ name, weightBits, build: plan.variant.build, refused: plan.variant.relaxedRefused, mismatches, values, sevenBitSteps, steps: network.weights.size });
}
window.result = { cases };
`;

interface PageCase {
  name: string;
  weightBits: number;
  build: string;
  refused: string | null;
  mismatches: number;
  values: number;
  sevenBitSteps: number;
  steps: number;
}

describe.skipIf(needChromium.skip)('the int8 plan in Chromium', () => {
  let browser: Browser | undefined;
  let server: Server | undefined;

  beforeAll(async () => {
    needChromium.check();
    const files = new Map([
      ['/', '<!doctype html><title>int8</title><script type="module" src="/page.js"></script>'],
      ['/page.js', await bundlePage(pageSource, testDir)],
    ]);
    server = await servePage(files, false);
    browser = await chromium.launch(chromiumLaunchOptions);
  });

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it('runs the relaxed-SIMD build (qgemm7 on 7-bit weights) and gives the reference logits bit for bit', async () => {
    const { cases } = await pageResult<{ cases: PageCase[] }>(browser!, server!, 60_000);
    expect(cases).toHaveLength(3);
    for (const c of cases) {
      const what = `${c.name}, ${c.weightBits}-bit weights`;
      expect(c.build, what).toBe('relaxed-simd');
      expect(c.refused, what).toBeNull();
      expect(c.values, what).toBe(20);
      expect(c.mismatches, what).toBe(0);
      // 7-bit networks take qgemm7 on every weighted step; 8-bit ones (random weights reach ±127) do not.
      if (c.weightBits === 7) expect(c.sevenBitSteps, what).toBe(c.steps);
      else expect(c.sevenBitSteps, what).toBeLessThan(c.steps);
    }
  });
});
