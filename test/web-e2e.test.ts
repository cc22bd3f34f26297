/**
 * The browser page end to end, in Debian's Chromium driven by playwright-core: build web/ with
 * Vite, serve web/dist from a local server of our own, classify a fixture image, and compare what
 * the page shows with the same computation done here in Node. Skips only when /usr/bin/chromium is
 * absent; CI sets SHUFFLENET_REQUIRE_CHROMIUM=1 so that there it fails instead.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumLaunchOptions, chromiumRequirement, crossOriginIsolationHeaders } from './helpers/chromium.js';
import { complexity } from '../src/analysis/complexity.js';
import { preprocessImage } from '../src/data/image.js';
import { loadModelFile, saveModelFile } from '../src/io/modelfile.js';
import { preprocessingPresets, type Preprocessing } from '../src/data/preprocessing.js';
import { architectureOf, createModel } from '../src/models/registry.js';
import { forward } from '../src/nn/forward.js';
import type { Module } from '../src/nn/module.js';
import { fashionMnistClasses } from '../src/node/data/mnist.js';
import { decodeImage } from '../src/node/image.js';
import { softmax } from '../src/ops/index.js';
import { int8KernelsRelaxedWasmBase64, int8KernelsWasmBase64 } from '../src/kernels/wasm/int8.generated.js';
import { runQuantized } from '../src/runtime/quant/execute.js';
import { loadQuantizedModelFile } from '../src/runtime/quant/file.js';
import type { QuantizedNetwork } from '../src/runtime/quant/network.js';
import { calibrateOnRandomImages } from '../web/src/int8.js';
import { randomNetwork } from '../web/src/models.js';

const needChromium = chromiumRequirement('the web page end-to-end test (test/web-e2e.test.ts)');
const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'web', 'dist');
const fixture = join(root, 'test', 'fixtures', 'web', 'trouser.png');
const screenshot = join(root, 'results', 'web-e2e.png');
const int8Screenshot = join(root, 'results', 'web-e2e-int8.png');

const mimeTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
};

/** A static server for web/dist; `overrides` replace or add files (e.g. a model and its manifest). */
async function serve(options: {
  isolate: boolean;
  overrides?: Map<string, Uint8Array>;
}): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const headers: Record<string, string> = {
      'Cache-Control': 'no-store',
      ...(options.isolate ? crossOriginIsolationHeaders : {}),
    };
    const type = (file: string): string => mimeTypes[extname(file)] ?? 'application/octet-stream';
    const override = options.overrides?.get(path);
    if (override !== undefined) {
      response.writeHead(200, { ...headers, 'Content-Type': type(path) }).end(override);
      return;
    }
    const file = resolve(dist, `.${path.endsWith('/') ? `${path}index.html` : path}`);
    if (!file.startsWith(dist + sep) || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404, headers).end('not found');
      return;
    }
    response.writeHead(200, { ...headers, 'Content-Type': type(file) }).end(readFileSync(file));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server: no port');
  return { server, origin: `http://127.0.0.1:${address.port}` };
}

/** What the page should show: the same model on the same file, computed in Node. */
async function expectedTop(model: Module, preprocessing: Preprocessing, labels: readonly string[]) {
  const image = await decodeImage(readFileSync(fixture), fixture);
  return topOf(softmax(forward(model, preprocessImage(image, preprocessing))).data, labels);
}

/** The same for an int8 network, on the reference int8 executor (the page's int8 plan is bit-exact with it). */
async function expectedInt8Top(network: QuantizedNetwork, preprocessing: Preprocessing, labels: readonly string[]) {
  const image = await decodeImage(readFileSync(fixture), fixture);
  return topOf(softmax(runQuantized(network, preprocessImage(image, preprocessing))).data, labels);
}

