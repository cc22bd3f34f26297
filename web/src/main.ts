/**
 * The page: inputs (drop, paste, file, samples, drawing) → browser decode → worker (preprocess,
 * session or int8 plan) → top-5 and latency; a model picker with a precision switch (float32 /
 * int8); and a complexity-vs-latency chart measured live.
 */
import type { RawImage } from 'shufflenet/browser';
import { renderChart, renderTable } from './chart.js';
import { decodeImage, fromImageData } from './decode.js';
import type {
  BenchmarkPoint,
  EngineSummary,
  ModelSummary,
  NetworkChoice,
  Precision,
  Reply,
  Request,
  RunSummary,
} from './protocol.js';

type ReplyOf<T extends Reply['type']> = Extract<Reply, { type: T }>;

const $ = <T extends Element>(selector: string): T => {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`page: ${selector} is missing from index.html`);
  return found;
};

// ---- the worker, as promises ------------------------------------------------------------------

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
let nextId = 1;
const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
let onBenchmark: ((reply: ReplyOf<'benchmark-point'> | ReplyOf<'benchmark-done'>) => void) | undefined;

worker.onmessage = (event: MessageEvent<Reply>) => {
  const reply = event.data;
  if (reply.type === 'benchmark-point' || reply.type === 'benchmark-done') {
    if (reply.id === benchmarkId) onBenchmark?.(reply);
    return;
  }
  if (reply.type === 'error' && reply.id === benchmarkId) {
    $('#chart-status').textContent = `measurement failed: ${reply.message}`;
    return;
  }
  const waiting = pending.get(reply.id);
  pending.delete(reply.id);
  if (reply.type === 'error') waiting?.reject(new Error(reply.message));
  else waiting?.resolve(reply);
};
worker.onerror = (event) => showStatusError(`the worker failed to start: ${event.message}`);

type Body<R> = R extends unknown ? Omit<R, 'id'> : never;
function ask<T extends Reply['type']>(request: Body<Request>, transfer: Transferable[] = []): Promise<ReplyOf<T>> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (r: Reply) => void, reject });
    worker.postMessage({ ...request, id }, transfer);
  });
}

// ---- status badges ----------------------------------------------------------------------------

function badge(text: string, kind: 'ok' | 'warn' | '' = '', id = ''): HTMLSpanElement {
  const span = document.createElement('span');
  span.className = `badge ${kind}`.trim();
  if (id) span.id = id;
  span.textContent = text;
  return span;
}

function showStatusError(message: string): void {
  $('#status').replaceChildren(badge(`error: ${message}`, 'warn', 'status-error'));
}

/**
 * Threads to ask of the sessions: `?threads=N` in the address, else the device's cores up to 4.
 * NOTE: the cap is a guess, not a measurement: the page's networks are small (28×28 input, a few
 * MFLOPs), so each step split over many threads is mostly barrier waits.
 */
const threadRequest = ((): { threads: number; why: string } => {
  const asked = new URLSearchParams(location.search).get('threads');
  if (asked !== null) return { threads: Number(asked), why: `?threads=${asked}` };
  const cores = navigator.hardwareConcurrency || 1;
  return { threads: Math.min(cores, 4), why: `${cores} ${cores === 1 ? 'core' : 'cores'}, at most 4 threads` };
})();

let engine: EngineSummary = { kernels: 'WASM', threads: 1, asked: 1, notes: '' };

/** "2 threads" or "single-threaded", for the latency line and the chart. */
const threadsText = (): string => (engine.threads === 1 ? 'single-threaded' : `${engine.threads} threads`);

/** The session's thread count, and why it is 1 when it is: the session's notes, or what was asked. */
function threadingBadge(): HTMLSpanElement {
  const { threads, asked, notes } = engine;
  const [text, kind]: [string, 'ok' | 'warn'] =
    threads > 1
      ? [`${threads} threads (cross-origin isolated)`, 'ok']
      : notes !== ''
        ? [notes, 'warn'] // e.g. "running single-threaded (asked for 2 threads): the page is not cross-origin isolated…"
        : [`single-threaded: ${asked} thread asked (${threadRequest.why})`, 'ok'];
  const span = badge(text, kind, 'threads-badge');
  span.dataset['threads'] = String(threads);
  return span;
}

