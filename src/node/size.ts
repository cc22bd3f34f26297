/**
 * The size of the browser runtime (issue 4, item 6), behind `npm run size` and its test: bundles a
 * browser entry with esbuild (minified, browser platform, ESM), adds every .wasm file the bundle
 * imports, and compares the total with the budget and with onnxruntime-web's WASM binary. WASM
 * embedded in JS (base64 in a generated module) is already counted in the JS bytes.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ShuffleNetError } from '../errors.js';

/** The package root, from src/node or dist/node alike. */
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The budget of issue 4: 150 KB, counted as 150,000 bytes of minified JS + WASM. */
export const budgetBytes = 150_000;

export interface SizeReport {
  entry: string;
  esbuild: string;
  js_bytes: number;
  js_gzip_bytes: number;
  wasm_files: { path: string; bytes: number }[];
  total_bytes: number;
  budget_bytes: number;
  within_budget: boolean;
  /** The five modules that contribute most to the JS. */
  largest_inputs: { path: string; bytes: number }[];
  onnxruntime_web_wasm: { version: string; file: string; bytes: number } | null;
}

export interface SizeOptions {
  /** Entry module, relative to root; default src/browser.ts. */
  entry?: string;
  /** Package root to bundle from; default this package. */
  root?: string;
}

export async function measureSize(options: SizeOptions = {}): Promise<SizeReport> {
  const entry = options.entry ?? 'src/browser.ts';
  const root = options.root ?? packageRoot;
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new ShuffleNetError('size: esbuild is not installed (npm install --save-dev esbuild)');
  }
  const result = await esbuild.build({
    entryPoints: [join(root, entry)],
    absWorkingDir: root,
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    loader: { '.wasm': 'file' }, // separate .wasm files, counted below
    outdir: join(root, 'dist-size'),
  });
  const js = result.outputFiles.filter((f) => f.path.endsWith('.js'));
  const jsBytes = js.reduce((s, f) => s + f.contents.length, 0);
  const wasmFiles = Object.keys(result.metafile.inputs)
    .filter((p) => p.endsWith('.wasm'))
    .map((p) => ({ path: p, bytes: statSync(resolve(root, p)).size }));
  const total = jsBytes + wasmFiles.reduce((s, w) => s + w.bytes, 0);
  const main = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined);
  const largest = Object.entries(main?.inputs ?? {})
    .map(([path, v]) => ({ path: relative(root, resolve(root, path)), bytes: v.bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 5);
  return {
    entry,
    esbuild: esbuild.version,
    js_bytes: jsBytes,
    js_gzip_bytes: js.reduce((s, f) => s + gzipSync(f.contents).length, 0),
    wasm_files: wasmFiles,
    total_bytes: total,
    budget_bytes: budgetBytes,
    within_budget: total <= budgetBytes,
    largest_inputs: largest,
    onnxruntime_web_wasm: onnxruntimeWebWasm(),
  };
}

/** The WASM binary onnxruntime-web loads by default (SIMD, threaded build), from node_modules. */
function onnxruntimeWebWasm(): SizeReport['onnxruntime_web_wasm'] {
  const dir = join(packageRoot, 'node_modules/onnxruntime-web');
  const file = 'dist/ort-wasm-simd-threaded.wasm';
  if (!existsSync(join(dir, file))) return null;
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
  return { version, file: `onnxruntime-web/${file}`, bytes: statSync(join(dir, file)).size };
}
