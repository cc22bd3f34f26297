import { forwardWithTape } from '../autograd/tape.js';
import type { Graph } from '../graph/graph.js';
import type { Module } from '../nn/module.js';
import { formatShape, sameShape, type Tensor } from '../tensor/tensor.js';
import type { TrainingEngine } from './plan.js';

/**
 * Re-estimates every batch norm's running statistics from `batches` (e.g. a few hundred training
 * images after the last epoch): the statistics are reset, then each batch's mean and unbiased
 * variance are averaged with equal weight, as torch.optim.swa_utils.update_bn does (momentum
 * None, a cumulative average). Nothing else changes. Returns the number of batches seen.
 *
 * Batches of the shape `plan` was built for run on it (the run's training engine); others run on
 * the reference tape.
 *
 * @example
 * reestimateBatchNorm(model, batchesOf(trainImages, 64).slice(0, 20));
 */
export function reestimateBatchNorm(model: Module, batches: Iterable<Tensor>, plan?: TrainingEngine | null): number {
  const graphs = new Map<string, Graph>();
  let seen = 0;
  for (const batch of batches) {
    const key = formatShape(batch.shape);
    let graph = graphs.get(key);
    if (graph === undefined) {
      graphs.set(key, (graph = model.trace(batch.shape, { training: true })));
      if (seen === 0) resetRunningStatistics(graph);
    }
    seen++;
    if (plan && sameShape(batch.shape, plan.inputShape)) plan.forward(batch, 1 / seen);
    else forwardWithTape(graph, batch, { runningStatistics: 1 / seen });
  }
  return seen;
}

function resetRunningStatistics(graph: Graph): void {
  for (const node of graph.nodes) {
    if (node.op !== 'batchNormTraining') continue;
    graph.params.get(node.inputs[3]!)!.tensor.data.fill(0); // running_mean
    graph.params.get(node.inputs[4]!)!.tensor.data.fill(1); // running_var
  }
}
