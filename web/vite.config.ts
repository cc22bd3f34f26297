// The browser page: a static site built from web/ into web/dist. It imports the library as a user
// does, through the package's public entries ('shufflenet/browser', 'shufflenet/browser-worker',
// and 'shufflenet/browser-int8' on demand, resolved by package.json "exports" to the built dist/,
// so `npm run build` comes first). Dev and preview servers send COOP/COEP so the page is
// cross-origin isolated (threads need SharedArrayBuffer); the built page gets a CSP that allows its
// own origin only.
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

/**
 * The package's bundled model (models/) in both precisions, served and emitted as models/<file> so
 * the page uses them (web/public/models/manifest.json pairs them).
 */
const bundledModels = ['fashion-mnist-shufflenet.safetensors', 'fashion-mnist-shufflenet-int8.safetensors'];
const bundledModelPath = (file: string): string => fileURLToPath(new URL(`../models/${file}`, import.meta.url));
const bundled: Plugin = {
  name: 'shufflenet-bundled-model',
  configureServer(server) {
    for (const file of bundledModels) {
      server.middlewares.use(`/models/${file}`, (_req, res) => {
        res.setHeader('Content-Type', 'application/octet-stream');
        res.end(readFileSync(bundledModelPath(file)));
      });
    }
  },
  generateBundle() {
    for (const file of bundledModels) {
      this.emitFile({ type: 'asset', fileName: `models/${file}`, source: readFileSync(bundledModelPath(file)) });
    }
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
