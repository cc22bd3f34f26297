/**
 * A page in Chromium for tests and benchmarks: module sources bundled with esbuild, served by a
 * local server (with or without cross-origin isolation), opened, and its `window.result` read.
 */
import { createServer, type Server } from 'node:http';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { crossOriginIsolationHeaders } from './chromium.js';

/** Bundles ES module `source` (imports resolved from `resolveDir`) for the browser. */
export async function bundlePage(source: string, resolveDir: string): Promise<string> {
  const page = await build({
    bundle: true,
    format: 'esm',
    write: false,
    target: 'es2022',
    platform: 'browser',
    stdin: { contents: source, resolveDir, loader: 'ts' },
  });
  return page.outputFiles[0]!.text;
}

/** Serves `files` (path → text; '/' is the HTML) on 127.0.0.1 at a free port. */
export async function servePage(files: ReadonlyMap<string, string>, isolate: boolean): Promise<Server> {
  const server = createServer((request, response) => {
    const body = files.get(request.url ?? '/');
    const headers: Record<string, string> = {
      'Content-Type': request.url === '/' ? 'text/html' : 'text/javascript',
      ...(isolate ? crossOriginIsolationHeaders : {}),
    };
    response.writeHead(body === undefined ? 404 : 200, headers).end(body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Opens `server`'s page in `browser` and returns its `window.result` once set (page errors reported). */
export async function pageResult<T>(browser: Browser, server: Server, timeout = 30_000): Promise<T> {
  const address = server.address() as { port: number };
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${address.port}/`);
  await page
    .waitForFunction(() => 'result' in window || false, null, { timeout })
    .catch(() => {
      throw new Error(`the page never finished: ${errors.join('; ')}`);
    });
  const result = (await page.evaluate(() => (window as unknown as { result: T }).result)) as T;
  await page.close();
  return result;
}
