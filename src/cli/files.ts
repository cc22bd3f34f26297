/** File helpers for the CLI: clear errors for missing files and atomic writes. */
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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

/**
 * Refuses an output path that cannot be written, before any long work: one in a folder that does
 * not exist, or a directory. `flag` names the option it came from.
 */
export function checkOutputPath(path: string, flag: string): void {
  const folder = dirname(resolve(path));
  const kind = (p: string): 'folder' | 'file' | 'none' => {
    try {
      return statSync(p).isDirectory() ? 'folder' : 'file';
    } catch {
      return 'none';
    }
  };
  if (kind(folder) !== 'folder') throw new ShuffleNetError(`${flag} ${path}: the folder ${folder} does not exist`);
  if (kind(path) === 'folder') throw new ShuffleNetError(`${flag} ${path}: is a directory, not a file`);
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
