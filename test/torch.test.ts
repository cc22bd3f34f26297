/**
 * PyTorch checkpoints: both file formats, the three module layouts, the permutations that carry the
 * official shuffle over, the model file written by `shufflenet import`, and hostile pickles.
 * Fixtures: scripts/make_torch_fixtures.py (Debian's PyTorch).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { runGraph } from '../src/graph/execute.js';
import { loadModel } from '../src/io/load.js';
import { loadModelFile, saveModelFile } from '../src/io/modelfile.js';
import { channelShuffleSource } from '../src/kernels/reference/channels.js';
import { preprocessingPresets } from '../src/data/preprocessing.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import {
  importShuffleNet,
  importTorchCheckpoint,
  officialShuffleSource,
  readTorchCheckpoint,
  relabelPlan,
  unpickle,
} from '../src/io/torch/index.js';
import { ShuffleNetV2 } from '../src/models/shufflenet-v2.js';
import { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const dir = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(dir + file));

interface Case {
  file: string;
  layout: 'official' | 'mmpretrain' | 'ours' | 'torchvision';
  input: number[];
  arch?: string;
  groups?: number;
  shuffle?: 'paper' | 'official';
}

function loadExpected(): { cases: Case[]; logits: Map<string, Tensor>; marker: string } {
  const path = dir + 'expected.safetensors';
  if (!existsSync(path))
    throw new Error(`missing ${path}; regenerate with: /usr/bin/python3 scripts/make_torch_fixtures.py`);
  const file = readSafetensors(readFileSync(path), 'expected.safetensors');
  if (file.metadata['version'] !== '1')
    throw new Error('torch fixtures are stale; rerun scripts/make_torch_fixtures.py');
  return {
    cases: JSON.parse(file.metadata['cases']!) as Case[],
    logits: file.tensors,
    marker: file.metadata['marker']!,
  };
}

/** The script's input: x[i] = (i · 2654435761 mod 2³²) / 2³² · 4 − 2, exact in float64. */
function hashInput(shape: number[]): Tensor {
  const x = new Tensor(shape);
  for (let i = 0; i < x.size; i++) x.data[i] = ((Math.imul(i, 2654435761) >>> 0) / 2 ** 32) * 4 - 2;
  return x;
}

const expected = loadExpected();

