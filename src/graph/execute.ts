import { ShapeError } from '../errors.js';
import { getOp } from '../ops/index.js';
import { formatShape, sameShape, Tensor } from '../tensor/tensor.js';
import type { Graph } from './graph.js';

/**
 * Runs a graph node by node on the reference kernels. Intermediate tensors are dropped after
 * their last use, so peak memory is a few activations, not the whole network's. `observe`, if
 * given, sees the input and every node's output as it is computed (calibration reads them).
 */
export function runGraph(graph: Graph, input: Tensor, observe?: (value: string, tensor: Tensor) => void): Tensor {
  if (!sameShape(input.shape, graph.input.shape)) {
    throw new ShapeError(
      `run: input has shape ${formatShape(input.shape)} but the graph was traced for ${formatShape(graph.input.shape)}`,
    );
  }
  const remainingUses = new Map<string, number>();
  for (const node of graph.nodes) {
    for (const name of node.inputs) remainingUses.set(name, (remainingUses.get(name) ?? 0) + 1);
  }
  const values = new Map<string, Tensor>([[graph.input.name, input]]);
  observe?.(graph.input.name, input);
  const lookup = (name: string): Tensor => {
    const value = values.get(name) ?? graph.params.get(name)?.tensor;
    if (value === undefined) throw new ShapeError(`run: value "${name}" is used before it is computed`);
    return value;
  };
  for (const node of graph.nodes) {
    const op = getOp(node.op);
    const output = new Tensor(graph.shapes.get(node.output)!);
    op.forward(node.inputs.map(lookup), node.attrs, output);
    values.set(node.output, output);
    observe?.(node.output, output);
    for (const name of node.inputs) {
      const left = remainingUses.get(name)! - 1;
      remainingUses.set(name, left);
      if (left === 0 && name !== graph.output) values.delete(name);
    }
  }
  return lookup(graph.output);
}