function renderStatus(model: ModelSummary): void {
  const kernels = badge(`${engine.kernels} kernels`, '', 'engine-badge');
  kernels.dataset['kernels'] = engine.kernels;
  $('#status').replaceChildren(
    kernels,
    threadingBadge(),
    model.weights === 'random'
      ? badge(`untrained weights (${model.source})`, 'warn', 'weights-badge')
      : badge(`weights: ${model.source}`, 'ok', 'weights-badge'),
  );
}

// ---- model picker -------------------------------------------------------------------------------

const groupsSelect = $<HTMLSelectElement>('#groups');
const scaleSelect = $<HTMLSelectElement>('#scale');

function fillSelect(select: HTMLSelectElement, values: readonly (string | number)[], suffix: string): void {
  select.replaceChildren(
    ...values.map((v) => {
      const option = document.createElement('option');
      option.value = String(v);
      option.textContent = `${v}${suffix}`;
      return option;
    }),
  );
}

function renderModel(model: ModelSummary): void {
  currentResize = model.resize;
  const rows: [string, string][] = [
    ['network', `ShuffleNet ${model.scale}× (g = ${model.groups})`],
    ['weights', model.weights === 'random' ? `untrained (${model.source})` : model.source],
    ['input', model.inputShape.join('×')],
    ['MFLOPs', model.mflops.toFixed(2)],
    ['parameters', model.params.toLocaleString('en-US')],
    ['classes', String(model.labels.length)],
    ['int8', model.int8Source],
    ...Object.entries(model.notes).map(([k, v]): [string, string] => [k, String(v)]),
  ];
  $('#model-info').replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  groupsSelect.value = String(model.groups);
  scaleSelect.value = model.scale;
  renderStatus(model);
}

/** While the worker makes the int8 form (a file to fetch, or calibration), the picker says so. */
async function preparing<T>(work: Promise<T>): Promise<T> {
  const status = $('#precision-status');
  if (precisionSelect.value === 'int8')
    status.textContent = 'preparing int8 (its kernels, and its file or calibration)…';
  try {
    return await work;
  } finally {
    status.textContent = '';
  }
}

async function selectNetwork(network: NetworkChoice): Promise<void> {
  const reply = await preparing(ask<'model'>({ type: 'select', network }));
  renderModel(reply.model);
  await classifyAgain(reply.model);
}

/** The last image again, e.g. after a change of network or precision. */
async function classifyAgain(model: ModelSummary): Promise<void> {
  if (lastImage === undefined) return;
  // A file was shrunk on decode for the previous network's resize: decode it again for this one.
  const image = lastImage.blob ? await decodeImage(lastImage.blob, lastImage.name, model.resize) : lastImage.image;
  await classify(image, lastImage.name, lastImage.blob);
}

const onPick = (): void => {
  void selectNetwork({ groups: Number(groupsSelect.value), scale: scaleSelect.value }).catch((e: Error) =>
    showInputError(e.message),
  );
};
groupsSelect.addEventListener('change', onPick);
scaleSelect.addEventListener('change', onPick);

// ---- precision ----------------------------------------------------------------------------------

const precisionSelect = $<HTMLSelectElement>('#precision');
/** What the worker runs; the select shows what was asked until the worker has switched. */
let precision: Precision = 'float32';

async function selectPrecision(asked: Precision): Promise<void> {
  precisionSelect.disabled = true;
  try {
    const reply = await preparing(ask<'model'>({ type: 'precision', precision: asked }));
    precision = asked;
    renderModel(reply.model);
    await classifyAgain(reply.model);
  } catch (e) {
    precisionSelect.value = precision; // the worker stays in the precision it had
    showInputError((e as Error).message);
  } finally {
    precisionSelect.disabled = false;
  }
}
precisionSelect.addEventListener('change', () => void selectPrecision(precisionSelect.value as Precision));

// ---- classification -----------------------------------------------------------------------------

let lastImage: { image: RawImage; name: string; blob?: Blob } | undefined;
/** The current network's preprocessing resize, for shrinking on decode (from the worker's summary). */
let currentResize = 28;

function showInputError(message: string): void {
  $('#input-error').textContent = message;
}

