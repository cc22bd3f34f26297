/**
 * The complexity table of the whole family: our multiply-adds and parameters beside what the paper
 * prints. Shared by `shufflenet flops`, the docs generator and the browser page.
 */
import { ShuffleNetError } from '../errors.js';
import { getModelEntry, modelNames } from '../models/registry.js';
import type { PaperFigure } from '../models/paper.js';
import { complexity, type LayerCost } from './complexity.js';

export interface ComplexityRow {
  name: string;
  description: string;
  /** Square input size the figures are for. */
  inputSize: number;
  /** Multiply-adds / 1e6 for one image (the paper's MFLOPs); null if the network cannot take this size. */
  mflops: number | null;
  /** Trainable parameters; null if the network cannot take this size. */
  params: number | null;
  /** The most specific figure the paper prints for this network, at 224×224. */
  paper: PaperFigure | null;
  /** (ours − paper) / paper, when both exist. */
  deviation: number | null;
  /** Why `mflops` is null. */
  error?: string;
}

/** One row per registered network (or just `names`), for a square input of `inputSize`. */
export function complexityTable(inputSize = 224, names: readonly string[] = modelNames()): ComplexityRow[] {
  return names.map((name) => {
    const entry = getModelEntry(name);
    const paper = inputSize === 224 ? (entry.paper[0] ?? null) : null;
    const row = { name, description: entry.description, inputSize, paper };
    try {
      const model = entry.build({ inputSize, initialize: false });
      const { macs, params } = complexity(model.trace([1, 3, inputSize, inputSize]));
      const mflops = macs / 1e6;
      return { ...row, mflops, params, deviation: paper ? mflops / paper.mflops - 1 : null };
    } catch (e) {
      if (!(e instanceof ShuffleNetError)) throw e;
      return { ...row, mflops: null, params: null, deviation: null, error: e.message };
    }
  });
}

/** Per-layer costs of one network. */
export function layerBreakdown(name: string, inputSize = 224): { row: ComplexityRow; layers: readonly LayerCost[] } {
  const entry = getModelEntry(name);
  const model = entry.build({ inputSize, initialize: false });
  const result = complexity(model.trace([1, 3, inputSize, inputSize]));
  const [row] = complexityTable(inputSize, [name]);
  return { row: row!, layers: result.layers };
}

export interface PaperComparison {
  name: string;
  source: string;
  exact: boolean;
  /** Whether the printed figure (and so `ours`) includes the FC layer. */
  includesClassifier: boolean;
  paper: number;
  /** Our MFLOPs counted as the paper counts this figure. */
  ours: number;
  deviation: number;
  /** Our figure, rounded to the printed figure's step, equals it. */
  roundsToPaper: boolean;
}

/** Every complexity the paper prints (Tables 1, 2, 5, 6) against ours at 224×224. */
export function paperComparison(): PaperComparison[] {
  const out: PaperComparison[] = [];
  for (const name of modelNames()) {
    const entry = getModelEntry(name);
    if (entry.paper.length === 0) continue;
    const { layers } = complexity(entry.build({ initialize: false }).trace([1, 3, 224, 224]));
    const all = layers.reduce((s, l) => s + l.macs, 0) / 1e6;
    const withoutClassifier = layers.filter((l) => l.op !== 'linear').reduce((s, l) => s + l.macs, 0) / 1e6;
    for (const figure of entry.paper) {
      const ours = figure.includesClassifier ? all : withoutClassifier;
      out.push({
        name,
        source: figure.source,
        exact: figure.exact,
        includesClassifier: figure.includesClassifier,
        paper: figure.mflops,
        ours,
        deviation: ours / figure.mflops - 1,
        roundsToPaper:
          (figure.rounding === 'up' ? Math.ceil : Math.round)(ours / figure.step) * figure.step === figure.mflops,
      });
    }
  }
  return out.sort((a, b) => a.source.localeCompare(b.source) || a.name.localeCompare(b.name));
}
