/**
 * Reverse-mode differentiation over a traced Graph. The forward keeps every value (the tape);
 * the backward walks the nodes in reverse, asks each op's gradient rule for its inputs'
 * gradients, and sums them per value. Parameter gradients land in tensors keyed by parameter
 * name (`stage2.0.gconv1.weight`), the names the optimiser and PyTorch use.
 *
 * @example
 * const graph = model.trace([8, 1, 28, 28], { training: true });
 * const tape = forwardWithTape(graph, images);
 * const { loss, gradient } = crossEntropy(tape.output, labels, { labelSmoothing: 0.1 });
 * const { parameters } = backward(tape, gradient); // Map: name → gradient tensor
 */
import { ShapeError } from '../errors.js';
import type { Graph } from '../graph/graph.js';
import { batchStatisticsReference, updateRunningStatisticsReference } from '../kernels/reference/normalization.js';
import { getOp } from '../ops/index.js';
import { formatShape, sameShape, Tensor } from '../tensor/tensor.js';
import { gradientRuleOf } from './rules.js';

export interface TapeOptions {
  /**
   * How training-mode batch norm folds this batch into its running statistics: `'momentum'` (the
   * default) with each layer's momentum, as PyTorch's train mode does; a number to use that
   * factor instead (BN re-estimation passes 1/k for a cumulative average); `'frozen'` to leave
   * them untouched.
   */
  runningStatistics?: 'momentum' | 'frozen' | number;
}

/** A forward pass that kept every value, ready for `backward`. */
export interface Tape {
  readonly graph: Graph;
  /** Every value by name: the input, each node output (parameters are read from the graph). */
  readonly values: ReadonlyMap<string, Tensor>;
  /** The graph's output. */
  readonly output: Tensor;
}

/** Runs the graph on the reference kernels, keeping every value for the backward pass. */
export function forwardWithTape(graph: Graph, input: Tensor, options: TapeOptions = {}): Tape {
  if (!sameShape(input.shape, graph.input.shape)) {
    throw new ShapeError(
      `forwardWithTape: input has shape ${formatShape(input.shape)} but the graph was traced for ${formatShape(graph.input.shape)}`,
    );
  }
  const values = new Map<string, Tensor>([[graph.input.name, input]]);
  const lookup = (name: string): Tensor => values.get(name) ?? graph.params.get(name)!.tensor;
  const runningStatistics = options.runningStatistics ?? 'momentum';
  for (const node of graph.nodes) {
    const inputs = node.inputs.map(lookup);
    const output = new Tensor(graph.shapes.get(node.output)!);
    getOp(node.op).forward(inputs, node.attrs, output);
    values.set(node.output, output);
    if (node.op === 'batchNormTraining' && runningStatistics !== 'frozen') {
      const momentum = runningStatistics === 'momentum' ? node.attrs.momentum : runningStatistics;
      updateRunningStatistics(inputs, momentum);
    }
  }
  return { graph, values, output: lookup(graph.output) };
}

/** Training-mode batch norm's side effect: fold this batch's statistics into the running ones. */
function updateRunningStatistics([x, , , runningMean, runningVar]: readonly Tensor[], momentum: number): void {
  const [n, c, h, w] = x!.shape;
  const mean = new Float64Array(c!);
  const variance = new Float64Array(c!);
  batchStatisticsReference(x!.data, mean, variance, n!, c!, h! * w!);
  updateRunningStatisticsReference(runningMean!.data, runningVar!.data, mean, variance, n! * h! * w!, momentum);
}

export interface BackwardOptions {
  /**
   * Where parameter gradients accumulate, by parameter name. Existing tensors are added to (so
   * several backward passes sum, as PyTorch's `.grad` does); missing ones are created.
   */
  gradients?: Map<string, Tensor>;
  /** Also compute the gradient with respect to the graph's input (default false). */
  inputGradient?: boolean;
}

export interface Gradients {
  /** ∂L/∂p for every trainable parameter the output depends on, by parameter name. */
  readonly parameters: Map<string, Tensor>;
  /** ∂L/∂input, when asked for. */
  readonly input: Tensor | null;
}

/**
 * Back-propagates `gradOutput` (∂L/∂output, e.g. from `crossEntropy`) through the taped forward.
 * Buffers (batch-norm running statistics) get no gradient.
 */
export function backward(tape: Tape, gradOutput: Tensor, options: BackwardOptions = {}): Gradients {
  const { graph } = tape;
  if (!sameShape(gradOutput.shape, tape.output.shape)) {
    throw new ShapeError(
      `backward: the output gradient has shape ${formatShape(gradOutput.shape)} but the output has ${formatShape(tape.output.shape)}`,
    );
  }
  // Which values the loss can be differentiated with respect to: trainable parameters, the input
  // if asked for, and every node output that depends on one of them.
  const requires = new Set<string>();
  if (options.inputGradient) requires.add(graph.input.name);
  for (const [name, p] of graph.params) if (p.trainable) requires.add(name);
  for (const node of graph.nodes) if (node.inputs.some((i) => requires.has(i))) requires.add(node.output);

  const lookup = (name: string): Tensor => tape.values.get(name) ?? graph.params.get(name)!.tensor;
  const grads = new Map<string, Tensor>([[graph.output, gradOutput]]);
  const owned = new Set<string>(); // gradients this pass allocated, safe to add into in place
  const accumulate = (name: string, g: Tensor): void => {
    const existing = grads.get(name);
    if (existing === undefined) {
      grads.set(name, g);
    } else {
      const sum = owned.has(name) ? existing : existing.clone();
      for (let i = 0; i < sum.size; i++) sum.data[i] += g.data[i]!;
      grads.set(name, sum);
      owned.add(name);
    }
  };

  for (let k = graph.nodes.length - 1; k >= 0; k--) {
    const node = graph.nodes[k]!;
    const gy = grads.get(node.output);
    if (gy === undefined || !requires.has(node.output)) continue;
    const needs = node.inputs.map((i) => requires.has(i));
    const inputGrads = gradientRuleOf(node).backward(
      { inputs: node.inputs.map(lookup), output: tape.values.get(node.output)!, attrs: node.attrs, needs },
      gy,
    );
    node.inputs.forEach((name, i) => {
      const g = inputGrads[i];
      if (needs[i] && g) accumulate(name, g);
    });
    if (node.output !== graph.output) grads.delete(node.output); // no longer needed
  }

  const parameters = options.gradients ?? new Map<string, Tensor>();
  for (const [name, p] of graph.params) {
    const g = grads.get(name);
    if (!p.trainable || g === undefined) continue;
    const target = parameters.get(name);
    if (target === undefined) {
      parameters.set(name, new Tensor(p.tensor.shape, g.data.slice()));
    } else {
      for (let i = 0; i < target.size; i++) target.data[i] += g.data[i]!;
    }
  }
  const input = options.inputGradient ? (grads.get(graph.input.name) ?? new Tensor(graph.input.shape)) : null;
  return { parameters, input: input === null ? null : new Tensor(input.shape, input.data.slice()) };
}
