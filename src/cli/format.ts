/** Plain-text tables for the terminal, progress lines, and text from files made safe to print. */
import { escapeControls } from '../errors.js';
import { formatDuration } from '../node/experiment/experiment.js';

export interface Column<R> {
  header: string;
  value: (row: R) => string;
  align?: 'left' | 'right';
}

export function formatTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => (columns[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

export const fixed =
  (digits: number) =>
  (v: number | null | undefined): string =>
    v == null ? '—' : v.toFixed(digits);

export function signedPercent(v: number | null): string {
  if (v === null) return '—';
  const p = v * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;
}

/**
 * Text from a file (a name, a label, an op type, a note, an error that quotes them), made safe to
 * print: every control character shown as an escape (`\u001b`, `\n`), and cut to `max` characters so
 * that a 10 MB label cannot flood the terminal.
 */
export function printable(text: string, max = 200): string {
  const cut =
    text.length > max
      ? `${text.slice(0, max)}… (${(text.length - max).toLocaleString('en-US')} more characters)`
      : text;
  return escapeControls(cut);
}

/** JSON for the terminal: JSON.stringify escapes C0 controls; this also escapes C1, bidi and separators. */
export function printableJson(value: unknown): string {
  // Raw C0 characters in the output are only the indentation's newlines: inside strings,
  // JSON.stringify has escaped them already.
  return JSON.stringify(value, null, 1)
    .split('\n')
    .map((line) => escapeControls(line))
    .join('\n');
}

/** A progress line on stderr when it is a terminal: `what done/total (rate/s, ETA)`. */
export function progressLine(what: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const started = performance.now();
  return (done, total) => {
    const seconds = (performance.now() - started) / 1000;
    const eta = done > 0 && done < total ? `, ETA ${formatDuration((seconds / done) * (total - done))}` : '';
    process.stderr.write(
      `\r${what} ${done}/${total} images (${(done / Math.max(seconds, 1e-3)).toFixed(0)}/s${eta})   `,
    );
    if (done === total) process.stderr.write('\n');
  };
}
