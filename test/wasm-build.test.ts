/** The committed WASM module is exactly what the AssemblyScript sources compile to (reproducible). */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

it('kernels.generated.ts is reproducible from src/kernels/wasm/assembly', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  // Throws (non-zero exit) if compiling again would change the committed file.
  const out = execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  expect(out).toMatch(/is up to date/);
});