async function classify(image: RawImage, name: string, blob?: Blob): Promise<void> {
  lastImage = blob ? { image, name, blob } : { image, name };
  showInputError('');
  // The worker gets a copy: `lastImage` stays usable for re-classifying after a model change.
  const copy: RawImage = { ...image, data: new Uint8ClampedArray(image.data) };
  const result = await ask<'result'>({ type: 'classify', image: copy, top: 5 }, [copy.data.buffer]);
  renderModel(result.model);
  $('#source-name').textContent =
    `${name} (${image.width}×${image.height}) → ${result.input.width}×${result.input.height}`;
  drawSeen(result.input);
  $('#top5').replaceChildren(
    ...result.top.map((p) => {
      const li = document.createElement('li');
      li.dataset['label'] = p.label;
      li.dataset['probability'] = String(p.probability);
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = p.label;
      const bar = document.createElement('span');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${(p.probability * 100).toFixed(2)}%`;
      bar.append(fill);
      const value = document.createElement('span');
      value.className = 'probability';
      value.textContent = `${(p.probability * 100).toFixed(1)}%`;
      li.append(label, bar, value);
      return li;
    }),
  );
  $<HTMLElement>('#untrained-note').hidden = result.model.weights !== 'random';
  renderLatency(result);
}

/** The last forward pass of each precision, by network name: the latency line shows both once both have run. */
const timings = new Map<string, Partial<Record<Precision, { ms: number; run: RunSummary }>>>();

function renderLatency(result: ReplyOf<'result'>): void {
  const shown = timings.get(result.model.name) ?? {};
  shown[result.run.precision] = { ms: result.latencyMs, run: result.run };
  timings.set(result.model.name, shown);
  const latency = $<HTMLElement>('#latency');
  latency.dataset['ms'] = String(result.latencyMs);
  latency.dataset['precision'] = result.run.precision;
  const parts = (['float32', 'int8'] as const).flatMap((p) => {
    const timing = shown[p];
    delete latency.dataset[`${p}Ms`];
    if (timing === undefined) return [];
    latency.dataset[`${p}Ms`] = String(timing.ms);
    const { kernels, threads, notes } = timing.run;
    // The int8 plan is single-threaded: beside a threaded float32 session, the line says so.
    const threading =
      threads > 1
        ? `${threads} threads`
        : p === 'int8' && (shown.float32?.run.threads ?? engine.threads) > 1
          ? '1 thread: the int8 plan is single-threaded'
          : 'single-threaded';
    const part = document.createElement(p === result.run.precision ? 'strong' : 'span');
    part.textContent = `${p} ${timing.ms.toFixed(1)} ms (${p === 'int8' ? 'int8 kernels: ' : ''}${kernels}, ${threading})`;
    if (notes !== '') part.title = notes;
    return [part, ' · '];
  });
  latency.replaceChildren('forward pass: ', ...parts, `preprocessing ${result.preprocessMs.toFixed(1)} ms`);
}

/** Paints the network's input (min–max scaled; gray, or RGB/BGR as channels 0–2). */
function drawSeen(input: ReplyOf<'result'>['input']): void {
  const canvas = $<HTMLCanvasElement>('#seen');
  [canvas.width, canvas.height] = [input.width, input.height];
  const context = canvas.getContext('2d')!;
  const pixels = context.createImageData(input.width, input.height);
  let [min, max] = [Infinity, -Infinity];
  for (const v of input.data) [min, max] = [Math.min(min, v), Math.max(max, v)];
  const scale = max > min ? 255 / (max - min) : 0;
  const plane = input.width * input.height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const channel = input.channels === 1 ? 0 : c;
      pixels.data[i * 4 + c] = (input.data[channel * plane + i]! - min) * scale;
    }
    pixels.data[i * 4 + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
}

async function classifyBlob(blob: Blob, name: string): Promise<void> {
  try {
    await classify(await decodeImage(blob, name, currentResize), name, blob);
  } catch (e) {
    showInputError((e as Error).message);
  }
}

// ---- inputs: file, drop, paste, samples, drawing ----------------------------------------------

const fileInput = $<HTMLInputElement>('#file-input');
fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (file) void classifyBlob(file, file.name);
  fileInput.value = '';
});

const dropZone = $<HTMLElement>('#drop-zone');
for (const type of ['dragenter', 'dragover'] as const) {
  document.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add('over');
  });
}
document.addEventListener('dragleave', () => dropZone.classList.remove('over'));
document.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) void classifyBlob(file, file.name);
  else showInputError('drop: no file in what was dropped (drag an image file, not a link)');
});
document.addEventListener('paste', (event) => {
  const file = Array.from(event.clipboardData?.files ?? []).find((f) => f.type.startsWith('image/'));
  if (file) void classifyBlob(file, 'pasted image');
});

async function loadSamples(): Promise<void> {
  const response = await fetch(new URL('samples/samples.json', document.baseURI));
  if (!response.ok) return;
  const { samples } = (await response.json()) as { samples: { file: string; label: string }[] };
  $('#samples').replaceChildren(
    'Samples from the Fashion-MNIST test set: ',
    ...samples.map((sample) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = sample.label;
      button.addEventListener('click', () => {
        void fetch(new URL(`samples/${sample.file}`, document.baseURI))
          .then((r) => r.blob())
          .then((blob) => classifyBlob(blob, `sample ${sample.file}`));
      });
      return button;
    }),
  );
}

const draw = $<HTMLCanvasElement>('#draw');
const pen = draw.getContext('2d', { willReadFrequently: true })!;
function clearDrawing(): void {
  pen.fillStyle = '#000';
  pen.fillRect(0, 0, draw.width, draw.height);
}
clearDrawing();
$('#clear').addEventListener('click', clearDrawing);
let drawing = false;
const at = (event: PointerEvent): [number, number] => {
  const box = draw.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * draw.width) / box.width,
    ((event.clientY - box.top) * draw.height) / box.height,
  ];
};
draw.addEventListener('pointerdown', (event) => {
  drawing = true;
  draw.setPointerCapture(event.pointerId);
  pen.strokeStyle = '#fff';
  pen.lineWidth = 22;
  pen.lineCap = 'round';
  pen.lineJoin = 'round';
  pen.beginPath();
  pen.moveTo(...at(event));
  pen.lineTo(...at(event));
  pen.stroke();
});
draw.addEventListener('pointermove', (event) => {
  if (!drawing) return;
  pen.lineTo(...at(event));
  pen.stroke();
});
draw.addEventListener('pointerup', () => {
  if (!drawing) return;
  drawing = false;
  const image = fromImageData(pen.getImageData(0, 0, draw.width, draw.height));
  void classify(image, 'drawing').catch((e: Error) => showInputError(e.message));
});

// ---- the chart ----------------------------------------------------------------------------------

let benchmarkId = 0;
let choices: { groups: number[]; scales: string[] } = { groups: [], scales: [] };

function measureChart(): void {
  const scales = $<HTMLInputElement>('#chart-wide').checked
    ? choices.scales
    : choices.scales.filter((s) => Number(s) < 1);
  const networks = scales.flatMap((scale) => choices.groups.map((groups) => ({ groups, scale })));
  const runs = 5;
  const points: BenchmarkPoint[] = [];
  const status = $('#chart-status');
  const chart = $<SVGSVGElement>('#chart');
  benchmarkId = nextId++;
  status.textContent = `measuring 0 of ${networks.length} networks (${runs} runs each, after a warm-up)…`;
  chart.dataset['state'] = 'measuring';
  const table = $<HTMLTableSectionElement>('#chart-table tbody');
  const engineName = `${engine.kernels}, ${threadsText()}`;
  renderChart(chart, points, engineName);
  renderTable(table, points);
  onBenchmark = (reply) => {
    if (reply.type === 'benchmark-point') {
      points.push(reply.point);
      renderChart(chart, points, engineName);
      renderTable(table, points);
      status.textContent = `measuring ${points.length} of ${networks.length} networks…`;
    } else {
      chart.dataset['state'] = 'done';
      status.textContent = `${points.length} networks, median of ${runs} runs each, ${engineName}, measured just now in this browser`;
    }
  };
  worker.postMessage({ type: 'benchmark', id: benchmarkId, networks, runs } satisfies Request);
}
$('#chart-run').addEventListener('click', measureChart);

// ---- start ------------------------------------------------------------------------------------

async function start(): Promise<void> {
  const ready = await ask<'ready'>({ type: 'init', baseUrl: document.baseURI, threads: threadRequest.threads });
  engine = ready.engine;
  choices = ready.choices;
  fillSelect(groupsSelect, choices.groups, '');
  fillSelect(scaleSelect, choices.scales, '×');
  const first = ready.bundled[0] ?? { groups: 3, scale: '0.5' };
  await selectNetwork(first);
  document.body.dataset['ready'] = 'true';
  measureChart();
  await loadSamples();
}

start().catch((e: Error) => showStatusError(e.message));
