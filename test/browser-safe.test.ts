/**
 * The core must run in browsers: no file outside src/cli (and src/node) imports a Node module, by
 * node:* or by a bare name of any built-in Node lists (the list eslint.config.js restricts too).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('browser safety', () => {
  it('the core imports no Node built-in module and uses no Node globals', () => {
    const offenders: string[] = [];
    for (const file of files(src)) {
      const rel = relative(src, file);
      if (rel.startsWith('cli/') || rel.startsWith('node/')) continue;
      // Comments may mention a process or a require; only code counts.
      const text = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:') || builtinModules.includes(spec)) offenders.push(`${rel} imports ${spec}`);
      }
      if (/\b(process|Buffer|__dirname|require)\s*[.(]/.test(text)) offenders.push(`${rel} uses a Node global`);
    }
    expect(offenders).toEqual([]);
  });
});
