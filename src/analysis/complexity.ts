/**
 * Complexity accounting in the paper's sense: multiply-adds of convolutions and fully connected
 * layers (the paper calls them FLOPs), and trainable parameters. Read from the traced graph, so it
 * counts exactly what runs. Pooling, batch norm, ReLU, the residual add, the shuffle and SE's
 * rescale are not counted under this convention (docs/complexity.md measures what they would add);
 * BN running statistics are buffers, not parameters, as in PyTorch.
 */
import type { Graph } from '../graph/graph.js';
import { getOp } from '../ops/index.js';
import type { Shape } from '../tensor/tensor.js';

export interface LayerCost {
  /** Module path of the node, e.g. `stage2.0.gconv1`. */
  readonly name: string;
  readonly op: string;
  readonly outputShape: Shape;
  readonly macs: number;
  /** Trainable scalars first used by this node. */
  readonly params: number;
}

export interface Complexity {
  /** Multiply-adds for the traced input (batch included). */
  readonly macs: number;
  readonly params: number;
  readonly layers: readonly LayerCost[];
}

export function complexity(graph: Graph): Complexity {
  const counted = new Set<string>();
  const layers = graph.nodes.map((node): LayerCost => {
    const inputShapes = node.inputs.map((name) => graph.shapes.get(name)!);
    const outputShape = graph.shapes.get(node.output)!;
    let params = 0;
    for (const name of node.inputs) {
      const p = graph.params.get(name);
      if (p?.trainable && !counted.has(name)) {
        counted.add(name);
        params += p.tensor.size;
      }
    }
    const macs = getOp(node.op).macs(inputShapes, outputShape, node.attrs);
    return { name: node.name, op: node.op, outputShape, macs, params };
  });
  return {
    macs: layers.reduce((s, l) => s + l.macs, 0),
    params: layers.reduce((s, l) => s + l.params, 0),
    layers,
  };
}
