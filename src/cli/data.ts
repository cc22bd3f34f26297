/** `--data` for the CLI: a dataset package name or an image folder. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDataset } from '../data/dataset.js';
import { ShuffleNetError } from '../errors.js';
import { loadImageFolder } from '../node/data/imagefolder.js';
import { loadFashionMnist, loadMnist, type Split } from '../node/data/mnist.js';

export interface DataSource {
  name: string;
  dataset: ImageDataset;
  /** One line about what was skipped while loading, if anything. */
  warning?: string;
}

/**
 * `fashion-mnist`, `mnist`, or a folder: either with `train/` and `test/` (or `val/`) sub-folders,
 * each holding one folder per class, or itself one folder per class (then it is only a training set).
 */
export async function loadData(spec: string, split: Split, imageSize = 32): Promise<DataSource | null> {
  if (spec === 'fashion-mnist' || spec === 'mnist') {
    const { dataset, skipped } = spec === 'fashion-mnist' ? loadFashionMnist(split) : loadMnist(split);
    const total = skipped.reduce((a, b) => a + b, 0);
    return {
      name: spec,
      dataset,
      ...(total ? { warning: `${spec}: skipped ${total} malformed row(s) (per class: ${skipped.join(', ')})` } : {}),
    };
  }
  if (!existsSync(spec)) {
    throw new ShuffleNetError(`--data ${spec}: not fashion-mnist, mnist, or an existing folder`);
  }
  const candidates = split === 'train' ? ['train'] : ['test', 'val'];
  const sub = candidates.map((c) => join(spec, c)).find((p) => existsSync(p));
  const root = sub ?? (split === 'train' ? spec : null);
  if (root === null) return null;
  const { dataset, skipped } = await loadImageFolder(root, { size: imageSize, channels: 'RGB' });
  return {
    name: spec,
    dataset,
    ...(skipped.length ? { warning: `${root}: skipped ${skipped.length} file(s), e.g. ${skipped[0]!.reason}` } : {}),
  };
}
