#!/usr/bin/env node
/**
 * Markdown tables from a benchmark JSON (for docs/benchmark.md and issue notes):
 *
 *   node bench/markdown.mjs results/bench-<date>.json
 */
import { readFileSync } from 'node:fs';

const [path] = process.argv.slice(2);
if (!path) {
  console.error('usage: node bench/markdown.mjs results/bench-<date>.json');
  process.exit(2);
}
const report = JSON.parse(readFileSync(path, 'utf8'));
const ms = (v) => (v === undefined || v === null ? '—' : v.toFixed(v < 10 ? 2 : 1));
const { machine, settings } = report;
const engines = [...new Set(report.results.flatMap((r) => r.engines.map((e) => e.engine)))];
const threads = [...new Set(report.results.map((r) => r.threads))];
const archs = [...new Set(report.results.map((r) => r.arch))];
const lines = [];
lines.push(
  `${report.date.slice(0, 16).replace('T', ' ')} UTC · ${machine.cpu}, nproc ${machine.nproc} · Node ${machine.node} · ` +
    `load average ${machine.loadavg_start.map((l) => l.toFixed(1)).join('/')} at start, ${machine.loadavg_end.map((l) => l.toFixed(1)).join('/')} at end · ` +
    `batch 1, ${settings.size}×${settings.size} · peers: median of ${settings.runs} runs after ${settings.warmup} warm-up · ` +
    `our engine (${settings.our_engine}): ${settings.oursRuns} runs after ${settings.oursWarmup}`,
  '',
);
lines.push('Median ms (IQR) per network, engine and thread count:', '');
// Columns: every (thread count, engine) that ran at least once.
const columns = threads.flatMap((t) =>
  engines
    .filter((e) => report.results.some((r) => r.threads === t && r.engines.some((x) => x.engine === e && !x.skipped)))
    .map((e) => [t, e]),
);
const header = ['network', 'MFLOPs', ...columns.map(([t, e]) => `${e} @${t}`)];
lines.push(`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
for (const arch of archs) {
  const cells = [arch, report.results.find((x) => x.arch === arch).mflops.toFixed(1)];
  for (const [t, e] of columns) {
    const r = report.results.find((x) => x.arch === arch && x.threads === t);
    const x = r?.engines.find((y) => y.engine === e);
    cells.push(x?.median_ms === undefined ? (x?.skipped ? 'skip' : '—') : `${ms(x.median_ms)} (${ms(x.iqr_ms)})`);
  }
  lines.push(`| ${cells.join(' | ')} |`);
}
const skipped = new Map();
for (const r of report.results)
  for (const e of r.engines) if (e.skipped) skipped.set(`${e.engine}: ${e.skipped}`, true);
if (skipped.size) lines.push('', 'skip: ' + [...skipped.keys()].join('; ') + '.');
const keys = [...new Set(report.speedups.flatMap((s) => Object.keys(s.actual)))];
if (report.speedups.length) lines.push('', 'Theoretical vs actual speed-ups (ratio of latencies):', '');
if (report.speedups.length)
  lines.push(`| ratio | theory | ${keys.join(' | ')} |`, `|---|---:|${keys.map(() => '---:').join('|')}|`);
for (const s of report.speedups) {
  lines.push(
    `| ${s.label} | ${s.theoretical.toFixed(2)}× | ${keys.map((k) => (s.actual[k] ? `${s.actual[k].toFixed(2)}×` : '—')).join(' | ')} |`,
  );
}
if (report.layers.length) {
  lines.push('', 'Our engine per layer type (GMAC/s; ms per run):', '');
  const types = [...new Set(report.layers.filter((l) => l.gmacs_per_s !== null).map((l) => l.type))];
  lines.push(`| network | ${types.join(' | ')} |`, `|---|${types.map(() => '---:').join('|')}|`);
  for (const arch of [...new Set(report.layers.map((l) => l.arch))]) {
    const row = types.map((t) => {
      const l = report.layers.find((x) => x.arch === arch && x.type === t);
      return l ? `${l.gmacs_per_s.toFixed(2)} (${l.ms.toFixed(0)})` : '';
    });
    lines.push(`| ${arch} | ${row.join(' | ')} |`);
  }
}
console.log(lines.join('\n'));
