/** Decoding real formats with sharp, and refusing bad files with one clear line. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, ImageError } from '../src/node/image.js';

const width = 24;
const height = 16;
const rgb = Buffer.from(Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 7) % 256));

async function encoded(format: 'png' | 'jpeg' | 'webp', channels: 1 | 3 | 4 = 3): Promise<Uint8Array> {
  const raw =
    channels === 3 ? rgb : Buffer.from(Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 5) % 256));
  const image = sharp(raw, { raw: { width, height, channels } });
  return (channels === 1 ? image.toColourspace('b-w') : image)[format]().toBuffer();
}

describe('decodeImage', () => {
  it('reads PNG losslessly, JPEG and WebP approximately, keeping gray, RGB and RGBA', async () => {
    const png = await decodeImage(await encoded('png'), 'a.png');
    expect([png.width, png.height, png.channels]).toEqual([width, height, 3]);
    expect(Buffer.from(png.data).equals(rgb)).toBe(true);
    expect((await decodeImage(await encoded('png', 1), 'g.png')).channels).toBe(1);
    expect((await decodeImage(await encoded('png', 4), 'a.png')).channels).toBe(4);
    for (const format of ['jpeg', 'webp'] as const) {
      const image = await decodeImage(await encoded(format), `a.${format}`);
      expect([image.width, image.height]).toEqual([width, height]);
    }
  });

  it('refuses a file that is not an image', async () => {
    await expect(decodeImage(new TextEncoder().encode('hello, I am text'), 'notes.txt')).rejects.toThrow(
      /^notes\.txt: not an image sharp can read/,
    );
  });

  it('refuses truncated files', async () => {
    for (const format of ['png', 'jpeg'] as const) {
      const full = await encoded(format);
      const cut = full.subarray(0, Math.floor(full.length * 0.6));
      const error = await decodeImage(cut, `cut.${format}`).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImageError);
      expect((error as Error).message).toMatch(new RegExp(`^cut\\.${format}: (truncated or corrupt|not an image)`));
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('refuses decompression bombs before decoding them', async () => {
    // A 6000×6000 black PNG is a few kilobytes but 36 million pixels.
    const bomb = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .png()
      .toBuffer();
    expect(bomb.length).toBeLessThan(200_000);
    await expect(decodeImage(bomb, 'bomb.png', { pixelLimit: 4096 * 4096 })).rejects.toThrow(
      'bomb.png: 6000×6000 is 36,000,000 pixels, over the limit of 16,777,216 (a decompression bomb, or simply too large)',
    );
  });
});
