/** Image preprocessing against torchvision (Resize → CenterCrop → ToTensor → Normalize on PIL images). */
import { describe, expect, it } from 'vitest';
import {
  centerCrop,
  preprocessImage,
  rawToShortSide,
  resize,
  resizeShortSide,
  toChannels,
  type RawImage,
} from '../src/data/image.js';
import { preprocessingPresets, type Preprocessing } from '../src/data/preprocessing.js';
import { get, loadFixture } from './helpers/fixtures.js';

const fixture = loadFixture('images.safetensors');
const cases = JSON.parse(fixture.metadata['cases']!) as {
  name: string;
  channels: 'RGB' | 'gray';
  resize: number;
  crop: number;
  mean: number[];
  std: number[];
}[];

describe('image preprocessing matches torchvision', () => {
  for (const c of cases) {
    it(c.name, () => {
      const pixels = get(fixture, `${c.name}/pixels`); // [H, W, C] as float
      const [height, width, channels] = pixels.shape as [number, number, 1 | 3];
      const image: RawImage = { width, height, channels, data: Uint8Array.from(pixels.data) };
      const p: Preprocessing = {
        channels: c.channels,
        divisor: 255,
        mean: c.mean,
        std: c.std,
        resize: c.resize,
        crop: c.crop,
      };
      const ours = preprocessImage(image, p);
      const expected = get(fixture, `${c.name}/out`);
      expect(ours.shape).toEqual([1, ...expected.shape]);
      // PIL resamples in 8-bit fixed point and rounds after each pass: allow 1.5 grey levels.
      const tolerance = 1.5 / 255 / Math.min(...c.std);
      let worst = 0;
      for (let i = 0; i < ours.size; i++) worst = Math.max(worst, Math.abs(ours.data[i]! - expected.data[i]!));
      expect(worst).toBeLessThanOrEqual(tolerance);
    });
  }
});

describe('image helpers', () => {
  it('converts RGBA and gray+alpha, compositing over black, and orders BGR', () => {
    const rgba: RawImage = { width: 1, height: 1, channels: 4, data: Uint8Array.from([200, 100, 50, 128]) };
    const a = 128 / 255;
    expect([...toChannels(rgba, 'RGB').data].map((v) => +v.toFixed(3))).toEqual(
      [200 * a, 100 * a, 50 * a].map((v) => +v.toFixed(3)),
    );
    expect([...toChannels(rgba, 'BGR').data].map((v) => +v.toFixed(3))).toEqual(
      [50 * a, 100 * a, 200 * a].map((v) => +v.toFixed(3)),
    );
    const ga: RawImage = { width: 1, height: 1, channels: 2, data: Uint8Array.from([90, 255]) };
    expect([...toChannels(ga, 'RGB').data]).toEqual([90, 90, 90]);
    expect(toChannels(rgba, 'gray').data[0]).toBeCloseTo((0.299 * 200 + 0.587 * 100 + 0.114 * 50) * a, 4);
  });

  it('keeps a constant image constant at any size', () => {
    const flat = { width: 13, height: 7, channels: 1, data: new Float32Array(91).fill(77) };
    for (const [w, h] of [
      [5, 3],
      [40, 21],
      [13, 1],
    ] as const) {
      expect(resize(flat, w, h).data.every((v) => Math.abs(v - 77) < 1e-4)).toBe(true);
    }
  });

  it('resizes a raw image band by band to exactly the floats of the full-size planar path', () => {
    // 700×1900 RGBA: a band is 1 MiB of source bytes (374 rows), so six bands and a partial one.
    for (const [target, size] of [
      ['RGB', 256],
      ['gray', 28],
      ['BGR', 800],
    ] as const) {
      const image: RawImage = {
        width: 700,
        height: 1900,
        channels: 4,
        data: Uint8Array.from({ length: 700 * 1900 * 4 }, (_, i) => (i * 2654435761) >>> 24),
      };
      const banded = rawToShortSide(image, target, size);
      const whole = resizeShortSide(toChannels(image, target), size);
      expect([banded.width, banded.height]).toEqual([whole.width, whole.height]);
      expect(banded.data).toEqual(whole.data);
    }
  });

  it('refuses impossible sizes with the numbers', () => {
    const small = { width: 10, height: 10, channels: 1, data: new Float32Array(100) };
    expect(() => centerCrop(small, 12)).toThrow('crop: 12×12 at (-1, -1) does not fit in 10×10');
    expect(() => toChannels({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }, 'RGB')).toThrow(
      'image: 5 bytes do not make 2×2 pixels of 3 channels',
    );
    expect(() =>
      preprocessImage({ width: 0, height: 3, channels: 1, data: new Uint8Array(0) }, preprocessingPresets.mnist),
    ).toThrow('image: 0×3 has no pixels');
  });
});
