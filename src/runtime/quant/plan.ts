/**
 * The int8 plan: a QuantizedNetwork's steps (the lowering's, as the float plan runs them) on the
 * fast int8 kernels (src/kernels/wasm/assembly/int8.ts), bit for bit what runQuantized computes.
 *
 *   QuantizedNetwork ──► QuantizedPlan.create: one uint8 buffer per value (aliases and concat
 *        parts placed as the float plan places them), weights packed once, per step a phase of
 *        units of int8 kernel calls (or a leader-only closure)
 *        ──► run(input): quantize the input, the phases in order, the float32 logits
 *
 * Threads (docs/int8.md): with threads > 1 the plan lives in a shared memory over the int8
 * module's shared build, and the float plan's team (../threads/team.ts) runs its program: every
 * thread claims units of each phase (GEMM pixel blocks of a group, depthwise and pool plane
 * chunks), over its own scratch (packed input, padded planes) and patch matrix. `helpers` holds
 * what the threads − 1 helper workers need (startHelpers in ../session.ts starts them). A step
 * with no int8 kernel, and a concat's copied parts, run on the leader alone.
 */
import { channelMultipliers, roundHalfEven, type QParams } from '../../kernels/reference/quantized.js';
import {
  epilogueParams,
  instantiateSharedInt8Kernels,
  Int8Kernels,
  type Int8Activation,
} from '../../kernels/wasm/int8.js';
import {
  packQdenseWeights,
  packQgemm7Weights,
  packQgemmWeights,
  qpackPairStride,
  sevenBitWeights,
} from '../../kernels/wasm/pack.js';
import { pool2dGeometry } from '../../ops/pool2d.js';
import { ShapeError, ShuffleNetError } from '../../errors.js';
import { formatShape, sameShape, shapeSize, Tensor } from '../../tensor/tensor.js';
import type { GraphNode } from '../../graph/graph.js';
import { describeStep } from '../lower.js';
import { outputPlanes, placeValues } from '../plan.js';
import {
  bindCalls,
  COL,
  encodeProgram,
  int8Call,
  registerKernelFamily,
  SCRATCH,
  Team,
  teamBytes,
  type BoundPhase,
  type HelperSetup,
  type KernelCall,
} from '../threads/team.js';
import { perSample, runQuantizedStep } from './execute.js';
import { preAddValue, weightName, type QuantizedNetwork } from './network.js';

/** The f32 clamps of an activation in output steps (±65536: saturation only; the kernels need |u| ≤ 2²²). */
function clamps(activation: string | null, scale: number): [number, number] {
  if (activation === 'relu') return [0, 65536];
  if (activation === 'relu6') return [0, Math.fround(6 / scale)];
  return [-65536, 65536];
}

/** Bytes of packed input a block keeps in cache (pairs of rows × pixels × 4 bytes). */
const BLOCK_BYTES = 64 * 1024;

/**
 * Pixels per block of a GEMM over `pairs` packed row pairs: a multiple of 8, at least 8; with
 * threads, small enough that every thread gets blocks of each group.
 */
function blockPixels(pairs: number, pixels: number, threads: number): number {
  const cached = Math.max(8, Math.floor(BLOCK_BYTES / (pairs * 4) / 8) * 8);
  return threads === 1 ? cached : Math.min(cached, Math.max(8, Math.ceil(pixels / (2 * threads) / 8) * 8));
}

/**
 * A depthwise or pool step's units: chunks of consecutive planes (all of them on one thread, else 2
 * chunks per thread), each one call made by `call(first plane, planes)`.
 */
function planeUnits(
  planes: number,
  threads: number,
  call: (first: number, count: number) => KernelCall,
): KernelCall[][] {
  const chunk = threads === 1 ? planes : Math.ceil(planes / (2 * threads));
  const units: KernelCall[][] = [];
  for (let c0 = 0; c0 < planes; c0 += chunk) units.push([call(c0, Math.min(chunk, planes - c0))]);
  return units;
}

/** Kernels whose int8 form exists for these activations (others run on the reference executor). */
const CLAMPED: readonly (string | null)[] = [null, 'relu', 'relu6'];

