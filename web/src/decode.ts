/**
 * Browser image decoding into the library's RawImage (interleaved RGBA). The browser decodes
 * (createImageBitmap, which reads whatever it can display: PNG, JPEG, WebP, GIF, AVIF…); pixels
 * are read back through a canvas without colour-space conversion or premultiplication, so a PNG
 * gives the same bytes here as sharp gives in Node.
 */
import type { RawImage } from 'shufflenet/browser';

/** Larger images are refused: the same limit as the Node decoder (src/node/image.ts). */
export const pixelLimit = 8192 * 8192;

export class DecodeError extends Error {
  override name = 'DecodeError';
}

export async function decodeImage(blob: Blob, source: string): Promise<RawImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new DecodeError(
      `${source}: not an image this browser can decode (type ${JSON.stringify(blob.type || 'unknown')}, ${blob.size} bytes)`,
    );
  }
  const { width, height } = bitmap;
  if (width * height > pixelLimit) {
    bitmap.close();
    throw new DecodeError(
      `${source}: ${width}×${height} is ${(width * height).toLocaleString('en-US')} pixels, over the limit of ${pixelLimit.toLocaleString('en-US')}`,
    );
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
