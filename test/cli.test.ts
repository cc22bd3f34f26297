/** The CLI as a user runs it (the built dist/, which `npm test` builds first). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { saveModelFile } from '../src/io/modelfile.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { architectureOf, createModel, modelNames } from '../src/models/registry.js';
import { forward } from '../src/nn/forward.js';
import { Tensor } from '../src/tensor/tensor.js';
import { complexity } from '../src/analysis/complexity.js';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('shufflenet flops', () => {
  it('--json prints one array with name, mflops (at 224×224) and params for every network', () => {
    const { code, stdout } = run('flops', '--json');
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { name: string; mflops: number; params: number }[];
    expect(rows.map((r) => r.name)).toEqual(modelNames());
    for (const r of rows) {
      expect(typeof r.mflops).toBe('number');
      expect(Number.isInteger(r.params)).toBe(true);
    }
    const g3 = rows.find((r) => r.name === 'shufflenet_v1_g3_1.0x')!;
    expect(g3.mflops).toBeCloseTo(137.460672, 6);
    expect(g3.params).toBe(1865728);
    const reference = complexity(createModel('mobilenet_v1_1.0', { initialize: false }).trace([1, 3, 224, 224]));
    expect(rows.find((r) => r.name === 'mobilenet_v1_1.0')!.mflops).toBe(reference.macs / 1e6);
  });

  it('prints the table with the paper beside ours', () => {
    const { code, stdout } = run('flops');
    expect(code).toBe(0);
    expect(stdout).toMatch(/shufflenet_v1_g3_1\.0x\s+137\.46\s+1\.866\s+137\s+Table 1/);
    expect(stdout).toMatch(/Table 5\s+mobilenet_v1_1\.0\s+569\s+568\.740\s+-0\.0%\s+yes/);
  });

  it('--arch gives the per-layer breakdown that sums to the total', () => {
    const { code, stdout } = run('flops', '--arch', 'shufflenet_v1_g8_1.0x', '--json');
    expect(code).toBe(0);
    const [row] = JSON.parse(stdout) as { name: string; mflops: number; layers: { name: string; macs: number }[] }[];
    expect(row!.name).toBe('shufflenet_v1_g8_1.0x');
    expect(row!.layers.reduce((s, l) => s + l.macs, 0) / 1e6).toBeCloseTo(row!.mflops, 9);
    const text = run('flops', '--arch', 'shufflenet_v1_g8_1.0x').stdout;
    expect(text).toMatch(/stage2\.0\.gconv1\s+conv2d\s+\[1, 96, 56, 56\]\s+7\.225/);
  });

  it('--size sets another input size', () => {
    const rows = JSON.parse(run('flops', '--size', '112', '--json').stdout) as {
      name: string;
      mflops: number;
      input_size: number;
    }[];
    const g3 = rows.find((r) => r.name === 'shufflenet_v1_g3_1.0x')!;
    expect(g3.input_size).toBe(112);
    const at112 = complexity(createModel('shufflenet_v1_g3_1.0x', { initialize: false }).trace([1, 3, 112, 112]));
    expect(g3.mflops).toBe(at112.macs / 1e6);
    expect(g3.mflops).toBeLessThan(137.46 / 3.5);
  });

  it('bad arguments give one line and a non-zero exit code', () => {
    const unknown = run('flops', '--arch', 'shufflenet_v1_g5_1.0x');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain('shufflenet: error: unknown model "shufflenet_v1_g5_1.0x"');
    expect(unknown.stderr).toContain('shufflenet_v1_g3_1.0x');
    expect(unknown.stderr).not.toMatch(/\bat .*\.js:\d+/);
    const size = run('flops', '--size', '-3');
    expect(size.code).not.toBe(0);
    expect(size.stderr).toContain('input size must be an integer from 1 to 8192, got "-3"');
    expect(run('flops', '--size', '16').code).toBe(0); // AlexNet cannot take 16×16: its row says so
    expect(run('flops', '--size', '16').stdout).toMatch(/n\/a alexnet: .*too small/);
  });
});

describe('shufflenet infer', () => {
  it('runs a batch through a model file and writes logits equal to the library forward', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-infer-'));
    const options = { numClasses: 10, inputChannels: 1, smallInput: true };
    const model = createModel('shufflenet_v1_g3_0.25x', options);
    writeFileSync(
      join(dir, 'm.safetensors'),
      saveModelFile(model, { architecture: architectureOf('shufflenet_v1_g3_0.25x', options) }),
    );
    const input = Tensor.from(
      [3, 1, 28, 28],
      Array.from({ length: 3 * 784 }, (_, i) => Math.sin(i)),
    );
    writeFileSync(join(dir, 'in.safetensors'), writeSafetensors(new Map([['input', input]])));
    const r = run(
      'infer',
      '--model',
      join(dir, 'm.safetensors'),
      '--input',
      join(dir, 'in.safetensors'),
      '--output',
      join(dir, 'out.safetensors'),
      '--batch-size',
      '2',
    );
    expect(r.code, r.stderr).toBe(0);
    const logits = readSafetensors(readFileSync(join(dir, 'out.safetensors'))).tensors.get('logits')!;
    expect(logits.shape).toEqual([3, 10]);
    const expected = forward(model, input);
    for (let i = 0; i < expected.size; i++) expect(logits.data[i]).toBeCloseTo(expected.data[i]!, 4);
  });

  it('names the missing file, the missing tensor and the wrong shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-infer-'));
    expect(run('infer', '--model', join(dir, 'none.safetensors'), '--input', 'x', '--output', 'y').stderr).toContain(
      `cannot read model ${join(dir, 'none.safetensors')}: no such file`,
    );
    const model = createModel('shufflenet_v1_g1_0.25x', { initialize: false });
    writeFileSync(
      join(dir, 'm.safetensors'),
      saveModelFile(model, { architecture: architectureOf('shufflenet_v1_g1_0.25x') }),
    );
    writeFileSync(join(dir, 'bad.safetensors'), writeSafetensors(new Map([['images', Tensor.zeros([1, 3, 8, 8])]])));
    const missing = run(
      'infer',
      '--model',
      join(dir, 'm.safetensors'),
      '--input',
      join(dir, 'bad.safetensors'),
      '--output',
      join(dir, 'o.safetensors'),
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no tensor named "input"');
    writeFileSync(join(dir, 'gray.safetensors'), writeSafetensors(new Map([['input', Tensor.zeros([1, 1, 32, 32])]])));
    const wrong = run(
      'infer',
      '--model',
      join(dir, 'm.safetensors'),
      '--input',
      join(dir, 'gray.safetensors'),
      '--output',
      join(dir, 'o.safetensors'),
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(
      /conv1: conv2d: weight \[12, 3, 3, 3\] expects 3 input channels per group but the input has 1/,
    );
  });
});

describe('CLI edges (issue 15): refused at once, naming the flag', () => {
  it('train refuses an --out it could not write before any epoch, and a directory with --resume', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-out-'));
    const common = ['train', '--arch', 'shufflenet_v1_g3_0.25x', '--data', 'mnist', '--epochs', '1'];
    const missing = run(...common, '--out', join(dir, 'missing', 'x.safetensors'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `--out ${join(dir, 'missing', 'x.safetensors')}: the folder ${join(dir, 'missing')} does not exist`,
    );
    expect(missing.stderr).not.toMatch(/epoch/);
    for (const resume of [[], ['--resume']]) {
      const folder = run(...common, '--out', dir, ...resume);
      expect(folder.code).toBe(1);
      expect(folder.stderr.trim()).toBe(`shufflenet: error: --out ${dir}: is a directory, not a file`);
    }
  });

  it('train says the data note once, though both splits carry it (fashion-mnist: two empty rows)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-note-'));
    const r = run(
      ...['train', '--arch', 'shufflenet_v1_g3_0.25x', '--data', 'fashion-mnist', '--epochs', '1'],
      ...['--max-train', '32', '--batch', '32', '--out', join(dir, 'm.safetensors')],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/note: fashion-mnist: skipped 2 malformed row\(s\)/g)).toHaveLength(1);
  });

  it('infer refuses an empty batch, and an --arch that a model file or a graph would ignore', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-edges-'));
    const model = createModel('shufflenet_v1_g1_0.25x', { initialize: false });
    const file = join(dir, 'm.safetensors');
    writeFileSync(file, saveModelFile(model, { architecture: architectureOf('shufflenet_v1_g1_0.25x') }));
    writeFileSync(join(dir, 'empty.safetensors'), writeSafetensors(new Map([['input', Tensor.zeros([0, 3, 32, 32])]])));
    const out = join(dir, 'o.safetensors');
    const empty = run('infer', '--model', file, '--input', join(dir, 'empty.safetensors'), '--output', out);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('"input" holds no images (shape [0, 3, 32, 32])');
    writeFileSync(join(dir, 'in.safetensors'), writeSafetensors(new Map([['input', Tensor.zeros([1, 3, 32, 32])]])));
    const args = ['infer', '--model', file, '--input', join(dir, 'in.safetensors'), '--output', out];
    const other = run(...args, '--arch', 'shufflenet_v1_g8_0.25x');
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('--arch shufflenet_v1_g8_0.25x applies only to weights without a network');
    const onnx = join(dir, 'm.onnx');
    expect(run('export', '--arch', 'shufflenet_v1_g1_0.25x', '--out', onnx).code).toBe(0);
    const graph = run(
      'infer',
      '--model',
      onnx,
      '--input',
      join(dir, 'in.safetensors'),
      '--output',
      out,
      '--arch',
      'alexnet',
    );
    expect(graph.code).toBe(1);
    // Our export names its network (its metadata), so --arch is refused as for a model file.
    expect(graph.stderr).toContain('an ONNX file that names its own network; --arch alexnet does not apply');
    const foreign = fileURLToPath(new URL('./fixtures/onnx/zoo/resnet_mini.onnx', import.meta.url));
    const imported = run(
      'infer',
      '--model',
      foreign,
      '--input',
      join(dir, 'in.safetensors'),
      '--output',
      out,
      '--arch',
      'alexnet',
    );
    expect(imported.code).toBe(1);
    expect(imported.stderr).toContain('holds its own graph; --arch alexnet applies only to weights without a network');
  });
});

describe('shufflenet info', () => {
  it('shows what a model file holds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-info-'));
    const options = { numClasses: 10, inputChannels: 1, smallInput: true };
    const model = createModel('shufflenet_v1_g8_0.25x', options);
    const labels = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const file = join(dir, 'm.safetensors');
    writeFileSync(
      file,
      saveModelFile(model, {
        architecture: architectureOf('shufflenet_v1_g8_0.25x', options),
        arch: 'shufflenet_v1_g8_0.25x',
        labels,
        preprocessing: { channels: 'gray', divisor: 255, mean: [0], std: [1], resize: 28, crop: 28 },
      }),
    );
    const r = run('info', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.arch).toBe('shufflenet_v1_g8_0.25x');
    expect(info.input_shape).toEqual([1, 1, 28, 28]);
    expect(info.classes).toBe(10);
    expect(info.params).toBe(model.parameterCount());
    expect(info.labels).toEqual(labels);
    expect(run('info', file).stdout).toMatch(/parameters\s+[\d,]+/);
    const garbage = join(dir, 'g.safetensors');
    writeFileSync(garbage, 'not a model');
    const bad = run('info', garbage);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^shufflenet: error: .*g\.safetensors: header length \d+ exceeds/);
  });
});
