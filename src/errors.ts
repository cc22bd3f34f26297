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

/** Another library's message (a parser's, a decoder's), as one short line to quote in ours. */
export function oneLine(message: string, max = 120): string {
  const flat = message.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}
