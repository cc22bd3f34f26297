#!/usr/bin/env node
/**
 * `node bench/finetune-compare.mjs [--images N] [--epochs E] [--out results/x.json]`: what
 * fine-tuning buys (docs/training.md). Trains the default network on the first N MNIST training
 * images (balanced) three times with the same flags: from the bundled Fashion-MNIST model with a
 * new classifier (`train --init models/fashion-mnist-shufflenet.safetensors --new-head`), the same
 * with only the classifier trained on the frozen trunk (`--freeze backbone`), and from scratch;
 * writes the test accuracies and wall times beside the commands.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const images = flag('--images', '500');
const epochs = flag('--epochs', '2');
const out = flag('--out', null);
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'shufflenet-finetune-'));
const common = ['--data', 'mnist', '--max-train', images, '--epochs', epochs, '--batch', '16'];
const runs = [];
const init = ['--init', 'models/fashion-mnist-shufflenet.safetensors', '--new-head'];
for (const [name, extra] of [
  ['fine-tuned', init],
  ['frozen trunk', [...init, '--freeze', 'backbone']],
  ['from scratch', []],
]) {
  const argv = ['train', ...extra, ...common, '--out', join(dir, `${runs.length}.safetensors`)];
  const start = performance.now();
  const r = spawnSync(process.execPath, [main, ...argv], { encoding: 'utf8' });
  const seconds = (performance.now() - start) / 1000;
  if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
  const accuracy = Number(/test accuracy ([\d.]+)%/.exec(r.stdout)[1]) / 100;
  runs.push({ name, command: `shufflenet ${argv.slice(0, -2).join(' ')}`, test_accuracy: accuracy, seconds });
  console.log(`${name.padEnd(12)} test accuracy ${(accuracy * 100).toFixed(2)}% in ${seconds.toFixed(1)} s`);
}
const report = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model,
  nproc: cpus().length,
  load: loadavg(),
  images: Number(images),
  epochs: Number(epochs),
  runs,
};
if (out) {
  writeFileSync(`${out}.tmp`, JSON.stringify(report, null, 1));
  renameSync(`${out}.tmp`, out);
  console.log(`wrote ${out}`);
}
