// The browser page: a static site built from web/ into web/dist. It imports the library as a user
// does, through the package's public entries ('shufflenet/browser', 'shufflenet/browser-worker',
// resolved by package.json "exports" to the built dist/, so `npm run build` comes first). Dev and
// preview servers send COOP/COEP so the page is cross-origin isolated (threads need
// SharedArrayBuffer); the built page gets a CSP that allows its own origin only.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** Nothing but the page's own origin: no CDN, no analytics, no fonts from elsewhere. */
const contentSecurityPolicy = [
  "default-src 'self'",
  // 'wasm-unsafe-eval' lets the WASM engine compile its module; no JavaScript eval is allowed.
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' blob: data:",
  "worker-src 'self' blob:",
  "connect-src 'self'",
].join('; ');

const csp: Plugin = {
  name: 'shufflenet-csp',
  apply: 'build',
  transformIndexHtml: () => [
    {
      tag: 'meta',
      attrs: { 'http-equiv': 'Content-Security-Policy', content: contentSecurityPolicy },
      injectTo: 'head-prepend',
    },
  ],
};

/**
 * 'shufflenet/<entry>' → the file package.json "exports" names for it. Node, vitest and tsc resolve
 * a package's own name this way; Vite does not, so the page gets the same mapping as aliases.
 */
const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const packageJson = JSON.parse(readFileSync(`${packageRoot}package.json`, 'utf8')) as {
  name: string;
  exports: Record<string, { default: string }>;
};
const packageEntries = Object.entries(packageJson.exports).map(([subpath, target]) => {
  const file = fileURLToPath(new URL(target.default, `file://${packageRoot}`));
  return { find: `${packageJson.name}${subpath.slice(1)}`, file };
});
const entries: Plugin = {
  name: 'shufflenet-package-entries',
  config: () => ({
    resolve: {
      alias: packageEntries.map(({ find, file }) => ({
        // Exact: 'shufflenet/browser' must not swallow 'shufflenet/browser-worker'.
        find: new RegExp(`^${find.replace(/[/.]/g, '\\$&')}$`),
        replacement: file,
      })),
    },
  }),
  buildStart() {
    const missing = packageEntries.filter(({ file }) => !existsSync(file));
    if (missing.length > 0) {
      this.error(
        `web: ${missing.map((m) => m.file).join(', ')} missing: run \`npm run build\` before building the page`,
      );
    }
  },
};

/** The package's bundled model (models/), served and emitted as models/<file> so the page uses it. */
const bundledModel = 'fashion-mnist-shufflenet.safetensors';
const bundledModelPath = fileURLToPath(new URL(`../models/${bundledModel}`, import.meta.url));
const bundled: Plugin = {
  name: 'shufflenet-bundled-model',
  configureServer(server) {
    server.middlewares.use(`/models/${bundledModel}`, (_req, res) => {
      res.setHeader('Content-Type', 'application/octet-stream');
      res.end(readFileSync(bundledModelPath));
    });
  },
  generateBundle() {
    this.emitFile({ type: 'asset', fileName: `models/${bundledModel}`, source: readFileSync(bundledModelPath) });
  },
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  plugins: [entries, csp, bundled],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
  },
  worker: { format: 'es' },
  server: { headers: isolation, fs: { allow: ['..'] } },
  preview: { headers: isolation },
});
