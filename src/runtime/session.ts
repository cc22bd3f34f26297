/**
 * Inference sessions: a compiled plan (./plan.ts) behind an async API, in Node and browsers from
 * the same core.
 *
 * - `threads: 1` runs the plan on the calling thread, one sample at a time.
 * - `threads: N > 1` (intra-op, the default): one plan on a shared memory whose every step is split
 *   over the calling thread and N − 1 helper workers (./team.ts), spawned through an injected
 *   `spawnWorker` factory (worker_threads in src/node, Web Workers in a page via `webWorkerPort`).
 * - `threads: N > 1, parallelism: 'batch'`: N workers each compile their own plan from a copy of
 *   the graph, and a batch is split into N contiguous slices, one per worker.
 * - Concurrent `run` calls are safe: the main-thread plan runs one call at a time (a queue), and a
 *   worker handles its messages one at a time, so no two runs ever share an arena.
 * - Without a worker factory, or in a browser page that is not cross-origin isolated (no
 *   SharedArrayBuffer), the session runs single-threaded and says why in `notes`.
 *
 * Example (browser-safe core; in Node, src/node/session.ts supplies worker_threads):
 *   const session = await createSession(createModel('shufflenet_v1_g3_1.0x'), { threads: 1 });
 *   const logits = await session.run(input); // [N, 1000] for an input [N, 3, 224, 224]
 *   session.dispose();
 */
import { ShapeError, ShuffleNetError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import { deserializeGraph, serializeGraph, type SerializedGraph } from '../graph/serialize.js';
import type { LoadedModel } from '../io/load.js';
import { Module } from '../nn/module.js';
import { formatShape, shapeSize, Tensor, type Shape } from '../tensor/tensor.js';
import { compilePlan, type InferencePlan } from './plan.js';
import { prepareHelper, type HelperSetup } from './team.js';

/** A session was used after dispose(), or a worker failed. */
export class SessionError extends ShuffleNetError {
  override readonly name = 'SessionError';
}

/** The model a session runs: a module, a traced graph, or what `loadModel` returns. */
export type SessionModel = Module | Graph | LoadedModel;

/** The two ends of a worker, as the core sees them (worker_threads and Web Workers both fit). */
export interface WorkerPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Registers the handler for every message and error from the worker. */
  listen(onMessage: (message: unknown) => void, onError: (error: Error) => void): void;
  terminate(): void | Promise<unknown>;
}

/** What the worker side of a port looks like (see `serveSessionWorker`). */
export interface WorkerHostPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  listen(onMessage: (message: unknown) => void): void;
}

export type SpawnWorker = () => WorkerPort;

export interface SessionOptions {
  /** Threads (1: the calling thread, no workers). Default 1. */
  threads?: number;
  /**
   * How threads > 1 are used. 'intra' (default): every sample runs on all threads, each step split
   * by output channels over one shared memory (the calling thread plus threads − 1 workers; needs
   * SharedArrayBuffer). 'batch': a batch is cut into slices, one per worker, each with its own plan.
   */
  parallelism?: 'intra' | 'batch';
  /** Creates one worker running `serveSessionWorker`. Needed for threads > 1. */
  spawnWorker?: SpawnWorker;
  /** The input shape [C, H, W] or [N, C, H, W] for a Module; default [3, 224, 224]. */
  inputShape?: Shape;
}

export interface SessionStats {
  /** Workers alive (0 when running on the calling thread). */
  workers: number;
  /** WASM memory bytes of each plan (the main-thread plan, or one per worker). */
  memoryBytes: number[];
}

export interface Session {
  /** Threads actually used (1 when workers are unavailable; see `notes`). */
  readonly threads: number;
  /** Why the session runs with fewer threads than asked, or '' when it runs as asked. */
  readonly notes: string;
  /** Runs a batch [N, ...input] and resolves to the logits [N, ...output]. */
  run(input: Tensor): Promise<Tensor>;
  stats(): Promise<SessionStats>;
  /** Terminates the workers and releases the plans; later calls throw a SessionError. */
  dispose(): Promise<void>;
}

function isGraph(model: SessionModel): model is Graph {
  return 'nodes' in model && 'params' in model && 'shapes' in model;
}

