/**
 * Errors that a user can act on. Each names the operation or file, what was expected and what was
 * found; the CLI prints `message` as one line with no stack trace.
 */
export class ShuffleNetError extends Error {
  override name = 'ShuffleNetError';
}

/** A tensor of the wrong shape reached an op, or an op was given impossible attributes. */
export class ShapeError extends ShuffleNetError {
  override name = 'ShapeError';
}

/** A network configuration that cannot be built (e.g. a width that the groups do not divide). */
export class ConfigError extends ShuffleNetError {
  override name = 'ConfigError';
}

/** A name that is not in a registry. */
export class UnknownNameError extends ShuffleNetError {
  override name = 'UnknownNameError';
}

/** A file that cannot be read: truncated, corrupt or hostile. */
export class FormatError extends ShuffleNetError {
  override name = 'FormatError';
}

/**
 * Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts every escape
 * sequence; CSI is also U+009B), DEL, line and paragraph separators, and the bidirectional marks,
 * overrides and isolates that reorder what follows them.
 */
const controls = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
const named: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text from a file (a name, a label, an op type) with every control character written as an
 * escape, as JSON writes them (`\n`, `\u001b`): one line that cannot move the cursor, clear the
 * screen or fake another line of output.
 */
export function escapeControls(text: string): string {
  return text.replace(controls, (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Another library's message (a parser's, a decoder's), as one short line to quote in ours. */
export function oneLine(message: string, max = 120): string {
  const flat = message.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}
