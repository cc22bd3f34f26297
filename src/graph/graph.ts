import type { Shape, Tensor } from '../tensor/tensor.js';

/**
 * A traced network: the one representation that the reference executor, the complexity counter
 * and (later) the fused runtime and the ONNX exporter all read. Values are named; parameters are
 * named values too, holding PyTorch-style names such as `stage2.0.gconv1.weight`.
 */
export interface GraphNode {
  /** Op type, a key of the op registry (`conv2d`, `batchNorm`, …). */
  readonly op: string;
  /** The module path that produced the node, e.g. `stage3.0.gconv2`. */
  readonly name: string;
  /** Names of input values (activations or parameters), in the op's input order. */
  readonly inputs: readonly string[];
  readonly output: string;
  readonly attrs: Readonly<Record<string, unknown>>;
}

export interface GraphParam {
  readonly tensor: Tensor;
  /** Trained by the optimiser (weights, biases, BN affine) or a buffer (BN running statistics). */
  readonly trainable: boolean;
}

export interface Graph {
  readonly input: { readonly name: string; readonly shape: Shape };
  readonly output: string;
  readonly nodes: readonly GraphNode[];
  readonly params: ReadonlyMap<string, GraphParam>;
  /** The shape of every value: the input, every parameter and every node output. */
  readonly shapes: ReadonlyMap<string, Shape>;
}
