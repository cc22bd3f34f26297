/**
 * The SVG chart: median latency per network and engine (points, log scale) with the interquartile
 * range (rules), one panel per thread count. Vega-Lite compiles the spec and Vega renders SVG
 * headless (no browser, no canvas); both are devDependencies, loaded on demand.
 */
import type { BenchReport } from './run.js';

export async function renderChart(report: BenchReport): Promise<string | { skipped: string }> {
  const values = report.results.flatMap((r) =>
    r.engines
      .filter((e) => e.median_ms !== undefined)
      .map((e) => ({
        network: r.arch,
        engine: e.engine,
        threads: `${r.threads} thread${r.threads === 1 ? '' : 's'}`,
        median_ms: e.median_ms,
        q1_ms: e.q1_ms,
        q3_ms: e.q3_ms,
      })),
  );
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Batch-${report.settings.batch} latency at ${report.settings.sizes.join(', ')} (median, IQR), ${report.date.slice(0, 10)}`,
    data: { values },
    facet: { column: { field: 'threads', type: 'nominal', title: null } },
    spec: {
      width: 360,
      height: 240,
      encoding: {
        x: { field: 'network', type: 'nominal', title: null, axis: { labelAngle: -35 } },
        xOffset: { field: 'engine', type: 'nominal' },
        color: { field: 'engine', type: 'nominal' },
        y: { field: 'median_ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms' },
      },
      layer: [
        // NOTE: points, not bars: a bar needs a zero baseline, which a log scale does not have.
        { mark: { type: 'point', filled: true, size: 60 } },
        {
          mark: { type: 'rule', color: 'black' },
          encoding: { y: { field: 'q1_ms', type: 'quantitative' }, y2: { field: 'q3_ms' } },
        },
      ],
    },
  };
  return renderVegaLite(spec);
}

/**
 * Renders a Vega-Lite spec to SVG headless (Vega-Lite compiles, Vega renders without a browser);
 * both are devDependencies, loaded on demand, so a missing one skips the chart.
 */
export async function renderVegaLite(spec: object): Promise<string | { skipped: string }> {
  let vega: typeof import('vega');
  let vegaLite: typeof import('vega-lite');
  try {
    vega = await import('vega');
    vegaLite = await import('vega-lite');
  } catch {
    return { skipped: 'vega and vega-lite are not installed (npm install --save-dev vega vega-lite); no chart' };
  }
  const compiled = vegaLite.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
