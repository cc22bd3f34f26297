/**
 * Sessions in a real browser (Debian's Chromium through playwright-core): the browser entry and
 * the Web Worker entry bundled with esbuild, served by a local server with and without
 * cross-origin isolation. Isolated: 2 threads (the page's thread and 1 Web Worker over one shared
 * memory, intra-op), results equal runGraph in the page. Not
 * isolated: 1 thread and a note saying why. Skips only when /usr/bin/chromium is absent (CI sets
 * SHUFFLENET_REQUIRE_CHROMIUM=1 so that there it fails instead).
 */
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumLaunchOptions, chromiumRequirement } from './helpers/chromium.js';
import { bundlePage, pageResult, servePage } from './helpers/page.js';

const needChromium = chromiumRequirement('the browser session tests (test/session-browser.test.ts)');
const testDir = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));

/** The page: a 2-thread session over Web Workers, checked against runGraph in the same page. */
const pageSource = `
import { createModel, createSession, runGraph, Tensor, webWorkerPort } from '../src/browser.js';
const model = createModel('shufflenet_v1_g3_0.5x', { numClasses: 10, smallInput: true });
const session = await createSession(model, {
  threads: 2,
  inputShape: [3, 32, 32],
  spawnWorker: () => webWorkerPort(new Worker('/worker.js', { type: 'module' })),
});
const input = new Tensor([3, 3, 32, 32]);
input.data.forEach((_, i) => (input.data[i] = Math.sin(i * 0.37)));
const outputs = await Promise.all([session.run(input), session.run(input)]);
const expected = runGraph(model.trace([3, 3, 32, 32]), input);
let scale = 1;
for (const v of expected.data) scale = Math.max(scale, Math.abs(v));
let worst = 0;
for (const out of outputs) {
  for (let i = 0; i < expected.size; i++) {
    const r = Math.abs(out.data[i] - expected.data[i]) / scale;
    if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : r;
  }
}
const stats = await session.stats();
await session.dispose();
let afterDispose = '';
try { await session.run(input); } catch (e) { afterDispose = e.message; }
window.result = { threads: session.threads, notes: session.notes, worst, workers: stats.workers,
  shape: outputs[0].shape.join('x'), afterDispose, isolated: self.crossOriginIsolated };
`;

async function bundle(): Promise<Map<string, string>> {
  const common = { bundle: true, format: 'esm', write: false, target: 'es2022', platform: 'browser' } as const;
  const worker = await build({ ...common, entryPoints: [`${root}src/browser-worker.ts`] });
  return new Map([
    ['/', '<!doctype html><title>session</title><script type="module" src="/page.js"></script>'],
    ['/page.js', await bundlePage(pageSource, testDir)],
    ['/worker.js', worker.outputFiles[0]!.text],
  ]);
}

interface PageResult {
  threads: number;
  notes: string;
  worst: number;
  workers: number;
  shape: string;
  afterDispose: string;
  isolated: boolean;
}

describe.skipIf(needChromium.skip)('sessions in Chromium', () => {
  let browser: Browser | undefined;
  let files: Map<string, string>;
  const servers: Server[] = [];

  beforeAll(async () => {
    needChromium.check();
    files = await bundle();
    browser = await chromium.launch(chromiumLaunchOptions);
  });

  afterAll(async () => {
    await browser?.close();
    for (const server of servers) server.close();
  });

  async function open(isolate: boolean): Promise<PageResult> {
    const server = await servePage(files, isolate);
    servers.push(server);
    return pageResult<PageResult>(browser!, server);
  }

  it('cross-origin isolated: 2 threads (page + 1 Web Worker, shared memory), equal to runGraph, disposed', async () => {
    const result = await open(true);
    expect(result.isolated).toBe(true);
    expect(result.threads).toBe(2);
    expect(result.workers).toBe(1);
    expect(result.notes).toBe('');
    expect(result.shape).toBe('3x10');
    expect(result.worst).toBeLessThanOrEqual(1e-4);
    expect(result.afterDispose).toMatch(/disposed/);
  });

  it('not isolated: runs single-threaded and says so', async () => {
    const result = await open(false);
    expect(result.isolated).toBe(false);
    expect(result.threads).toBe(1);
    expect(result.workers).toBe(0);
    expect(result.notes).toMatch(/single-threaded.*cross-origin isolated/);
    expect(result.worst).toBeLessThanOrEqual(1e-4);
  });
});