describe('PyTorch checkpoints: logits equal PyTorch', () => {
  for (const c of expected.cases) {
    it(`${c.file} (${c.layout}${c.groups ? `, g = ${c.groups}` : ''})`, () => {
      const imported = importTorchCheckpoint(read(c.file), c.file, c.arch);
      expect(imported.layout).toBe(c.layout);
      expect(imported.format).toBe(c.file.includes('.legacy.') ? 'legacy' : 'zip');
      if (c.shuffle) expect(imported.shuffle).toBe(c.shuffle);
      const logits = runGraph(imported.model.trace(c.input), hashInput(c.input));
      const reference = expected.logits.get(`${c.file}/logits`)!;
      expect(logits.shape).toEqual(reference.shape);
      // 1e-4 relative to the largest logit.
      expect(maxAbsDiff(logits, reference)).toBeLessThan(1e-4 * maxAbs(reference));
    });
  }

  it('carries the right preprocessing preset and an explicit architecture', () => {
    const official = importTorchCheckpoint(read('official_g3_0.5x.zip.pth.tar'), 'official.pth.tar');
    expect(official.info.preprocessing).toEqual(preprocessingPresets.official_shufflenet_v1);
    expect(official.info.architecture).toEqual({
      family: 'shufflenet_v1',
      config: {
        groups: 3,
        scale: 0.5,
        numClasses: 10,
        inputChannels: 3,
        widths: { conv1: 12, stages: [120, 240, 480] },
      },
    });
    const g8 = importTorchCheckpoint(read('official_g8_0.5x.legacy.pth.tar'), 'g8.pth.tar');
    expect(g8.info.architecture.config).toMatchObject({
      groups: 8,
      officialShuffle: true,
      widths: { conv1: 16, stages: [192, 384, 768] },
    });
    const mm = importTorchCheckpoint(read('mmpretrain_tiny_g3.zip.pth'), 'mm.pth');
    expect(mm.info.preprocessing).toEqual(preprocessingPresets.imagenet);
  });

  it('round-trips through our model file and the loader table (infer --model x.pth)', () => {
    const c = expected.cases.find((k) => k.file === 'official_g8_0.5x.legacy.pth.tar')!;
    const imported = importTorchCheckpoint(read(c.file), c.file);
    const { model, info } = loadModelFile(saveModelFile(imported.model, imported.info), 'imported.safetensors');
    expect(info.preprocessing?.channels).toBe('BGR');
    const x = hashInput(c.input);
    const reference = expected.logits.get(`${c.file}/logits`)!;
    expect(maxAbsDiff(runGraph(model.trace(c.input), x), reference)).toBeLessThan(1e-4 * maxAbs(reference));
    const loaded = loadModel(read(c.file), c.file);
    expect(maxAbsDiff(runGraph(loaded.graphFor(c.input), x), reference)).toBeLessThan(1e-4 * maxAbs(reference));
  });

  it('reads num_batches_tracked as int64 and the mapping ignores it', () => {
    const { stateDict } = readTorchCheckpoint(read('official_tiny_g3.zip.pth'), 'tiny.pth');
    const counter = stateDict.get('first_conv.1.num_batches_tracked')!;
    expect(counter.dtype).toBe('int64');
    expect([...counter.tensor.data]).toEqual([1234]);
    expect(stateDict.get('first_conv.0.weight')!.dtype).toBe('float32');
    expect(
      readTorchCheckpoint(read('official_tiny_g8_half.legacy.pth'), 'h.pth').stateDict.get('first_conv.0.weight')!
        .dtype,
    ).toBe('float16');
  });

  it('finds the state dict under "state_dict" and "model", with or without module.', () => {
    expect(readTorchCheckpoint(read('official_g3_0.5x.zip.pth.tar'), 'a').wrapper).toEqual(['state_dict']);
    expect(readTorchCheckpoint(read('official_tiny_g3_strided.legacy.pth'), 'b').wrapper).toEqual(['model']);
    expect(readTorchCheckpoint(read('official_tiny_g3.zip.pth'), 'c').wrapper).toEqual([]);
    expect([...readTorchCheckpoint(read('official_tiny_g3.legacy.pth'), 'd').stateDict.keys()][0]).toMatch(/^module\./);
  });

  it('refuses a torchvision V2 checkpoint with a V1 --arch, and one whose widths do not fit', () => {
    expect(() => importTorchCheckpoint(read('torchvision_v2_tiny.zip.pth'), 'v2.pth', 'shufflenet_v1_g3_1.0x')).toThrow(
      /v2\.pth: --arch shufflenet_v1_g3_1\.0x does not match the checkpoint, which is a ShuffleNet V2/,
    );
    const state = (edit: (s: Map<string, Tensor>) => void) => {
      const tensors = new ShuffleNetV2({ scale: 0.5, numClasses: 3, initialize: false }).stateDict();
      edit(tensors);
      return new Map([...tensors].map(([k, tensor]) => [k, { tensor, dtype: 'float32' as const }]));
    };
    expect(
      () =>
        importShuffleNet(
          state(() => undefined),
          'ok.pth',
        ).model,
    ).not.toThrow();
    // A stage-2 shortcut branch of 7 channels: neither half of 7 + 24 nor the input's 24.
    const odd = state((s) => s.set('stage2.0.branch1.2.weight', new Tensor([7, 24, 1, 1])));
    expect(() => importShuffleNet(odd, 'odd.pth')).toThrow(
      /odd\.pth: stage2\.0 splits its 31 channels 7 \+ 24: neither halves nor its input's 24/,
    );
    // A conv5 claiming 16,000 channels, with 3 of its weights stored: refused before it is allocated.
    const wide = state((s) => {
      s.set('conv5.0.weight', new Tensor([16_000, 1, 1, 1]));
    });
    expect(() => importShuffleNet(wide, 'wide.pth')).toThrow(
      /wide\.pth: widths conv1 24, stages 48\/96\/192, conv5 16000 do not fit/,
    );
    const missing = state((s) => s.delete('stage3.0.branch2.5.weight'));
    expect(() => importShuffleNet(missing, 'missing.pth')).toThrow(
      /missing\.pth: .*"stage3\.0\.branch2\.5\.weight" is missing/,
    );
  });

  it('needs --arch for our own layout, and checks --arch against an official file', () => {
    expect(() => importTorchCheckpoint(read('ours_g3_0.25x.zip.pth'), 'ours.pth')).toThrow(/needs --arch/);
    expect(() => importTorchCheckpoint(read('ours_g3_0.25x.zip.pth'), 'ours.pth', 'shufflenet_v1_g8_0.25x')).toThrow(
      /ours\.pth: does not fit shufflenet_v1_g8_0\.25x/,
    );
    expect(() => importTorchCheckpoint(read('official_tiny_g3.zip.pth'), 'o.pth', 'shufflenet_v1_g8_1.0x')).toThrow(
      /does not match the checkpoint, which is a ShuffleNet v1 with g = 3/,
    );
  });
});

