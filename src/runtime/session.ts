/**
 * Inference sessions: a compiled plan (./plan.ts) behind an async API, in Node and browsers from
 * the same core.
 *
 * - `threads: 1` runs the plan on the calling thread, one sample at a time.
 * - `threads: N > 1` (intra-op, the default): one plan on a shared memory whose every step is split
 *   over the calling thread and N − 1 helper workers (./threads/team.ts), spawned through an
 *   injected `spawnWorker` factory (worker_threads in src/node, Web Workers in a page via
 *   `webWorkerPort`) and started as every worker is (./threads/ports.ts).
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
import type { KernelVariant } from '../kernels/wasm/module.js';
import { deserializeGraph, serializeGraph, type SerializedGraph } from '../graph/serialize.js';
import type { LoadedModel } from '../io/load.js';
import { Module } from '../nn/module.js';
import { formatShape, shapeSize, Tensor, type Shape } from '../tensor/tensor.js';
import { compilePlan, type InferencePlan } from './plan.js';
import {
  errorReply,
  SETUP,
  startWorkers,
  webWorkerPort,
  type ErrorReply,
  type ReadyReply,
  type SpawnWorker,
  type WorkerHandle,
  type WorkerHostPort,
  type WorkerPort,
} from './threads/ports.js';
import type { AutoThreads } from './threads/auto.js';
import { prepareHelper, type HelperSetup } from './threads/team.js';

export { webWorkerPort, type SpawnWorker, type WorkerHostPort, type WorkerPort };

/** A session was used after dispose(), or a worker failed. */
export class SessionError extends ShuffleNetError {
  override readonly name = 'SessionError';
}

/** The model a session runs: a module, a traced graph, or what `loadModel` returns. */
export type SessionModel = Module | Graph | LoadedModel;

/** The most threads `threads: 'auto'` uses (it chooses between 1 and min(cores, this)). */
export const AUTO_MAX_THREADS = 4;

