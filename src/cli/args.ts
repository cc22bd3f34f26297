/** Parsers for numeric flags: a bad value is a one-line commander error naming what was expected. */
import { InvalidArgumentError, Option } from 'commander';
import { checkField, describeField, FieldError, integerField, type Field } from '../validate.js';

const parser =
  (what: string, check: (n: number) => boolean) =>
  (value: string): number => {
    const n = Number(value);
    if (!check(n)) throw new InvalidArgumentError(`${what}, got "${value}"`);
    return n;
  };

export const positiveInt = parser('expected a positive integer', (n) => Number.isInteger(n) && n > 0);
export const nonNegativeInt = parser('expected a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
export const nonNegative = parser('expected a non-negative number', (n) => n >= 0 && Number.isFinite(n));
export const positive = parser('expected a positive number', (n) => n > 0 && Number.isFinite(n));

/**
 * A numeric flag checked against a field of the validation layer (src/validate.ts), so that the
 * flag and a file's metadata share one range: `--num-classes` takes what a model file may hold.
 */
export function fieldParser(field: Field) {
  return (value: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    try {
      checkField(n, field, 'value');
    } catch (e) {
      if (e instanceof FieldError) throw new InvalidArgumentError(`expected ${describeField(field)}, got "${value}"`);
      throw e;
    }
    return n;
  };
}

/** Most threads a command takes (a session spawns threads − 1 workers). */
export const MAX_THREADS = 256;

/** `--threads <n>` of the training commands: 1 … MAX_THREADS (each thread past the first is a worker). */
export const threadCount = (value: string): number => fieldParser(integerField(1, MAX_THREADS))(value);

/** `--batch-size` of the inference commands: the training batch's range. */
export const batchSize = (value: string): number => fieldParser(integerField(1, 8192))(value);

/** `--threads <n|auto>`: 'auto' (the default of the inference commands) or 1 … MAX_THREADS. */
export function threadsOrAuto(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new InvalidArgumentError(`expected 'auto' or an integer from 1 to ${MAX_THREADS}, got "${value}"`);
  }
  return n;
}

/** The inference commands' `--threads <n|auto>` (default 'auto'). */
export function threadsOption(): Option {
  return new Option(
    '--threads <n|auto>',
    "threads: 'auto' (1 or all cores, whichever its calibration measures faster; see docs/engine.md) or a count",
  )
    .argParser(threadsOrAuto)
    .default('auto');
}
