/**
 * Image-folder datasets, as torchvision's ImageFolder: one sub-folder per class (sorted by name),
 * JPEG, PNG or WebP files inside. Images are decoded with sharp and resized once, at load time
 * (short side to `size`, centre crop), and kept as 8-bit pixels, so decoding stays off the
 * training hot path. Files that cannot be decoded are skipped and reported with the reason.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArrayDataset } from '../../data/dataset.js';
import { preprocessImage } from '../../data/image.js';
import { ShuffleNetError } from '../../errors.js';
import { maxLabelLength } from '../../io/modelfile.js';
import { maxClasses } from '../../models/config-fields.js';
import { decodeImage, ImageError } from '../image.js';

export interface ImageFolderOptions {
  /** Side of the stored square images. */
  size: number;
  /** Channels to keep. */
  channels: 'RGB' | 'gray';
  /** Resize the short side to this before the centre crop; default `size`. */
  resize?: number;
  /** Called after each file, for progress. */
  onProgress?: (done: number, total: number) => void;
}

export interface LoadedFolder {
  dataset: ArrayDataset;
  skipped: { file: string; reason: string }[];
}

const extensions = /\.(jpe?g|png|webp)$/i;

export async function loadImageFolder(root: string, o: ImageFolderOptions): Promise<LoadedFolder> {
  let classes: string[];
  try {
    classes = readdirSync(root)
      .filter((name) => statSync(join(root, name)).isDirectory())
      .sort();
  } catch (e) {
    throw new ShuffleNetError(
      `image folder ${root}: cannot list it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  if (classes.length < 2 || classes.length > maxClasses) {
    throw new ShuffleNetError(
      `image folder ${root}: needs one sub-folder per class, 2 to ${maxClasses.toLocaleString('en-US')}; found ${classes.length}`,
    );
  }
  const long = classes.find((name) => name.length > maxLabelLength);
  if (long !== undefined) {
    throw new ShuffleNetError(
      `image folder ${root}: a class folder's name is ${long.length} characters; a label has at most ${maxLabelLength}`,
    );
  }
  const files = classes.flatMap((name, label) =>
    listFolder(root, name)
      .filter((f) => extensions.test(f))
      .sort()
      .map((f) => ({ path: join(root, name, f), label })),
  );
  if (files.length === 0)
    throw new ShuffleNetError(`image folder ${root}: no .jpg, .png or .webp files in its class folders`);
  const channels = o.channels === 'gray' ? 1 : 3;
  const preset = {
    channels: o.channels,
    divisor: 1,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    resize: o.resize ?? o.size,
    crop: o.size,
  };
  const pixels: Uint8Array[] = [];
  const labels: number[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const [i, file] of files.entries()) {
    try {
      const decoded = await decodeImage(readImageFile(file.path), file.path, { resize: preset.resize });
      const image = preprocessImage(decoded, preset, file.path);
      pixels.push(Uint8Array.from(image.data, (v) => Math.min(255, Math.max(0, Math.round(v)))));
      labels.push(file.label);
    } catch (e) {
      if (!(e instanceof ImageError || e instanceof ShuffleNetError)) throw e;
      skipped.push({ file: file.path, reason: e.message });
    }
    o.onProgress?.(i + 1, files.length);
  }
  const data = new Uint8Array(pixels.length * channels * o.size * o.size);
  pixels.forEach((p, i) => data.set(p, i * p.length));
  return {
    dataset: new ArrayDataset(`folder:${root}`, [channels, o.size, o.size], classes, data, Int32Array.from(labels)),
    skipped,
  };
}

function listFolder(root: string, name: string): string[] {
  try {
    return readdirSync(join(root, name));
  } catch (e) {
    throw new ShuffleNetError(
      `image folder ${root}: cannot list ${name} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/** A file's bytes, or an ImageError (skipped with its reason) for a directory named like an image, say. */
function readImageFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ImageError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
