/**
 * The one validation layer for values that come from outside (file metadata, configs, CLI
 * numbers): a small schema per config, declared next to its type, and one checker. A value that
 * fails is refused with a `FieldError` naming the field, the value and what is allowed.
 *
 * @example
 * const fields = { numClasses: integerField(1, 100_000) };
 * checkFields({ numClasses: 1e9 }, fields, 'config');
 * // FieldError: config.numClasses is 1000000000; expected an integer from 1 to 100,000
 */
import { ShuffleNetError } from './errors.js';

/** A field of a config or of file metadata that is out of its type or range. */
export class FieldError extends ShuffleNetError {
  override name = 'FieldError';
}

export type Field =
  | { type: 'integer'; min: number; max: number }
  | { type: 'number'; min: number; max: number; above?: boolean }
  | { type: 'boolean' }
  | { type: 'string'; maxLength: number; values?: readonly string[] }
  | { type: 'array'; items: Field; minLength: number; maxLength: number }
  | { type: 'object'; fields: Readonly<Record<string, Field>>; required?: readonly string[] }
  | { type: 'record'; values: Field; maxKeys: number }
  | { type: 'either'; options: readonly Field[] }
  /** A value that another layer's rule checks (an architecture, a preprocessing); it throws a FieldError. */
  | { type: 'checked'; what: string; check: (value: unknown, path: string) => unknown };

export type Fields = Readonly<Record<string, Field>>;

export const integerField = (min: number, max: number): Field => ({ type: 'integer', min, max });
/** A finite number in [min, max]; `above` makes the lower bound exclusive. */
export const numberField = (min: number, max: number, above = false): Field => ({ type: 'number', min, max, above });
export const booleanField: Field = { type: 'boolean' };
export const stringField = (maxLength: number, values?: readonly string[]): Field =>
  values ? { type: 'string', maxLength, values } : { type: 'string', maxLength };
export const arrayField = (items: Field, minLength: number, maxLength: number): Field => ({
  type: 'array',
  items,
  minLength,
  maxLength,
});
export const checkedField = (what: string, check: (value: unknown, path: string) => unknown): Field => ({
  type: 'checked',
  what,
  check,
});
export const objectField = (fields: Fields, required: readonly string[] = []): Field => ({
  type: 'object',
  fields,
  required,
});

/** The seeds we accept: non-negative integers that a Random can hold exactly. */
export const seedField = integerField(0, 2 ** 32 - 1);

const number = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 6 });

/** What a field allows, in words: "an integer from 1 to 100,000". */
export function describeField(field: Field): string {
  switch (field.type) {
    case 'integer':
      return `an integer from ${number(field.min)} to ${number(field.max)}`;
    case 'number':
      return field.above
        ? `a number above ${number(field.min)} and at most ${number(field.max)}`
        : `a number from ${number(field.min)} to ${number(field.max)}`;
    case 'boolean':
      return 'true or false';
    case 'string':
      return field.values
        ? `one of ${field.values.map((v) => JSON.stringify(v)).join(', ')}`
        : `a string of at most ${number(field.maxLength)} characters`;
    case 'array':
      return field.minLength === field.maxLength
        ? `a list of ${number(field.minLength)} × ${describeField(field.items)}`
        : `a list of ${number(field.minLength)} to ${number(field.maxLength)} × ${describeField(field.items)}`;
    case 'object':
      return 'an object';
    case 'record':
      return `an object of at most ${number(field.maxKeys)} entries`;
    case 'either':
      return field.options.map(describeField).join(', or ');
    case 'checked':
      return field.what;
  }
}

/** A value as it appears in a message: JSON, cut short (JSON also escapes control characters). */
export function showValue(value: unknown, max = 60): string {
  let text: string;
  try {
    text =
      typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = typeof value;
  }
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** A key as it appears in a path: itself when it is a plain identifier, else JSON-quoted. */
function key(path: string, name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name) ? `${path}.${name}` : `${path}[${showValue(name)}]`;
}

function fail(path: string, value: unknown, field: Field, why?: string): never {
  throw new FieldError(`${path} is ${showValue(value)}; expected ${why ?? describeField(field)}`);
}

/** Checks `value` against `field`, or throws a FieldError naming `path`. */
export function checkField(value: unknown, field: Field, path: string): void {
  switch (field.type) {
    case 'integer':
      if (!Number.isInteger(value) || (value as number) < field.min || (value as number) > field.max)
        fail(path, value, field);
      return;
    case 'number': {
      const n = value as number;
      if (
        typeof n !== 'number' ||
        !Number.isFinite(n) ||
        n > field.max ||
        (field.above ? n <= field.min : n < field.min)
      )
        fail(path, value, field);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(path, value, field);
      return;
    case 'string':
      if (typeof value !== 'string' || value.length > field.maxLength) fail(path, value, field);
      if (field.values && !field.values.includes(value as string)) fail(path, value, field);
      return;
    case 'array':
      if (!Array.isArray(value) || value.length < field.minLength || value.length > field.maxLength)
        fail(path, Array.isArray(value) ? `${value.length} items` : value, field);
      (value as unknown[]).forEach((item, i) => checkField(item, field.items, `${path}[${i}]`));
      return;
    case 'object':
      checkFields(value, field.fields, path, field.required);
      return;
    case 'record': {
      if (!isPlainObject(value)) fail(path, value, field);
      const keys = Object.keys(value as object);
      if (keys.length > field.maxKeys) fail(path, `${keys.length} entries`, field);
      for (const k of keys) checkField((value as Record<string, unknown>)[k], field.values, key(path, k));
      return;
    }
    case 'checked':
      field.check(value, path);
      return;
    case 'either': {
      for (const option of field.options) {
        try {
          checkField(value, option, path);
          return;
        } catch (e) {
          if (!(e instanceof FieldError)) throw e;
        }
      }
      fail(path, value, field);
    }
  }
}

/**
 * Checks an object against its fields: each present field in range, each `required` field
 * present, and no key that the schema does not know (a misspelt or hostile key is refused, not
 * ignored).
 */
export function checkFields(value: unknown, fields: Fields, path: string, required: readonly string[] = []): void {
  if (!isPlainObject(value)) throw new FieldError(`${path} is ${showValue(value)}; expected an object`);
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    const field = fields[name];
    if (field === undefined || !Object.hasOwn(fields, name)) {
      const known = Object.keys(fields);
      throw new FieldError(
        `${key(path, name)} is not a known field; known: ${known.length ? known.join(', ') : 'none'}`,
      );
    }
    if (record[name] !== undefined) checkField(record[name], field, key(path, name));
  }
  for (const name of required) {
    if (record[name] === undefined) throw new FieldError(`${key(path, name)} is missing`);
  }
}

function isPlainObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