/** The graph a session compiles, traced at batch 1. */
export function sessionGraph(model: SessionModel, inputShape?: Shape): Graph {
  const sample = (shape: Shape): Shape => (shape.length === 3 ? [1, ...shape] : [1, ...shape.slice(1)]);
  if (inputShape !== undefined && inputShape.length !== 3 && inputShape.length !== 4) {
    throw new ShapeError(`createSession: inputShape must be [C, H, W] or [N, C, H, W], got ${formatShape(inputShape)}`);
  }
  if (model instanceof Module) return model.trace(sample(inputShape ?? [3, 224, 224]));
  if (isGraph(model)) return model;
  return model.graphFor(sample(inputShape ?? model.inputShape ?? [3, 224, 224]));
}

type Request =
  | { type: 'init'; graph: SerializedGraph }
  | { type: 'helper'; setup: HelperSetup }
  | { type: 'run'; id: number; shape: number[]; data: Float32Array }
  | { type: 'stats'; id: number };

type Reply =
  | { type: 'ready' }
  | { type: 'result'; id: number; shape: number[]; data: Float32Array }
  | { type: 'stats'; id: number; memoryBytes: number }
  | { type: 'error'; id: number; name: string; message: string };

/**
 * The worker side: compiles the plan sent by `init`, then answers `run` and `stats` in order.
 * src/node/session-worker.ts and a page's Web Worker script call this with their port.
 */
export function serveSessionWorker(port: WorkerHostPort): void {
  let plan: InferencePlan | null = null;
  let pending: Promise<void> = Promise.resolve();
  const fail = (id: number, error: unknown): void => {
    const e = error instanceof Error ? error : new Error(String(error));
    port.postMessage({ type: 'error', id, name: e.name, message: e.message } satisfies Reply);
  };
  port.listen((message) => {
    const request = message as Request;
    // Messages are handled strictly in order: a run waits for the compile that precedes it.
    pending = pending.then(async () => {
      if (request.type === 'helper') {
        try {
          const loop = await prepareHelper(request.setup);
          port.postMessage({ type: 'ready' } satisfies Reply);
          // The loop blocks this thread (Atomics.wait) until the plan is disposed; start it after
          // the reply has left.
          setTimeout(loop, 0);
        } catch (error) {
          fail(-1, error);
        }
        return;
      }
      if (request.type === 'init') {
        try {
          plan = await compilePlan(deserializeGraph(request.graph));
          port.postMessage({ type: 'ready' } satisfies Reply);
        } catch (error) {
          fail(-1, error);
        }
        return;
      }
      if (plan === null) return fail(request.id, new SessionError('session worker: no plan (init failed)'));
      try {
        if (request.type === 'stats') {
          port.postMessage({ type: 'stats', id: request.id, memoryBytes: plan.memoryBytes } satisfies Reply);
          return;
        }
        const out = plan.run(new Tensor(request.shape, request.data));
        const reply: Reply = { type: 'result', id: request.id, shape: [...out.shape], data: out.data };
        port.postMessage(reply, [out.data.buffer]);
      } catch (error) {
        fail(request.id, error);
      }
    });
  });
}

/** Wraps a browser Web Worker (a module worker whose script calls `serveSessionWorker`). */
export function webWorkerPort(worker: Worker): WorkerPort {
  return {
    postMessage: (message, transfer) => worker.postMessage(message, transfer ?? []),
    listen(onMessage, onError) {
      worker.onmessage = (event: MessageEvent) => onMessage(event.data);
      worker.onerror = (event: ErrorEvent) => onError(new Error(event.message));
    },
    terminate: () => worker.terminate(),
  };
}

/** Why threads are unavailable in this environment, or null. */
function threadBlocker(options: SessionOptions): string | null {
  if (options.spawnWorker === undefined) {
    return 'no spawnWorker factory was given (in Node use createNodeSession from shufflenet/node)';
  }
  const scope = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: unknown };
  if (scope.crossOriginIsolated === false || scope.SharedArrayBuffer === undefined) {
    return 'the page is not cross-origin isolated (no SharedArrayBuffer); serve it with COOP/COEP headers';
  }
  return null;
}

interface Job {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

/** One worker: its pending requests by id, resolved in the order the worker answers them. */
class WorkerHandle {
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private failure: Error | null = null;
  /** Samples queued on this worker, for balancing. */
  load = 0;
  readonly ready: Promise<void>;

