// The browser page: a static site built from web/ into web/dist, importing the library's core
// from ../src. Dev and preview servers send COOP/COEP so the page is cross-origin isolated
// (threads need SharedArrayBuffer); the built page gets a CSP that allows its own origin only.
import { readFileSync } from 'node:fs';
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
  plugins: [csp, bundled],
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
