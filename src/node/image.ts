/**
 * Decoding image files in Node with sharp (JPEG, PNG, WebP, GIF, TIFF, and whatever else libvips
 * reads), with the errors a user can act on: a missing file, something that is not an image, a
 * truncated or corrupt file. Sizes are checked from the header before decoding (`planImage`: sides,
 * pixels, aspect ratio), and an image much larger than the model needs is shrunk while it is
 * decoded, so memory stays bounded whatever the file claims.
 */
import sharp, { type Metadata } from 'sharp';
import { ShuffleNetError, oneLine } from '../errors.js';
import { imageLimits, planImage, type RawImage } from '../data/image.js';

export class ImageError extends ShuffleNetError {
  override name = 'ImageError';
}

/** Images with more pixels than this are refused before decoding (8192 × 8192). */
export const defaultPixelLimit = imageLimits.maxPixels;

/**
 * Lower pixel limits for formats that libvips decodes at full size even when asked to shrink: a
 * GIF frame is filled pixel by pixel (an 8000×8000 one of 43 bytes took 3.5–5.5 s and 600 MB on a
 * 2-vCPU EPYC VM; 4096×4096 about 1 s).
 */
const formatPixelLimits: Readonly<Record<string, number>> = { gif: 4096 * 4096 };

export interface DecodeOptions {
  /** A lower pixel limit than `imageLimits.maxPixels` (a higher one is not allowed). */
  pixelLimit?: number;
  /**
   * The short side the model's preprocessing resizes to: an image more than twice that is shrunk
   * on decode (`planImage`). Undefined: decoded at its own size.
   */
  resize?: number;
}

export async function decodeImage(input: Uint8Array, source: string, options: DecodeOptions = {}): Promise<RawImage> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError(`${source}: not an image sharp can read (${oneLine((e as Error).message)})`);
  }
  // sharp reads the first frame of an animation; its height is one page's.
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  const formatLimit = Object.hasOwn(formatPixelLimits, meta.format ?? '') ? formatPixelLimits[meta.format!]! : Infinity;
  const limit = Math.min(options.pixelLimit ?? imageLimits.maxPixels, imageLimits.maxPixels, formatLimit);
  const plan = planImage(width, height, options.resize, source, {
    pixels: limit,
    ...(limit === formatLimit ? { note: ` for ${meta.format}` } : {}),
  });
  try {
    // failOn 'warning' refuses truncated JPEG/PNG data instead of returning a half-grey picture.
    let pipeline = sharp(input, { limitInputPixels: limit, failOn: 'warning' }).rotate(); // EXIF orientation
    if (plan.decodeWidth !== width || plan.decodeHeight !== height) {
      // Shrink on load to the plan's size; EXIF orientations 5–8 turn the image a quarter.
      const turned = (meta.orientation ?? 1) >= 5;
      const [w, h] = turned ? [plan.decodeHeight, plan.decodeWidth] : [plan.decodeWidth, plan.decodeHeight];
      pipeline = pipeline.resize({ width: w, height: h, fit: 'fill' });
    }
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