export interface QuantizedPlanOptions {
  /** Load the relaxed-SIMD build of the int8 kernels where the engine runs it right (default true). */
  relaxedSimd?: boolean;
  /**
   * Which GEMM runs steps with 7-bit weights: 'auto' (default) qgemm7 on the relaxed build, qgemm
   * otherwise; 'quads' qgemm7 on either build (on SIMD128 it is slower: for tests of its packing).
   */
  gemm?: 'auto' | 'quads';
  /**
   * Threads each step is split over (default 1). With threads > 1 the plan runs on the shared
   * build (SIMD128) and `plan.helpers` holds what threads − 1 helper workers need: start them
   * with startHelpers (src/runtime/session.ts) before the first `run`.
   */
  threads?: number;
}

// Helper workers that import this module can run threaded int8 plans.
registerKernelFamily('int8', instantiateSharedInt8Kernels);

/** One step's work: units of kernel calls any thread may run, or a closure only the leader runs. */
type Phase = { step: number; units: KernelCall[][] } | { step: number; main: () => void };

export class QuantizedPlan {
  private disposed = false;

  private constructor(
    private readonly kernels: Int8Kernels,
    private readonly network: QuantizedNetwork,
    private readonly floatInput: number,
    private readonly inputAddress: number,
    private readonly outputAddress: number,
    /** One closure per phase: its units in order on this thread (one thread), or its team phase. */
    private readonly executors: (() => void)[],
    /** Each phase's step, an index in network.steps. */
    private readonly phaseSteps: number[],
    private readonly team: Team | null,
    /** What each helper worker needs (empty with one thread). */
    readonly helpers: HelperSetup[],
  ) {}

  /** Threads each step is split over. */
  get threads(): number {
    return this.helpers.length + 1;
  }

  /** The build of the int8 kernels this plan runs, and why not relaxed SIMD where it was refused. */
  get variant(): { build: string; relaxedRefused: string | null } {
    return { build: this.kernels.variant, relaxedRefused: this.kernels.relaxedRefused };
  }

