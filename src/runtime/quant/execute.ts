/**
 * The int8 reference executor: runs a QuantizedNetwork step by step on the reference int8 kernels
 * (src/kernels/reference/quantized.ts). It defines what a quantized network computes; the fast
 * int8 kernels are tested against it, and it against onnxruntime running the same network in QDQ
 * form (test/quantize.test.ts).
 *
 * Every step reads uint8 values and writes uint8 values at its output's scale, except the step
 * that writes the graph's output, which writes float32 (the logits are not rounded to 256 levels).
 * A step with no int8 rule (a squeeze-and-excitation scale, a node the fast kernels lack) runs on
 * float: its inputs dequantized, its nodes on the reference ops, its output quantized.
 */
import { ShapeError } from '../../errors.js';
import type { GraphNode } from '../../graph/graph.js';
import { channelShuffleSource } from '../../kernels/reference/channels.js';
import {
  activateSteps,
  clampU8,
  dequantizeLinear,
  qavgPool2dSums,
  qconv2dAccumulators,
  qdenseAccumulators,
  qglobalAvgPoolSums,
  qmaxPool2d,
  quantizeLinear,
  residualSteps,
  channelMultipliers,
  roundHalfEven,
  type QParams,
  type StepActivation,
} from '../../kernels/reference/quantized.js';
import { getOp } from '../../ops/index.js';
import { pool2dGeometry } from '../../ops/pool2d.js';
import { formatShape, sameShape, shapeSize, Tensor, type Shape } from '../../tensor/tensor.js';
import type { LoweredStep } from '../lower.js';
import { preAddValue, weightName, type QuantizedNetwork } from './network.js';

/** The float scale of a float output: values are written unrounded. */
const FLOAT: QParams = { scale: 1, zeroPoint: 0 };

/**
 * Runs one input [1, C, H, W] (the traced shape) and returns the graph's output in float32.
 * `observe` sees every uint8 value as it is computed (the input's and each step output's).
 */
export function runQuantized(
  network: QuantizedNetwork,
  input: Tensor,
  observe?: (value: string, q: Uint8Array) => void,
): Tensor {
  const { graph } = network;
  if (!sameShape(input.shape, graph.input.shape)) {
    throw new ShapeError(
      `runQuantized: input has shape ${formatShape(input.shape)} but the network was quantized for ${formatShape(graph.input.shape)}`,
    );
  }
  const q = new Map<string, Uint8Array>();
  const first = new Uint8Array(input.size);
  quantizeLinear(input.data, network.activations.get(graph.input.name)!, first);
  q.set(graph.input.name, first);
  observe?.(graph.input.name, first);
  let result: Float32Array | null = null;
  for (const step of network.steps) {
    const isOutput = step.output === graph.output;
    const out = runQuantizedStep(network, step, q, isOutput);
    if (isOutput) result = out as Float32Array;
    else {
      q.set(step.output, out as Uint8Array);
      observe?.(step.output, out as Uint8Array);
    }
  }
  if (result === null) {
    // The graph's output is an alias of a quantized value (a flatten at the end): dequantize it.
    const last = network.steps[network.steps.length - 1]!;
    result = dequantized(network, last.inputs[0]!, q);
  }
  return new Tensor(graph.shapes.get(graph.output)!, result);
}

function dequantized(network: QuantizedNetwork, value: string, q: ReadonlyMap<string, Uint8Array>): Float32Array {
  return dequantizedArray(q.get(value)!, network.activations.get(value)!);
}

