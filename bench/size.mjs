#!/usr/bin/env node
/**
 * `npm run size`: the browser runtime's bytes (JS + WASM, minified) against the 150 KB budget of
 * issue 4, and onnxruntime-web's WASM binary for comparison. Exit code 1 when over budget.
 *
 *   node bench/size.mjs [--entry src/browser.ts] [--root DIR] [--json]
 *
 * The measurement lives in src/node/size.ts (built to dist/ by `npm run build`).
 */
import { measureSize } from '../dist/node/size.js';

const args = process.argv.slice(2);
const flag = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const entry = flag('--entry');
const root = flag('--root');
const report = await measureSize({ ...(entry ? { entry } : {}), ...(root ? { root } : {}) });
const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
if (args.includes('--json')) {
  console.log(JSON.stringify(report, null, 1));
} else {
  console.log(`browser runtime: ${report.entry} (esbuild ${report.esbuild}; minified, browser platform, ESM)`);
  console.log(`  JS    ${kb(report.js_bytes).padStart(10)}  (gzip ${kb(report.js_gzip_bytes)})`);
  for (const w of report.wasm_files) console.log(`  WASM  ${kb(w.bytes).padStart(10)}  ${w.path}`);
  const verdict = report.within_budget ? 'within budget' : 'OVER BUDGET';
  console.log(`  total ${kb(report.total_bytes).padStart(10)}  of ${kb(report.budget_bytes)}: ${verdict}`);
  console.log(`  largest modules: ${report.largest_inputs.map((i) => `${i.path} ${kb(i.bytes)}`).join(', ')}`);
  const ort = report.onnxruntime_web_wasm;
  if (ort) {
    const times = Math.round(ort.bytes / report.total_bytes);
    console.log(
      `onnxruntime-web ${ort.version}: ${ort.file} alone is ${(ort.bytes / 1e6).toFixed(1)} MB (${times}× ours)`,
    );
  } else {
    console.log('onnxruntime-web is not installed: no comparison');
  }
}
process.exitCode = report.within_budget ? 0 : 1;
