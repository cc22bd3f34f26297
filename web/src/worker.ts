/**
 * The worker: holds the networks and one library session for each (createSession, on threads where
 * the page is cross-origin isolated), preprocesses decoded images, runs them and times the session.
 * Interactive requests (classify, select) always go before the background benchmark, which yields
 * to the event loop between networks so a classification never waits long.
 *
 * This worker is the session's calling thread: with threads = T it runs its share of every step
 * and T − 1 helper workers ('shufflenet/browser-worker') run theirs over the same shared memory.
 * It may block in Atomics.wait, which a page's main thread may not: that is why the sessions live
 * here and not in the page.
 *
 * In int8 (the "precision" request) classifications run the network's int8 plan instead, one
 * thread, timed the same way. The int8 library is imported (./int8.ts, a chunk of its own) on the
 * first switch, never before.
 */
import {
  createSession,
  preprocessImage,
  softmax,
  Tensor,
  webWorkerPort,
  type KernelVariant,
  type Session,
} from 'shufflenet/browser';
import type { QuantizedPlan } from 'shufflenet/browser-int8';
import {
  fetchManifest,
  fetchModelFile,
  networkKey,
  pickerGroups,
  pickerScales,
  randomNetwork,
  type Network,
} from './models.js';
import type {
  BenchmarkPoint,
  EngineSummary,
  NetworkChoice,
  Precision,
  Reply,
  Request,
  RunSummary,
} from './protocol.js';

// The DOM typings describe a window; in a worker, postMessage takes (message, transfer).
const scope = self as unknown as Worker;
const post = (reply: Reply, transfer: Transferable[] = []): void => scope.postMessage(reply, transfer);

/** Threads asked of every session; set by "init". */
let threads: number | undefined;
/** The page's address, for model files; set by "init". */
let baseUrl = '';
/** What classifications run: the float session or the int8 plan; set by "precision". */
let precision: Precision = 'float32';
const bundled = new Map<string, Network>();
const networks = new Map<string, Network>();
/** Open sessions by network key: the current network's, and the one being measured. */
const sessions = new Map<string, Promise<Session>>();
/**
 * Int8 plans by network key, kept once made. NOTE: unlike a session, a plan holds no helper workers,
 * only its own WASM memory, and remaking a random network's plan would mean calibrating it again.
 */
const plans = new Map<string, Promise<QuantizedPlan>>();
let current: NetworkChoice = { groups: 3, scale: '0.5' };

const spawnHelper = () =>
  webWorkerPort(new Worker(new URL('shufflenet/browser-worker', import.meta.url), { type: 'module' }));

function getNetwork(choice: NetworkChoice): Network {
  const key = networkKey(choice);
  let network = networks.get(key);
  if (network === undefined) {
    network = bundled.get(key) ?? randomNetwork(choice);
    networks.set(key, network);
  }
  return network;
}

function getSession(choice: NetworkChoice): Promise<Session> {
  if (threads === undefined) throw new Error('worker: "init" must come before any other request');
  const key = networkKey(choice);
  let session = sessions.get(key);
  if (session === undefined) {
    session = createSession(getNetwork(choice).graph, { threads, spawnWorker: spawnHelper });
    sessions.set(key, session);
    session.catch(() => sessions.delete(key)); // a failed compile is retried on the next request
  }
  return session;
}

function getPlan(choice: NetworkChoice): Promise<QuantizedPlan> {
  const key = networkKey(choice);
  let plan = plans.get(key);
  if (plan === undefined) {
    plan = import('./int8.js').then(async (int8) => {
      const network = getNetwork(choice);
      const made = await int8.QuantizedPlan.create(await int8.int8Network(baseUrl, network));
      // NOTE: one untimed run: a fresh plan's first run is several times slower (its WASM still
      // compiling to optimised code), and the page's first int8 latency should not be that.
      made.run(Tensor.zeros(network.summary.inputShape));
      return made;
    });
    plans.set(key, plan);
    plan.catch(() => plans.delete(key)); // a failed load is retried on the next request
  }
  return plan;
}

/** Disposes a network's session (its helper workers end) unless it is the current network's. */
async function release(choice: NetworkChoice): Promise<void> {
  const key = networkKey(choice);
  const session = sessions.get(key);
  if (session === undefined || key === networkKey(current)) return;
  sessions.delete(key);
  await (await session).dispose();
}

const kernelNames: Record<KernelVariant, string> = {
  simd: 'WASM SIMD128',
  'simd-shared': 'WASM SIMD128',
  'relaxed-simd': 'WASM relaxed SIMD',
};

function engineOf(session: Session, asked: number): EngineSummary {
  return { kernels: kernelNames[session.variant], threads: session.threads, asked, notes: session.notes };
}

/** A forward pass of `choice` in the current precision, and what runs it. */
async function getRunner(
  choice: NetworkChoice,
): Promise<{ run: (input: Tensor) => Promise<Tensor>; summary: RunSummary }> {
  if (precision === 'float32') {
    const session = await getSession(choice);
    return {
      run: (input) => session.run(input),
      summary: { precision, kernels: kernelNames[session.variant], threads: session.threads, notes: '' },
    };
  }
  const plan = await getPlan(choice);
  const { build, relaxedRefused } = plan.variant;
  return {
    run: (input) => Promise.resolve(plan.run(input)),
    summary: {
      precision,
      kernels: (kernelNames as Record<string, string>)[build] ?? build,
      threads: 1,
      notes: relaxedRefused ?? '',
    },
  };
}