export function runQuantizedStep(
  network: QuantizedNetwork,
  step: LoweredStep,
  q: ReadonlyMap<string, Uint8Array>,
  isOutput: boolean,
): Uint8Array | Float32Array {
  const { graph, activations } = network;
  const lowering = step.lowering;
  const outShape = graph.shapes.get(step.output)!;
  const outP = isOutput ? FLOAT : activations.get(step.output)!;
  const inP = (value: string): QParams => activations.get(value)!;
  const input = q.get(step.inputs[0]!)!;
  const activation = step.activation as StepActivation | null;
  switch (lowering.kernel) {
    case 'gemm1x1':
    case 'stem3x3s2':
    case 'im2col-gemm':
    case 'dwconv3x3':
    case 'dwconv':
    case 'dense': {
      const w = network.weights.get(weightName(step))!;
      const x = inP(step.inputs[0]!);
      const main = step.nodes[0]!;
      const mainShape = graph.shapes.get(main.output)!;
      const acc = new Int32Array(shapeSize(mainShape));
      if (lowering.kernel === 'dense') {
        const [batch, inFeatures] = graph.shapes.get(main.inputs[0]!)! as [number, number];
        qdenseAccumulators(input, x.zeroPoint, w.weight, w.bias, batch, inFeatures, mainShape[1]!, acc);
      } else {
        qconv2dAccumulators(input, x.zeroPoint, w.weight, w.bias, lowering.conv, acc);
      }
      const channels = mainShape[1]!;
      const plane = acc.length / (mainShape[0]! * channels);
      const u = new Float32Array(acc.length);
      if (step.residual !== null) {
        // Conv → Q → DQ → Add → activation → Q (QLinearConv, then QLinearAdd).
        const c = inP(preAddValue(step));
        const r = inP(step.residual);
        const residual = q.get(step.residual)!;
        const mc = channelMultipliers(x.scale, w.scales, c.scale);
        for (let i = 0; i < acc.length; i++) {
          u[i] = residualSteps(acc[i]!, mc[Math.floor(i / plane) % channels]!, c, residual[i]!, r, outP);
        }
      } else {
        const m = channelMultipliers(x.scale, w.scales, outP.scale);
        for (let i = 0; i < acc.length; i++) u[i] = Math.fround(acc[i]!) * m[Math.floor(i / plane) % channels]!;
      }
      const out = finish(u, activation, outP, isOutput);
      return step.shuffleGroups > 0 ? shuffled(out, outShape, step.shuffleGroups) : out;
    }
    case 'pool3x3s2':
    case 'max-pool': {
      const main = step.nodes[0]! as GraphNode & { op: 'maxPool2d' | 'avgPool2d' };
      const inShape = graph.shapes.get(main.inputs[0]!)!;
      const g = pool2dGeometry(inShape, graph.shapes.get(main.output)!, main.attrs);
      const x = inP(step.inputs[0]!);
      const n = shapeSize(outShape);
      const u = new Float32Array(n);
      if (main.op === 'maxPool2d') {
        const best = new Uint8Array(n);
        qmaxPool2d(input, best, g);
        // Max commutes with the (monotone) requantization; at one scale this is a copy.
        const m = Math.fround(x.scale / outP.scale);
        for (let i = 0; i < n; i++) u[i] = (best[i]! - x.zeroPoint) * m;
      } else {
        const sums = new Int32Array(n);
        const divisors = new Int32Array(n);
        qavgPool2dSums(input, x.zeroPoint, g, main.attrs.countIncludePad, sums, divisors);
        for (let i = 0; i < n; i++) u[i] = sums[i]! * Math.fround(x.scale / Math.fround(divisors[i]! * outP.scale));
      }
      return finish(u, activation, outP, isOutput);
    }
    case 'global-avg-pool': {
      const x = inP(step.inputs[0]!);
      const inShape = graph.shapes.get(step.inputs[0]!)!;
      const planes = inShape[0]! * inShape[1]!;
      const spatial = shapeSize(inShape) / planes;
      const sums = new Int32Array(planes);
      qglobalAvgPoolSums(input, x.zeroPoint, planes, spatial, sums);
      const m = Math.fround(x.scale / Math.fround(spatial * outP.scale));
      const u = new Float32Array(planes);
      for (let i = 0; i < planes; i++) u[i] = Math.fround(sums[i]!) * m;
      return finish(u, activation, outP, isOutput);
    }
    case 'concat': {
      const [batch, channels] = outShape as [number, number];
      const plane = shapeSize(outShape) / (batch * channels);
      const u = new Float32Array(shapeSize(outShape));
      let offset = 0;
      for (const part of step.nodes[0]!.inputs) {
        const p = inP(part);
        const values = q.get(part)!;
        const partChannels = graph.shapes.get(part)![1]!;
        const m = Math.fround(p.scale / outP.scale);
        for (let n = 0; n < batch; n++) {
          for (let i = 0; i < partChannels * plane; i++) {
            u[(n * channels + offset) * plane + i] = (values[n * partChannels * plane + i]! - p.zeroPoint) * m;
          }
        }
        offset += partChannels;
      }
      const out = finish(u, activation, outP, isOutput);
      return step.shuffleGroups > 0 ? shuffled(out, outShape, step.shuffleGroups) : out;
    }
    case 'channel-slice': {
      const [batch, channels] = graph.shapes.get(step.inputs[0]!)! as [number, number];
      const plane = shapeSize(outShape) / (batch * outShape[1]!);
      const { start, end } = lowering;
      const out = new Uint8Array(shapeSize(outShape));
      for (let n = 0; n < batch; n++) {
        out.set(
          input.subarray((n * channels + start) * plane, (n * channels + end) * plane),
          n * (end - start) * plane,
        );
      }
      return isOutput ? dequantizedArray(out, inP(step.inputs[0]!)) : out;
    }
    case 'flatten':
      return isOutput ? dequantizedArray(input, inP(step.inputs[0]!)) : input.slice();
    case 'activation': {
      const x = inP(step.inputs[0]!);
      const m = Math.fround(x.scale / outP.scale);
      const u = new Float32Array(input.length);
      for (let i = 0; i < input.length; i++) u[i] = (input[i]! - x.zeroPoint) * m;
      return finish(u, activation, outP, isOutput);
    }
    case 'add': {
      const [a, b] = step.nodes[0]!.inputs.map((v) => ({ values: q.get(v)!, p: inP(v) })) as [
        { values: Uint8Array; p: QParams },
        { values: Uint8Array; p: QParams },
      ];
      const ma = Math.fround(a.p.scale / outP.scale);
      const mb = Math.fround(b.p.scale / outP.scale);
      const u = new Float32Array(a.values.length);
      for (let i = 0; i < u.length; i++) {
        u[i] = Math.fround(ma * (a.values[i]! - a.p.zeroPoint)) + Math.fround(mb * (b.values[i]! - b.p.zeroPoint));
      }
      return finish(u, activation, outP, isOutput);
    }
    default:
      return onFloat(network, step, q, isOutput);
  }
}

