/** Generated docs stay in sync with the code that generates them. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module script without type declarations
import { renderComplexityDoc } from '../scripts/complexity-doc.mjs';

describe('docs', () => {
  it('docs/complexity.md is what `npm run docs` generates', () => {
    const committed = readFileSync(new URL('../docs/complexity.md', import.meta.url), 'utf8');
    expect(committed, 'docs/complexity.md is stale: run `npm run docs`').toBe((renderComplexityDoc as () => string)());
  });

  it('docs/reproduction.md is what `npm run docs:reproduction` makes of the committed results', () => {
    const r = spawnSync(process.execPath, ['scripts/reproduction-doc.mjs', '--check'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
