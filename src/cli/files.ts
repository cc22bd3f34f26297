/** File helpers for the CLI: clear errors for missing files and atomic writes. */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { ShuffleNetError } from '../errors.js';

export function readFileOrFail(path: string, what = 'file'): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new ShuffleNetError(`cannot read ${what} ${path}: ${why}`);
  }
}

/** Writes to a temporary file next to `path`, then renames it over `path`: readers never see half a file. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new ShuffleNetError(`cannot write ${path}: ${(e as Error).message}`);
  }
}
