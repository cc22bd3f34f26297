/**
 * Data-parallel training on T threads that together compute exactly the whole batch's step: the
 * batch is split into T parts, each thread runs its own TrainingPlan on its part, and at every
 * batch norm the threads combine their per-channel figures (statistics in the forward, the two
 * sums in the backward) through shared memory, so the normalisation uses the whole batch, as on one
 * thread. At the end the parameter gradients of the parts are summed.
 *
 *   main thread                                   worker t (1 … T−1)
 *   ─────────────                                 ──────────────────
 *   params, part t's images/labels ─► shared ──►  copy params into its graph
 *   start the run (command: step or forward) ───► wakes
 *   plan(part 0) ◄── BN: write own, barrier, ───► plan(part t)
 *                     combine all in fixed order
 *   end barrier ◄───────────────────────────────  grads, logits, loss ─► shared; end barrier
 *   Σ gradients, concatenated logits, loss
 *
 * The start, the barriers, dispose and failures go through the one control block of
 * src/runtime/threads/barrier.ts, at the start of the shared buffer; workers are started and their
 * errors carried back as every worker's are (src/runtime/threads/ports.ts). A worker that fails
 * releases the others at once (the main thread's call throws a ThreadError); its message follows
 * through its port, and the engine's next call throws it as a TrainingWorkerError. The combination
 * order is fixed, so a given thread count gives the same loss curve run after run; different
 * thread counts differ by float rounding.
 *
 * @example
 * const engine = await ParallelTrainingEngine.create(model.trace([64, 1, 28, 28], { training: true }), 2, spawnWorker);
 * const { loss, gradients } = engine.forwardBackward(images, labels, { labelSmoothing: 0.1 });
 * await engine.dispose();
 */
import { ShuffleNetError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import { deserializeGraph, serializeGraph, type SerializedGraph } from '../graph/serialize.js';
import { Barrier, CONTROL_BYTES, ThreadError } from '../runtime/threads/barrier.js';
import {
  errorReply,
  SETUP,
  startWorkers,
  type SpawnWorker,
  type WorkerHandle,
  type WorkerHostPort,
} from '../runtime/threads/ports.js';
import { shapeSize, Tensor, type Shape } from '../tensor/tensor.js';
import { withInputShape } from '../graph/reshape.js';
import {
  TrainingPlan,
  type TrainingEngine,
  type BatchNormExchange,
  type ForwardBackwardOptions,
  type ForwardBackwardResult,
  type RunningStatistics,
} from './plan.js';

export class TrainingWorkerError extends ShuffleNetError {
  override name = 'TrainingWorkerError';
}

// A run's command (the control block's COMMAND word).
const STEP = 1;
const FORWARD = 2;
/** Milliseconds a barrier waits in total before it declares the other threads lost. */
const STALL_MS = 120_000;

/** Where everything lives in the shared buffer (float offsets after the control block). */
interface Layout {
  parts: number[];
  /** Per BN layer: channels and float offsets of the statistics and sums slots (T × 2 × c each). */
  batchNorms: { channels: number; statistics: number; sums: number }[];
  params: number; // every graph parameter and buffer, in graph order
  paramFloats: number;
  /** Per worker part t ≥ 1: images, labels, logits, loss, gradients. */
  images: number[];
  labels: number[];
  logits: number[];
  loss: number[];
  gradients: number[];
  gradientFloats: number;
  runningStatistics: number; // the FORWARD command's factor (NaN: momentum, −1: frozen)
  labelSmoothing: number; // the STEP command's ε
  floats: number;
}

function planLayout(graph: Graph, parts: number[]): Layout {
  const threads = parts.length;
  let at = 0;
  const take = (floats: number): number => {
    const offset = at;
    at += Math.ceil(floats / 4) * 4;
    return offset;
  };
  const batchNorms = graph.nodes
    .filter((n) => n.op === 'batchNormTraining')
    .map((n) => {
      const channels = graph.shapes.get(n.inputs[0]!)![1]!;
      return { channels, statistics: take(threads * 2 * channels), sums: take(threads * 2 * channels) };
    });
  const paramFloats = [...graph.params.values()].reduce((sum, p) => sum + p.tensor.size, 0);
  const gradientFloats = [...graph.params.values()].reduce((sum, p) => sum + (p.trainable ? p.tensor.size : 0), 0);
  const params = take(paramFloats);
  const [, ...sample] = graph.input.shape;
  const classes = graph.shapes.get(graph.output)![1]!;
  const perPart = (floats: (n: number) => number): number[] => parts.map((n, t) => (t === 0 ? -1 : take(floats(n))));
  const images = perPart((n) => n * shapeSize(sample));
  const labels = perPart((n) => n);
  const logits = perPart((n) => n * classes);
  const loss = perPart(() => 1);
  const gradients = perPart(() => gradientFloats);
  const runningStatistics = take(1);
  const labelSmoothing = take(1);
  return {
    parts,
    batchNorms,
    params,
    paramFloats,
    images,
    labels,
    logits,
    loss,
    gradients,
    gradientFloats,
    runningStatistics,
    labelSmoothing,
    floats: at,
  };
}

/** The shared buffer: the control block, then the floats of the layout. */
class Shared {
  readonly barrier: Barrier;
  readonly f32: Float32Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    threads: number,
  ) {
    this.barrier = new Barrier(buffer, 0, threads, { label: 'parallel training', stallMs: STALL_MS });
    this.f32 = new Float32Array(buffer, CONTROL_BYTES);
  }

  static allocate(layout: Layout): Shared {
    if (typeof SharedArrayBuffer === 'undefined') {
      throw new ShuffleNetError(
        'parallel training needs SharedArrayBuffer (in browsers: a cross-origin isolated page)',
      );
    }
    return new Shared(new SharedArrayBuffer(CONTROL_BYTES + layout.floats * 4), layout.parts.length);
  }
}

