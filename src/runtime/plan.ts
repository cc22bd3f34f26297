/**
 * An inference plan: a traced Graph compiled once into a list of fused steps on the WASM SIMD
 * kernels, over NCHW activations in one arena.
 *
 * - Batch norm is folded into the preceding convolution's weights and bias; ReLU, a residual add
 *   and a following channel shuffle are fused into the convolution's epilogue (the shuffle is an
 *   output-channel remap, so it costs nothing).
 * - A concat whose parts are produced by fusable steps is written in place: each part writes at
 *   its channel offset of the concat's buffer, and a ReLU after the concat moves into the parts.
 * - Weights are packed once; activations live in one arena, where buffers whose lifetimes do not
 *   overlap share memory (greedy by size, as TFLite's arena planner does).
 * - Any node without a fast kernel runs on its reference op (correct, slow), so every graph runs.
 *
 * Example:
 *   const plan = await compilePlan(createModel('shufflenet_v1_g3_1.0x').trace([1, 3, 224, 224]));
 *   const logits = plan.run(input); // [N, 1000] for an input [N, 3, 224, 224]
 */
import { ShapeError, ShuffleNetError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import { withInputShape } from '../graph/reshape.js';
import { WasmKernels, type KernelVariant } from '../kernels/wasm/module.js';
import { packDenseWeights, packGemmWeights, padBias } from '../kernels/wasm/pack.js';
import { channelShuffleSource } from '../kernels/reference/channels.js';
import { getOp, type Pool2dAttrs } from '../ops/index.js';
import { formatShape, shapeSize, Tensor, type Shape } from '../tensor/tensor.js';
import {
  activationCodes,
  describeStep,
  im2colRows,
  lowerForInference,
  LoweringError,
  share,
  type LoweredStep,
  type ThreadSplit,
} from './lower.js';
import {
  bindCalls,
  call,
  COL,
  encodeProgram,
  MAX_UNITS,
  SCRATCH,
  Team,
  teamBytes,
  type HelperSetup,
  type KernelCall,
  type ProgramPhase,
} from './threads/team.js';
import { AutoThreads } from './threads/auto.js';
import { foldedConv } from './fold.js';
import { RECORD_WORDS, recordIndex, runTraced, traceBytes, traceClock, type TraceRegion } from './threads/trace.js';

type Step = LoweredStep;

/**
 * Where a value lives: `offset` floats into the buffer of value `root`; with `planes`, channel j
 * is the plane `planes[j]` from there (a part of a shuffled concat, written in place).
 */
export interface Placement {
  root: string;
  offset: number;
  planes?: Int32Array;
}

export interface PlanSummary {
  /** Which build of the kernels runs: plain WASM SIMD128, or relaxed SIMD (fused multiply-add). */
  variant: KernelVariant;
  /** One line per step: kind, module path and what was fused. */
  steps: string[];
  /** The graph nodes (by output value) each step covers, main node first. */
  stepNodes: string[][];
  /** How each step splits over threads (the lowering's decision; the same at any thread count). */
  splits: ThreadSplit[];
  /** Bytes of the activation arena (after buffer sharing) and of packed weights. */
  arenaBytes: number;
  weightBytes: number;
}

export interface PlanOptions {
  /** The kernels instance to allocate in (default: a new one; a shared one when threads > 1). */
  kernels?: WasmKernels;
  /**
   * Threads each step is split over (default 1). With threads > 1 the plan lives in a shared
   * memory and `helpers` holds what threads − 1 helper threads need (see src/runtime/threads/team.ts):
   * each must run `prepareHelper(setup)`'s loop before the first `run`.
   */
  threads?: number;
  /**
   * Runs that `plan.trace` can record at once (default 0: no trace region, and `trace` throws).
   * Tracing costs nothing when unused: untraced runs never read a clock.
   */
  traceRuns?: number;
}

/** One thread's part in one phase of a traced run. Times are milliseconds on the leader's `performance.now()`. */
export interface PhaseEvent {
  /** Traced run, from 0. */
  run: number;
  /** Thread index: 0 is the leader (the caller's thread), 1 … T − 1 the helpers. */
  thread: number;
  /** Index of the step in `plan.summary.steps`. */
  step: number;
  /**
   * Later steps whose units share this phase (independent neighbours run side by side; see
   * shareIndependentPhases). Their time is inside this event's.
   */
  alongside: readonly number[];
  /** Index of the phase within its step (steps with a padding pass have two). */
  phase: number;
  /**
   * When the thread started claiming the phase's units, and when its last unit ended (= start if
   * it ran none: the units were all claimed by others).
   */
  start: number;
  end: number;
  /** When it began waiting for the phase to be done (= end) and when it saw it done (= end with one thread). */
  waitStart: number;
  waitEnd: number;
  /** Units of the phase this thread ran (over all threads they add up to `PlanTrace.phaseUnits`). */
  units: number;
}

/** What `plan.trace` records: every thread's every phase, run after run. */
export interface PlanTrace {
  threads: number;
  runs: number;
  /** The plan's step descriptions and nodes (`PlanSummary.steps`, `stepNodes`), by `PhaseEvent.step`. */
  steps: string[];
  stepNodes: string[][];
  /** Units of each phase of the plan, in order (a reference step is one unit, the leader's). */
  phaseUnits: number[];
  /** Ordered by run, then thread, then phase. */
  events: PhaseEvent[];
  /** The logits of the last traced run (bit-identical to an untraced run's). */
  output: Tensor;
}

/** What the leader needs to trace: the trace region, each phase's units and step. */
interface Tracing {
  region: TraceRegion;
  /** Every phase of the plan, in order, as one thread alone runs it (used without a team). */
  parts: (() => void)[];
  /** Units of every phase. */
  units: number[];
  /** Per phase: the step it belongs to, later steps sharing it, and its index within that step. */
  stepOf: number[];
  alongside: number[][];
  phaseInStep: number[];
}

export class InferencePlan {
  private disposed = false;
  /** Set by useAuto: chooses per sample between the team and the leader alone. */
  private auto: AutoThreads | null = null;
  /** The leader's part of an untraced run. */
  private readonly runExecutors = (): void => {
    for (const execute of this.executors) execute();
  };
  /** A solo run: the leader runs every unit of every phase in order, the helpers asleep. */
  private readonly runSolo = (): void => {
    for (const execute of this.soloExecutors) execute();
  };

  private constructor(
    private readonly kernels: WasmKernels,
    private readonly inputShape: Shape, // batch 1
    private readonly outputShape: Shape, // batch 1
    private readonly inputAddress: number,
    private readonly outputAddress: number,
    private readonly executors: readonly (() => void)[],
    /** Every step as one thread alone runs it (the same closures as `executors` at 1 thread). */
    private readonly soloExecutors: readonly (() => void)[],
    private readonly team: Team | null,
    private readonly tracing: Tracing | null,
    /** What each helper thread runs (empty for a single-threaded plan). */
    readonly helpers: readonly HelperSetup[],
    readonly summary: PlanSummary,
  ) {}

  /** Compiles `graph` (traced for any batch size; the plan runs one sample at a time). */
  static async compile(graph: Graph, options: PlanOptions | WasmKernels = {}): Promise<InferencePlan> {
    const {
      kernels,
      threads = 1,
      traceRuns = 0,
    } = options instanceof WasmKernels ? ({ kernels: options } as PlanOptions) : options;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new ShuffleNetError(`compilePlan: threads must be a positive integer, got ${threads}`);
    }
    if (!Number.isInteger(traceRuns) || traceRuns < 0) {
      throw new ShuffleNetError(`compilePlan: traceRuns must be a non-negative integer, got ${traceRuns}`);
    }
    const wasm = kernels ?? (await WasmKernels.create({ shared: threads > 1 }));
    if (threads > 1 && !wasm.shared) {
      throw new ShuffleNetError('compilePlan: a plan for several threads needs kernels over a shared memory');
    }
    const single = graph.input.shape[0] === 1 ? graph : withInputShape(graph, [1, ...graph.input.shape.slice(1)]);
    return build(single, wasm, threads, traceRuns, (...args) => new InferencePlan(...args));
  }

  /** Threads each step is split over (the team's size; see `auto` for what a run uses). */
  get threads(): number {
    return this.helpers.length + 1;
  }

  /**
   * `threads: 'auto'` for a threaded plan: from now on every sample runs either on the whole team
   * or on the leader alone (the helpers stay asleep), as ./threads/auto.ts decides from the times
   * of earlier samples. Outputs are bit-identical either way. Returns the policy (its `choice`,
   * `threads` and `describe()` say what it chose); `calibrate()` makes the first choice at once.
   */
  useAuto(): AutoThreads {
    if (this.team === null) throw new ShuffleNetError('plan.useAuto: a single-threaded plan has nothing to choose');
    this.auto ??= new AutoThreads(this.threads);
    return this.auto;
  }

  /** The auto policy, or null if the plan always runs on all its threads. */
  get autoThreads(): AutoThreads | null {
    return this.auto;
  }

  /**
   * Runs a zero input until the auto policy has made its first choice (about one second at most,
   * a few runs for a large network). Does nothing without `useAuto()` or once calibrated.
   */
  calibrate(): void {
    const auto = this.auto;
    if (auto === null) return;
    const zero = new Tensor(this.inputShape);
    while (auto.choice === null) this.run(zero);
  }

  /** Bytes of WASM memory the plan holds (weights, arena, scratch); runs never grow it. */
  get memoryBytes(): number {
    return this.kernels.memory.buffer.byteLength;
  }

  /** Runs a batch [N, ...] through the plan; returns a new tensor [N, ...output]. */
  run(input: Tensor): Tensor {
    if (this.disposed) throw new ShuffleNetError('plan.run: the plan was disposed');
    this.checkInput(input);
    const batch = input.shape[0]!;
    const output = new Tensor([batch, ...this.outputShape.slice(1)]);
    const auto = this.auto;
    for (let n = 0; n < batch; n++) {
      if (auto === null) {
        this.runSample(input, n, output, 0, this.runExecutors);
        continue;
      }
      const onTeam = auto.next();
      const start = performance.now();
      this.runSample(input, n, output, 0, onTeam ? this.runExecutors : this.runSolo, onTeam);
      auto.record(onTeam, performance.now() - start);
    }
    return output;
  }

  /**
   * Runs one sample `runs` times (≤ `PlanOptions.traceRuns`) and records, per thread and phase,
   * when the thread started claiming units and ended its last, when it saw the phase done, and how
   * many units it ran (see ./threads/trace.ts). The runs compute exactly what `run` computes.
   *
   * Example:
   *   const plan = await compilePlan(graph, { threads: 2, traceRuns: 10 });
   *   const { events, steps } = plan.trace(input, 10); // input [1, C, H, W]
   */
  trace(input: Tensor, runs = 1): PlanTrace {
    if (this.disposed) throw new ShuffleNetError('plan.trace: the plan was disposed');
    const tracing = this.tracing;
    if (tracing === null) {
      throw new ShuffleNetError('plan.trace: the plan has no trace region (compile it with PlanOptions.traceRuns > 0)');
    }
    if (!Number.isInteger(runs) || runs < 1 || runs > tracing.region.runs) {
      throw new ShuffleNetError(
        `plan.trace: runs must be an integer from 1 to ${tracing.region.runs} (PlanOptions.traceRuns), got ${runs}`,
      );
    }
    this.checkInput(input);
    if (input.shape[0] !== 1) {
      throw new ShapeError(`plan.trace: input has batch ${input.shape[0]} but a trace runs one sample (batch 1)`);
    }
    const threads = this.threads;
    const phases = tracing.units.length;
    // A view made now: another plan on a non-shared memory may have grown (and detached) it.
    const records = new Float64Array(
      this.kernels.memory.buffer,
      tracing.region.address,
      recordIndex(tracing.region.runs, 0, threads, phases),
    );
    const team = this.team;
    const now = traceClock(performance.timeOrigin);
    const output = new Tensor([1, ...this.outputShape.slice(1)]);
    for (let r = 0; r < runs; r++) {
      const at = recordIndex(r, 0, threads, phases);
      this.runSample(input, 0, output, 1 + r, () =>
        team === null ? runTraced(tracing.parts, tracing.units, records, at, now) : team.runAll({ records, at, now }),
      );
    }
    const events: PhaseEvent[] = [];
    for (let run = 0; run < runs; run++) {
      for (let thread = 0; thread < threads; thread++) {
        let at = recordIndex(run, thread, threads, phases);
        for (let p = 0; p < phases; p++, at += RECORD_WORDS) {
          const [start, end, waitEnd, units] = [records[at]!, records[at + 1]!, records[at + 2]!, records[at + 3]!];
          events.push({
            run,
            thread,
            step: tracing.stepOf[p]!,
            alongside: tracing.alongside[p]!,
            phase: tracing.phaseInStep[p]!,
            start,
            end,
            waitStart: end,
            waitEnd,
            units,
          });
        }
      }
    }
    const { steps, stepNodes } = this.summary;
    return { threads, runs, steps, stepNodes, phaseUnits: tracing.units, events, output };
  }

  private checkInput(input: Tensor): void {
    const fits =
      input.shape.length === this.inputShape.length && input.shape.every((d, i) => i === 0 || d === this.inputShape[i]);
    if (!fits) {
      throw new ShapeError(
        `plan: input has shape ${formatShape(input.shape)} but the plan takes [N, ${this.inputShape.slice(1).join(', ')}]`,
      );
    }
  }

  /**
   * Runs sample `n` of `input` into `output` on every thread (or, with `onTeam` false, on the
   * leader alone, the helpers left asleep): `command` tells the helpers what the run is (0
   * untraced, k traced into slot k − 1), `execute` runs the leader's share.
   */
  private runSample(
    input: Tensor,
    n: number,
    output: Tensor,
    command: number,
    execute: () => void,
    onTeam = true,
  ): void {
    const sample = shapeSize(this.inputShape);
    const outSize = shapeSize(this.outputShape);
    const team = onTeam ? this.team : null;
    this.kernels.f32(this.inputAddress, sample).set(input.data.subarray(n * sample, (n + 1) * sample));
    team?.start(command);
    try {
      execute();
    } catch (error) {
      team?.fail(); // release the helpers at once instead of leaving them waiting for this unit
      throw error;
    }
    team?.check();
    output.data.set(this.kernels.f32(this.outputAddress, outSize), n * outSize);
  }

  /**
   * Median milliseconds of each step over `repeats` runs of one sample (after one warm-up run),
   * beside the step's description: where the time goes.
   */
  profile(input: Tensor, repeats = 30): { step: string; ms: number }[] {
    this.run(input);
    const times = this.executors.map(() => [] as number[]);
    for (let r = 0; r < repeats; r++) {
      this.team?.start();
      this.executors.forEach((execute, i) => {
        const start = performance.now();
        execute();
        times[i]!.push(performance.now() - start);
      });
    }
    return times.map((t, i) => ({ step: this.summary.steps[i]!, ms: t.sort((a, b) => a - b)[t.length >> 1]! }));
  }

  /** Stops the helper threads' loops (they return); later runs throw. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.team?.quit();
  }
}

/** Compiles a graph into an inference plan on the WASM SIMD kernels. */
export function compilePlan(graph: Graph, options?: PlanOptions | WasmKernels): Promise<InferencePlan> {
  return InferencePlan.compile(graph, options);
}

function build<P>(
  graph: Graph,
  wasm: WasmKernels,
  threads: number,
  traceRuns: number,
  make: (
    kernels: WasmKernels,
    inputShape: Shape,
    outputShape: Shape,
    inputAddress: number,
    outputAddress: number,
    executors: (() => void)[],
    soloExecutors: (() => void)[],
    team: Team | null,
    tracing: Tracing | null,
    helpers: HelperSetup[],
    summary: PlanSummary,
  ) => P,
): P {
  const shapeOf = (value: string): Shape => graph.shapes.get(value)!;
  const steps = lowerForInference(graph);
  const { placements, copies } = placeValues(graph, steps);
  const place = (value: string): Placement => placements.get(value) ?? { root: value, offset: 0 };

  // Weights first: they live as long as the plan.
  const weightStart = wasm.mark();
  const prepared = steps.map((step) => prepare(graph, step, wasm));
  const weightBytes = wasm.mark() - weightStart;

  // Scratch shared by every 3×3 step: a padded plane (all input planes for the stem), and the
  // im2col patch matrix of one band.
  let scratchFloats = 16;
  let colFloats = 4;
  for (const { lowering, split, inputs, nodes } of steps) {
    const kernel = lowering.kernel;
    if (lowering.kernel === 'max-pool') {
      const a = nodes[0]!.attrs as Pool2dAttrs;
      const [, , oh, ow] = shapeOf(nodes[0]!.output) as [number, number, number, number];
      const floats = wasm.exports.poolPlaneFloats(oh, ow, a.kernel[0], a.kernel[1], lowering.stride);
      scratchFloats = Math.max(scratchFloats, floats);
    }
    if (lowering.kernel === 'dwconv') {
      const [, , h, w] = shapeOf(inputs[0]!) as [number, number, number, number];
      scratchFloats = Math.max(scratchFloats, wasm.exports.paddedPlaneFloatsBy(h, w, lowering.pad));
    }
    if (kernel === 'dwconv3x3' || kernel === 'stem3x3s2' || kernel === 'pool3x3s2') {
      const [, c, h, w] = shapeOf(inputs[0]!) as [number, number, number, number];
      const planes = kernel === 'stem3x3s2' ? c : 1;
      scratchFloats = Math.max(scratchFloats, planes * wasm.exports.paddedPlaneFloats(h, w));
    }
    if (lowering.kernel === 'stem3x3s2' || lowering.kernel === 'im2col-gemm') {
      const k = lowering.kernel === 'stem3x3s2' ? lowering.conv.inChannels * 9 : im2colRows(lowering.conv);
      colFloats = Math.max(colFloats, k * split.bandRows * lowering.conv.outWidth + 4);
    }
  }
  // One scratch area and patch matrix per thread.
  const scratch = Array.from({ length: threads }, () => wasm.allocFloats(scratchFloats));
  const col = Array.from({ length: threads }, () => wasm.allocFloats(colFloats));

  // Arena: one buffer per root value, alive from its first write to its last read.
  const sizes = new Map<string, number>();
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const touch = (value: string, index: number, write: boolean): void => {
    const { root } = place(value);
    if (!sizes.has(root)) sizes.set(root, bufferFloats(graph, root, steps));
    if (write) first.set(root, Math.min(first.get(root) ?? index, index));
    last.set(root, Math.max(last.get(root) ?? index, index));
  };
  touch(graph.input.name, -1, true);
  steps.forEach((step, i) => {
    for (const value of step.inputs) touch(value, i, false);
    if (step.residual !== null) touch(step.residual, i, false);
    touch(step.output, i, true);
  });
  touch(graph.output, steps.length, false);
  const { offsets, total } = planArena(sizes, first, last);
  const arena = wasm.allocBytes(total);
  const address = (value: string): number => {
    const { root, offset } = place(value);
    return arena + offsets.get(root)! + offset * 4;
  };

  const located: Located = { address, planes: (value) => place(value).planes ?? null, copies };
  const phases = steps.map((step, i) => phasesOf(graph, step, prepared[i]!, wasm, located, threads, scratch[0]!));
  if (threads > 1) shareIndependentPhases(graph, steps, phases, located);
  const areas = (t: number): { scratch: number; col: number } => ({ scratch: scratch[t]!, col: col[t]! });
  const all = phases.flat();
  const unitsOf = (phase: Phase): number => ('main' in phase ? 1 : phase.units.length);
  for (const [i, stepPhases] of phases.entries()) {
    if (stepPhases.some((phase) => unitsOf(phase) > MAX_UNITS)) {
      throw new LoweringError(`${describeStep(steps[i]!)}: a phase has more than ${MAX_UNITS} units`);
    }
  }
  // One thread alone runs every unit of a phase in order, with no atomics.
  const whole = (phase: Phase): (() => void) =>
    'main' in phase ? phase.main : bindCalls(wasm.exports, phase.units.flat(), areas(0));
  let team: Team | null = null;
  let control = 0;
  const solo = phases.map((stepPhases) => {
    const parts = stepPhases.map(whole);
    return parts.length === 1 ? parts[0]! : () => parts.forEach((part) => part());
  });
  let executors = solo;
  if (threads > 1) {
    // Every thread runs the same program, claiming units (./threads/team.ts); the leader's bound
    // phases also hold the reference steps, which only it runs.
    control = wasm.allocBytes(teamBytes(all.length));
    const leader = all.map((phase) =>
      'main' in phase
        ? { leaderOnly: true, units: [phase.main] }
        : { leaderOnly: false, units: phase.units.map((calls) => bindCalls(wasm.exports, calls, areas(0))) },
    );
    const shared = new Team(wasm.memory, control, threads, leader);
    team = shared;
    let first = 0;
    executors = phases.map((stepPhases) => {
      const from = first;
      const to = (first += stepPhases.length);
      return () => {
        for (let p = from; p < to; p++) shared.phase(p);
      };
    });
  }
  const phaseCount = all.length;
  const tracing: Tracing | null =
    traceRuns === 0
      ? null
      : {
          region: {
            address: wasm.allocBytes(traceBytes(traceRuns, threads, phaseCount)),
            runs: traceRuns,
            origin: performance.timeOrigin,
          },
          parts: threads === 1 ? all.map(whole) : [],
          units: all.map(unitsOf),
          stepOf: phases.flatMap((stepPhases, step) => stepPhases.map(() => step)),
          alongside: all.map((phase) => ('units' in phase ? (phase.alongside ?? []) : [])),
          phaseInStep: phases.flatMap((stepPhases) => stepPhases.map((_, phase) => phase)),
        };
  const program = encodeProgram(
    all.map((phase): ProgramPhase =>
      'main' in phase ? { leaderOnly: true, units: [] } : { leaderOnly: false, units: phase.units },
    ),
  );
  const helpers = Array.from({ length: threads - 1 }, (_, i) => ({
    memory: wasm.memory,
    controlAddress: control,
    threads,
    thread: i + 1,
    trace: tracing?.region ?? null,
    program,
    areas: areas(i + 1),
  }));
  const summary: PlanSummary = {
    variant: wasm.variant,
    steps: steps.map(describeStep),
    stepNodes: steps.map((step) => step.nodes.map((n) => n.output)),
    splits: steps.map((step) => step.split),
    arenaBytes: total,
    weightBytes,
  };
  return make(
    wasm,
    graph.input.shape,
    shapeOf(graph.output),
    address(graph.input.name),
    address(graph.output),
    executors,
    solo,
    team,
    tracing,
    helpers,
    summary,
  );
}

// ---------------------------------------------------------------------------------------------
// Memory

/**
 * The plane that each of a step's `channels` output channels lands on: its own, or with a fused
 * channel shuffle its shuffled position (an output remap: the shuffle's inverse, which is the
 * shuffle with C/g groups). 1×1 convolutions and concats both remap this way.
 */
export function outputPlanes(channels: number, shuffleGroups: number): Int32Array {
  return shuffleGroups > 0
    ? channelShuffleSource(channels, channels / shuffleGroups)
    : Int32Array.from({ length: channels }, (_, o) => o);
}

/** How the executors find values: addresses, plane maps of parts written in place, copied parts. */
interface Located {
  address: (value: string) => number;
  planes: (value: string) => Int32Array | null;
  copies: ReadonlyMap<string, readonly string[]>;
}

/**
 * Where values live when they are not buffers of their own (`placeValues`):
 * - `placements`: aliases (a flatten, a channel slice: planes of its input at batch 1) and the parts
 *   of a concat that their producers write in place. A part of a shuffled concat lands on
 *   interleaved planes: `planes[j]` is the plane of its channel j, counted from its placement.
 * - `copies`: per concat, the parts that are copied into it instead.
 */
export interface Placements {
  placements: Map<string, Placement>;
  copies: Map<string, string[]>;
}

/** Steps that write each output plane at any address: a concat's part can be written in place. */
const WRITES_PLANES: readonly string[] = [
  'gemm1x1',
  'stem3x3s2',
  'im2col-gemm',
  'dwconv3x3',
  'dwconv',
  'pool3x3s2',
  'max-pool',
];
/** Steps that write each output channel at an address from a table: a shuffled concat's part too. */
const WRITES_ANY_PLANE: readonly string[] = ['gemm1x1', 'stem3x3s2', 'im2col-gemm'];

/**
 * Decides where aliases and concat parts live. A concat's part is written in place by its producer
 * when that step writes planes at any address (at any plane, for a shuffled concat), the part has
 * no other reader and no placement of its own; any other part is copied by the concat step. A
 * concat whose ReLU could not move into a copied part runs on its reference op instead.
 *
 * It moves activations into producers and may set a concat's lowering to 'reference': give it
 * steps of one's own. `mayPlace` adds a caller's condition (the int8 plan: the part's scale and
 * zero point are the concat's, so its bytes can stay as they are).
 */
export function placeValues(
  graph: Graph,
  steps: Step[],
  mayPlace: (part: string, producer: Step, concat: Step) => boolean = () => true,
): Placements {
  const producer = new Map(steps.map((step) => [step.output, step]));
  const uses = new Map<string, number>();
  for (const step of steps) {
    for (const value of [...step.inputs, ...(step.residual === null ? [] : [step.residual])]) {
      uses.set(value, (uses.get(value) ?? 0) + 1);
    }
  }
  const placements = new Map<string, Placement>();
  const copies = new Map<string, string[]>();
  const resolve = (value: string): Placement => placements.get(value) ?? { root: value, offset: 0 };
  const planeFloats = (value: string): number => {
    const [, , h, w] = graph.shapes.get(value)!;
    return (h ?? 1) * (w ?? 1);
  };
  for (const step of steps) {
    const lowering = step.lowering;
    if (lowering.kernel === 'flatten' || lowering.kernel === 'channel-slice') {
      // An alias: the flattened value is its input; a channel slice, planes of it (batch 1).
      const from = resolve(step.inputs[0]!);
      const start = lowering.kernel === 'channel-slice' ? lowering.start * planeFloats(step.inputs[0]!) : 0;
      placements.set(step.output, { ...from, offset: from.offset + start });
      continue;
    }
    if (lowering.kernel !== 'concat') continue;
    const channels = graph.shapes.get(step.output)![1]!;
    const shuffled = step.shuffleGroups > 0;
    const planeOf = outputPlanes(channels, step.shuffleGroups);
    const writable = shuffled ? WRITES_ANY_PLANE : WRITES_PLANES;
    const inPlace = (part: string): boolean => {
      const from = producer.get(part);
      return (
        from !== undefined &&
        writable.includes(from.lowering.kernel) &&
        // The concat's activation moves into the part, which may already apply that one or none.
        (from.activation === null || step.activation === null || from.activation === step.activation) &&
        uses.get(part) === 1 &&
        part !== graph.output &&
        !placements.has(part) &&
        mayPlace(part, from, step)
      );
    };
    const copied = step.inputs.filter((part) => !inPlace(part));
    if (copied.length > 0 && step.activation !== null) {
      step.lowering = { kernel: 'reference', reason: 'a part is copied, and the copy cannot apply the activation' };
      continue;
    }
    let offset = 0;
    const target = resolve(step.output);
    for (const part of step.inputs) {
      const partChannels = graph.shapes.get(part)![1]!;
      if (!copied.includes(part)) {
        placements.set(
          part,
          shuffled
            ? { ...target, planes: planeOf.slice(offset, offset + partChannels) }
            : { root: target.root, offset: target.offset + offset * planeFloats(part) },
        );
        if (step.activation !== null) producer.get(part)!.activation = step.activation;
      }
      offset += partChannels;
    }
    if (copied.length > 0) copies.set(step.output, copied);
  }
  // Later concats may have moved a root: resolve chains once more.
  for (const [value, p] of placements) {
    const outer = placements.get(p.root);
    if (outer !== undefined && outer.root !== p.root) {
      if (outer.planes !== undefined)
        throw new LoweringError(`${value}: an alias of a part written on interleaved planes`);
      placements.set(value, { ...p, root: outer.root, offset: outer.offset + p.offset });
    }
  }
  return { placements, copies };
}

function bufferFloats(graph: Graph, root: string, steps: Step[]): number {
  const size = shapeSize(graph.shapes.get(root)!);
  const fc = steps.find((s) => s.lowering.kernel === 'dense' && s.output === root);
  return fc === undefined ? size : Math.ceil(size / 8) * 8;
}

/** Greedy by size: each buffer goes at the lowest offset free during its whole lifetime. */
function planArena(
  sizes: Map<string, number>,
  first: Map<string, number>,
  last: Map<string, number>,
): { offsets: Map<string, number>; total: number } {
  const bytes = (root: string): number => Math.ceil((sizes.get(root)! * 4 + 64) / 16) * 16;
  const order = [...sizes.keys()].sort((a, b) => bytes(b) - bytes(a) || a.localeCompare(b));
  const placed: { root: string; start: number; end: number }[] = [];
  const offsets = new Map<string, number>();
  let total = 0;
  for (const root of order) {
    const lo = first.get(root) ?? -1;
    const hi = last.get(root) ?? lo;
    const clashes = placed
      .filter((p) => (first.get(p.root) ?? -1) <= hi && lo <= (last.get(p.root) ?? -1))
      .sort((a, b) => a.start - b.start);
    let offset = 0;
    for (const p of clashes) {
      if (offset + bytes(root) <= p.start) break;
      offset = Math.max(offset, p.end);
    }
    placed.push({ root, start: offset, end: offset + bytes(root) });
    offsets.set(root, offset);
    total = Math.max(total, offset + bytes(root));
  }
  return { offsets, total };
}

// ---------------------------------------------------------------------------------------------
// Weights

interface Prepared {
  /** Per group: packed weights and bias addresses. */
  groups: { weights: number; bias: number }[];
}

function prepare(graph: Graph, step: Step, wasm: WasmKernels): Prepared {
  const lowering = step.lowering;
  switch (lowering.kernel) {
    case 'gemm1x1':
    case 'im2col-gemm':
    case 'stem3x3s2': {
      const { weight, bias, cOut } = foldedConv(graph, step);
      const groups = lowering.conv.groups;
      const m = cOut / groups;
      const k = weight.length / cOut;
      return {
        groups: Array.from({ length: groups }, (_, g) => ({
          weights: wasm.upload(packGemmWeights(weight.subarray(g * m * k, (g + 1) * m * k), m, k)),
          bias: wasm.upload(padBias(bias.subarray(g * m, (g + 1) * m), m, 4)),
        })),
      };
    }
    case 'dwconv3x3':
    case 'dwconv': {
      const { weight, bias } = foldedConv(graph, step);
      return { groups: [{ weights: wasm.upload(weight), bias: wasm.upload(bias) }] };
    }
    case 'dense': {
      const node = step.nodes[0]!;
      const [outF, inF] = graph.shapes.get(node.inputs[1]!)! as [number, number];
      const weight = graph.params.get(node.inputs[1]!)!.tensor.data;
      const bias = node.inputs[2] === undefined ? null : graph.params.get(node.inputs[2])!.tensor.data;
      return {
        groups: [
          { weights: wasm.upload(packDenseWeights(weight, outF, inF)), bias: wasm.upload(padBias(bias, outF, 8)) },
        ],
      };
    }
    default:
      return { groups: [] };
  }
}

// ---------------------------------------------------------------------------------------------
// Execution

/**
 * A step's work, in phases that depend on each other in order: each phase is a list of units
 * (each a list of kernel calls, run by whichever thread claims it; see ./threads/team.ts), or a
 * reference step that runs on the leader only.
 */
/** A phase: units any thread may claim (with the later steps whose units joined it), or a leader-only step. */
type Phase = { units: KernelCall[][]; alongside?: number[] } | { main: () => void };

/**
 * Chunks per thread of a phase. NOTE: measured on a 2-vCPU AMD EPYC VM (bench/compare-builds.mjs,
 * results/compare-builds-2026-12-02-*): 6 chunks per thread cost 4–33% at 2 threads on a quiet
 * machine (g8 1×: 5.19 → 6.90 ms), 1 chunk costs nothing measurable there, and with one core kept
 * busy by another process 1 chunk still takes g3 1× from 21.8 ms (static shares) to 8.2 ms: a late
 * thread's whole chunk is simply claimed by the leader. Finer chunks would bound the wait for a
 * thread descheduled mid-chunk; that needs a cheaper claim first.
 */
const CHUNKS_PER_THREAD = 1;

/**
 * A phase over `n` consecutive units of the split, grouped into chunks of consecutive units
 * (one chunk with one thread); `make` gives the calls of units [u0, u1).
 */
function chunked(n: number, threads: number, make: (u0: number, u1: number) => KernelCall[]): Phase {
  const chunks = threads === 1 ? Math.min(n, 1) : Math.min(n, CHUNKS_PER_THREAD * threads);
  return { units: Array.from({ length: chunks }, (_, k) => make(...share(n, k, chunks))) };
}

/**
 * Steps whose units touch only their inputs, their output and the executing thread's own scratch
 * (SCRATCH, COL): a phase of one may run beside a phase of another. Not the stem (its pad phase
 * writes thread 0's scratch, which every thread then reads) nor the general im2col (its patches).
 */
const SIDE_BY_SIDE: ReadonlySet<string> = new Set([
  'gemm1x1',
  'dwconv3x3',
  'dwconv',
  'pool3x3s2',
  'max-pool',
  'global-avg-pool',
  'dense',
  'concat', // its copies
  'activation',
  'add',
  'scale-channels',
]);

/**
 * Independent neighbours share one phase: when step i + 1 reads nothing that step i writes, and
 * neither writes memory the other reads or writes (arena buffers may be reused once a value is
 * dead, so this compares byte ranges, not value names), the units of step i + 1's first phase join
 * step i's last phase. A stride-2 ShuffleNet unit's shortcut pool and its first pointwise GConv
 * both read only the unit's input: one phase instead of two, so one wait for the slowest thread
 * instead of two. Sequentially (one thread, or a solo run) the units run in the same order as
 * before, so outputs do not change.
 */
function shareIndependentPhases(
  graph: Graph,
  steps: readonly Step[],
  phases: Phase[][],
  { address, planes }: Located,
): void {
  type Range = [number, number];
  const range = (value: string, write: boolean): Range => {
    const shape = graph.shapes.get(value)!;
    const map = planes(value);
    // A part written on interleaved planes of a shuffled concat spans up to its last plane.
    const floats = map === null ? shapeSize(shape) : (Math.max(...map) + 1) * (shape[2]! * shape[3]!);
    const start = address(value);
    return [start, start + 4 * (write ? Math.ceil(floats / 8) * 8 : floats)]; // writes may round up to 8 (the FC)
  };
  const reads = (step: Step): Range[] =>
    [...step.inputs, ...(step.residual === null ? [] : [step.residual])].map((v) => range(v, false));
  const overlaps = (a: readonly Range[], b: readonly Range[]): boolean =>
    a.some(([a0, a1]) => b.some(([b0, b1]) => a0 < b1 && b0 < a1));
  for (let i = 0; i + 1 < steps.length; i++) {
    const [a, b] = [steps[i]!, steps[i + 1]!];
    const [last, first] = [phases[i]!.at(-1), phases[i + 1]![0]];
    if (last === undefined || first === undefined || !('units' in last) || !('units' in first)) continue;
    if (!SIDE_BY_SIDE.has(a.lowering.kernel) || !SIDE_BY_SIDE.has(b.lowering.kernel)) continue;
    if (last.units.length + first.units.length > MAX_UNITS) continue;
    const [aWrites, bWrites] = [[range(a.output, true)], [range(b.output, true)]];
    if (overlaps(reads(b), aWrites) || overlaps(bWrites, reads(a)) || overlaps(aWrites, bWrites)) continue;
    last.units.push(...first.units);
    last.alongside = [...(last.alongside ?? []), i + 1];
    phases[i + 1]!.shift();
  }
}

/** The kernel calls of a step, per phase and thread, for the lowering's decision and split. */
function phasesOf(
  graph: Graph,
  step: Step,
  prepared: Prepared,
  wasm: WasmKernels,
  { address, planes, copies }: Located,
  threads: number,
  /** Thread 0's scratch area: the stem's padded input planes, which every thread reads. */
  scratch0: number,
): Phase[] {
  const act = step.activation === null ? 0 : activationCodes[step.activation];
  const [, c, h, w] = graph.shapes.get(step.inputs[0] ?? step.nodes[0]!.inputs[0]!)! as [
    number,
    number,
    number,
    number,
  ];
  const input = step.inputs.length > 0 ? address(step.inputs[0]!) : 0;
  const output = address(step.output);
  const { lowering, split } = step;
  /** A phase over the split's units. */
  const units = (make: (u0: number, u1: number) => KernelCall[]): Phase => chunked(split.units, threads, make);
  switch (lowering.kernel) {
    case 'gemm1x1':
    case 'im2col-gemm':
    case 'stem3x3s2': {
      const { outChannels: cOut, outHeight: oh, outWidth: ow, groups } = lowering.conv;
      const pixels = oh * ow;
      const m = cOut / groups;
      const kPerGroup =
        lowering.kernel === 'gemm1x1'
          ? c / groups
          : lowering.kernel === 'stem3x3s2'
            ? c * 9
            : im2colRows(lowering.conv);
      // Output channel o lands on its plane (outputPlanes); a part of a shuffled concat then lands
      // on that plane's place in the concat.
      const own = outputPlanes(cOut, step.shuffleGroups);
      const inConcat = planes(step.output);
      const planeOf = inConcat === null ? own : own.map((p) => inConcat[p]!);
      const residual = step.residual === null ? 0 : address(step.residual);
      const tables = prepared.groups.map((_, g) => ({
        out: wasm.upload(Uint32Array.from({ length: m }, (_, r) => output + planeOf[g * m + r]! * pixels * 4)),
        res:
          residual === 0
            ? 0
            : wasm.upload(Uint32Array.from({ length: m }, (_, r) => residual + (g * m + r) * pixels * 4)),
      }));
      if (lowering.kernel === 'stem3x3s2') {
        // Pad the input planes once (split by planes) into thread 0's scratch, then the bands of
        // output rows (split by bands), each on the patch matrix of the thread that runs it.
        const only = prepared.groups[0]!;
        const table = tables[0]!;
        const band = split.bandRows;
        const planeFloats = wasm.exports.paddedPlaneFloats(h, w);
        const pad = chunked(c, threads, (c0, c1) => [
          call('padPlanes', c1 - c0, h, w, input + c0 * h * w * 4, scratch0 + c0 * planeFloats * 4),
        ]);
        const gemm = units((b0, b1) => {
          const calls: KernelCall[] = [];
          for (let b = b0; b < b1; b++) {
            const oy = b * band;
            const rows = Math.min(band, oh - oy);
            const bandPixels = rows * ow;
            calls.push(
              call('im2col3x3s2', c, h, w, scratch0, oy, oy + rows, COL),
              // prettier-ignore
              call('gemm4x8', kPerGroup, cOut, bandPixels, only.weights, only.bias, COL, bandPixels * 4, table.out, 0, oy * ow * 4, act),
            );
          }
          return calls;
        });
        return [pad, gemm];
      }
      if (lowering.kernel === 'im2col-gemm') {
        // Units of (band of output rows, group), each on the patch matrix of the thread that runs it.
        const { kernelHeight: kh, kernelWidth: kw, strideHeight, strideWidth, padTop, padLeft } = lowering.conv;
        const { dilationHeight, dilationWidth } = lowering.conv;
        const cPerGroup = c / groups;
        const band = split.bandRows;
        return [
          units((u0, u1) => {
            const calls: KernelCall[] = [];
            for (let u = u0; u < u1; u++) {
              const oy = Math.floor(u / groups) * band;
              const g = u % groups;
              const rows = Math.min(band, oh - oy);
              const bandPixels = rows * ow;
              const p = prepared.groups[g]!;
              const tb = tables[g]!;
              calls.push(
                // prettier-ignore
                call('im2col', cPerGroup, h, w, kh, kw, strideHeight, strideWidth, padTop, padLeft, dilationHeight, dilationWidth, ow, oy, oy + rows, input + g * cPerGroup * h * w * 4, COL),
                // prettier-ignore
                call('gemm4x8', kPerGroup, m, bandPixels, p.weights, p.bias, COL, bandPixels * 4, tb.out, tb.res, oy * ow * 4, act),
              );
            }
            return calls;
          }),
        ];
      }
      if (split.axis === 'pixel-blocks') {
        // 1×1 over a large input: the blocks of pixels of all groups, in order, in chunks of
        // consecutive blocks; one GEMM call per block runs every output channel of its group over it. Blocks
        // are multiples of 8 pixels, so every pixel gets the tile it gets unsplit (bit-identical).
        const block = split.blockPixels;
        const blocksPerGroup = Math.ceil(pixels / block);
        return [
          units((u0, u1) => {
            const calls: KernelCall[] = [];
            for (let u = u0; u < u1; u++) {
              const g = Math.floor(u / blocksPerGroup);
              const p0 = (u % blocksPerGroup) * block;
              const count = Math.min(block, pixels - p0);
              const p = prepared.groups[g]!;
              const tb = tables[g]!;
              const x = input + (g * kPerGroup * pixels + p0) * 4;
              // prettier-ignore
              calls.push(call('gemm4x8', kPerGroup, m, count, p.weights, p.bias, x, pixels * 4, tb.out, tb.res, p0 * 4, act));
            }
            return calls;
          }),
        ];
      }
      // 1×1: the blocks of 4 output channels of all groups, in order, in chunks of consecutive
      // blocks; a chunk's run of blocks within one group is one GEMM call.
      const blocksPerGroup = Math.ceil(m / 4);
      return [
        units((u0, u1) => {
          const calls: KernelCall[] = [];
          for (let u = u0; u < u1;) {
            const g = Math.floor(u / blocksPerGroup);
            const b0 = u % blocksPerGroup;
            const b1 = Math.min(blocksPerGroup, b0 + (u1 - u));
            const r0 = b0 * 4;
            const rows = Math.min(m, b1 * 4) - r0;
            const p = prepared.groups[g]!;
            const tb = tables[g]!;
            calls.push(
              // prettier-ignore
              call('gemm4x8', kPerGroup, rows, pixels, p.weights + r0 * kPerGroup * 4, p.bias + r0 * 4, input + g * kPerGroup * pixels * 4, pixels * 4, tb.out + r0 * 4, tb.res === 0 ? 0 : tb.res + r0 * 4, 0, act),
            );
            u += b1 - b0;
          }
          return calls;
        }),
      ];
    }
    case 'dwconv3x3': {
      const { outHeight: oh, outWidth: ow } = lowering.conv;
      const p = prepared.groups[0]!;
      return [
        // prettier-ignore
        units((c0, c1) => [call('dwconv3x3', c1 - c0, h, w, lowering.stride, input + c0 * h * w * 4, p.weights + c0 * 36, p.bias + c0 * 4, output + c0 * oh * ow * 4, act, SCRATCH)]),
      ];
    }
    case 'dwconv': {
      const { outHeight: oh, outWidth: ow } = lowering.conv;
      const { size: k, stride, pad } = lowering;
      const p = prepared.groups[0]!;
      return [
        // prettier-ignore
        units((c0, c1) => [call('dwconvKxK', c1 - c0, h, w, k, stride, pad, input + c0 * h * w * 4, p.weights + c0 * k * k * 4, p.bias + c0 * 4, output + c0 * oh * ow * 4, act, SCRATCH)]),
      ];
    }
    case 'max-pool': {
      const a = step.nodes[0]!.attrs as Pool2dAttrs;
      const [, , oh, ow] = graph.shapes.get(step.nodes[0]!.output)! as [number, number, number, number];
      const [kh, kw] = a.kernel;
      const [top, left] = a.padding;
      const stride = lowering.stride;
      return [
        // prettier-ignore
        units((c0, c1) => [call('maxPoolKxK', c1 - c0, h, w, kh, kw, stride, top, left, oh, ow, input + c0 * h * w * 4, output + c0 * oh * ow * 4, act, SCRATCH)]),
      ];
    }
    case 'pool3x3s2': {
      const [, , oh, ow] = graph.shapes.get(step.nodes[0]!.output)! as [number, number, number, number];
      const average = lowering.average ? 1 : 0;
      return [
        // prettier-ignore
        units((c0, c1) => [call('pool3x3s2', c1 - c0, h, w, lowering.pad, average, input + c0 * h * w * 4, output + c0 * oh * ow * 4, act, SCRATCH)]),
      ];
    }
    case 'global-avg-pool':
      return [units((c0, c1) => [call('globalAvgPool', c1 - c0, h * w, input + c0 * h * w * 4, output + c0 * 4)])];
    case 'activation':
    case 'add': {
      // Element-wise: units are planes of NCHW or blocks of 8 values (the lowering's split).
      const count = shapeSize(graph.shapes.get(step.output)!);
      const per = split.axis === 'planes' ? count / split.units : 8;
      const other = lowering.kernel === 'add' ? address(step.inputs[1]!) : 0;
      return [
        units((u0, u1) => {
          const from = u0 * per;
          const n = Math.min(count, u1 * per) - from;
          const [x, y] = [input + from * 4, output + from * 4];
          return [
            lowering.kernel === 'add'
              ? call('addActivation', n, x, other + from * 4, y, act)
              : call('activation', n, x, y, act),
          ];
        }),
      ];
    }
    case 'scale-channels': {
      const scale = address(step.inputs[1]!);
      const pixels = h * w;
      // prettier-ignore
      return [units((c0, c1) => [call('scaleChannels', c1 - c0, pixels, input + c0 * pixels * 4, scale + c0 * 4, output + c0 * pixels * 4)])];
    }
    case 'dense': {
      // Blocks of 8 outputs (dense8 writes whole blocks; the buffer is padded to a multiple of 8).
      const [outF, inF] = graph.shapes.get(step.nodes[0]!.inputs[1]!)! as [number, number];
      const p = prepared.groups[0]!;
      return [
        units((b0, b1) => {
          const o0 = b0 * 8;
          const count = Math.min(outF, b1 * 8) - o0;
          return [call('dense8', inF, count, input, p.weights + o0 * inF * 4, p.bias + o0 * 4, output + o0 * 4, act)];
        }),
      ];
    }
    case 'concat': {
      // Parts written in place cost nothing; the others are copied plane by plane, to their
      // shuffled planes if a shuffle was fused.
      const [, channels, oh, ow] = graph.shapes.get(step.output)! as [number, number, number, number];
      const pixels = oh * ow;
      const planeOf = outputPlanes(channels, step.shuffleGroups);
      const runs: { src: number; dst: number[] }[] = [];
      let offset = 0;
      for (const part of step.inputs) {
        const partChannels = graph.shapes.get(part)![1]!;
        if (copies.get(step.output)?.includes(part)) {
          const dst = Array.from({ length: partChannels }, (_, j) => output + planeOf[offset + j]! * pixels * 4);
          runs.push({ src: address(part), dst });
        }
        offset += partChannels;
      }
      if (runs.length === 0) return [];
      // One unit per copied plane, in chunks of consecutive planes; a chunk's run within a part is one call.
      const flat = runs.flatMap((run, r) => run.dst.map((_, j) => [r, j] as const));
      const tables = runs.map((run) => wasm.upload(Uint32Array.from(run.dst)));
      return [
        chunked(flat.length, threads, (u0, u1) => {
          const calls: KernelCall[] = [];
          for (let u = u0; u < u1;) {
            const [r, j] = flat[u]!;
            const count = Math.min(u1 - u, runs[r]!.dst.length - j);
            calls.push(call('copyPlanes', count, pixels, runs[r]!.src + j * pixels * 4, tables[r]! + j * 4));
            u += count;
          }
          return calls;
        }),
      ];
    }
    case 'flatten':
    case 'channel-slice':
      return []; // aliases
    case 'reference':
      return [{ main: referenceExecutor(graph, step, wasm, address) }];
    default:
      // lowerForInference turns every epilogue op it could not fuse into a reference step.
      throw new LoweringError(`${describeStep(step)}: no inference executor for kernel ${lowering.kernel}`);
  }
}

/** Runs the step's nodes on the reference ops, reading and writing the arena. */
function referenceExecutor(
  graph: Graph,
  step: Step,
  wasm: WasmKernels,
  address: (value: string) => number,
): () => void {
  const external = step.inputs.map((value) => ({ value, at: address(value), shape: graph.shapes.get(value)! }));
  const output = address(step.output);
  return () => {
    const values = new Map<string, Tensor>();
    for (const { value, at, shape } of external)
      values.set(value, new Tensor(shape, wasm.f32(at, shapeSize(shape)).slice()));
    for (const node of step.nodes) {
      const out = new Tensor(graph.shapes.get(node.output)!);
      const inputs = node.inputs.map((name) => values.get(name) ?? graph.params.get(name)!.tensor);
      getOp(node.op).forward(inputs, node.attrs, out);
      values.set(node.output, out);
    }
    const result = values.get(step.output)!;
    wasm.f32(output, result.size).set(result.data);
  };
}
