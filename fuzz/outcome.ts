/**
 * Outcome classes of a case, as issue 15 defines them:
 * - accepted: the reader returned;
 * - typed error: a ShuffleNetError (FormatError, ShapeError, ConfigError, UnknownNameError,
 *   ImageError) whose message is one line;
 * - failure: anything else: another exception, a typed error of several lines, a case over 5 s,
 *   a worker over 1 GB of RSS, or a crash.
 */
import { ShuffleNetError } from '../src/errors.js';

export type OutcomeClass = 'accepted' | 'typed' | 'failure';
export type FailureKind = 'untyped' | 'multiline' | 'timeout' | 'memory' | 'crash';

export interface CaseResult {
  outcome: OutcomeClass;
  failure?: FailureKind;
  /** Error class name (`RangeError`, `FormatError`), when something was thrown. */
  error?: string;
  message?: string;
  stack?: string;
  /** The last library call the case started (`decodeImage`, `preprocessImage imagenet`): where a
   * timeout, a memory blow-up or a crash happened. */
  step?: string;
  /** Time the reader ran, ms (for a timeout: how long it ran before it was killed). */
  ms: number;
  /** Resident set after the case, and the worker's peak so far, bytes. */
  rss?: number;
  maxRss?: number;
}

export const timeLimitMs = 5000;
export const rssLimitBytes = 1024 ** 3;

export function classifyError(e: unknown): Pick<CaseResult, 'outcome' | 'failure' | 'error' | 'message' | 'stack'> {
  const error = e instanceof Error ? e : new Error(`non-Error thrown: ${String(e)}`);
  const base = { error: error.name, message: error.message, stack: shortStack(error.stack ?? '') };
  if (e instanceof ShuffleNetError) {
    // One line: the CLI prints `message` as is, and a file's text must not start a new line.
    return /[\n\r]/.test(error.message)
      ? { outcome: 'failure', failure: 'multiline', ...base }
      : { outcome: 'typed', ...base };
  }
  return { outcome: 'failure', failure: 'untyped', ...base };
}

/** The first lines of a stack, then only its frames in src/ and fuzz/ (a stack overflow has thousands). */
export function shortStack(stack: string): string {
  const lines = stack.split('\n');
  const ours = lines.slice(8).filter((l) => /\/(src|fuzz)\//.test(l));
  const dropped = lines.length - 8 - ours.length;
  return [...lines.slice(0, 8), ...(dropped > 0 ? [`    … ${dropped} other frames`] : []), ...ours.slice(0, 30)].join(
    '\n',
  );
}

/**
 * Where a failure comes from: the first stack frame in src/ (`src/data/image.ts:113`), else the
 * first in fuzz/ (the harness doing what the CLI does with a loaded model, e.g. `info`'s summary).
 */
export function sourceFrame(stack: string | undefined): string | null {
  const frames = (stack ?? '').split('\n').slice(1);
  for (const dir of ['src', 'fuzz']) {
    for (const line of frames) {
      const m = new RegExp(`/(${dir}/[^:()\\s]+):(\\d+)`).exec(line);
      if (m) return `${m[1]}:${m[2]}`;
    }
  }
  return null;
}

/**
 * What makes two failures the same: kind, error class, message with numbers and quoted text
 * blanked, and the src/ frame. Cases with one signature share a root cause (almost always).
 */
export function signature(result: CaseResult): string {
  const blank = (text: string): string =>
    text
      .replace(/"[^"]*"/g, '"…"')
      .replace(/-?\d[\d,.]*(e[+-]?\d+)?/gi, 'N')
      .slice(0, 160);
  const where = sourceFrame(result.stack) ?? (result.error === undefined ? blank(result.step ?? '') : '');
  return [result.failure, result.error ?? '', blank(result.message ?? ''), where].join(' | ');
}
