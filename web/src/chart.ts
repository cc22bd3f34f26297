/**
 * The complexity-vs-latency chart: hand-written SVG (a scatter of MFLOPs against the median
 * latency measured in this browser), so the page needs no charting library.
 */
import type { BenchmarkPoint } from './protocol.js';

const svgNS = 'http://www.w3.org/2000/svg';
const colours: Record<string, string> = { '0.25': '#2f7ed8', '0.5': '#e4572e', '1.0': '#17a673' };

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attributes: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(svgNS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** 0 and 4–6 round steps up to at least `max`. */
function ticks(max: number): number[] {
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The same points as a table, sorted by MFLOPs: exact figures, and readable where dots overlap. */
export function renderTable(body: HTMLTableSectionElement, points: readonly BenchmarkPoint[]): void {
  body.replaceChildren(
    ...[...points]
      .sort((a, b) => a.mflops - b.mflops)
      .map((p) => {
        const row = document.createElement('tr');
        for (const text of [
          `ShuffleNet ${p.network.scale}× (g = ${p.network.groups})`,
          p.mflops.toFixed(2),
          p.params.toLocaleString('en-US'),
          p.medianMs.toFixed(1),
        ]) {
          const cell = document.createElement('td');
          cell.textContent = text;
          row.append(cell);
        }
        return row;
      }),
  );
}

export function renderChart(svg: SVGSVGElement, points: readonly BenchmarkPoint[], engineName: string): void {
  const [width, height] = [560, 320];
  const margin = { left: 56, right: 16, top: 16, bottom: 44 };
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `MFLOPs against median latency, ${engineName}`);
  const xTicks = ticks(Math.max(1, ...points.map((p) => p.mflops)));
  const yTicks = ticks(Math.max(1, ...points.map((p) => p.medianMs)));
  const xMax = xTicks.at(-1)!;
  const yMax = yTicks.at(-1)!;
  const x = (v: number): number => margin.left + (v / xMax) * (width - margin.left - margin.right);
  const y = (v: number): number => height - margin.bottom - (v / yMax) * (height - margin.top - margin.bottom);

  for (const t of xTicks) {
    svg.append(el('line', { x1: x(t), x2: x(t), y1: y(0), y2: y(yMax), class: 'grid' }));
    svg.append(el('text', { x: x(t), y: y(0) + 16, 'text-anchor': 'middle', class: 'tick' }, String(t)));
  }
  for (const t of yTicks) {
    svg.append(el('line', { x1: x(0), x2: x(xMax), y1: y(t), y2: y(t), class: 'grid' }));
    svg.append(el('text', { x: x(0) - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' }, String(t)));
  }
  svg.append(
    el(
      'text',
      { x: (x(0) + x(xMax)) / 2, y: height - 6, 'text-anchor': 'middle', class: 'axis' },
      'MFLOPs (multiply-adds, 28×28 input)',
    ),
  );
  const yLabel = el('text', { x: 0, y: 0, 'text-anchor': 'middle', class: 'axis' }, 'median latency (ms)');
  yLabel.setAttribute('transform', `translate(14 ${(y(0) + y(yMax)) / 2}) rotate(-90)`);
  svg.append(yLabel);

  for (const p of points) {
    const colour = colours[p.network.scale] ?? '#555';
    const dot = el('circle', { cx: x(p.mflops), cy: y(p.medianMs), r: 5, fill: colour, class: 'point' });
    dot.dataset['groups'] = String(p.network.groups);
    dot.dataset['scale'] = p.network.scale;
    dot.append(
      el(
        'title',
        {},
        `ShuffleNet ${p.network.scale}× (g = ${p.network.groups}): ${p.mflops.toFixed(2)} MFLOPs, ` +
          `median ${p.medianMs.toFixed(1)} ms of ${p.runsMs.length} runs`,
      ),
    );
    svg.append(dot);
    svg.append(el('text', { x: x(p.mflops) + 7, y: y(p.medianMs) + 4, class: 'label' }, `g${p.network.groups}`));
  }
  const scales = [...new Set(points.map((p) => p.network.scale))];
  scales.forEach((scale, i) => {
    const top = margin.top + 4 + i * 18;
    svg.append(el('circle', { cx: margin.left + 16, cy: top, r: 5, fill: colours[scale] ?? '#555' }));
    svg.append(el('text', { x: margin.left + 26, y: top + 4, class: 'legend' }, `ShuffleNet ${scale}×`));
  });
}
