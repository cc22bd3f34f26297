/**
 * Decoding image files in Node with sharp (JPEG, PNG, WebP, and whatever else libvips reads), with
 * the errors a user can act on: a missing file, something that is not an image, a truncated or
 * corrupt file, and decompression bombs refused by sharp's pixel limit before decoding.
 */
import sharp, { type Metadata } from 'sharp';
import { ShuffleNetError, oneLine } from '../errors.js';
import type { RawImage } from '../data/image.js';

export class ImageError extends ShuffleNetError {
  override name = 'ImageError';
}

/** Images with more pixels than this are refused before decoding (8192 × 8192). */
export const defaultPixelLimit = 8192 * 8192;

export interface DecodeOptions {
  pixelLimit?: number;
}

export async function decodeImage(input: Uint8Array, source: string, options: DecodeOptions = {}): Promise<RawImage> {
  const limit = options.pixelLimit ?? defaultPixelLimit;
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError(`${source}: not an image sharp can read (${oneLine((e as Error).message)})`);
  }
  const { width = 0, height = 0 } = meta;
  if (width * height > limit) {
    throw new ImageError(
      `${source}: ${width}×${height} is ${(width * height).toLocaleString('en-US')} pixels, over the limit of ` +
        `${limit.toLocaleString('en-US')} (a decompression bomb, or simply too large)`,
    );
  }
  try {
    // failOn 'warning' refuses truncated JPEG/PNG data instead of returning a half-grey picture.
    let pipeline = sharp(input, { limitInputPixels: limit, failOn: 'warning' }).rotate(); // EXIF orientation
    // sharp converts to sRGB on output; keep gray images gray (with their alpha, if any).
    if ((meta.channels ?? 3) <= 2) pipeline = pipeline.toColourspace('b-w');
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    return {
      width: info.width,
      height: info.height,
      channels: info.channels as RawImage['channels'],
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (e) {
    throw new ImageError(
      `${source}: truncated or corrupt ${meta.format ?? 'image'} (${oneLine((e as Error).message)})`,
    );
  }
}
