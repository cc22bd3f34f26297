/**
 * The SVG chart of an experiment, rendered headless by Vega-Lite → Vega as the benchmark's chart
 * is (src/node/bench/chart.ts): error vs g with ±1 std error bars and each seed as a dot (Table 2),
 * or error without vs with shuffle per g, grouped, with the same error bars (Table 3).
 */
import { renderVegaLite } from '../bench/chart.js';
import type { RunRecord, SummaryRow } from './experiment.js';

export async function renderExperimentChart(
  kind: 'groups' | 'shuffle',
  title: string,
  rows: readonly SummaryRow[],
  runs: readonly RunRecord[],
): Promise<string | { skipped: string }> {
  const label = (shuffle: boolean): string => (shuffle ? 'shuffle' : 'no shuffle');
  const summary = rows.map((r) => ({
    g: `g = ${r.groups}`,
    variant: label(r.shuffle),
    error: r.errorMean,
    low: r.errorMean - r.errorStd,
    high: r.errorMean + r.errorStd,
  }));
  const seeds = runs
    .filter((run) => rows.some((r) => r.arch === run.arch && r.seeds.includes(run.seed)))
    .map((run) => ({ g: `g = ${run.groups}`, variant: label(run.shuffle), error: run.errorPercent }));
  const x = { field: 'g', type: 'ordinal', title: 'groups', sort: null, axis: { labelAngle: 0 } };
  const y = { field: 'error', type: 'quantitative', title: 'test error (%)', scale: { zero: false } };
  const grouped = kind === 'shuffle';
  const offset = grouped ? { xOffset: { field: 'variant', type: 'nominal', sort: ['no shuffle', 'shuffle'] } } : {};
  const color = grouped
    ? { color: { field: 'variant', type: 'nominal', title: null, sort: ['no shuffle', 'shuffle'] } }
    : {};
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: grouped ? 320 : 360,
    height: 240,
    encoding: { x, ...offset },
    layer: [
      {
        data: { values: summary },
        mark: grouped ? { type: 'bar' } : { type: 'line', point: { filled: true, size: 70 } },
        encoding: grouped ? { ...color, y: { ...y, scale: { zero: true } } } : { y, color: { value: '#4c78a8' } },
      },
      {
        data: { values: summary },
        mark: { type: 'rule', color: 'black' },
        encoding: { y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } },
      },
      {
        data: { values: seeds },
        mark: { type: 'point', color: 'black', opacity: 0.45, size: 18 },
        encoding: { y: { field: 'error', type: 'quantitative' } },
      },
    ],
  };
  return renderVegaLite(spec);
}
