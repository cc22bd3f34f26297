/**
 * Browser image decoding into the library's RawImage (interleaved RGBA). The browser decodes
 * (createImageBitmap, which reads whatever it can display: PNG, JPEG, WebP, GIF, AVIF…); pixels
 * are read back through a canvas without colour-space conversion or premultiplication, so a PNG
 * gives the same bytes here as sharp gives in Node. The size rules are the library's (`planImage`,
 * as in Node): sides, pixels and aspect ratio are checked before pixels are read, and an image more
 * than twice the size the network's preprocessing needs is shrunk by the browser's decoder instead
 * of being read back at full size.
 */
import { planImage, type RawImage } from 'shufflenet/browser';

export class DecodeError extends Error {
  override name = 'DecodeError';
}

/** Decodes `blob` for a network whose preprocessing resizes the short side to `resize`. */
export async function decodeImage(blob: Blob, source: string, resize: number): Promise<RawImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new DecodeError(
      `${source}: not an image this browser can decode (type ${JSON.stringify(blob.type || 'unknown')}, ${blob.size} bytes)`,
    );
  }
  let plan;
  try {
    plan = planImage(bitmap.width, bitmap.height, resize, source);
  } catch (e) {
    bitmap.close();
    throw e;
  }
  const { decodeWidth: width, decodeHeight: height } = plan;
  if (width !== bitmap.width || height !== bitmap.height) {
    const full = bitmap;
    bitmap = await createImageBitmap(full, { resizeWidth: width, resizeHeight: height, resizeQuality: 'high' });
    full.close();
  }
  const context = canvas2d(width, height);
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return fromImageData(context.getImageData(0, 0, width, height));
}

export function fromImageData(pixels: ImageData): RawImage {
  return { width: pixels.width, height: pixels.height, channels: 4, data: pixels.data };
}

function canvas2d(width: number, height: number): OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D {
  if (typeof OffscreenCanvas !== 'undefined') {
    const context = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
    if (context !== null) return context;
  }
  const canvas = document.createElement('canvas');
  [canvas.width, canvas.height] = [width, height];
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (context === null) throw new DecodeError('this browser gives no 2D canvas to read pixels with');
  return context;
}
