import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const dir = fileURLToPath(new URL('../fixtures/', import.meta.url));
const expectedVersion = '1';

/** Reads a fixture written by scripts/make_fixtures.py, checking its version header. */
export function loadFixture(file: string): SafetensorsFile {
  const path = dir + file;
  if (!existsSync(path)) {
    throw new Error(`missing fixture ${path}; regenerate with: /usr/bin/python3 scripts/make_fixtures.py`);
  }
  const fixture = readSafetensors(readFileSync(path), file);
  if (fixture.metadata['version'] !== expectedVersion) {
    throw new Error(
      `fixture ${file} has version ${fixture.metadata['version']} but the tests expect ${expectedVersion}; ` +
        'regenerate with: /usr/bin/python3 scripts/make_fixtures.py',
    );
  }
  return fixture;
}

export function loadJsonFixture<T>(file: string): T {
  return JSON.parse(readFileSync(dir + file, 'utf8')) as T;
}

/** Largest absolute difference between two tensors of the same size. */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.size !== b.size) throw new Error(`size mismatch: ${a.size} vs ${b.size}`);
  let worst = 0;
  for (let i = 0; i < a.size; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

export function maxAbs(a: Tensor): number {
  return a.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

export function get(fixture: SafetensorsFile, name: string): Tensor {
  const t = fixture.tensors.get(name);
  if (t === undefined) throw new Error(`fixture has no tensor "${name}"`);
  return t;
}
