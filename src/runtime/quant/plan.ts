/**
 * The int8 plan: a QuantizedNetwork's steps (the lowering's, as the float plan runs them) on the
 * fast int8 kernels (src/kernels/wasm/assembly/int8.ts), bit for bit what runQuantized computes.
 *
 *   QuantizedNetwork ──► QuantizedPlan.create: one uint8 buffer per value (an alias shares its
 *        source's bytes), weights packed once, per step a list of kernel calls
 *        ──► run(input): quantize the input, the calls in order, the float32 logits
 *
 * First version (docs/int8.md): one thread; every value has its own buffer (no arena reuse: uint8
 * activations are a quarter of the float plan's); a concat copies its parts; a convolution that is
 * not 1×1 gathers its patches (qim2col) for the GEMM; a step with no int8 kernel runs on the
 * reference int8 executor over copies of its inputs.
 */
import { channelMultipliers, roundHalfEven, type QParams } from '../../kernels/reference/quantized.js';
import { epilogueParams, Int8Kernels, type Int8Activation } from '../../kernels/wasm/int8.js';
import {
  packQdenseWeights,
  packQgemm7Weights,
  packQgemmWeights,
  qpackPairStride,
  sevenBitWeights,
} from '../../kernels/wasm/pack.js';
import { pool2dGeometry } from '../../ops/pool2d.js';
import { ShapeError } from '../../errors.js';
import { formatShape, sameShape, shapeSize, Tensor } from '../../tensor/tensor.js';
import type { GraphNode } from '../../graph/graph.js';
import { describeStep } from '../lower.js';
import { outputPlanes, placeValues } from '../plan.js';
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

/** Pixels per block of a GEMM over `pairs` packed row pairs: a multiple of 8, at least 8. */
function blockPixels(pairs: number): number {
  return Math.max(8, Math.floor(BLOCK_BYTES / (pairs * 4) / 8) * 8);
}

const isGemmKernel = (kernel: string): boolean => kernel === 'gemm1x1';

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
}

export class QuantizedPlan {
  private constructor(
    private readonly kernels: Int8Kernels,
    private readonly network: QuantizedNetwork,
    private readonly floatInput: number,
    private readonly inputAddress: number,
    private readonly outputAddress: number,
    private readonly calls: (() => void)[],
    /** Each call's step, an index in network.steps (a grouped GEMM makes one call per group). */
    private readonly callSteps: number[],
  ) {}

  /** The build of the int8 kernels this plan runs, and why not relaxed SIMD where it was refused. */
  get variant(): { build: string; relaxedRefused: string | null } {
    return { build: this.kernels.variant, relaxedRefused: this.kernels.relaxedRefused };
  }