/** The batch-norm exchange of thread `rank` over the shared buffer. */
function sharedExchange(shared: Shared, layout: Layout, rank: number): BatchNormExchange {
  const { parts } = layout;
  const totalBatch = parts.reduce((a, b) => a + b, 0);
  const f = shared.f32;
  /** Writes this thread's two per-channel figures to its slot (T slots of 2 × c from `base`), then meets the others. */
  const publish = (base: number, c: number, first: Float32Array, second: Float32Array): void => {
    f.set(first, base + rank * 2 * c);
    f.set(second, base + rank * 2 * c + c);
    shared.barrier.wait();
  };
  return {
    totalBatch,
    statistics(layer, mean, variance) {
      const { channels: c, statistics: base } = layout.batchNorms[layer]!;
      publish(base, c, mean, variance);
      // Chan et al.'s parallel variance, in a fixed order: every thread gets identical figures.
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        for (let t = 0; t < parts.length; t++) sum += parts[t]! * f[base + t * 2 * c + ch]!;
        const mu = sum / totalBatch;
        let m2 = 0;
        for (let t = 0; t < parts.length; t++) {
          const d = f[base + t * 2 * c + ch]! - mu;
          m2 += parts[t]! * (f[base + t * 2 * c + c + ch]! + d * d);
        }
        mean[ch] = mu;
        variance[ch] = m2 / totalBatch;
      }
    },
    sums(layer, sumDy, sumDyXhat) {
      const { channels: c, sums: base } = layout.batchNorms[layer]!;
      publish(base, c, sumDy, sumDyXhat);
      for (let ch = 0; ch < c; ch++) {
        let a = 0;
        let b = 0;
        for (let t = 0; t < parts.length; t++) {
          a += f[base + t * 2 * c + ch]!;
          b += f[base + t * 2 * c + c + ch]!;
        }
        sumDy[ch] = a;
        sumDyXhat[ch] = b;
      }
    },
  };
}

/** Splits n samples into `threads` parts as evenly as possible (the first parts one larger). */
function splitBatch(n: number, threads: number): number[] {
  return Array.from({ length: threads }, (_, t) => Math.floor(n / threads) + (t < n % threads ? 1 : 0));
}

const encodeStatistics = (mode: RunningStatistics): number =>
  mode === 'momentum' ? NaN : mode === 'frozen' ? -1 : mode;
const decodeStatistics = (value: number): RunningStatistics =>
  Number.isNaN(value) ? 'momentum' : value === -1 ? 'frozen' : value;

interface InitMessage {
  type: 'init';
  buffer: SharedArrayBuffer;
  graph: SerializedGraph;
  layout: Layout;
  rank: number;
}

export class ParallelTrainingEngine implements TrainingEngine {
  private disposed = false;

  private constructor(
    private readonly graph: Graph,
    private readonly plan: TrainingPlan,
    private readonly shared: Shared,
    private readonly layout: Layout,
    private readonly workers: WorkerHandle[],
  ) {}

