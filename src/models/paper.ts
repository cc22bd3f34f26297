/**
 * The complexities the paper prints (multiply-adds in millions, which it calls MFLOPs), kept beside
 * the variants and apart from the architecture. `exact` marks a figure printed for that precise
 * configuration; the others are the "complexity class" headers of Table 2 (e.g. every 0.5× network
 * is listed as 38 MFLOPs whatever its g), which the paper itself rounds loosely: Table 1 puts the
 * 1× networks anywhere from 133 to 143 under Table 2's "140".
 */
export interface PaperFigure {
  /** Where it is printed, e.g. "Table 1". */
  source: string;
  mflops: number;
  /** Printed for exactly this network, rather than as the class of a column or row. */
  exact: boolean;
  /**
   * Whether the printed figure includes the final FC layer. Table 1's "Complexity" row does not:
   * all five of its figures are reproduced to the printed digit by the convolutional layers alone,
   * while three of them are not once the FC layer (0.6–1.5 MFLOPs) is added. Tables 5 and 6 do.
   */
  includesClassifier: boolean;
  /** The rounding step of the printed figure: 1 MFLOP, or 10 for AlexNet's "720" (0.72 G). */
  step: number;
  /**
   * How the printed figure was rounded to its step: to the nearest (this paper), or up (the V2
   * paper: all four of its Table 5 figures are our counts rounded up, 40.48 → 41 among them, while
   * rounding to the nearest would give 40).
   */
  rounding: 'nearest' | 'up';
}

const figures = new Map<string, PaperFigure[]>();

function add(name: string, source: string, mflops: number, exact: boolean, extra: Partial<PaperFigure> = {}): void {
  const figure: PaperFigure = {
    source,
    mflops,
    exact,
    includesClassifier: true,
    step: 1,
    rounding: 'nearest',
    ...extra,
  };
  figures.set(name, [...(figures.get(name) ?? []), figure]);
}

// Table 1: ShuffleNet 1× for g = 1, 2, 3, 4, 8 (convolutional layers only, see above).
const table1: Record<number, number> = { 1: 143, 2: 140, 3: 137, 4: 133, 8: 137 };
for (const [g, mflops] of Object.entries(table1)) {
  add(`shufflenet_v1_g${g}_1.0x`, 'Table 1', mflops, true, { includesClassifier: false });
}
// Table 2: complexity classes of the 1×, 0.5× and 0.25× rows.
for (const g of [1, 2, 3, 4, 8]) {
  add(`shufflenet_v1_g${g}_1.0x`, 'Table 2', 140, false);
  add(`shufflenet_v1_g${g}_0.5x`, 'Table 2', 38, false);
  add(`shufflenet_v1_g${g}_0.25x`, 'Table 2', 13, false);
}
// Table 5: ShuffleNet vs MobileNet.
add('shufflenet_v1_g3_2.0x', 'Table 5', 524, true);
add('shufflenet_v1_g3_2.0x_se', 'Table 5', 527, true);
add('shufflenet_v1_g3_1.5x', 'Table 5', 292, true);
add('shufflenet_v1_g8_1.0x', 'Table 5', 140, false);
add('shufflenet_v1_g4_0.5x', 'Table 5', 38, false);
add('shufflenet_v1_g3_0.5x_shallow', 'Table 5', 40, true);
add('mobilenet_v1_1.0', 'Table 5', 569, true);
add('mobilenet_v1_0.75', 'Table 5', 325, true);
add('mobilenet_v1_0.5', 'Table 5', 149, true);
add('mobilenet_v1_0.25', 'Table 5', 41, true);
// Table 6: vs other popular models.
add('alexnet', 'Table 6', 720, true, { step: 10 });
add('shufflenet_v1_g3_2.0x', 'Table 6', 524, true);
add('shufflenet_v1_g8_1.0x', 'Table 6', 140, false);
add('shufflenet_v1_g4_0.5x', 'Table 6', 38, false);

// The V2 paper (Ma et al., ECCV 2018), Table 5: ShuffleNet V2 at its four widths.
for (const [scale, mflops] of [
  ['0.5', 41],
  ['1.0', 146],
  ['1.5', 299],
  ['2.0', 591],
] as const) {
  add(`shufflenet_v2_${scale}x`, 'V2 paper, Table 5', mflops, true, { rounding: 'up' });
}

/** Every figure the paper prints for a network, most specific first. */
export function paperFigures(name: string): readonly PaperFigure[] {
  return [...(figures.get(name) ?? [])].sort((a, b) => Number(b.exact) - Number(a.exact));
}

/** All networks the paper prints a complexity for. */
export function paperNetworks(): string[] {
  return [...figures.keys()];
}
