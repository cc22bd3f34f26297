/**
 * Input sizes of the benchmark: `N` (square) or `HxW`. HxW is height × width, the order of the
 * paper's Table 8 ("480 × 640", "720 × 1280": landscape 480p and 720p frames) and of the tensor
 * shape [N, 3, H, W].
 */
import { BenchmarkError } from './errors.js';

export interface InputSize {
  readonly height: number;
  readonly width: number;
}

/** Largest side accepted (the same bound as `flops --size`). */
export const maxSide = 8192;

/** Parses `N` or `HxW` (`x`, `X` or `×`) for the flag `flag`; anything else is a BenchmarkError. */
export function parseInputSize(value: string, flag = '--size'): InputSize {
  const parts = value.trim().split(/[xX×]/);
  const sides = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (parts.length > 2 || !sides.every((n) => Number.isInteger(n) && n >= 1 && n <= maxSide)) {
    throw new BenchmarkError(
      `${flag}: expected N or HxW (height × width) with integers from 1 to ${maxSide}, got "${value}"`,
    );
  }
  const [height, width = height] = sides as [number, number?];
  return { height, width };
}

/** `224×224` or `480×640`. */
export function formatInputSize(size: InputSize): string {
  return `${size.height}×${size.width}`;
}

export const square = (n: number): InputSize => ({ height: n, width: n });

/**
 * Largest input a benchmark case may allocate, in floats (1 GiB of float32): batch × 3 × H × W is
 * checked against it before any session is made, so `--batch` and `--size` cannot ask for more.
 */
export const maxInputFloats = 2 ** 28;

/** Refuses a batch whose input at `size` would exceed `maxInputFloats`, naming both flags. */
export function checkInputFloats(batch: number, size: InputSize): void {
  const floats = batch * 3 * size.height * size.width;
  if (floats > maxInputFloats) {
    throw new BenchmarkError(
      `--batch ${batch} at --size ${formatInputSize(size)}: the input would hold ${floats} floats, more than ` +
        `the limit of ${maxInputFloats} (1 GiB); lower --batch or --size`,
    );
  }
}
