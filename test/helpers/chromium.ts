/**
 * The browser tests' Chromium: Debian's /usr/bin/chromium driven by playwright-core (no browser
 * download), how it is launched, and the headers a test server sends for cross-origin isolation.
 */
import { existsSync } from 'node:fs';
import { requirement, type Requirement } from './requirements.js';

export const chromiumPath = '/usr/bin/chromium';

/** The Chromium requirement of the tests `what` names (CI sets SHUFFLENET_REQUIRE_CHROMIUM=1). */
export function chromiumRequirement(what: string): Requirement {
  return requirement(
    'CHROMIUM',
    what,
    existsSync(chromiumPath) ? null : `${chromiumPath} is absent (install it with: apt-get install -y chromium)`,
  );
}

/**
 * Launch options for `chromium.launch` or `launchPersistentContext`: headless, no sandbox (tests run
 * in containers) and no traffic of the browser's own, so a page's requests are all the page's.
 */
export const chromiumLaunchOptions = {
  executablePath: chromiumPath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
};

/** The response headers that make a page cross-origin isolated, so it may share memory with workers. */
export const crossOriginIsolationHeaders: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
