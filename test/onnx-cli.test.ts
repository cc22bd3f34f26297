/**
 * The command line end to end, in process: `export --arch` writes an ONNX file atomically, and
 * `infer --model x.onnx` runs it through the loader table with the logits of the exported model.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { exportCommand } from '../src/cli/commands/export.js';
import { inferCommand } from '../src/cli/commands/infer.js';
import { runGraph } from '../src/graph/execute.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { createModel } from '../src/models/registry.js';
import { maxAbs, maxAbsDiff } from './helpers/fixtures.js';
import { randomInput } from './helpers/random-state.js';

const dir = mkdtempSync(join(tmpdir(), 'shufflenet-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
vi.spyOn(console, 'error').mockImplementation(() => undefined);

describe('shufflenet export / infer with .onnx', () => {
  it('exports --arch with flags mapped onto ModelOptions and runs the file with infer', async () => {
    const out = join(dir, 'g8.onnx');
    const args = ['--arch', 'shufflenet_v1_g8_0.25x', '--num-classes', '5', '--input-channels', '1', '--small-input'];
    await exportCommand().parseAsync([...args, '--seed', '3', '--out', out], { from: 'user' });
    expect(readdirSync(dir)).toEqual(['g8.onnx']); // no temporary file left behind

    const input = randomInput([3, 1, 28, 28]);
    writeFileSync(join(dir, 'in.safetensors'), writeSafetensors(new Map([['input', input]])));
    const argv = ['--model', out, '--input', join(dir, 'in.safetensors'), '--output', join(dir, 'out.safetensors')];
    await inferCommand().parseAsync([...argv, '--batch-size', '2'], { from: 'user' });
    const logits = readSafetensors(readFileSync(join(dir, 'out.safetensors'))).tensors.get('logits')!;

    const model = createModel('shufflenet_v1_g8_0.25x', { numClasses: 5, inputChannels: 1, smallInput: true, seed: 3 });
    const expected = runGraph(model.trace(input.shape), input);
    expect(logits.shape).toEqual([3, 5]);
    expect(maxAbsDiff(logits, expected) / maxAbs(expected)).toBeLessThan(1e-5);
  });

  it('refuses flags that do not apply, and a missing source', async () => {
    const run = (args: string[]) =>
      exportCommand()
        .exitOverride()
        .configureOutput({ writeErr: () => undefined })
        .parseAsync([...args, '--out', join(dir, 'x.onnx')], { from: 'user' });
    await expect(run([])).rejects.toThrow('give --model FILE or --arch NAME');
    await expect(run(['--model', join(dir, 'g8.onnx'), '--num-classes', '3'])).rejects.toThrow(
      '--num-classes only apply with --arch',
    );
    await expect(run(['--arch', 'shufflenet_v1_g7_1.0x'])).rejects.toThrow('unknown model');
  });
});