  static async create(network: QuantizedNetwork, options: QuantizedPlanOptions = {}): Promise<QuantizedPlan> {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new ShuffleNetError(`int8 plan: threads must be an integer from 1 to 64, got ${threads}`);
    }
    const kernels = await Int8Kernels.create({
      ...(options.relaxedSimd === undefined ? {} : { relaxedSimd: options.relaxedSimd }),
      ...(threads > 1 ? { shared: true } : {}),
    });
    const quadsWherever = options.gemm === 'quads';
    const { graph, activations } = network;
    const k = kernels.exports;
    const size = (value: string): number => shapeSize(graph.shapes.get(value)!);
    // Aliases and concat parts written in place, as the float plan places them (placeValues), on
    // steps of our own (placing moves a concat's ReLU into its parts' producers). A part stays in
    // place only with the concat's scale and zero point (its bytes are then the concat's as they
    // are) and a producer with an int8 kernel that writes planes where asked.
    const steps = network.steps.map((step) => ({ ...step }));
    const { placements, copies } = placeValues(graph, steps, (part, producer, concat) => {
      const partP = activations.get(part);
      const concatP = activations.get(concat.output);
      return (
        partP !== undefined &&
        concatP !== undefined &&
        partP.scale === concatP.scale &&
        partP.zeroPoint === concatP.zeroPoint &&
        CLAMPED.includes(concat.activation ?? producer.activation)
      );
    });
    const address = new Map<string, number>();
    /** A value's bytes: its own buffer, or its place in another's. */
    const buffer = (value: string): number => {
      const placed = placements.get(value);
      if (placed !== undefined) return buffer(placed.root) + placed.offset;
      let at = address.get(value);
      if (at === undefined) address.set(value, (at = kernels.allocBytes(size(value))));
      return at;
    };
    const outputFloats = size(graph.output);
    const outputAddress = kernels.allocBytes(outputFloats * 4);
    address.set(graph.output, outputAddress);
    const inputAddress = buffer(graph.input.name);
    const params = (activation: string | null, out: QParams, residual?: { pre: QParams; res: QParams }): number =>
      kernels.upload(epilogueParams(activation as Int8Activation, out, residual));
    // Per-thread areas: SCRATCH (a GEMM's packed input and sums, or a padded plane) and COL (a
    // band's patches), sized for the largest step below.
    let scratchBytes = 16;
    let colBytes = 16;
    const phases: Phase[] = [];
    for (const [index, step] of steps.entries()) {
      const isOutput = step.output === graph.output;
      const outP: QParams = isOutput ? { scale: 1, zeroPoint: 0 } : activations.get(step.output)!;
      const lowering = step.lowering;
      const activation = step.activation;
      const input = step.inputs[0]!;
      const inP = activations.get(input)!;
      const fast = CLAMPED.includes(activation) && !(isOutput && lowering.kernel !== 'dense');
      const units: KernelCall[][] = [];
      const unitsPhase = (): void => void phases.push({ step: index, units });
      if (
        fast &&
        (lowering.kernel === 'gemm1x1' || lowering.kernel === 'stem3x3s2' || lowering.kernel === 'im2col-gemm')
      ) {
        const conv = lowering.conv;
        const w = network.weights.get(weightName(step))!;
        const groups = conv.groups;
        const m = conv.outChannels / groups;
        const kk = (conv.inChannels / groups) * conv.kernelHeight * conv.kernelWidth;
        const pixels = conv.outHeight * conv.outWidth;
        const inPlane = conv.inHeight * conv.inWidth;
        const pairs = Math.ceil(kk / 2);
        // 7-bit weights on the relaxed build: quads of input channels through the 8-bit dot product.
        const quads =
          (kernels.variant === 'relaxed-simd' || quadsWherever) && sevenBitWeights(w.weight) ? Math.ceil(kk / 4) : 0;
        // Blocks of pixels (bands of output rows for a general convolution) whose packed input
        // stays in cache while every block of output channels passes over it.
        const im2col = lowering.kernel !== 'gemm1x1';
        const wanted = blockPixels(pairs, pixels, threads);
        const rowsPerBand = im2col ? Math.max(1, Math.floor(wanted / conv.outWidth)) : 0;
        const block = im2col ? rowsPerBand * conv.outWidth : wanted;
        const stride = qpackPairStride(block);
        // The packed pairs (or quads, then their per-pixel sums: one more stride).
        scratchBytes = Math.max(scratchBytes, (pairs + 1) * stride);
        if (im2col) colBytes = Math.max(colBytes, kk * block);
        const residual = step.residual;
        const preP = residual !== null ? activations.get(preAddValue(step))! : null;
        const multipliers = channelMultipliers(inP.scale, w.scales, (preP ?? outP).scale);
        const p = params(activation, outP, preP !== null ? { pre: preP, res: activations.get(residual!)! } : undefined);
        const out = buffer(step.output);
        // Output channel o lands on its plane; a part of a shuffled concat, on that plane's place in it.
        const own = outputPlanes(conv.outChannels, step.shuffleGroups);
        const inConcat = placements.get(step.output)?.planes;
        const planes = inConcat === undefined ? own : own.map((plane) => inConcat[plane]!);
        for (let g = 0; g < groups; g++) {
          const groupWeight = w.weight.subarray(g * m * kk, (g + 1) * m * kk);
          const groupBias = w.bias.subarray(g * m, (g + 1) * m);
          const seven = quads > 0 ? packQgemm7Weights(groupWeight, groupBias, m, kk, inP.zeroPoint) : null;
          const weights = kernels.upload(seven?.weights ?? packQgemmWeights(groupWeight, m, kk));
          const bias = kernels.upload(
            seven?.bias ?? Int32Array.from({ length: Math.ceil(m / 4) * 4 }, (_, i) => groupBias[i] ?? 0),
          );
          const mult = kernels.upload(
            Float32Array.from({ length: Math.ceil(m / 4) * 4 }, (_, i) => multipliers[g * m + i] ?? 0),
          );
          const table = kernels.upload(Uint32Array.from({ length: m }, (_, r) => out + planes[g * m + r]! * pixels));
          const resTable =
            residual === null
              ? 0
              : kernels.upload(Uint32Array.from({ length: m }, (_, r) => buffer(residual) + (g * m + r) * pixels));
          const groupInput = buffer(input) + g * (conv.inChannels / groups) * inPlane;
          const c = conv;
          for (let p0 = 0; p0 < pixels; p0 += block) {
            const n = Math.min(block, pixels - p0);
            const calls: KernelCall[] = [];
            if (im2col) {
              const oy0 = p0 / c.outWidth;
              calls.push(
                int8Call(
                  'qim2col',
                  groupInput,
                  c.inChannels / groups,
                  c.inHeight,
                  c.inWidth,
                  c.kernelHeight,
                  c.kernelWidth,
                  c.strideHeight,
                  c.strideWidth,
                  c.padTop,
                  c.padLeft,
                  c.dilationHeight,
                  c.dilationWidth,
                  oy0,
                  oy0 + n / c.outWidth,
                  c.outWidth,
                  inP.zeroPoint,
                  COL,
                ),
              );
            }
            const [rows, rowStride] = im2col ? [COL, n] : [groupInput + p0, inPlane];
            if (quads > 0) {
              calls.push(int8Call('qpack4', rows, rowStride, kk, n, SCRATCH, stride));
              calls.push(int8Call('qgemm7', quads, m, n, weights, bias, mult, SCRATCH, stride, table, resTable, p0, p));
            } else {
              calls.push(int8Call('qpack', rows, rowStride, kk, n, inP.zeroPoint, SCRATCH, stride));
              calls.push(int8Call('qgemm', pairs, m, n, weights, bias, mult, SCRATCH, stride, table, resTable, p0, p));
            }
            units.push(calls);
          }
        }
        unitsPhase();
        continue;
      }
      if (fast && lowering.kernel === 'dwconv3x3') {
        const conv = lowering.conv;
        const w = network.weights.get(weightName(step))!;
        const multipliers = channelMultipliers(inP.scale, w.scales, outP.scale);
        const weights = kernels.upload(Int32Array.from(w.weight));
        const bias = kernels.upload(w.bias);
        const mult = kernels.upload(multipliers);
        scratchBytes = Math.max(scratchBytes, (conv.inHeight + 2) * k.qdwPaddedWidth(conv.inWidth) * 2);
        const p = params(activation, outP);
        const from = buffer(input);
        const out = buffer(step.output);
        const inPlane = conv.inHeight * conv.inWidth;
        const outPlane = conv.outHeight * conv.outWidth;
        units.push(
          ...planeUnits(conv.outChannels, threads, (c0, count) =>
            int8Call(
              'qdwconv3x3',
              count,
              from + c0 * inPlane,
              conv.inHeight,
              conv.inWidth,
              inP.zeroPoint,
              weights + c0 * 36,
              bias + c0 * 4,
              mult + c0 * 4,
              lowering.stride,
              out + c0 * outPlane,
              SCRATCH,
              p,
            ),
          ),
        );
        unitsPhase();
        continue;
      }
      if (fast && lowering.kernel === 'pool3x3s2' && !isOutput) {
        const main = step.nodes[0]! as GraphNode & { op: 'maxPool2d' | 'avgPool2d' };
        const inShape = graph.shapes.get(main.inputs[0]!)!;
        const g = pool2dGeometry(inShape, graph.shapes.get(main.output)!, main.attrs);
        const average = lowering.average;
        const m = average ? Math.fround(inP.scale / Math.fround(9 * outP.scale)) : Math.fround(inP.scale / outP.scale);
        const multiplier = kernels.upload(Float32Array.of(m));
        scratchBytes = Math.max(scratchBytes, (g.inHeight + 2) * k.qdwPaddedWidth(g.inWidth) * 2);
        const p = params(activation, outP);
        const from = buffer(input);
        const out = buffer(step.output);
        const inPlane = g.inHeight * g.inWidth;
        const outPlane = g.outHeight * g.outWidth;
        units.push(
          ...planeUnits(g.channels, threads, (c0, count) =>
            int8Call(
              'qpool3x3s2',
              count,
              from + c0 * inPlane,
              g.inHeight,
              g.inWidth,
              inP.zeroPoint,
              lowering.pad,
              average ? 1 : 0,
              multiplier,
              out + c0 * outPlane,
              SCRATCH,
              p,
            ),
          ),
        );
        unitsPhase();
        continue;
      }
      if (fast && lowering.kernel === 'global-avg-pool' && !isOutput) {
        const shape = graph.shapes.get(input)!;
        const planes = shape[0]! * shape[1]!;
        const spatial = shapeSize(shape) / planes;
        const m = Math.fround(inP.scale / Math.fround(spatial * outP.scale));
        const p = params(activation, outP);
        const multiplier = kernels.upload(Float32Array.of(m));
        units.push([
          int8Call('qglobalAvgPool', buffer(input), planes, spatial, inP.zeroPoint, multiplier, buffer(step.output), p),
        ]);
        unitsPhase();
        continue;
      }
      if (lowering.kernel === 'dense' && (activation === null || (!isOutput && fast))) {
        const w = network.weights.get(weightName(step))!;
        const [outF, inF] = graph.shapes.get(weightName(step))! as [number, number];
        const weights = kernels.upload(packQdenseWeights(w.weight, outF, inF));
        const bias = kernels.upload(w.bias);
        const mult = kernels.upload(channelMultipliers(inP.scale, w.scales, outP.scale));
        const x16 = kernels.allocBytes(Math.ceil(inF / 8) * 16); // one unit: one thread uses it
        const p = params(activation, outP);
        units.push([
          int8Call(
            'qdense',
            inF,
            outF,
            buffer(input),
            inP.zeroPoint,
            weights,
            bias,
            mult,
            buffer(step.output),
            isOutput ? 1 : 0,
            x16,
            p,
          ),
        ]);
        unitsPhase();
        continue;
      }
      // An alias (a flatten, a channel slice) lives in its input's buffer: nothing to run, unless
      // it is the graph's output, which is float32 (the reference step below dequantizes it).
      const alias = lowering.kernel === 'flatten' || lowering.kernel === 'channel-slice';
      if (alias && !isOutput && placements.has(step.output)) {
        continue;
      }
      if (fast && lowering.kernel === 'concat' && !isOutput) {
        const out = buffer(step.output);
        const [, channels] = graph.shapes.get(step.output)! as [number, number];
        const plane = size(step.output) / channels;
        const planes = outputPlanes(channels, step.shuffleGroups);
        let offset = 0;
        const copied = copies.get(step.output) ?? [];
        const parts = step.nodes[0]!.inputs.map((part) => {
          const partP = activations.get(part)!;
          const count = graph.shapes.get(part)![1]!;
          const first = offset;
          offset += count;
          // The same scale and nothing to clamp: the bytes as they are.
          const identity =
            partP.scale === outP.scale &&
            partP.zeroPoint === outP.zeroPoint &&
            (activation === null || (activation === 'relu' && outP.zeroPoint === 0));
          const m = Math.fround(partP.scale / outP.scale);
          const [lo, hi] = clamps(activation, outP.scale);
          return { part, partP, count, first, identity, m, lo, hi };
        });
        // Parts written in place by their producers need nothing here.
        const toCopy = parts.filter((t) => copied.includes(t.part));
        if (toCopy.length === 0) continue;
        phases.push({
          step: index,
          main: () => {
            const memory = kernels.u8(0, kernels.memory.buffer.byteLength);
            for (const t of toCopy) {
              const from = buffer(t.part);
              for (let c = 0; c < t.count; c++) {
                const src = memory.subarray(from + c * plane, from + (c + 1) * plane);
                const dst = out + planes[t.first + c]! * plane;
                if (t.identity) memory.set(src, dst);
                else {
                  for (let i = 0; i < plane; i++) {
                    const u = Math.min(Math.max(Math.fround((src[i]! - t.partP.zeroPoint) * t.m), t.lo), t.hi);
                    memory[dst + i] = Math.min(255, Math.max(0, roundHalfEven(u) + outP.zeroPoint));
                  }
                }
              }
            }
          },
        });
        continue;
      }
      // No int8 kernel: the reference int8 executor, over copies of the step's inputs.
      const reads = [...new Set([...step.inputs, ...(step.residual === null ? [] : [step.residual])])];
      for (const value of reads) buffer(value);
      const out = isOutput ? outputAddress : buffer(step.output);
      phases.push({
        step: index,
        main: () => {
          const values = new Map(reads.map((v) => [v, kernels.u8(buffer(v), size(v)).slice()]));
          const result = runQuantizedStep(network, step, values, isOutput);
          if (result instanceof Float32Array) kernels.f32(out, result.length).set(result);
          else kernels.u8(out, result.length).set(result);
        },
      });
    }
    const floatInput = kernels.allocFloats(size(graph.input.name));
    const areas = Array.from({ length: threads }, () => ({
      scratch: kernels.allocBytes(scratchBytes),
      col: kernels.allocBytes(colBytes),
    }));
    // One thread alone runs every unit of a phase in order.
    const bind = (calls: KernelCall[]): (() => void) => bindCalls(k, calls, areas[0]!, 'int8');
    let executors = phases.map((phase) => ('main' in phase ? phase.main : bind(phase.units.flat())));
    let team: Team | null = null;
    let helpers: HelperSetup[] = [];
    if (threads > 1) {
      const control = kernels.allocBytes(teamBytes(phases.length));
      const leader: BoundPhase[] = phases.map((phase) =>
        'main' in phase
          ? { leaderOnly: true, units: [phase.main] }
          : { leaderOnly: false, units: phase.units.map(bind) },
      );
      const shared = new Team(kernels.memory, control, threads, leader);
      team = shared;
      executors = phases.map((_, p) => () => void shared.phase(p));
      const program = encodeProgram(
        phases.map((phase) =>
          'main' in phase ? { leaderOnly: true, units: [] } : { leaderOnly: false, units: phase.units },
        ),
      );
      helpers = Array.from({ length: threads - 1 }, (_, i) => ({
        memory: kernels.memory,
        controlAddress: control,
        threads,
        thread: i + 1,
        program,
        family: 'int8',
        areas: areas[i + 1]!,
        trace: null,
      }));
    }
    return new QuantizedPlan(
      kernels,
      network,
      floatInput,
      inputAddress,
      outputAddress,
      executors,
      phases.map((phase) => phase.step),
      team,
      helpers,
    );
  }

  /** Lets the helper workers leave their loops (a threaded plan); later runs are refused. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.team?.quit();
  }

  /** Runs a batch [N, C, H, W] (the traced shape but N), one sample at a time. */
  runBatch(input: Tensor): Tensor {
    return perSample(this.network, input, (sample) => this.run(sample));
  }

  /**
   * Median milliseconds of each step over `repeats` runs of one sample (after one warm-up run),
   * beside the step's description, as InferencePlan.profile reports them: where the time goes.
   * The input's quantization is not in any step.
   */
  profile(input: Tensor, repeats = 30): { step: string; ms: number }[] {
    this.run(input);
    const steps = this.network.steps;
    const times = steps.map(() => [] as number[]);
    for (let r = 0; r < repeats; r++) {
      const total = new Float64Array(steps.length);
      this.team?.start();
      this.executors.forEach((execute, i) => {
        const start = performance.now();
        execute();
        total[this.phaseSteps[i]!] += performance.now() - start;
      });
      this.team?.check();
      total.forEach((ms, i) => times[i]!.push(ms));
    }
    return times.map((t, i) => ({ step: describeStep(steps[i]!), ms: t.sort((a, b) => a - b)[t.length >> 1]! }));
  }

  /** Runs one input of the traced shape [1, C, H, W]; returns the float32 logits. */
  run(input: Tensor): Tensor {
    if (this.disposed) throw new ShuffleNetError('int8 plan: the plan was disposed');
    const { graph, activations } = this.network;
    if (!sameShape(input.shape, graph.input.shape)) {
      throw new ShapeError(
        `int8 plan: input has shape ${formatShape(input.shape)} but the network was quantized for ${formatShape(graph.input.shape)}`,
      );
    }
    const p = activations.get(graph.input.name)!;
    this.kernels.f32(this.floatInput, input.size).set(input.data);
    this.kernels.exports.qquantize(this.floatInput, input.size, p.scale, p.zeroPoint, this.inputAddress);
    const team = this.team;
    team?.start();
    try {
      for (const execute of this.executors) execute();
    } catch (error) {
      team?.fail(); // release the helpers at once instead of leaving them waiting for this phase
      throw error;
    }
    team?.check();
    const shape = graph.shapes.get(graph.output)!;
    return new Tensor(shape, this.kernels.f32(this.outputAddress, shapeSize(shape)).slice());
  }
}
