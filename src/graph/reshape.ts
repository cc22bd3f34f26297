import { ShuffleNetError } from '../errors.js';
import { getOp } from '../ops/index.js';
import { checkValueSize, inferOutputShape } from '../ops/op.js';
import type { Shape } from '../tensor/tensor.js';
import type { Graph } from './graph.js';

/**
 * The same graph for another input shape (e.g. another batch size): every node's shape is inferred
 * again, so an input the graph cannot take fails here with the node's name, before any compute.
 */
export function withInputShape(graph: Graph, inputShape: Shape): Graph {
  const shapes = new Map<string, Shape>([[graph.input.name, checkValueSize(`input ${graph.input.name}`, inputShape)]]);
  for (const [name, p] of graph.params) shapes.set(name, p.tensor.shape);
  for (const node of graph.nodes) {
    const op = getOp(node.op);
    try {
      shapes.set(
        node.output,
        inferOutputShape(
          op,
          node.inputs.map((n) => shapes.get(n)!),
          node.attrs,
        ),
      );
    } catch (e) {
      if (e instanceof ShuffleNetError && node.name) e.message = `${node.name}: ${e.message}`;
      throw e;
    }
  }
  return { ...graph, input: { name: graph.input.name, shape: inputShape }, shapes };
}