  /**
   * Splits the batch of `graph` (traced with `{ training: true }`) over `threads` threads: this
   * one and `threads − 1` workers from `spawnWorker` (src/node/train-worker.ts in Node).
   */
  static async create(graph: Graph, threads: number, spawnWorker: SpawnWorker): Promise<ParallelTrainingEngine> {
    const batch = graph.input.shape[0]!;
    if (!(Number.isInteger(threads) && threads >= 2 && threads <= batch)) {
      throw new ShuffleNetError(
        `parallel training: threads must be an integer in [2, ${batch}] (the batch size) but is ${threads}`,
      );
    }
    const parts = splitBatch(batch, threads);
    const layout = planLayout(graph, parts);
    const shared = Shared.allocate(layout);
    const partGraph = (n: number): Graph => withInputShape(graph, [n, ...graph.input.shape.slice(1)]);
    const own = partGraph(parts[0]!);
    const workers = startWorkers(
      threads - 1,
      spawnWorker,
      (i): InitMessage => ({
        type: 'init',
        buffer: shared.buffer,
        graph: serializeGraph(partGraph(parts[i + 1]!)),
        layout,
        rank: i + 1,
      }),
      (i, message) => new TrainingWorkerError(`parallel training: worker ${i + 1}: ${message}`),
    );
    try {
      // The workers compile their parts while this thread compiles its own.
      const plan = await TrainingPlan.compile(own, { exchange: sharedExchange(shared, layout, 0) });
      return new ParallelTrainingEngine(graph, plan, shared, layout, await workers.ready);
    } catch (error) {
      await workers.terminate(new TrainingWorkerError('parallel training: the engine failed to start'));
      throw error;
    }
  }

  get inputShape(): Shape {
    return this.graph.input.shape;
  }

  get threads(): number {
    return this.layout.parts.length;
  }

  private start(command: number, images: Tensor, labels: ArrayLike<number> | null): void {
    if (this.disposed) throw new ShuffleNetError('parallel training: the engine was disposed');
    // A worker that failed in an earlier call has sent its message since: report it.
    const failure = this.workers.find((w) => w.failure !== null)?.failure;
    if (failure) throw failure;
    const { layout, shared } = this;
    const f = shared.f32;
    let at = layout.params;
    for (const p of this.graph.params.values()) {
      f.set(p.tensor.data, at);
      at += p.tensor.size;
    }
    const sample = shapeSize(images.shape) / images.shape[0]!;
    let offset = layout.parts[0]!;
    for (let t = 1; t < layout.parts.length; t++) {
      const n = layout.parts[t]!;
      f.set(images.data.subarray(offset * sample, (offset + n) * sample), layout.images[t]!);
      if (labels) for (let i = 0; i < n; i++) f[layout.labels[t]! + i] = labels[offset + i]!;
      offset += n;
    }
    shared.barrier.start(command);
  }

  /** Runs this thread's part; if it throws, the workers are released (they throw too). */
  private own<T>(part: () => T): T {
    try {
      return part();
    } catch (error) {
      this.shared.barrier.fail();
      throw error;
    }
  }

  private part0(images: Tensor): Tensor {
    const n = this.layout.parts[0]!;
    const sample = shapeSize(images.shape) / images.shape[0]!;
    return new Tensor([n, ...images.shape.slice(1)], images.data.subarray(0, n * sample));
  }

  private gatherLogits(own: Tensor): Tensor {
    const { layout, shared } = this;
    const [n0, classes] = own.shape as [number, number];
    const total = layout.parts.reduce((a, b) => a + b, 0);
    const logits = new Tensor([total, classes]);
    logits.data.set(own.data);
    let offset = n0;
    for (let t = 1; t < layout.parts.length; t++) {
      const count = layout.parts[t]! * classes;
      logits.data.set(shared.f32.subarray(layout.logits[t]!, layout.logits[t]! + count), offset * classes);
      offset += layout.parts[t]!;
    }
    return logits;
  }

  forward(images: Tensor, runningStatistics: RunningStatistics = 'momentum'): Tensor {
    this.shared.f32[this.layout.runningStatistics] = encodeStatistics(runningStatistics);
    this.start(FORWARD, images, null);
    const own = this.own(() => {
      const logits = this.plan.forward(this.part0(images), runningStatistics);
      this.shared.barrier.wait();
      return logits;
    });
    return this.gatherLogits(own);
  }

