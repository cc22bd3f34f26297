/**
 * A graph as plain data for another thread: what a session or a training run posts to its workers,
 * which rebuild the same graph (parameters included) on their side.
 */
import { Tensor } from '../tensor/tensor.js';
import type { Graph, GraphNode, GraphParam } from './graph.js';

/** A graph as plain data that survives structured cloning (postMessage). */
export interface SerializedGraph {
  input: { name: string; shape: number[] };
  output: string;
  nodes: GraphNode[];
  params: { name: string; shape: number[]; data: Float32Array; trainable: boolean }[];
  shapes: [string, number[]][];
}

export function serializeGraph(graph: Graph): SerializedGraph {
  return {
    input: { name: graph.input.name, shape: [...graph.input.shape] },
    output: graph.output,
    nodes: graph.nodes.map((n) => ({ ...n, inputs: [...n.inputs] })),
    params: [...graph.params].map(([name, p]) => ({
      name,
      shape: [...p.tensor.shape],
      // A view into a larger buffer (a loaded file) would clone the whole buffer: copy just the view.
      data: p.tensor.data.byteLength === p.tensor.data.buffer.byteLength ? p.tensor.data : p.tensor.data.slice(),
      trainable: p.trainable,
    })),
    shapes: [...graph.shapes].map(([name, shape]) => [name, [...shape]]),
  };
}

export function deserializeGraph(data: SerializedGraph): Graph {
  const params = new Map<string, GraphParam>(
    data.params.map((p) => [p.name, { tensor: new Tensor(p.shape, p.data), trainable: p.trainable }]),
  );
  return {
    input: data.input,
    output: data.output,
    nodes: data.nodes,
    params,
    shapes: new Map(data.shapes),
  };
}