describe('channel shuffle permutations used by the mapping', () => {
  it("the official gather is the inverse of the paper's", () => {
    for (const [m, g] of [
      [12, 3],
      [48, 8],
      [30, 3],
    ] as const) {
      const p = channelShuffleSource(m, g);
      const o = officialShuffleSource(m, g);
      for (let k = 0; k < m; k++) expect(o[p[k]!]).toBe(k);
    }
    expect([...channelShuffleSource(6, 3)]).toEqual([0, 2, 4, 1, 3, 5]);
  });

  it('relabels the official unit into the paper order exactly when n mod g ∈ {0, 1, g − 1}', () => {
    for (const g of [2, 3, 4, 5, 6, 8]) {
      for (let n = 1; n <= 30; n++) {
        const m = g * n;
        const plan = relabelPlan(m, g, false, officialShuffleSource);
        expect(plan !== null, `g = ${g}, n = ${n}`).toBe([0, 1, g - 1].includes(n % g));
        // The first unit's GConv1 is not grouped: always possible.
        expect(relabelPlan(m, g, true, officialShuffleSource)).not.toBeNull();
        // mmpretrain's (paper) shuffle after the depthwise conv: always possible, GConv1 unchanged.
        const mm = relabelPlan(m, g, false, channelShuffleSource)!;
        expect([...mm.bn1From]).toEqual([...Array(m).keys()]);
        if (plan === null) continue;
        // Each gather is a permutation that keeps GConv1 output groups and GConv2 input groups.
        for (const p of [plan.bn1From, plan.dwFrom, plan.gconv2From]) expect(new Set(p).size).toBe(m);
        for (let k = 0; k < m; k++) {
          expect(Math.floor(plan.bn1From[k]! / n)).toBe(Math.floor(k / n));
          expect(Math.floor(plan.gconv2From[k]! / n)).toBe(Math.floor(k / n));
        }
      }
    }
  });
});