async function handle(request: Request): Promise<void> {
  switch (request.type) {
    case 'init': {
      threads = request.threads;
      baseUrl = request.baseUrl;
      for (const entry of await fetchManifest(request.baseUrl)) {
        const network = await fetchModelFile(request.baseUrl, entry);
        bundled.set(networkKey(network.summary), network);
      }
      const first = bundled.values().next().value;
      if (first !== undefined) current = { groups: first.summary.groups, scale: first.summary.scale };
      const choices = {
        groups: [...new Set([...pickerGroups, ...[...bundled.values()].map((n) => n.summary.groups)])].sort(
          (a, b) => a - b,
        ),
        scales: [...new Set([...pickerScales, ...[...bundled.values()].map((n) => n.summary.scale)])].sort(
          (a, b) => Number(a) - Number(b),
        ),
      };
      const bundledChoices = [...bundled.values()].map((n) => ({ groups: n.summary.groups, scale: n.summary.scale }));
      post({
        type: 'ready',
        id: request.id,
        engine: engineOf(await getSession(current), request.threads),
        bundled: bundledChoices,
        choices,
      });
      return;
    }
    case 'select': {
      const previous = current;
      current = request.network;
      await getSession(current);
      if (precision === 'int8') await getPlan(current);
      await release(previous);
      post({ type: 'model', id: request.id, model: getNetwork(current).summary });
      return;
    }
    case 'precision': {
      // The int8 plan is made before the switch, so that a failure leaves the page in float32.
      if (request.precision === 'int8') await getPlan(current);
      precision = request.precision;
      post({ type: 'model', id: request.id, model: getNetwork(current).summary });
      return;
    }
    case 'classify': {
      const network = getNetwork(current);
      const runner = await getRunner(current);
      const t0 = performance.now();
      const input = preprocessImage(request.image, network.preprocessing); // [1, C, H, W]
      const t1 = performance.now();
      const logits = await runner.run(input); // [1, classes]
      const t2 = performance.now();
      const probabilities = softmax(logits).data;
      const top = [...probabilities]
        .map((probability, index) => ({ index, probability, label: network.summary.labels[index] ?? `class ${index}` }))
        .sort((a, b) => b.probability - a.probability)
        .slice(0, request.top);
      const [, channels, height, width] = input.shape as [number, number, number, number];
      post(
        {
          type: 'result',
          id: request.id,
          model: network.summary,
          top,
          latencyMs: t2 - t1,
          run: runner.summary,
          preprocessMs: t1 - t0,
          input: { width, height, channels, data: input.data },
        },
        [input.data.buffer],
      );
      return;
    }
    case 'benchmark':
      throw new Error('worker: benchmarks are scheduled, not handled inline');
  }
}

/** One network of a benchmark: warm-up runs, then `runs` timed runs of the session alone. */
async function measure(choice: NetworkChoice, runs: number): Promise<BenchmarkPoint> {
  const network = getNetwork(choice);
  const session = await getSession(choice);
  const input = preprocessImage(
    { width: 28, height: 28, channels: 1, data: new Uint8Array(28 * 28).fill(128) },
    network.preprocessing,
  );
  // Two warm-up runs: the first of the page's benchmarks otherwise also times the JIT.
  for (let i = 0; i < 2; i++) await session.run(input);
  const runsMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(input);
    runsMs.push(performance.now() - t0);
  }
  await release(choice);
  const sorted = [...runsMs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { network: choice, mflops: network.summary.mflops, params: network.summary.params, medianMs, runsMs };
}

const interactive: Request[] = [];
let benchmark: { id: number; queue: NetworkChoice[]; runs: number } | undefined;
let busy = false;

async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    for (;;) {
      const next = interactive.shift();
      if (next !== undefined) {
        try {
          await handle(next);
        } catch (e) {
          post({ type: 'error', id: next.id, message: (e as Error).message });
        }
      } else if (benchmark !== undefined) {
        const job = benchmark;
        const choice = job.queue.shift();
        if (choice === undefined) {
          benchmark = undefined;
          post({ type: 'benchmark-done', id: job.id });
          continue;
        }
        try {
          post({ type: 'benchmark-point', id: job.id, point: await measure(choice, job.runs) });
        } catch (e) {
          benchmark = undefined;
          post({ type: 'error', id: job.id, message: (e as Error).message });
        }
        // Let queued messages in before the next network.
        await new Promise((resolve) => setTimeout(resolve, 0));
      } else {
        return;
      }
    }
  } finally {
    busy = false;
  }
}

scope.onmessage = (event: MessageEvent<Request>) => {
  const request = event.data;
  if (request.type === 'benchmark') benchmark = { id: request.id, queue: [...request.networks], runs: request.runs };
  else interactive.push(request);
  void pump();
};
