import { ShuffleNetError } from '../errors.js';
import { checkValueSize, inferOutputShape, type OpAttrs, type OpDef, type OpType } from '../ops/op.js';
import type { Shape, Tensor } from '../tensor/tensor.js';
import type { Graph, GraphNode, GraphNodeOf, GraphParam } from './graph.js';

/** A symbolic value while tracing: a name and a shape, no data. */
export interface Value {
  readonly name: string;
  readonly shape: Shape;
}

export interface TraceOptions {
  /** Trace for training (batch norm uses batch statistics); default false (inference). */
  training?: boolean;
}

/**
 * Records a graph while a model's `build` runs. Every op is shape-checked as it is added, and an
 * error names the module it came from: `stage3.0.gconv2: conv2d: input has 30 channels …`.
 */
export class GraphBuilder {
  private readonly nodes: GraphNode[] = [];
  private readonly params = new Map<string, GraphParam>();
  private readonly shapes = new Map<string, Shape>();
  private readonly scope: string[] = [];
  private readonly inputValue: Value;
  private counter = 0;
  /**
   * Whether the graph is traced for training: layers whose behaviour differs (batch norm) emit
   * their training-mode op. Everything else is the same graph.
   */
  readonly training: boolean;

  constructor(inputShape: Shape, inputName = 'input', options: TraceOptions = {}) {
    this.inputValue = { name: inputName, shape: checkValueSize(`input ${inputName}`, inputShape) };
    this.shapes.set(inputName, inputShape);
    this.training = options.training ?? false;
  }

  get input(): Value {
    return this.inputValue;
  }

  /** The dotted module path of the current scope (empty at the root). */
  get path(): string {
    return this.scope.join('.');
  }

  /** Runs `body` inside the named child scope. */
  within<T>(name: string, body: () => T): T {
    this.scope.push(name);
    try {
      return body();
    } finally {
      this.scope.pop();
    }
  }

  /** Registers a parameter under the current scope, e.g. `weight` in `stage2.0.gconv1`. */
  param(localName: string, tensor: Tensor, trainable: boolean): Value {
    const name = this.path === '' ? localName : `${this.path}.${localName}`;
    const existing = this.params.get(name);
    if (existing !== undefined && existing.tensor !== tensor) {
      throw new ShuffleNetError(`graph: two different tensors are both named "${name}"`);
    }
    this.params.set(name, { tensor, trainable });
    this.shapes.set(name, tensor.shape);
    return { name, shape: tensor.shape };
  }

  /** Adds one node; `inferShape` validates its inputs. */
  apply<T extends OpType>(op: OpDef<T>, inputs: readonly Value[], attrs: OpAttrs[T], label?: string): Value {
    const name = label ?? this.path;
    try {
      const shape = inferOutputShape(
        op,
        inputs.map((v) => v.shape),
        attrs,
      );
      const output = `${name || op.type}:${this.counter++}`;
      const node: GraphNodeOf<T> = { op: op.type, name, inputs: inputs.map((v) => v.name), output, attrs };
      // TypeScript cannot see that a node of a generic op T is a member of the union over every T.
      this.nodes.push(node as GraphNode);
      this.shapes.set(output, shape);
      return { name: output, shape };
    } catch (e) {
      if (e instanceof ShuffleNetError && name !== '' && !e.message.startsWith(`${name}: `)) {
        e.message = `${name}: ${e.message}`;
      }
      throw e;
    }
  }

  finish(output: Value): Graph {
    return {
      input: this.inputValue,
      output: output.name,
      nodes: this.nodes,
      params: this.params,
      shapes: this.shapes,
    };
  }
}
