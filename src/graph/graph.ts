import type { OpAttrs, OpType } from '../ops/op.js';
import type { Shape, Tensor } from '../tensor/tensor.js';

/**
 * One node of a graph running op `T`. A `GraphNode` is the union of these over every op type, so
 * testing `node.op` types `node.attrs`: `if (node.op === 'conv2d') node.attrs.stride`.
 */
export interface GraphNodeOf<T extends OpType> {
  /** Op type, a key of the op registry (`conv2d`, `batchNorm`, …). */
  readonly op: T;
  /** The module path that produced the node, e.g. `stage3.0.gconv2`. */
  readonly name: string;
  /** Names of input values (activations or parameters), in the op's input order. */
  readonly inputs: readonly string[];
  readonly output: string;
  readonly attrs: Readonly<OpAttrs[T]>;
}

/** A node of a graph: a union keyed by `op`, whose `attrs` are that op's. */
export type GraphNode = { [T in OpType]: GraphNodeOf<T> }[OpType];

export interface GraphParam {
  readonly tensor: Tensor;
  /** Trained by the optimiser (weights, biases, BN affine) or a buffer (BN running statistics). */
  readonly trainable: boolean;
}

/**
 * A traced network: the one representation that the reference executor, the complexity counter,
 * the fused runtime and the ONNX exporter all read. Values are named; parameters are named values
 * too, holding PyTorch-style names such as `stage2.0.gconv1.weight`.
 */
export interface Graph {
  readonly input: { readonly name: string; readonly shape: Shape };
  readonly output: string;
  readonly nodes: readonly GraphNode[];
  readonly params: ReadonlyMap<string, GraphParam>;
  /** The shape of every value: the input, every parameter and every node output. */
  readonly shapes: ReadonlyMap<string, Shape>;
}
