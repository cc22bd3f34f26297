/** The model shipped with the package (models/), for `classify` and `demo` without --model. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ShuffleNetError } from '../errors.js';

export const bundledModelFile = 'fashion-mnist-shufflenet.safetensors';

export function bundledModelPath(): string {
  const path = fileURLToPath(new URL(`../../models/${bundledModelFile}`, import.meta.url));
  if (!existsSync(path)) throw new ShuffleNetError(`the bundled model is missing (${path}); pass --model FILE`);
  return path;
}
