/**
 * The results table of an experiment, in Markdown, laid out like the paper's Table 2 (one row per
 * g) or Table 3 (no shuffle vs shuffle per g), with the paper's ImageNet figures beside ours.
 */
import { formatDuration, type ExperimentSettings, type SummaryRow } from './experiment.js';

export interface ReportContext {
  settings: ExperimentSettings;
  rows: readonly SummaryRow[];
  seeds: readonly number[];
  /** Test images actually used, and the input size the MFLOPs refer to. */
  testImages: number;
  imageSize: string;
  /** This invocation's wall time; runs trained now, and runs found finished in runs.json. */
  wallSeconds: number;
  trainedNow: number;
  resumed: number;
  command: string;
  date: string;
}

const pct = (x: number): string => x.toFixed(2);
const pm = (r: SummaryRow): string => `${pct(r.errorMean)} ± ${pct(r.errorStd)}`;

export function renderTable(c: ReportContext): string {
  const s = c.settings;
  const lines: string[] = [];
  const scale = `${Number(s.scale)}×`;
  lines.push(
    s.kind === 'groups'
      ? `# Table 2 re-run: the group number g at a fixed complexity (ShuffleNet ${scale}, ${s.data})`
      : `# Table 3 re-run: with vs without channel shuffle (ShuffleNet ${scale}, ${s.data})`,
    '',
    `${s.data}: ${s.maxTrain.toLocaleString('en-US')} training images (class-balanced subset of the fixed training split), ` +
      `${c.testImages.toLocaleString('en-US')} test images; ${s.epochs} epoch(s), batch ${s.batchSize}, peak lr ${s.lr} (${s.schedule} schedule), ` +
      `momentum ${s.momentum}${s.nesterov ? ' Nesterov' : ''}, weight decay ${s.weightDecay}, label smoothing ${s.labelSmoothing}, ` +
      `small-input stem. Seeds ${c.seeds.join(', ')}: each seed gives other initial weights, data order and augmentation.`,
    '',
    `Error: top-1 test error in %, mean ± sample standard deviation over seeds. MFLOPs: multiply-adds per ${c.imageSize} image. ` +
      "Paper: the paper's ImageNet top-1 error at the same width and g (224×224, 1000 classes): compare trends, not values.",
    '',
  );
  if (s.kind === 'groups') {
    lines.push(
      '| network | g | params | MFLOPs | error % (ours) | seeds | paper error % (ImageNet) | train time / run |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of c.rows) {
      lines.push(
        `| ${r.arch} | ${r.groups} | ${r.params.toLocaleString('en-US')} | ${r.mflops.toFixed(2)} | ${pm(r)} | ${r.seeds.length} | ` +
          `${r.paperError?.toFixed(1) ?? '–'} | ${formatDuration(r.trainSeconds)} |`,
      );
    }
    lines.push('', ...groupsTrend(c.rows));
  } else {
    lines.push(
      '| g | params | MFLOPs | error % no shuffle | error % shuffle | Δ (ours) | paper no shuffle | paper shuffle | paper Δ |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [off, on] of shufflePairs(c.rows)) {
      const paperDelta =
        off.paperError !== undefined && on.paperError !== undefined ? (off.paperError - on.paperError).toFixed(1) : '–';
      lines.push(
        `| ${on.groups} | ${on.params.toLocaleString('en-US')} | ${on.mflops.toFixed(2)} | ${pm(off)} | ${pm(on)} | ` +
          `${signed(off.errorMean - on.errorMean)} | ${off.paperError?.toFixed(1) ?? '–'} | ${on.paperError?.toFixed(1) ?? '–'} | ${paperDelta} |`,
      );
    }
    lines.push(
      '',
      'Δ = error without shuffle − error with shuffle (positive: shuffle helps). Shuffle costs no parameters and no multiply-adds.',
    );
  }
  lines.push(
    '',
    `Wall time of this invocation: ${formatDuration(c.wallSeconds)} (${c.trainedNow} run(s) trained, ${c.resumed} taken from runs.json); ` +
      `training time summed over all runs in the table: ${formatDuration(c.rows.reduce((a, r) => a + r.trainSeconds * r.seeds.length, 0))}.`,
    '',
    `Generated ${c.date} by \`${c.command}\`.`,
    '',
  );
  return lines.join('\n');
}

/** Rows of the shuffle experiment paired per g: [without, with]. */
export function shufflePairs(rows: readonly SummaryRow[]): [SummaryRow, SummaryRow][] {
  const groups = [...new Set(rows.map((r) => r.groups))];
  return groups.flatMap((g) => {
    const off = rows.find((r) => r.groups === g && !r.shuffle);
    const on = rows.find((r) => r.groups === g && r.shuffle);
    return off && on ? [[off, on] as [SummaryRow, SummaryRow]] : [];
  });
}

function groupsTrend(rows: readonly SummaryRow[]): string[] {
  if (rows.length < 2) return [];
  const best = rows.reduce((a, b) => (b.errorMean < a.errorMean ? b : a));
  const withPaper = rows.filter((r) => r.paperError !== undefined);
  const paperBest = withPaper.length ? withPaper.reduce((a, b) => (b.paperError! < a.paperError! ? b : a)) : undefined;
  const g1 = rows.find((r) => r.groups === 1);
  const out = [`Lowest error here: g = ${best.groups} (${pm(best)}).`];
  if (paperBest) out[0] += ` The paper's lowest at this width: g = ${paperBest.groups}.`;
  if (g1) {
    const better = rows.filter((r) => r.groups > 1 && r.errorMean < g1.errorMean).map((r) => r.groups);
    out.push(
      `Group convolutions (g > 1) beat g = 1 here for g = ${better.length ? better.join(', ') : 'none'}; ` +
        'in the paper every g > 1 beats g = 1 at every width.',
    );
  }
  return out;
}

const signed = (x: number): string => (x >= 0 ? '+' : '−') + Math.abs(x).toFixed(2);