function topOf(probabilities: Float32Array, labels: readonly string[]) {
  return [...probabilities]
    .map((probability, index) => ({ label: labels[index]!, probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, 5);
}

async function shownTop(page: Page): Promise<{ label: string; probability: number }[]> {
  return page.$$eval('#top5 li', (items) =>
    items.map((li) => ({
      label: (li as HTMLElement).dataset['label']!,
      probability: Number((li as HTMLElement).dataset['probability']),
    })),
  );
}

function readManifest(): { models: { file: string; int8?: string }[] } {
  return JSON.parse(readFileSync(join(root, 'web', 'public', 'models', 'manifest.json'), 'utf8')) as {
    models: { file: string; int8?: string }[];
  };
}

interface Watched {
  page: Page;
  requests: string[];
  errors: string[];
}

async function open(context: BrowserContext, url: string): Promise<Watched> {
  const page = await context.newPage();
  const watched: Watched = { page, requests: [], errors: [] };
  page.on('request', (r) => watched.requests.push(r.url()));
  page.on('pageerror', (e) => watched.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') watched.errors.push(m.text());
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  return watched;
}

async function classifyFixture(page: Page): Promise<{ label: string; probability: number }[]> {
  await page.locator('#file-input').setInputFiles(fixture);
  await page.waitForFunction(() => document.querySelector('#source-name')?.textContent?.includes('trouser.png'));
  return shownTop(page);
}

function expectSameTop(
  shown: { label: string; probability: number }[],
  expected: { label: string; probability: number }[],
): void {
  expect(shown).toHaveLength(5);
  expect(shown.map((p) => p.label)).toEqual(expected.map((p) => p.label));
  shown.forEach((p, i) => expect(p.probability).toBeCloseTo(expected[i]!.probability, 5));
}

/** Every network request goes to the page's own origin. */
function expectOwnOriginOnly(watched: Watched, origin: string): void {
  const foreign = watched.requests.filter((url) => /^(https?|wss?):/.test(url) && new URL(url).origin !== origin);
  expect(foreign, 'the page fetched from another origin').toEqual([]);
  expect(watched.requests.length).toBeGreaterThan(3);
}

describe.skipIf(needChromium.skip)('browser page (web/) in Chromium', () => {
  let context: BrowserContext;
  let userDataDir: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    needChromium.check();
    await build({ configFile: join(root, 'web', 'vite.config.ts'), logLevel: 'warn' });
    userDataDir = mkdtempSync(join(tmpdir(), 'shufflenet-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      ...chromiumLaunchOptions,
      viewport: { width: 1240, height: 980 },
    });
  });

  afterAll(async () => {
    await context?.close();
    for (const server of servers) server.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('runs on 2 threads when isolated, classifies the fixture as Node does, shows a latency and the measured chart', async () => {
    const { server, origin } = await serve({ isolate: true });
    servers.push(server);
    // Two threads asked explicitly: by default the page asks for the device's cores, which vary.
    const watched = await open(context, `${origin}/?threads=2`);
    const { page } = watched;

    // The bundled model when the manifest lists one, else the untrained g = 3, 0.5× network.
    const bundled = readManifest().models[0];
    let expected;
    if (bundled !== undefined) {
      // The page's build emits the package's bundled model (models/) under models/ (web/vite.config.ts).
      const bytes = readFileSync(join(root, 'models', bundled.file));
      const { model, info } = loadModelFile(bytes, bundled.file);
      expected = await expectedTop(model, info.preprocessing!, info.labels!);
    } else {
      const model = createModel('shufflenet_v1_g3_0.5x', {
        numClasses: 10,
        inputChannels: 1,
        smallInput: true,
        seed: 0,
      });
      expected = await expectedTop(model, preprocessingPresets.mnist, fashionMnistClasses);
      await expect(page.locator('#weights-badge').textContent()).resolves.toContain('untrained weights');
      expect(await page.locator('#untrained-note').isHidden()).toBe(true); // shown with a result only
    }
    // Threaded plans run the SIMD128 build over shared memory (there is no relaxed shared build).
    await expect(page.locator('#engine-badge').textContent()).resolves.toBe('WASM SIMD128 kernels');
    await expect(page.locator('#threads-badge').getAttribute('data-threads')).resolves.toBe('2');
    await expect(page.locator('#threads-badge').textContent()).resolves.toBe('2 threads (cross-origin isolated)');

    const shown = await classifyFixture(page);
    expectSameTop(shown, expected);
    // A trained model must get the fixture (a Fashion-MNIST test trouser) right.
    if (bundled !== undefined) expect(shown[0]!.label).toBe('Trouser');
    else expect(await page.locator('#untrained-note').isVisible()).toBe(true);
    await expect(page.locator('#top5 li').first().locator('.label').textContent()).resolves.toBe(expected[0]!.label);

    const latency = await page.locator('#latency').textContent();
    expect(latency).toMatch(
      /^forward pass: float32 \d+\.\d ms \(WASM SIMD128, 2 threads\) · preprocessing \d+\.\d ms$/,
    );
    expect(Number(await page.locator('#latency').getAttribute('data-ms'))).toBeGreaterThan(0);

    // The chart: every g of the picker at 0.25× and 0.5×, with the paper's MFLOPs.
    await page.waitForSelector('#chart[data-state="done"]', { timeout: 40_000 });
    const points = await page.$$eval('#chart circle.point', (circles) =>
      circles.map((c) => ({
        groups: c.getAttribute('data-groups'),
        scale: c.getAttribute('data-scale'),
        title: c.textContent ?? '',
      })),
    );
    expect(points).toHaveLength(10);
    const g3 = points.find((p) => p.groups === '3' && p.scale === '0.5')!;
    const macs = complexity(
      createModel('shufflenet_v1_g3_0.5x', {
        numClasses: 10,
        inputChannels: 1,
        smallInput: true,
        initialize: false,
      }).trace([1, 1, 28, 28]),
    ).macs;
    expect(g3.title).toContain(`${(macs / 1e6).toFixed(2)} MFLOPs`);
    expect(g3.title).toMatch(/median \d+\.\d ms of 5 runs/);
    await expect(page.locator('#chart-status').textContent()).resolves.toContain('WASM SIMD128, 2 threads');

    mkdirSync(join(root, 'results'), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);

    expect(watched.errors).toEqual([]);
    expectOwnOriginOnly(watched, origin);
    await page.close();
  });

  it('runs single-threaded with the reason when not isolated, runs a model file named by the manifest, takes drops, pastes and drawings', async () => {
    const name = 'shufflenet_v1_g2_0.25x';
    const options = { numClasses: 10, inputChannels: 1, smallInput: true };
    const model = createModel(name, { ...options, seed: 11 });
    const labels = fashionMnistClasses.map((l) => `${l} (from the file)`);
    const bytes = saveModelFile(model, {
      architecture: architectureOf(name, options),
      arch: name,
      preprocessing: preprocessingPresets.mnist,
      labels,
      notes: { made: 'web e2e test, random weights (seed 11)' },
    });
    const overrides = new Map<string, Uint8Array>([
      ['/models/manifest.json', new TextEncoder().encode(JSON.stringify({ models: [{ file: 'e2e.safetensors' }] }))],
      ['/models/e2e.safetensors', bytes],
    ]);
    const { server, origin } = await serve({ isolate: false, overrides });
    servers.push(server);
    const watched = await open(context, `${origin}/?threads=2`);
    const { page } = watched;

    await expect(page.locator('#weights-badge').textContent()).resolves.toBe('weights: models/e2e.safetensors');
    // Not isolated: the session falls back to one thread and the badge gives its reason. On one
    // thread Chromium runs the relaxed-SIMD build, which it validates.
    await expect(page.locator('#threads-badge').getAttribute('data-threads')).resolves.toBe('1');
    await expect(page.locator('#threads-badge').textContent()).resolves.toBe(
      'running single-threaded (asked for 2 threads): the page is not cross-origin isolated (no SharedArrayBuffer); ' +
        'serve it with COOP/COEP headers',
    );
    await expect(page.locator('#engine-badge').textContent()).resolves.toBe('WASM relaxed SIMD kernels');
    await expect(page.locator('#groups').inputValue()).resolves.toBe('2');
    await expect(page.locator('#scale').inputValue()).resolves.toBe('0.25');
    await expect(page.locator('#model-info').textContent()).resolves.toContain(
      'web e2e test, random weights (seed 11)',
    );

    expectSameTop(await classifyFixture(page), await expectedTop(model, preprocessingPresets.mnist, labels));
    expect(await page.locator('#untrained-note').isHidden()).toBe(true);

    // The same image dropped, then pasted: same answer. A file that is not an image: a clear error.
    const png = [...readFileSync(fixture)];
    for (const how of ['drop', 'paste'] as const) {
      await page.evaluate(
        ([bytes, how]) => {
          const data = new DataTransfer();
          data.items.add(new File([new Uint8Array(bytes)], 'trouser.png', { type: 'image/png' }));
          document.querySelector('#source-name')!.textContent = '';
          if (how === 'drop') {
            document
              .querySelector('#drop-zone')!
              .dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true }));
          } else {
            document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
          }
        },
        [png, how] as const,
      );
      const source = how === 'drop' ? 'trouser.png (28×28)' : 'pasted image (28×28)';
      await page.waitForFunction((s) => document.querySelector('#source-name')?.textContent?.startsWith(s), source);
      const top = await page.$$eval('#top5 li', (items) =>
        items.map((li) => ({
          label: (li as HTMLElement).dataset['label']!,
          probability: Number((li as HTMLElement).dataset['probability']),
        })),
      );
      expectSameTop(top, await expectedTop(model, preprocessingPresets.mnist, labels));
    }
    await page
      .locator('#file-input')
      .setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') });
    await page.waitForFunction(() => document.querySelector('#input-error')?.textContent !== '');
    await expect(page.locator('#input-error').textContent()).resolves.toBe(
      'notes.png: not an image this browser can decode (type "image/png", 13 bytes)',
    );
    // The library's size rules hold in the page: a thin image is refused, a big one shrinks on decode.
    const solidPng = (width: number, height: number): Promise<Buffer> =>
      sharp({ create: { width, height, channels: 3, background: '#888' } })
        .png()
        .toBuffer();
    await page
      .locator('#file-input')
      .setInputFiles({ name: 'thin.png', mimeType: 'image/png', buffer: await solidPng(2000, 20) });
    await page.waitForFunction(() => document.querySelector('#input-error')?.textContent?.startsWith('thin.png'));
    await expect(page.locator('#input-error').textContent()).resolves.toBe(
      'thin.png: 2000×20 has an aspect ratio of 100:1, over the limit of 32:1',
    );
    await page
      .locator('#file-input')
      .setInputFiles({ name: 'big.png', mimeType: 'image/png', buffer: await solidPng(600, 400) });
    await page.waitForFunction(() =>
      document.querySelector('#source-name')?.textContent?.startsWith('big.png (84×56) → 28×28'),
    );

    // Draw a stroke: the drawing is classified with the file's labels.
    const box = (await page.locator('#draw').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.8, { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction(() =>
      document.querySelector('#source-name')?.textContent?.startsWith('drawing (280×280) → 28×28'),
    );
    const drawn = await page.$$eval('#top5 li', (items) => items.map((li) => (li as HTMLElement).dataset['label']!));
    expect(drawn).toHaveLength(5);
    for (const label of drawn) expect(labels).toContain(label);

    // Switching to a network without a file falls back to untrained weights, and says so.
    await page.locator('#groups').selectOption('8');
    await page.waitForFunction(() => document.querySelector('#weights-badge')?.textContent?.startsWith('untrained'));
    await page.waitForSelector('#untrained-note', { state: 'visible' }); // the drawing, classified again
    const fallback = await page.$$eval('#top5 li', (items) => items.map((li) => (li as HTMLElement).dataset['label']!));
    for (const label of fallback) expect(fashionMnistClasses).toContain(label);

    expect(watched.errors).toEqual([]);
    expectOwnOriginOnly(watched, origin);
    await page.close();
  });

  it('switches to int8 on demand: the int8 chunk and file load only then, answers as Node does on 1 thread beside float32 on 2, calibrates a random network as Node does', async () => {
    const { server, origin } = await serve({ isolate: true });
    servers.push(server);
    const watched = await open(context, `${origin}/?threads=2`);
    const { page } = watched;
    // The bundled model ships in both precisions: the manifest pairs its int8 file with it.
    const bundled = readManifest().models[0]!;
    expect(bundled.int8).toBe('fashion-mnist-shufflenet-int8.safetensors');
    const float = loadModelFile(readFileSync(join(root, 'models', bundled.file)), bundled.file);
    const int8 = loadQuantizedModelFile(readFileSync(join(root, 'models', bundled.int8!)), bundled.int8!);
    const preprocessing = float.info.preprocessing!;
    const labels = float.info.labels!;
    const latency = page.locator('#latency');

    // float32 first: its answer, and its latency alone.
    const floatTop = await classifyFixture(page);
    expectSameTop(floatTop, await expectedTop(float.model, preprocessing, labels));
    await expect(latency.getAttribute('data-int8-ms')).resolves.toBeNull();
    await expect(page.locator('#model-info').textContent()).resolves.toContain(
      'int8models/fashion-mnist-shufflenet-int8.safetensors',
    );
    const beforeSwitch = watched.requests.length;
    expect(watched.requests.some((url) => url.endsWith('/models/manifest.json'))).toBe(true); // the worker's requests are seen
    expect(watched.requests.filter((url) => url.includes('int8'))).toEqual([]);

    // int8: the page loads the int8 chunk and the int8 file now, and classifies the same image again.
    await page.locator('#precision').selectOption('int8');
    await page.waitForSelector('#latency[data-precision="int8"]', { timeout: 20_000 });
    const int8Top = await shownTop(page);
    expectSameTop(int8Top, await expectedInt8Top(int8.network, preprocessing, labels));
    expect(int8Top[0]!.label).toBe(floatTop[0]!.label); // Trouser, in both precisions
    const after = watched.requests.slice(beforeSwitch).map((url) => new URL(url).pathname);
    expect(after).toContain('/models/fashion-mnist-shufflenet-int8.safetensors');
    const chunks = after.filter((path) => /^\/assets\/int8-[\w-]+\.js$/.test(path));
    expect(chunks).toHaveLength(1);
    // The int8 kernels (their WASM, base64 in the JS) are in that chunk and in nothing loaded before.
    const kernelMarks = [int8KernelsWasmBase64, int8KernelsRelaxedWasmBase64].map((b) => b.slice(2000, 2064));
    const served = (path: string): string => readFileSync(join(dist, path), 'utf8');
    for (const mark of kernelMarks) expect(served(chunks[0]!)).toContain(mark);
    const loadedBefore = watched.requests
      .slice(0, beforeSwitch)
      .map((url) => new URL(url).pathname)
      .filter((path) => path.endsWith('.js'));
    expect(loadedBefore.length).toBeGreaterThan(1);
    for (const path of loadedBefore) for (const mark of kernelMarks) expect(served(path)).not.toContain(mark);
    // Both latencies; the int8 plan runs on 1 thread beside the 2-thread float32 session, and says so.
    await expect(latency.textContent()).resolves.toMatch(
      /^forward pass: float32 \d+\.\d ms \(WASM SIMD128, 2 threads\) · int8 \d+\.\d ms \(int8 kernels: WASM relaxed SIMD, 1 thread: the int8 plan is single-threaded\) · preprocessing \d+\.\d ms$/,
    );
    expect(Number(await latency.getAttribute('data-float32-ms'))).toBeGreaterThan(0);
    expect(Number(await latency.getAttribute('data-int8-ms'))).toBeGreaterThan(0);
    await expect(latency.locator('strong').textContent()).resolves.toMatch(/^int8 /); // the shown answer's precision
    mkdirSync(join(root, 'results'), { recursive: true });
    await page.screenshot({ path: int8Screenshot, fullPage: true });

    // Back to float32: its answer again, nothing loaded again.
    const requestsInInt8 = watched.requests.length;
    await page.locator('#precision').selectOption('float32');
    await page.waitForSelector('#latency[data-precision="float32"]');
    expectSameTop(await shownTop(page), await expectedTop(float.model, preprocessing, labels));
    expect(watched.requests.slice(requestsInInt8).filter((url) => url.includes('int8'))).toEqual([]);

    // A network without an int8 file, in int8: calibrated in the worker on seeded random images,
    // the same network Node calibrates, and the page says how it was made.
    await page.locator('#precision').selectOption('int8');
    await page.waitForSelector('#latency[data-precision="int8"]');
    await page.locator('#groups').selectOption('1');
    await page.waitForFunction(() => document.querySelector('#weights-badge')?.textContent?.startsWith('untrained'));
    await page.waitForFunction(() =>
      document.querySelector('#latency')?.textContent?.startsWith('forward pass: int8 '),
    );
    await expect(page.locator('#model-info').textContent()).resolves.toContain(
      'int8calibrated here on 8 random images (minmax, seed 0); weights are random',
    );
    const random = randomNetwork({ groups: 1, scale: '0.5' });
    expectSameTop(
      await shownTop(page),
      await expectedInt8Top(calibrateOnRandomImages(random), random.preprocessing, random.summary.labels),
    );

    expect(watched.errors).toEqual([]);
    expectOwnOriginOnly(watched, origin);
    await page.close();
  });
});
