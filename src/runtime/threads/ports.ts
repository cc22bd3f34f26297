/**
 * Workers as the core sees them: a port to each (worker_threads in Node, Web Workers in a page),
 * started and awaited the same way by inference sessions (../session.ts) and data-parallel
 * training (src/train/parallel.ts), with their errors carried back the same way.
 *
 * The wire protocol, whatever the worker serves:
 *
 *   leader ──► worker   its setup message first (a plan to compile, a helper program, a training
 *                       part), then requests, each with an `id`
 *   worker ──► leader   { type: 'ready' } once set up; replies carrying the request's `id`;
 *                       { type: 'error', id, name, message } for a failed request, or with
 *                       id = SETUP for a failed setup or a failure outside any request
 *
 * The leader's end (`WorkerHandle`) turns a failed setup into a rejected `ready`, a failure after
 * it into `failure` (later requests reject with it), and a crash (an error event, a non-zero exit)
 * into both. A failure inside a shared-memory run also reaches the other threads through the
 * control block (./barrier.ts) at once; the port brings its message afterwards.
 */
import { ShapeError } from '../../errors.js';

/** The leader's end of a worker (worker_threads and Web Workers both fit). */
export interface WorkerPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Registers the handler for every message and error from the worker. */
  listen(onMessage: (message: unknown) => void, onError: (error: Error) => void): void;
  terminate(): void | Promise<unknown>;
}

/** The worker's end of its port. */
export interface WorkerHostPort {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  listen(onMessage: (message: unknown) => void): void;
}

export type SpawnWorker = () => WorkerPort;

/** The `id` of an error that answers no request: a failed setup, or a failure in the background. */
export const SETUP = -1;

export interface ReadyReply {
  type: 'ready';
  /** What the worker set up runs on, when it has a plan of its own (e.g. its kernel build). */
  variant?: string;
}

export interface ErrorReply {
  type: 'error';
  id: number;
  name: string;
  message: string;
}

/** An error as it crosses a port (structured cloning keeps no class). */
export function errorReply(id: number, error: unknown): ErrorReply {
  const e = error instanceof Error ? error : new Error(String(error));
  return { type: 'error', id, name: e.name, message: e.message };
}

/** Wraps a browser Web Worker (a module worker whose script serves a port). */
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

/** The port of the Web Worker this code runs in (its global scope). */
export function webWorkerHostPort(): WorkerHostPort {
  // The core compiles without the WebWorker lib (it also runs in Node), so the worker's global
  // scope is typed here by the two members used.
  const scope = globalThis as unknown as {
    postMessage(message: unknown, transfer: Transferable[]): void;
    onmessage: ((event: MessageEvent) => void) | null;
  };
  return {
    postMessage: (message, transfer) => scope.postMessage(message, transfer ?? []),
    listen(onMessage) {
      scope.onmessage = (event) => onMessage(event.data);
    },
  };
}

/** A reply that carries an id (an answer to a request). */
interface IdReply {
  type: string;
  id: number;
}

/**
 * The leader's end of one worker: its readiness, its pending requests by id, and its failure.
 * `wrap(message)` makes the error the leader raises from a worker's message (naming the worker).
 */
export class WorkerHandle {
  private readonly jobs = new Map<number, { resolve: (reply: IdReply) => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private terminated = false;
  /** The worker's failure outside a request (its setup, a background loop, a crash), or null. */
  failure: Error | null = null;
  /** Resolves once the worker has answered its setup with 'ready'. */
  readonly ready: Promise<void>;
  /** The `variant` of the worker's 'ready' reply, once ready ('' if it named none). */
  variant = '';

  constructor(
    private readonly port: WorkerPort,
    private readonly wrap: (message: string) => Error,
  ) {
    let markReady!: () => void;
    let markFailed!: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    this.ready.catch(() => undefined);
    const failed = (error: Error): void => {
      this.failure ??= error;
      markFailed(error);
      for (const job of this.jobs.values()) job.reject(error);
      this.jobs.clear();
    };
    port.listen(
      (message) => {
        if ((message as ReadyReply).type === 'ready') {
          this.variant = (message as ReadyReply).variant ?? '';
          return markReady();
        }
        const reply = message as IdReply;
        if (reply.type === 'error' && reply.id === SETUP) return failed(this.revive(reply as ErrorReply));
        const job = this.jobs.get(reply.id);
        if (job === undefined) return;
        this.jobs.delete(reply.id);
        if (reply.type === 'error') job.reject(this.revive(reply as ErrorReply));
        else job.resolve(reply);
      },
      (error) => failed(this.wrap(`crashed: ${error.message}`)),
    );
  }

  /** The leader's error for a worker's error reply (a ShapeError stays one). */
  private revive(reply: ErrorReply): Error {
    return reply.name === 'ShapeError' ? new ShapeError(reply.message) : this.wrap(reply.message);
  }

  post(message: unknown, transfer: Transferable[] = []): void {
    this.port.postMessage(message, transfer);
  }

  /** Posts the request `make(id)`; resolves to the worker's reply, or rejects with its error. */
  request<R extends IdReply>(make: (id: number) => unknown, transfer: Transferable[] = []): Promise<R> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.jobs.set(id, { resolve: resolve as (reply: IdReply) => void, reject });
      this.port.postMessage(make(id), transfer);
    });
  }

  /** Rejects pending requests with `reason` and stops the worker (twice is harmless). */
  async terminate(reason: Error): Promise<void> {
    for (const job of this.jobs.values()) job.reject(reason);
    this.jobs.clear();
    if (this.terminated) return;
    this.terminated = true;
    await this.port.terminate();
  }
}

/**
 * Spawns `count` workers and posts worker i its setup message `setup(i)`. `ready` resolves once
 * every worker is ready; if one fails (or cannot be spawned), every worker is terminated and
 * `ready` rejects with the first failure. `wrap(i, message)` names worker i in its errors.
 */
export function startWorkers(
  count: number,
  spawnWorker: SpawnWorker,
  setup: (i: number) => unknown,
  wrap: (i: number, message: string) => Error,
): { workers: WorkerHandle[]; ready: Promise<WorkerHandle[]>; terminate(reason: Error): Promise<void> } {
  const workers: WorkerHandle[] = [];
  const terminate = async (reason: Error): Promise<void> => {
    await Promise.all(workers.map((w) => w.terminate(reason)));
  };
  let spawned: Promise<void>;
  try {
    for (let i = 0; i < count; i++) {
      const worker = new WorkerHandle(spawnWorker(), (message) => wrap(i, message));
      workers.push(worker);
      worker.post(setup(i));
    }
    spawned = Promise.all(workers.map((w) => w.ready)).then(() => undefined);
  } catch (error) {
    spawned = Promise.reject(error);
  }
  const ready = spawned.then(
    () => workers,
    async (error: unknown) => {
      await terminate(error instanceof Error ? error : new Error(String(error)));
      throw error;
    },
  );
  ready.catch(() => undefined);
  return { workers, ready, terminate };
}