  constructor(private readonly port: WorkerPort) {
    let markReady!: () => void;
    let markFailed!: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    this.ready.catch(() => undefined);
    port.listen(
      (message) => {
        const reply = message as Reply;
        if (reply.type === 'ready') return markReady();
        if (reply.type === 'error' && reply.id === -1) {
          return markFailed(new SessionError(`session worker: compiling the plan failed: ${reply.message}`));
        }
        const job = this.jobs.get(reply.id);
        if (job === undefined) return;
        this.jobs.delete(reply.id);
        job.resolve(reply);
      },
      (error) => {
        this.failure = new SessionError(`session worker crashed: ${error.message}`);
        markFailed(this.failure);
        for (const job of this.jobs.values()) job.reject(this.failure);
        this.jobs.clear();
      },
    );
  }

  init(graph: SerializedGraph): void {
    this.port.postMessage({ type: 'init', graph } satisfies Request);
  }

  /** Makes the worker a helper thread of an intra-op threaded plan. */
  help(setup: HelperSetup): void {
    this.port.postMessage({ type: 'helper', setup } satisfies Request);
  }

  request(make: (id: number) => Request, transfer: Transferable[] = []): Promise<Reply> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      this.port.postMessage(make(id), transfer);
    });
  }

  async terminate(reason: Error): Promise<void> {
    for (const job of this.jobs.values()) job.reject(reason);
    this.jobs.clear();
    await this.port.terminate();
  }
}

function replyError(reply: Reply): Error {
  if (reply.type !== 'error') return new SessionError(`session worker: unexpected reply ${reply.type}`);
  const error = new SessionError(`session worker: ${reply.message}`);
  if (reply.name === 'ShapeError') return new ShapeError(reply.message);
  return error;
}

/**
 * A plan run by the calling thread, alone or with threads − 1 helper workers sharing its memory
 * (intra-op threads). Runs are queued, one sample at a time on all threads.
 */
class PlanSession implements Session {
  private queue: Promise<unknown> = Promise.resolve();
  private plan: InferencePlan | null;
  readonly threads: number;

  constructor(
    plan: InferencePlan,
    readonly notes: string,
    private readonly stopHelpers: () => Promise<void> = async () => {},
  ) {
    this.plan = plan;
    this.threads = plan.threads;
  }

  private live(what: string): InferencePlan {
    if (this.plan === null) throw new SessionError(`session.${what}: the session was disposed`);
    return this.plan;
  }

  async run(input: Tensor): Promise<Tensor> {
    this.live('run');
    const result = this.queue.then(() => this.live('run').run(input));
    this.queue = result.catch(() => undefined);
    return result;
  }

  async stats(): Promise<SessionStats> {
    const plan = this.live('stats');
    return { workers: plan.threads - 1, memoryBytes: [plan.memoryBytes] };
  }

  async dispose(): Promise<void> {
    const plan = this.plan;
    this.plan = null;
    if (plan === null) return;
    await this.stopHelpers();
  }
}

class WorkerSession implements Session {
  private workers: WorkerHandle[] | null;
  readonly threads: number;

  constructor(
    workers: WorkerHandle[],
    private readonly inputShape: Shape,
    readonly notes: string,
  ) {
    this.workers = workers;
    this.threads = workers.length;
  }

  private live(what: string): WorkerHandle[] {
    if (this.workers === null) throw new SessionError(`session.${what}: the session was disposed`);
    return this.workers;
  }