/**
 * A step's values in output steps (each already rounded to float32 by its Float32Array) → the
 * activation → rounding and the zero point (or, for the graph's output, the float values).
 */
function finish(
  u: Float32Array,
  activation: StepActivation | null,
  p: QParams,
  isOutput: boolean,
): Uint8Array | Float32Array {
  if (activation !== null) for (let i = 0; i < u.length; i++) u[i] = activateSteps(u[i]!, activation, p.scale);
  if (isOutput) return u;
  const out = new Uint8Array(u.length);
  for (let i = 0; i < u.length; i++) out[i] = clampU8(roundHalfEven(u[i]!) + p.zeroPoint);
  return out;
}

function dequantizedArray(values: Uint8Array, p: QParams): Float32Array {
  const out = new Float32Array(values.length);
  dequantizeLinear(values, p, out);
  return out;
}

/** The channel shuffle as a gather of planes (channelShuffleSource). */
function shuffled<T extends Uint8Array | Float32Array>(values: T, shape: Shape, groups: number): T {
  const [batch, channels] = shape as [number, number];
  const plane = values.length / (batch * channels);
  const source = channelShuffleSource(channels, groups);
  const out = values.slice() as T;
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      out.set(
        values.subarray((n * channels + source[c]!) * plane, (n * channels + source[c]! + 1) * plane),
        (n * channels + c) * plane,
      );
    }
  }
  return out;
}

/** A step with no int8 rule: dequantize its inputs, run its nodes on float, quantize its output. */
function onFloat(
  network: QuantizedNetwork,
  step: LoweredStep,
  q: ReadonlyMap<string, Uint8Array>,
  isOutput: boolean,
): Uint8Array | Float32Array {
  const { graph } = network;
  const values = new Map<string, Tensor>();
  for (const value of new Set([...step.inputs, ...(step.residual === null ? [] : [step.residual])])) {
    values.set(value, new Tensor(graph.shapes.get(value)!, dequantized(network, value, q)));
  }
  for (const node of step.nodes) {
    const out = new Tensor(graph.shapes.get(node.output)!);
    getOp(node.op).forward(
      node.inputs.map((name) => values.get(name) ?? graph.params.get(name)!.tensor),
      node.attrs,
      out,
    );
    values.set(node.output, out);
  }
  const result = values.get(step.output)!.data;
  if (isOutput) return result;
  const out = new Uint8Array(result.length);
  quantizeLinear(result, network.activations.get(step.output)!, out);
  return out;
}

/** `runQuantized` on each sample of a batch [N, C, H, W] (the traced shape but N). */
export function runQuantizedBatch(network: QuantizedNetwork, input: Tensor): Tensor {
  return perSample(network, input, (sample) => runQuantized(network, sample));
}

/**
 * Runs `run` (one input of the traced shape [1, C, H, W] → its output) on each sample of a batch
 * [N, C, H, W] and stacks the outputs: int8 networks are traced and run at batch 1.
 */
export function perSample(network: QuantizedNetwork, input: Tensor, run: (sample: Tensor) => Tensor): Tensor {
  const one = network.graph.input.shape;
  const per = shapeSize(one);
  if (input.shape.length !== one.length || !sameShape(input.shape.slice(1), one.slice(1))) {
    throw new ShapeError(
      `runQuantized: input has shape ${formatShape(input.shape)}; expected [N, ${one.slice(1).join(', ')}]`,
    );
  }
  const batch = input.shape[0]!;
  const outShape = network.graph.shapes.get(network.graph.output)!;
  const out = new Tensor([batch, ...outShape.slice(1)]);
  const outPer = shapeSize(outShape);
  for (let n = 0; n < batch; n++) {
    out.data.set(run(new Tensor(one, input.data.subarray(n * per, (n + 1) * per))).data, n * outPer);
  }
  return out;
}
