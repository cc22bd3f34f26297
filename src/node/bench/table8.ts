/**
 * The paper's Table 8: single-thread latency on a Qualcomm Snapdragon 820 at three input sizes
 * (shared/PAPER.md), the set `shufflenet bench --table8` runs, and how cost grows with pixels.
 */
import { square, type InputSize } from './input-size.js';

/** The sizes of Table 8, height × width. */
export const table8Sizes: readonly InputSize[] = [
  square(224),
  { height: 480, width: 640 },
  { height: 720, width: 1280 },
];

/** Milliseconds at 224×224, 480×640 and 720×1280, by registry name. */
export const table8Milliseconds: Readonly<Record<string, readonly [number, number, number]>> = {
  'shufflenet_v1_g3_0.5x': [15.2, 87.4, 260.1],
  'shufflenet_v1_g3_1.0x': [37.8, 222.2, 684.5],
  'shufflenet_v1_g3_2.0x': [108.8, 617.0, 1857.6],
  'mobilenet_v1_1.0': [110.0, 612.0, 1879.2],
  alexnet: [184.0, 1156.7, 3633.9],
};

export const table8Archs: readonly string[] = Object.keys(table8Milliseconds);

/** The paper's time at `size`, or null when Table 8 has no such network or size. */
export function paperMilliseconds(arch: string, size: InputSize): number | null {
  const index = table8Sizes.findIndex((s) => s.height === size.height && s.width === size.width);
  return index < 0 ? null : (table8Milliseconds[arch]?.[index] ?? null);
}
