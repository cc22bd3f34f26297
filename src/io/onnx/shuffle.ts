/**
 * Recognises channel shuffle written with generic ops, as every exporter writes it:
 *
 *   x [N, C, H, W] ─Reshape→ [N, A, C/A, H, W] ─Transpose(0, 2, 1, 3, 4)→ ─Reshape→ [N, C, H, W]
 *
 * (or with H·W flattened into one axis), and replaces the three nodes by `channelShuffle(A)`: the
 * paper's shuffle when A = g, the official code's inverse when A = C/g. The fused runtime relies on
 * seeing one shuffle op; the generic path (reshape, transpose) computes the same values.
 */
import type { Graph, GraphNode } from '../../graph/graph.js';
import { channelShuffleTransposePerm } from '../../kernels/reference/channels.js';
import type { Shape } from '../../tensor/tensor.js';

export function fuseChannelShuffles(graph: Graph): Graph {
  const uses = new Map<string, number>();
  for (const node of graph.nodes) for (const i of node.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  uses.set(graph.output, (uses.get(graph.output) ?? 0) + 1);
  const producer = new Map<string, GraphNode>();
  for (const node of graph.nodes) producer.set(node.output, node);

  const removed = new Set<GraphNode>();
  const replaced = new Map<GraphNode, GraphNode>();
  for (const last of graph.nodes) {
    if (last.op !== 'reshape') continue;
    const transpose = producer.get(last.inputs[0]!);
    if (transpose?.op !== 'transpose' || uses.get(transpose.output) !== 1) continue;
    const first = producer.get(transpose.inputs[0]!);
    if (first?.op !== 'reshape' || uses.get(first.output) !== 1) continue;
    const x = first.inputs[0]!;
    const groups = shuffleGroups(
      graph.shapes.get(x)!,
      graph.shapes.get(first.output)!,
      transpose.attrs.perm,
      graph.shapes.get(last.output)!,
    );
    if (groups === null) continue;
    removed.add(first).add(transpose);
    replaced.set(last, {
      op: 'channelShuffle',
      name: transpose.name,
      inputs: [x],
      output: last.output,
      attrs: { groups },
    });
  }
  if (replaced.size === 0) return graph;
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  const shapes = new Map(graph.shapes);
  for (const n of removed) shapes.delete(n.output);
  return { ...graph, nodes, shapes };
}

/** The groups A of a Reshape → Transpose → Reshape that shuffles channels, or null. */
function shuffleGroups(x: Shape, split: Shape, perm: readonly number[], out: Shape): number | null {
  if (x.length !== 4 || !sameDims(out, x)) return null;
  const [n, c, h, w] = x as [number, number, number, number];
  const spatialKept =
    (split.length === 5 && split[3] === h && split[4] === w && sameDims(perm, channelShuffleTransposePerm)) ||
    // H·W as one axis: the same permutation without the last axis.
    (split.length === 4 && split[3] === h * w && sameDims(perm, channelShuffleTransposePerm.slice(0, 4)));
  if (!spatialKept || split[0] !== n || split[1]! * split[2]! !== c) return null;
  return split[1]!;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