  async run(input: Tensor): Promise<Tensor> {
    const workers = this.live('run');
    const fits =
      input.shape.length === this.inputShape.length && input.shape.every((d, i) => i === 0 || d === this.inputShape[i]);
    if (!fits) {
      throw new ShapeError(
        `session.run: input has shape ${formatShape(input.shape)} but the model takes [N, ${this.inputShape.slice(1).join(', ')}]`,
      );
    }
    const batch = input.shape[0]!;
    const sample = shapeSize(this.inputShape);
    // Contiguous slices, as even as possible; small batches go to the least-loaded workers first.
    const order = [...workers].sort((a, b) => a.load - b.load);
    const used = Math.min(order.length, Math.max(batch, 1));
    const slices: { worker: WorkerHandle; start: number; count: number }[] = [];
    let start = 0;
    for (let i = 0; i < used; i++) {
      const count = Math.floor(batch / used) + (i < batch % used ? 1 : 0);
      slices.push({ worker: order[i]!, start, count });
      start += count;
    }
    const parts = await Promise.all(
      slices.map(async ({ worker, start: s, count }) => {
        const data = input.data.slice(s * sample, (s + count) * sample);
        worker.load += count;
        try {
          const reply = await worker.request(
            (id) => ({ type: 'run', id, shape: [count, ...this.inputShape.slice(1)], data }),
            [data.buffer],
          );
          if (reply.type !== 'result') throw replyError(reply);
          return reply;
        } finally {
          worker.load -= count;
        }
      }),
    );
    const outSample = parts[0]!.shape.slice(1);
    const output = new Tensor([batch, ...outSample]);
    let offset = 0;
    for (const part of parts) {
      output.data.set(part.data, offset);
      offset += part.data.length;
    }
    return output;
  }

  async stats(): Promise<SessionStats> {
    const workers = this.live('stats');
    const replies = await Promise.all(workers.map((w) => w.request((id) => ({ type: 'stats', id }))));
    return {
      workers: workers.length,
      memoryBytes: replies.map((r) => {
        if (r.type !== 'stats') throw replyError(r);
        return r.memoryBytes;
      }),
    };
  }

  async dispose(): Promise<void> {
    const workers = this.workers;
    this.workers = null;
    if (workers === null) return;
    const reason = new SessionError('session.run: the session was disposed while this run was pending');
    await Promise.all(workers.map((w) => w.terminate(reason)));
  }
}

/**
 * Creates an inference session for `model`. With `threads > 1` and a `spawnWorker` factory, a
 * batch is split across that many workers; otherwise the plan runs on the calling thread and
 * `notes` says why.
 */
export async function createSession(model: SessionModel, options: SessionOptions = {}): Promise<Session> {
  const asked = options.threads ?? 1;
  if (!Number.isInteger(asked) || asked < 1) {
    throw new SessionError(`createSession: threads must be a positive integer, got ${asked}`);
  }
  const graph = sessionGraph(model, options.inputShape);
  const blocker = asked > 1 ? threadBlocker(options) : null;
  if (asked === 1 || blocker !== null) {
    const notes = blocker === null ? '' : `running single-threaded (asked for ${asked} threads): ${blocker}`;
    return new PlanSession(await compilePlan(graph), notes);
  }
  if ((options.parallelism ?? 'intra') === 'intra') return threadedSession(graph, asked, options.spawnWorker!);
  const serialized = serializeGraph(graph);
  const workers: WorkerHandle[] = [];
  try {
    for (let i = 0; i < asked; i++) {
      const worker = new WorkerHandle(options.spawnWorker!());
      workers.push(worker);
      worker.init(serialized);
    }
    await Promise.all(workers.map((w) => w.ready));
  } catch (error) {
    await Promise.all(workers.map((w) => w.terminate(new SessionError('createSession failed'))));
    throw error;
  }
  return new WorkerSession(workers, [1, ...graph.input.shape.slice(1)], '');
}

/**
 * Starts `plan.helpers.length` helper workers for a threaded plan (each runs its share of every
 * step until the plan is disposed); resolves once all are ready, to a function that stops them.
 */
export async function startHelpers(plan: InferencePlan, spawnWorker: SpawnWorker): Promise<() => Promise<void>> {
  const workers: WorkerHandle[] = [];
  const stop = async (): Promise<void> => {
    plan.dispose(); // the helpers leave their loops
    const reason = new SessionError('session.run: the session was disposed while this run was pending');
    await Promise.all(workers.map((w) => w.terminate(reason)));
  };
  try {
    for (const setup of plan.helpers) {
      const worker = new WorkerHandle(spawnWorker());
      workers.push(worker);
      worker.help(setup);
    }
    await Promise.all(workers.map((w) => w.ready));
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}

async function threadedSession(graph: Graph, threads: number, spawnWorker: SpawnWorker): Promise<Session> {
  const plan = await compilePlan(graph, { threads });
  return new PlanSession(plan, '', await startHelpers(plan, spawnWorker));
}
