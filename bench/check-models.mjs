#!/usr/bin/env node
/**
 * `node bench/check-models.mjs [--out results/x.json]`: runs every ONNX file of bench/models/ (written
 * by scripts/make_bench_models.py, full-size torchvision CNNs) on our fused plan with the input in
 * bench/models/reference.safetensors, and compares the logits with PyTorch's from the same file:
 * max |Δ| / max |PyTorch logit| per model, and how many plan steps run on a reference op.
 * Exit code 1 when any model is off by more than 1e-4 or does not import.
 */
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { importOnnx } from '../dist/io/onnx/import.js';
import { readSafetensors } from '../dist/io/safetensors.js';
import { relativeError } from '../dist/node/bench/run.js';
import { compilePlan } from '../dist/runtime/plan.js';

const dir = new URL('./models/', import.meta.url);
const args = process.argv.slice(2);
const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : null;
const reference = readSafetensors(readFileSync(new URL('reference.safetensors', dir)), 'reference.safetensors');
const rows = [];
let failed = false;
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.onnx'))
  .sort()) {
  const name = file.slice(0, -'.onnx'.length);
  const input = reference.tensors.get(`${name}/input`);
  const expected = reference.tensors.get(`${name}/logits`);
  if (!input || !expected) {
    console.log(`${name}: no PyTorch reference in reference.safetensors (rerun scripts/make_bench_models.py)`);
    failed = true;
    continue;
  }
  try {
    const graph = importOnnx(new Uint8Array(readFileSync(new URL(file, dir))), file);
    const plan = await compilePlan(graph);
    const relative = relativeError(plan.run(input).data, expected.data);
    const referenceSteps = plan.summary.steps.filter((s) => s.startsWith('reference')).length;
    rows.push({
      model: name,
      relative_error: relative,
      steps: plan.summary.steps.length,
      reference_steps: referenceSteps,
    });
    console.log(
      `${name.padEnd(22)} max |Δ| / max |logit| ${relative.toExponential(2)}, ${plan.summary.steps.length} steps, ${referenceSteps} on a reference op`,
    );
    if (!(relative <= 1e-4)) failed = true;
  } catch (e) {
    console.log(`${name}: ${e.name}: ${e.message}`);
    rows.push({ model: name, error: `${e.name}: ${e.message}` });
    failed = true;
  }
}
if (out) {
  writeFileSync(
    `${out}.tmp`,
    JSON.stringify({ date: new Date().toISOString(), node: process.version, models: rows }, null, 1),
  );
  renameSync(`${out}.tmp`, out);
  console.log(`wrote ${out}`);
}
process.exitCode = failed ? 1 : 0;
