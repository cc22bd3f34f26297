/** Parsers for numeric flags: a bad value is a one-line commander error naming what was expected. */
import { InvalidArgumentError } from 'commander';

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
