/** Augmentation transforms and image-folder datasets. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { augment, randomResizedCropBox } from '../src/data/transforms.js';
import { loadImageFolder } from '../src/node/data/imagefolder.js';
import { Random } from '../src/tensor/random.js';

const shape = [1, 4, 4] as const;
const pixels = Uint8Array.from({ length: 16 }, (_, i) => i * 10);

describe('augment', () => {
  it('without options only scales and normalises', () => {
    const out = augment({ mean: [0.5], std: [0.5] })(pixels, shape, new Random(1));
    expect(out[3]).toBeCloseTo((30 / 255 - 0.5) / 0.5, 6);
  });

  it('flips rows left–right, with probability one half', () => {
    let flips = 0;
    const rng = new Random(3);
    for (let i = 0; i < 200; i++) {
      const out = augment({ flip: true })(pixels, shape, rng);
      if (Math.abs(out[0]! - 30 / 255) < 1e-6) {
        flips++;
        expect(out[3]).toBeCloseTo(0, 6);
      } else expect(out[0]).toBeCloseTo(0, 6);
    }
    expect(flips).toBeGreaterThan(70);
    expect(flips).toBeLessThan(130);
  });

  it('pad-crop shifts by at most the padding and fills with zeros', () => {
    const rng = new Random(5);
    for (let i = 0; i < 50; i++) {
      const out = augment({ padCrop: 1 })(pixels, shape, rng);
      const values = [...out].map((v) => Math.round(v * 255));
      expect(values.every((v) => v === 0 || pixels.includes(v))).toBe(true);
    }
    expect(() => augment({ padCrop: -1 })).toThrow('augment: padCrop must be a non-negative integer but is -1');
  });

  it('random-resized crops stay inside the image with the asked area and aspect', () => {
    const rng = new Random(9);
    for (let i = 0; i < 500; i++) {
      const box = randomResizedCropBox(64, 48, [0.08, 1], [3 / 4, 4 / 3], rng);
      expect(box.left + box.width).toBeLessThanOrEqual(64);
      expect(box.top + box.height).toBeLessThanOrEqual(48);
      expect(box.width * box.height).toBeGreaterThanOrEqual(0.08 * 64 * 48 * 0.8);
    }
    const out = augment({ randomResizedCrop: { scale: [0.5, 1], ratio: [0.75, 1.33] }, size: 3 })(
      pixels,
      shape,
      new Random(2),
    );
    expect(out.length).toBe(9);
  });

  it('is reproducible from the seed', () => {
    const t = augment({ flip: true, padCrop: 2, randomResizedCrop: { scale: [0.3, 1], ratio: [0.75, 1.33] } });
    expect([...t(pixels, shape, new Random(11))]).toEqual([...t(pixels, shape, new Random(11))]);
  });
});

describe('image folders', () => {
  it('load one class per sub-folder, resized, skipping and reporting undecodable files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'shufflenet-folder-'));
    for (const [name, colour] of [
      ['cats', 200],
      ['dogs', 40],
    ] as const) {
      mkdirSync(join(root, name));
      for (const [i, format] of (['png', 'jpeg', 'webp'] as const).entries()) {
        const image = sharp({
          create: { width: 30 + i, height: 20, channels: 3, background: { r: colour, g: colour, b: colour } },
        });
        writeFileSync(join(root, name, `${i}.${format === 'jpeg' ? 'jpg' : format}`), await image[format]().toBuffer());
      }
    }
    writeFileSync(join(root, 'dogs', 'broken.png'), 'not a png');
    writeFileSync(join(root, 'dogs', 'notes.txt'), 'ignored');
    const progress: number[] = [];
    const { dataset, skipped } = await loadImageFolder(root, {
      size: 8,
      channels: 'gray',
      onProgress: (d) => progress.push(d),
    });
    expect(dataset.classes).toEqual(['cats', 'dogs']);
    expect(dataset.length).toBe(6);
    expect(dataset.imageShape).toEqual([1, 8, 8]);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.file).toContain('broken.png');
    expect(skipped[0]!.reason).toMatch(/not an image/);
    expect(progress.at(-1)).toBe(7);
    const cat = dataset.pixels(0);
    expect(Math.abs(cat[10]! - 200)).toBeLessThanOrEqual(2);
    expect(dataset.label(5)).toBe(1);
  });

  it('refuse a folder without class folders', async () => {
    const root = mkdtempSync(join(tmpdir(), 'shufflenet-folder-'));
    await expect(loadImageFolder(root, { size: 8, channels: 'RGB' })).rejects.toThrow(
      /needs one sub-folder per class, 2 to 100,000; found 0/,
    );
    await expect(loadImageFolder(join(root, 'missing'), { size: 8, channels: 'RGB' })).rejects.toThrow(
      /cannot list it \(ENOENT\)/,
    );
  });
});
