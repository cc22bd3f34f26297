/**
 * What a test needs from its environment, and what happens without it. For a tool the machine may
 * lack (a browser, PyTorch): nothing skips in silence, and where the environment asks for the tool,
 * nothing skips at all. For the WASM build: the vitest project names it (expectedKernelVariant).
 *
 * - Present: the test runs.
 * - Absent, `SHUFFLENET_REQUIRE_<NAME>=1` (CI sets it for what CI installs): the test runs and
 *   fails at `need.check()`, naming what is missing.
 * - Absent otherwise: the test skips, and says why on stderr when its file loads (every reporter
 *   shows that), with the variable that would make it a failure.
 *
 * @example
 * const needChromium = requirement('CHROMIUM', 'the page in Chromium', existsSync(path) ? null : `${path} is absent`);
 * describe.skipIf(needChromium.skip)('browser page', () => {
 *   beforeAll(() => needChromium.check());
 * });
 */
import { spawnSync } from 'node:child_process';
import type { KernelVariant } from '../../src/kernels/wasm/module.js';

export interface Requirement {
  /** True when the thing is absent and not required: skip the tests that need it. */
  readonly skip: boolean;
  /** Why the thing is absent, or null when it is here. */
  readonly missing: string | null;
  /** Throws, naming what is missing, when the thing is absent; call it first in the test or its beforeAll. */
  check(): void;
}

/**
 * `name` is the suffix of SHUFFLENET_REQUIRE_<name> (e.g. 'CHROMIUM', 'TORCH'); `what` says which
 * tests need it; `missing` is null when the thing is here, else why not and how to get it.
 */
export function requirement(name: string, what: string, missing: string | null): Requirement {
  const variable = `SHUFFLENET_REQUIRE_${name}`;
  const required = process.env[variable] === '1';
  const skip = missing !== null && !required;
  if (skip) console.warn(`SKIPPED ${what}: ${missing}. Set ${variable}=1 to make this a failure.`);
  return {
    skip,
    missing,
    check() {
      if (missing !== null) throw new Error(`${what} cannot run: ${missing} (${variable}=1 requires it)`);
    },
  };
}

/** Why /usr/bin/python3 cannot import `module`, or null when it can (the fixture scripts' Python). */
export function pythonModuleMissing(module: string, install: string): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const why = r.error?.message ?? r.stderr.trim().split('\n').pop() ?? `exit status ${r.status}`;
  return `/usr/bin/python3 cannot import ${module} (${why}; install it with: ${install})`;
}

/**
 * The WASM build this vitest project must load (SHUFFLENET_EXPECT_VARIANT, set per project in
 * vitest.config.ts). Throws when unset, so that a run outside those projects cannot pass the check.
 */
export function expectedKernelVariant(): KernelVariant {
  const value = process.env['SHUFFLENET_EXPECT_VARIANT'];
  const variants: KernelVariant[] = ['simd', 'relaxed-simd'];
  if (!variants.includes(value as KernelVariant)) {
    throw new Error(
      `SHUFFLENET_EXPECT_VARIANT is ${JSON.stringify(value)}, expected one of ${variants.join(', ')}: ` +
        "run the tests through vitest.config.ts's projects (npm test)",
    );
  }
  return value as KernelVariant;
}