  static async create(network: QuantizedNetwork, options: QuantizedPlanOptions = {}): Promise<QuantizedPlan> {
    const kernels = await Int8Kernels.create(
      options.relaxedSimd === undefined ? {} : { relaxedSimd: options.relaxedSimd },
    );
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
    const calls: (() => void)[] = [];
    const callSteps: number[] = [];
    for (const [index, step] of steps.entries()) {
      // The calls made so far belong to the steps before this one.
      while (callSteps.length < calls.length) callSteps.push(index - 1);
      const isOutput = step.output === graph.output;
      const outP: QParams = isOutput ? { scale: 1, zeroPoint: 0 } : activations.get(step.output)!;
      const lowering = step.lowering;
      const activation = step.activation;
      const input = step.inputs[0]!;
      const inP = activations.get(input)!;
      const fast = CLAMPED.includes(activation) && !(isOutput && lowering.kernel !== 'dense');
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
        const rowsPerBand = isGemmKernel(lowering.kernel)
          ? 0
          : Math.max(1, Math.floor(blockPixels(pairs) / conv.outWidth));
        const block = rowsPerBand > 0 ? rowsPerBand * conv.outWidth : blockPixels(pairs);
        const stride = qpackPairStride(block);
        const packed = kernels.allocBytes(pairs * stride);
        const sums = quads > 0 ? kernels.allocBytes(stride) : 0; // ⌈block/8⌉·8 i32: stride bytes
        const residual = step.residual;
        const preP = residual !== null ? activations.get(preAddValue(step))! : null;
        const multipliers = channelMultipliers(inP.scale, w.scales, (preP ?? outP).scale);
        const p = params(activation, outP, preP !== null ? { pre: preP, res: activations.get(residual!)! } : undefined);
        const out = buffer(step.output);
        // Output channel o lands on its plane; a part of a shuffled concat, on that plane's place in it.
        const own = outputPlanes(conv.outChannels, step.shuffleGroups);
        const inConcat = placements.get(step.output)?.planes;
        const planes = inConcat === undefined ? own : own.map((plane) => inConcat[plane]!);
        const patches = rowsPerBand > 0 ? kernels.allocBytes(kk * block) : 0;
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
          calls.push(() => {
            for (let p0 = 0; p0 < pixels; p0 += block) {
              const n = Math.min(block, pixels - p0);
              if (rowsPerBand > 0) {
                const oy0 = p0 / c.outWidth;
                k.qim2col(
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
                  patches,
                );
              }
              const [rows, rowStride] = rowsPerBand > 0 ? [patches, n] : [groupInput + p0, inPlane];
              if (quads > 0) {
                k.qpack4(rows, rowStride, kk, n, packed, stride, sums);
                k.qgemm7(quads, m, n, weights, bias, mult, packed, stride, sums, table, resTable, p0, p);
              } else {
                k.qpack(rows, rowStride, kk, n, inP.zeroPoint, packed, stride);
                k.qgemm(pairs, m, n, weights, bias, mult, packed, stride, table, resTable, p0, p);
              }
            }
          });
        }
        continue;
      }
      if (fast && lowering.kernel === 'dwconv3x3') {
        const conv = lowering.conv;
        const w = network.weights.get(weightName(step))!;
        const multipliers = channelMultipliers(inP.scale, w.scales, outP.scale);
        const weights = kernels.upload(Int32Array.from(w.weight));
        const bias = kernels.upload(w.bias);
        const mult = kernels.upload(multipliers);
        const scratch = kernels.allocBytes((conv.inHeight + 2) * k.qdwPaddedWidth(conv.inWidth) * 2);
        const p = params(activation, outP);
        const from = buffer(input);
        const out = buffer(step.output);
        calls.push(() =>
          k.qdwconv3x3(
            conv.outChannels,
            from,
            conv.inHeight,
            conv.inWidth,
            inP.zeroPoint,
            weights,
            bias,
            mult,
            lowering.stride,
            out,
            scratch,
            p,
          ),
        );
        continue;
      }
      if (fast && lowering.kernel === 'pool3x3s2' && !isOutput) {
        const main = step.nodes[0]! as GraphNode & { op: 'maxPool2d' | 'avgPool2d' };
        const inShape = graph.shapes.get(main.inputs[0]!)!;
        const g = pool2dGeometry(inShape, graph.shapes.get(main.output)!, main.attrs);
        const average = lowering.average;
        const m = average ? Math.fround(inP.scale / Math.fround(9 * outP.scale)) : Math.fround(inP.scale / outP.scale);
        const scratch = kernels.allocBytes((g.inHeight + 2) * k.qdwPaddedWidth(g.inWidth) * 2);
        const p = params(activation, outP);
        const from = buffer(input);
        const out = buffer(step.output);
        calls.push(() =>
          k.qpool3x3s2(
            g.channels,
            from,
            g.inHeight,
            g.inWidth,
            inP.zeroPoint,
            lowering.pad,
            average ? 1 : 0,
            m,
            out,
            scratch,
            p,
          ),
        );
        continue;
      }
      if (fast && lowering.kernel === 'global-avg-pool' && !isOutput) {
        const shape = graph.shapes.get(input)!;
        const planes = shape[0]! * shape[1]!;
        const spatial = shapeSize(shape) / planes;
        const m = Math.fround(inP.scale / Math.fround(spatial * outP.scale));
        const p = params(activation, outP);
        const from = buffer(input);
        const out = buffer(step.output);
        calls.push(() => k.qglobalAvgPool(from, planes, spatial, inP.zeroPoint, m, out, p));
        continue;
      }
      if (lowering.kernel === 'dense' && (activation === null || (!isOutput && fast))) {
        const w = network.weights.get(weightName(step))!;
        const [outF, inF] = graph.shapes.get(weightName(step))! as [number, number];
        const weights = kernels.upload(packQdenseWeights(w.weight, outF, inF));
        const bias = kernels.upload(w.bias);
        const mult = kernels.upload(channelMultipliers(inP.scale, w.scales, outP.scale));
        const x16 = kernels.allocBytes(Math.ceil(inF / 8) * 16);
        const p = params(activation, outP);
        const from = buffer(input);
        const out = buffer(step.output);
        calls.push(() => k.qdense(inF, outF, from, inP.zeroPoint, weights, bias, mult, out, isOutput ? 1 : 0, x16, p));
        continue;
      }
      // An alias (a flatten, a channel slice) lives in its input's buffer: nothing to run.
      if (placements.has(step.output) && (lowering.kernel === 'flatten' || lowering.kernel === 'channel-slice')) {
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
        calls.push(() => {
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
        });
        continue;
      }
      // No int8 kernel: the reference int8 executor, over copies of the step's inputs.
      const reads = [...new Set([...step.inputs, ...(step.residual === null ? [] : [step.residual])])];
      for (const value of reads) buffer(value);
      const out = isOutput ? outputAddress : buffer(step.output);
      calls.push(() => {
        const values = new Map(reads.map((v) => [v, kernels.u8(buffer(v), size(v)).slice()]));
        const result = runQuantizedStep(network, step, values, isOutput);
        if (result instanceof Float32Array) kernels.f32(out, result.length).set(result);
        else kernels.u8(out, result.length).set(result);
      });
    }
    while (callSteps.length < calls.length) callSteps.push(network.steps.length - 1);
    const floatInput = kernels.allocFloats(size(graph.input.name));
    return new QuantizedPlan(kernels, network, floatInput, inputAddress, outputAddress, calls, callSteps);
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
      this.calls.forEach((call, i) => {
        const start = performance.now();
        call();
        total[this.callSteps[i]!] += performance.now() - start;
      });
      total.forEach((ms, i) => times[i]!.push(ms));
    }
    return times.map((t, i) => ({ step: describeStep(steps[i]!), ms: t.sort((a, b) => a - b)[t.length >> 1]! }));
  }

  /** Runs one input of the traced shape [1, C, H, W]; returns the float32 logits. */
  run(input: Tensor): Tensor {
    const { graph, activations } = this.network;
    if (!sameShape(input.shape, graph.input.shape)) {
      throw new ShapeError(
        `int8 plan: input has shape ${formatShape(input.shape)} but the network was quantized for ${formatShape(graph.input.shape)}`,
      );
    }
    const p = activations.get(graph.input.name)!;
    this.kernels.f32(this.floatInput, input.size).set(input.data);
    this.kernels.exports.qquantize(this.floatInput, input.size, p.scale, p.zeroPoint, this.inputAddress);
    for (const call of this.calls) call();
    const shape = graph.shapes.get(graph.output)!;
    return new Tensor(shape, this.kernels.f32(this.outputAddress, shapeSize(shape)).slice());
  }
}