export interface SessionOptions {
  /**
   * Threads (1: the calling thread, no workers), or 'auto' (the default): a plan for
   * min(cores, AUTO_MAX_THREADS) threads that runs each sample on all of them or on the calling
   * thread alone, whichever its calibration and later samples measure faster (./threads/auto.ts;
   * `session.notes` says what it chose and why). Without workers, auto is 1 thread.
   */
  threads?: number | 'auto';
  /**
   * Cores `threads: 'auto'` may use (default: `navigator.hardwareConcurrency`, else 1;
   * createNodeSession passes `os.availableParallelism()`).
   */
  cores?: number;
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
  /**
   * Threads actually used (1 when workers are unavailable; see `notes`); with `threads: 'auto'`,
   * those of the current choice.
   */
  readonly threads: number;
  /**
   * Why the session runs with fewer threads than asked, or '' when it runs as asked; with
   * `threads: 'auto'`, what it chose and the two times it chose on.
   */
  readonly notes: string;
  /** The kernel build its plans run on (a threaded plan runs the shared-memory build). */
  readonly variant: KernelVariant;
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

interface ResultReply {
  type: 'result';
  id: number;
  shape: number[];
  data: Float32Array;
}
interface StatsReply {
  type: 'stats';
  id: number;
  memoryBytes: number;
}
type Reply = ReadyReply | ResultReply | StatsReply | ErrorReply;

/**
 * The worker side: compiles the plan sent by `init`, then answers `run` and `stats` in order.
 * src/node/session-worker.ts and a page's Web Worker script call this with their port.
 */
export function serveSessionWorker(port: WorkerHostPort): void {
  let plan: InferencePlan | null = null;
  let pending: Promise<void> = Promise.resolve();
  const fail = (id: number, error: unknown): void => port.postMessage(errorReply(id, error) satisfies Reply);
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
          setTimeout(() => loop((error) => fail(SETUP, error)), 0);
        } catch (error) {
          fail(SETUP, error);
        }
        return;
      }
      if (request.type === 'init') {
        try {
          plan = await compilePlan(deserializeGraph(request.graph));
          port.postMessage({ type: 'ready', variant: plan.summary.variant } satisfies Reply);
        } catch (error) {
          fail(SETUP, error);
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

/** A session worker's errors: a SessionError that says so (a ShapeError stays one). */
const sessionWorkerError = (_: number, message: string): Error => new SessionError(`session worker: ${message}`);

/**
 * A plan run by the calling thread, alone or with threads − 1 helper workers sharing its memory
 * (intra-op threads). Runs are queued, one sample at a time on all threads.
 */
class PlanSession implements Session {
  private queue: Promise<unknown> = Promise.resolve();
  private plan: InferencePlan | null;
  private readonly auto: AutoThreads | null;
  private readonly fixedThreads: number;
  readonly variant: KernelVariant;

  constructor(
    plan: InferencePlan,
    private readonly fixedNotes: string,
    private readonly helpers: Helpers = { stop: async () => {}, failure: () => null },
  ) {
    this.plan = plan;
    this.auto = plan.autoThreads;
    this.fixedThreads = plan.threads;
    this.variant = plan.summary.variant;
  }

  get threads(): number {
    return this.auto?.threads ?? this.fixedThreads;
  }

  get notes(): string {
    return this.auto?.describe() ?? this.fixedNotes;
  }

  private live(what: string): InferencePlan {
    if (this.plan === null) throw new SessionError(`session.${what}: the session was disposed`);
    // A helper that failed in an earlier run has sent its message since: report it.
    const failure = this.helpers.failure();
    if (failure !== null) throw failure;
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
    await this.helpers.stop();
  }
}

class WorkerSession implements Session {
  private workers: WorkerHandle[] | null;
  /** Samples queued on each worker, for balancing. */
  private readonly load = new Map<WorkerHandle, number>();
  readonly threads: number;
  readonly variant: KernelVariant;

  constructor(
    workers: WorkerHandle[],
    private readonly inputShape: Shape,
    readonly notes: string,
  ) {
    this.workers = workers;
    this.threads = workers.length;
    // Every worker compiles the same plan on the same build; the first says which.
    this.variant = workers[0]!.variant as KernelVariant;
    for (const worker of workers) this.load.set(worker, 0);
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
    const order = [...workers].sort((a, b) => this.load.get(a)! - this.load.get(b)!);
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
        this.load.set(worker, this.load.get(worker)! + count);
        try {
          return await worker.request<ResultReply>(
            (id) => ({ type: 'run', id, shape: [count, ...this.inputShape.slice(1)], data }) satisfies Request,
            [data.buffer],
          );
        } finally {
          this.load.set(worker, this.load.get(worker)! - count);
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
    const replies = await Promise.all(
      workers.map((w) => w.request<StatsReply>((id) => ({ type: 'stats', id }) satisfies Request)),
    );
    return { workers: workers.length, memoryBytes: replies.map((r) => r.memoryBytes) };
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
  const asked = options.threads ?? 'auto';
  if (asked !== 'auto' && (!Number.isInteger(asked) || asked < 1)) {
    throw new SessionError(`createSession: threads must be a positive integer or 'auto', got ${String(asked)}`);
  }
  const graph = sessionGraph(model, options.inputShape);
  if (asked === 'auto') return autoSession(graph, options);
  const blocker = asked > 1 ? threadBlocker(options) : null;
  if (asked === 1 || blocker !== null) {
    const notes = blocker === null ? '' : `running single-threaded (asked for ${asked} threads): ${blocker}`;
    return new PlanSession(await compilePlan(graph), notes);
  }
  if ((options.parallelism ?? 'intra') === 'intra') return threadedSession(graph, asked, options.spawnWorker!);
  const serialized = serializeGraph(graph);
  const { ready } = startWorkers(
    asked,
    options.spawnWorker!,
    () => ({ type: 'init', graph: serialized }) satisfies Request,
    sessionWorkerError,
  );
  return new WorkerSession(await ready, [1, ...graph.input.shape.slice(1)], '');
}

/** The helper workers of a threaded plan. */
interface Helpers {
  /** Disposes the plan (the helpers leave their loops) and terminates them. */
  stop(): Promise<void>;
  /** A helper's failure (its message, once it has arrived), or null. */
  failure(): Error | null;
}

/** A threaded plan, float (InferencePlan) or int8 (QuantizedPlan): its helpers' setups, and dispose. */
interface ThreadedPlan {
  readonly helpers: readonly HelperSetup[];
  dispose(): void;
}

async function startHelperWorkers(plan: ThreadedPlan, spawnWorker: SpawnWorker): Promise<Helpers> {
  const helpers = startWorkers(
    plan.helpers.length,
    spawnWorker,
    (i) => ({ type: 'helper', setup: plan.helpers[i]! }) satisfies Request,
    sessionWorkerError,
  );
  const stop = async (): Promise<void> => {
    plan.dispose(); // the helpers leave their loops
    await helpers.terminate(new SessionError('session.run: the session was disposed while this run was pending'));
  };
  try {
    await helpers.ready;
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop, failure: () => helpers.workers.find((w) => w.failure !== null)?.failure ?? null };
}

/**
 * Starts `plan.helpers.length` helper workers for a threaded plan (each runs its share of every
 * step until the plan is disposed); resolves once all are ready, to a function that stops them.
 */
export async function startHelpers(plan: ThreadedPlan, spawnWorker: SpawnWorker): Promise<() => Promise<void>> {
  return (await startHelperWorkers(plan, spawnWorker)).stop;
}

/** A plan on `threads` threads; with `auto`, calibrated to run each sample on all of them or on one. */
async function threadedSession(
  graph: Graph,
  threads: number,
  spawnWorker: SpawnWorker,
  auto = false,
): Promise<Session> {
  const plan = await compilePlan(graph, { threads });
  const helpers = await startHelperWorkers(plan, spawnWorker);
  if (!auto) return new PlanSession(plan, '', helpers);
  plan.useAuto();
  const session = new PlanSession(plan, '', helpers);
  try {
    plan.calibrate();
  } catch (error) {
    await session.dispose();
    throw error;
  }
  return session;
}

/** The cores `threads: 'auto'` may use: the option, else the environment's, else 1. */
function coresOf(options: SessionOptions): number {
  const scope = globalThis as { navigator?: { hardwareConcurrency?: number } };
  const cores = options.cores ?? scope.navigator?.hardwareConcurrency ?? 1;
  if (!Number.isInteger(cores) || cores < 1) {
    throw new SessionError(`createSession: cores must be a positive integer, got ${String(cores)}`);
  }
  return cores;
}

/** `threads: 'auto'`: a threaded plan calibrated to run each sample on all threads or on one. */
async function autoSession(graph: Graph, options: SessionOptions): Promise<Session> {
  if (options.parallelism === 'batch') {
    throw new SessionError("createSession: parallelism 'batch' needs a thread count (threads: N), not 'auto'");
  }
  const team = Math.min(coresOf(options), AUTO_MAX_THREADS);
  const blocker = team < 2 ? 'this machine has 1 core' : threadBlocker(options);
  if (blocker !== null) return new PlanSession(await compilePlan(graph), `threads: 'auto' runs 1 thread: ${blocker}`);
  return threadedSession(graph, team, options.spawnWorker!, true);
}
