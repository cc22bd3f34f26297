import { ShapeError, ShuffleNetError } from '../errors.js';
import { GraphBuilder, type TraceOptions, type Value } from '../graph/builder.js';
import type { Graph } from '../graph/graph.js';
import { formatShape, sameShape, type Shape, Tensor } from '../tensor/tensor.js';

/**
 * A layer or a network: parameters, buffers and child modules under PyTorch-style names, and a
 * `build` that adds the layer's ops to a graph. Layers are defined once; tracing a module gives
 * the graph that every consumer (reference forward, complexity, runtime, export) reads.
 */
export abstract class Module {
  private readonly ownTensors = new Map<string, { tensor: Tensor; trainable: boolean }>();
  private readonly children = new Map<string, Module>();
  /** The name this module was registered under in its parent; empty for a root. */
  private localName = '';

  /** Adds this module's ops to `g`, reading `inputs` and returning its output. */
  protected abstract build(g: GraphBuilder, ...inputs: Value[]): Value;

  /** Runs `build` inside this module's scope (its registered name under the caller's). */
  call(g: GraphBuilder, ...inputs: Value[]): Value {
    if (this.localName === '') throw new ShuffleNetError(`module: a child called at "${g.path}" was never registered`);
    return g.within(this.localName, () => this.build(g, ...inputs));
  }

  protected registerParameter(name: string, tensor: Tensor): Tensor {
    return this.register(name, tensor, true);
  }

  protected registerBuffer(name: string, tensor: Tensor): Tensor {
    return this.register(name, tensor, false);
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    if (this.children.has(name) || this.ownTensors.has(name)) {
      throw new ShuffleNetError(`module: "${name}" is registered twice`);
    }
    if (module.localName !== '') {
      throw new ShuffleNetError(`module: "${name}" is already registered as "${module.localName}"`);
    }
    module.localName = name;
    this.children.set(name, module);
    return module;
  }

  /** A graph value for one of this module's own tensors. */
  protected tensorValue(g: GraphBuilder, name: string): Value {
    const entry = this.ownTensors.get(name);
    if (entry === undefined) throw new ShuffleNetError(`module: no tensor named "${name}" at "${g.path}"`);
    return g.param(name, entry.tensor, entry.trainable);
  }

  /** Every parameter and buffer, by full dotted name (PyTorch's `state_dict` keys). */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.visit(prefix, (name, entry) => out.set(name, entry.tensor));
    return out;
  }

  /** Trainable parameters only, by full dotted name (PyTorch's `named_parameters`). */
  namedParameters(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.visit(prefix, (name, entry) => {
      if (entry.trainable) out.set(name, entry.tensor);
    });
    return out;
  }

  /** Number of trainable scalars. */
  parameterCount(): number {
    let count = 0;
    for (const t of this.namedParameters().values()) count += t.size;
    return count;
  }

  /**
   * Copies tensors into this module by name. Every name must exist and every shape must match;
   * with `strict` (the default), every tensor of the module must also be provided. Extra entries
   * in `state` are an error unless listed in `ignore`.
   */
  loadStateDict(
    state: ReadonlyMap<string, Tensor>,
    options: { strict?: boolean; ignore?: (name: string) => boolean } = {},
  ): void {
    const own = this.stateDict();
    const unexpected = [...state.keys()].filter((k) => !own.has(k) && !(options.ignore?.(k) ?? false));
    if (unexpected.length > 0) {
      throw new ShapeError(`loadStateDict: unexpected tensor(s): ${unexpected.slice(0, 10).join(', ')}`);
    }
    if (options.strict ?? true) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      if (missing.length > 0)
        throw new ShapeError(`loadStateDict: missing tensor(s): ${missing.slice(0, 10).join(', ')}`);
    }
    for (const [name, source] of state) {
      const target = own.get(name);
      if (target === undefined) continue;
      if (!sameShape(target.shape, source.shape)) {
        throw new ShapeError(
          `loadStateDict: "${name}" has shape ${formatShape(source.shape)} but the model expects ${formatShape(target.shape)}`,
        );
      }
      target.data.set(source.data);
    }
  }

  /** Traces the module for one input shape; `{ training: true }` gives the graph training runs. */
  trace(inputShape: Shape, options: TraceOptions = {}): Graph {
    const g = new GraphBuilder(inputShape, 'input', options);
    return g.finish(this.build(g, g.input));
  }

  private register(name: string, tensor: Tensor, trainable: boolean): Tensor {
    if (this.ownTensors.has(name) || this.children.has(name)) {
      throw new ShuffleNetError(`module: "${name}" is registered twice`);
    }
    this.ownTensors.set(name, { tensor, trainable });
    return tensor;
  }

  private visit(prefix: string, fn: (name: string, entry: { tensor: Tensor; trainable: boolean }) => void): void {
    for (const [name, entry] of this.ownTensors) fn(prefix + name, entry);
    for (const [name, child] of this.children) child.visit(`${prefix}${name}.`, fn);
  }
}