describe('the unpickler refuses anything but tensors and containers', () => {
  const marker = expected.marker;
  for (const [file, global] of [
    ['malicious_os_system.pth', 'os.system'],
    ['malicious_posix_system.zip.pth', 'posix.system'],
    ['malicious_eval.legacy.pth', 'builtins.eval'],
    ['whole_module.zip.pth', 'torch.nn.modules.container.Sequential'],
  ] as const) {
    it(`${file}: refuses ${global} and runs nothing`, () => {
      let error: unknown;
      try {
        importTorchCheckpoint(read(file), file);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FormatError);
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toContain(`refusing global ${global}`);
      expect((error as Error).message).not.toContain('\n');
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('refuses REDUCE of a storage type, STACK_GLOBAL of os.system, BUILD and NEWOBJ on non-dicts', () => {
    // torch.FloatStorage() — a storage type is not something we call.
    const callStorage = new Uint8Array([0x80, 0x02, ...ascii('ctorch\nFloatStorage\n'), 0x29, 0x52, 0x2e]);
    expect(() => unpickle(callStorage, 0, 'x.pth')).toThrow(/REDUCE of torch\.FloatStorage is not allowed/);
    const stackGlobal = new Uint8Array([0x80, 0x04, 0x8c, 2, ...ascii('os'), 0x8c, 6, ...ascii('system'), 0x93, 0x2e]);
    expect(() => unpickle(stackGlobal, 0, 'y.pth')).toThrow(/refusing global os\.system/);
    // [].__setstate__({}) — BUILD sets attributes, which only a dict's ignored _metadata may use.
    const build = new Uint8Array([0x80, 0x02, 0x5d, 0x7d, 0x62, 0x2e]);
    expect(() => unpickle(build, 0, 'z.pth')).toThrow(/BUILD on a list of 0 is not allowed/);
    const newobj = new Uint8Array([0x80, 0x02, ...ascii('ctorch\nFloatStorage\n'), 0x29, 0x81, 0x2e]);
    expect(() => unpickle(newobj, 0, 'w.pth')).toThrow(/NEWOBJ of torch\.FloatStorage is not allowed/);
  });

  it('parses plain containers', () => {
    // {'a': [1, 2.5, None, True], 'b': (-3, 'é')}
    const bytes = new Uint8Array([
      0x80, 0x02, 0x7d, 0x58, 1, 0, 0, 0, 0x61, 0x5d, 0x28, 0x4b, 1, 0x47, 0x40, 0x04, 0, 0, 0, 0, 0, 0, 0x4e, 0x88,
      0x65, 0x73, 0x58, 1, 0, 0, 0, 0x62, 0x4a, 0xfd, 0xff, 0xff, 0xff, 0x58, 2, 0, 0, 0, 0xc3, 0xa9, 0x86, 0x73, 0x2e,
    ]);
    const { value } = unpickle(bytes);
    const m = value as Map<unknown, unknown>;
    expect(m.get('a')).toEqual([1, 2.5, null, true]);
    expect((m.get('b') as { items: unknown[] }).items).toEqual([-3, 'é']);
  });
});

function ascii(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

describe('shufflenet import / infer on PyTorch files', () => {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

  it('imports an official checkpoint to a model file whose logits equal PyTorch, and refuses a malicious one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-import-'));
    const source = fileURLToPath(new URL('./fixtures/torch/official_g3_0.5x.zip.pth.tar', import.meta.url));
    const out = join(dir, 'official.safetensors');
    const imported = cli('import', source, '--out', out);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout + imported.stderr).toMatch(/official layout, shufflenet_v1, g = 3/);
    const info = JSON.parse(cli('info', out, '--json').stdout);
    expect(info.preprocessing.channels).toBe('BGR');

    const expected = loadFixture('torch/expected.safetensors');
    const reference = get(expected, 'official_g3_0.5x.zip.pth.tar/logits');
    const input = join(dir, 'in.safetensors');
    writeFileSync(input, writeSafetensors(new Map([['input', hashInput([1, 3, 224, 224])]])));
    for (const model of [out, source]) {
      const r = cli('infer', '--model', model, '--input', input, '--output', join(dir, 'out.safetensors'));
      expect(r.status, r.stderr).toBe(0);
      const logits = readSafetensors(readFileSync(join(dir, 'out.safetensors'))).tensors.get('logits')!;
      expect(maxAbsDiff(logits, reference)).toBeLessThan(1e-4 * maxAbs(reference));
    }

    const malicious = cli(
      'import',
      fileURLToPath(new URL('./fixtures/torch/malicious_os_system.pth', import.meta.url)),
      '--out',
      join(dir, 'x.safetensors'),
    );
    expect(malicious.status).toBe(1);
    expect(malicious.stderr.trim().split('\n')).toHaveLength(1);
    expect(malicious.stderr).toMatch(/refusing global os\.system/);
    expect(existsSync(join(dir, 'x.safetensors'))).toBe(false);
  });

  it("imports torchvision's ShuffleNet V2 (its halves at stride 2) and runs it on the fast engine as PyTorch does", () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-import-v2-'));
    const source = fileURLToPath(new URL('./fixtures/torch/torchvision_v2_tiny.zip.pth', import.meta.url));
    const out = join(dir, 'v2.safetensors');
    const imported = cli('import', source, '--out', out);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/torchvision layout, shufflenet_v2, widths 24\/32\/48\/64\/96/);
    const info = JSON.parse(cli('info', out, '--json').stdout);
    expect(info.architecture).toEqual({
      family: 'shufflenet_v2',
      config: {
        numClasses: 6,
        inputChannels: 3,
        widths: { conv1: 24, stages: [32, 48, 64], conv5: 96 },
        stride2Split: 'half',
      },
    });
    const reference = get(loadFixture('torch/expected.safetensors'), 'torchvision_v2_tiny.zip.pth/logits');
    const input = join(dir, 'in.safetensors');
    writeFileSync(input, writeSafetensors(new Map([['input', hashInput([2, 3, 64, 64])]])));
    const r = cli('infer', '--model', out, '--input', input, '--output', join(dir, 'out.safetensors'));
    expect(r.status, r.stderr).toBe(0);
    const logits = readSafetensors(readFileSync(join(dir, 'out.safetensors'))).tensors.get('logits')!;
    expect(maxAbsDiff(logits, reference)).toBeLessThan(1e-4 * maxAbs(reference));
  });
});