  forwardBackward(
    images: Tensor,
    labels: ArrayLike<number>,
    options: ForwardBackwardOptions = {},
  ): ForwardBackwardResult {
    const { layout, shared } = this;
    const total = layout.parts.reduce((a, b) => a + b, 0);
    // Checked before the threads start: a part failing half-way would strand the others at a barrier.
    const classes = this.graph.shapes.get(this.graph.output)![1]!;
    if (labels.length !== total)
      throw new ShuffleNetError(`parallel training: ${total} images but ${labels.length} labels`);
    for (let i = 0; i < total; i++) {
      const label = labels[i]!;
      if (!Number.isInteger(label) || label < 0 || label >= classes) {
        throw new ShuffleNetError(
          `parallel training: label ${i} is ${label} but must be an integer in [0, ${classes})`,
        );
      }
    }
    shared.f32[layout.labelSmoothing] = options.labelSmoothing ?? 0;
    this.start(STEP, images, labels);
    const n0 = layout.parts[0]!;
    const own = this.own(() => {
      const result = this.plan.forwardBackward(
        this.part0(images),
        Array.from({ length: n0 }, (_, i) => labels[i]!),
        {
          labelSmoothing: options.labelSmoothing ?? 0,
          lossScale: n0 / total,
        },
      );
      shared.barrier.wait(); // the workers' gradients, logits and losses are in place
      return result;
    });
    let loss = own.loss * n0;
    for (let t = 1; t < layout.parts.length; t++) {
      loss += shared.f32[layout.loss[t]!]! * layout.parts[t]!;
      let at = layout.gradients[t]!;
      for (const [name, p] of this.graph.params) {
        if (!p.trainable) continue;
        const g = own.gradients.get(name);
        if (g) for (let i = 0; i < g.size; i++) g.data[i] += shared.f32[at + i]!;
        at += p.tensor.size;
      }
    }
    loss /= total;
    options.guard?.(loss);
    return { loss, logits: this.gatherLogits(own.logits), gradients: own.gradients };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.shared.barrier.quit(); // the workers leave their loops
    const reason = new TrainingWorkerError('parallel training: the engine was disposed');
    await Promise.all(this.workers.map((w) => w.terminate(reason)));
  }
}

/**
 * The worker side: compiles its part's plan, then runs each command the main thread starts until
 * it quits. `port` is the worker's end (worker_threads' parentPort in Node, `self` in a Web
 * Worker).
 */
export function serveTrainingWorker(port: WorkerHostPort): void {
  port.listen((message) => {
    const init = message as InitMessage;
    if (init.type !== 'init') return;
    const shared = new Shared(init.buffer, init.layout.parts.length);
    const { layout, rank } = init;
    const graph = deserializeGraph(init.graph);
    TrainingPlan.compile(graph, { exchange: sharedExchange(shared, layout, rank) }).then(
      (plan) => {
        port.postMessage({ type: 'ready' });
        try {
          serve(plan, graph, shared, layout, rank);
        } catch (error) {
          // This worker failed: release the others at once, and send them the message. (A
          // ThreadError means another thread failed, which the others already know.)
          if (error instanceof ThreadError) return;
          shared.barrier.fail();
          port.postMessage(errorReply(SETUP, error));
        }
      },
      (error: unknown) => port.postMessage(errorReply(SETUP, error)),
    );
  });
}

function serve(plan: TrainingPlan, graph: Graph, shared: Shared, layout: Layout, rank: number): void {
  const f = shared.f32;
  const n = layout.parts[rank]!;
  const total = layout.parts.reduce((a, b) => a + b, 0);
  const images = new Tensor(graph.input.shape, new Float32Array(shapeSize(graph.input.shape)));
  for (;;) {
    const command = shared.barrier.awaitRun();
    if (command === null) return;
    let at = layout.params;
    for (const p of graph.params.values()) {
      p.tensor.data.set(f.subarray(at, at + p.tensor.size));
      at += p.tensor.size;
    }
    images.data.set(f.subarray(layout.images[rank]!, layout.images[rank]! + images.size));
    if (command === FORWARD) {
      const logits = plan.forward(images, decodeStatistics(f[layout.runningStatistics]!));
      f.set(logits.data, layout.logits[rank]!);
    } else {
      const labels = Array.from(f.subarray(layout.labels[rank]!, layout.labels[rank]! + n));
      const result = plan.forwardBackward(images, labels, {
        lossScale: n / total,
        labelSmoothing: f[layout.labelSmoothing]!,
      });
      f.set(result.logits.data, layout.logits[rank]!);
      f[layout.loss[rank]!] = result.loss;
      let g = layout.gradients[rank]!;
      for (const [name, p] of graph.params) {
        if (!p.trainable) continue;
        const grad = result.gradients.get(name);
        if (grad) f.set(grad.data, g);
        else f.fill(0, g, g + p.tensor.size);
        g += p.tensor.size;
      }
    }
    shared.barrier.wait();
  }
}
