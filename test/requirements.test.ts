/** test/helpers/requirements.ts: a missing tool skips out loud, or fails where it is required. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pythonModuleMissing, requirement } from './helpers/requirements.js';

const variable = 'SHUFFLENET_REQUIRE_PROBE_TOOL';

afterEach(() => {
  vi.restoreAllMocks();
  delete process.env[variable];
});

describe('requirement', () => {
  it('skips an absent tool and says why, naming the variable that would make it a failure', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const need = requirement('PROBE_TOOL', 'the probe test', 'probe is absent');
    expect(need.skip).toBe(true);
    expect(warn).toHaveBeenCalledWith(
      'SKIPPED the probe test: probe is absent. Set SHUFFLENET_REQUIRE_PROBE_TOOL=1 to make this a failure.',
    );
    expect(() => need.check()).toThrow(/the probe test cannot run: probe is absent/);
  });

  it('runs and fails, without skipping, when SHUFFLENET_REQUIRE_<NAME>=1 asks for an absent tool', () => {
    process.env[variable] = '1';
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const need = requirement('PROBE_TOOL', 'the probe test', 'probe is absent');
    expect(need.skip).toBe(false);
    expect(warn).not.toHaveBeenCalled();
    expect(() => need.check()).toThrow(/probe is absent \(SHUFFLENET_REQUIRE_PROBE_TOOL=1 requires it\)/);
  });

  it('runs quietly when the tool is here', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const need = requirement('PROBE_TOOL', 'the probe test', null);
    expect(need.skip).toBe(false);
    expect(warn).not.toHaveBeenCalled();
    expect(() => need.check()).not.toThrow();
  });

  it('explains a Python module that cannot be imported', () => {
    // Whether python3 is absent or lacks the module, the reason names the module and how to install it.
    expect(pythonModuleMissing('shufflenet_no_such_module', 'pip install it')).toMatch(
      /^\/usr\/bin\/python3 cannot import shufflenet_no_such_module \(.+; install it with: pip install it\)$/,
    );
  });
});
