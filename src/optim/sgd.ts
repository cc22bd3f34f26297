import { ShapeError, ShuffleNetError } from '../errors.js';
import { formatShape, sameShape, type Tensor } from '../tensor/tensor.js';

export interface SgdConfig {
  /** Learning rate; a schedule may pass another one to each `step`. */
  lr: number;
  /** Momentum μ (0 disables it); default 0.9. */
  momentum?: number;
  /** Nesterov momentum (needs momentum > 0); default false. */
  nesterov?: boolean;
  /** L2 weight decay λ added to the gradient (λ · p); default 0. */
  weightDecay?: number;
  /**
   * Which parameters weight decay applies to. The default, the official ShuffleNet recipe, decays
   * only weights with more than one dimension and skips 1-D ones (biases, batch-norm affine).
   */
  decays?: (name: string, parameter: Tensor) => boolean;
}

/** Weight decay on convolution and linear weights only, not on biases or batch-norm parameters. */
export const decayAllButOneDimensional = (_name: string, parameter: Tensor): boolean => parameter.rank > 1;

/**
 * Stochastic gradient descent with momentum, exactly as torch.optim.SGD (dampening 0):
 *   d = g + λ·p;  b = μ·b + d (b = d on the first step);  d = d + μ·b (Nesterov) or b;  p = p − lr·d.
 * Parameters are updated in place, so the model that owns them trains.
 *
 * @example
 * const sgd = new Sgd(model.namedParameters(), { lr: 0.1, momentum: 0.9, weightDecay: 4e-5 });
 * sgd.step(gradients, schedule(step));
 */
export class Sgd {
  readonly config: Required<Omit<SgdConfig, 'decays'>> & Pick<SgdConfig, 'decays'>;
  private readonly parameters: ReadonlyMap<string, Tensor>;
  private readonly momentumBuffers = new Map<string, Float32Array>();

  constructor(parameters: ReadonlyMap<string, Tensor>, config: SgdConfig) {
    this.config = { momentum: 0.9, nesterov: false, weightDecay: 0, ...config };
    const { lr, momentum, nesterov, weightDecay } = this.config;
    if (!(lr >= 0)) throw new ShuffleNetError(`sgd: lr must be a non-negative number but is ${lr}`);
    if (!(momentum >= 0 && momentum < 1))
      throw new ShuffleNetError(`sgd: momentum must be in [0, 1) but is ${momentum}`);
    if (!(weightDecay >= 0)) throw new ShuffleNetError(`sgd: weightDecay must be non-negative but is ${weightDecay}`);
    if (nesterov && momentum === 0) throw new ShuffleNetError('sgd: Nesterov momentum needs momentum > 0');
    this.parameters = parameters;
  }

  /**
   * One update from `gradients` (by parameter name). A parameter without a gradient is left
   * alone, as PyTorch skips parameters whose `.grad` is None.
   */
  step(gradients: ReadonlyMap<string, Tensor>, lr = this.config.lr): void {
    const { momentum, nesterov, weightDecay } = this.config;
    const decays = this.config.decays ?? decayAllButOneDimensional;
    for (const name of gradients.keys()) {
      if (!this.parameters.has(name)) throw new ShuffleNetError(`sgd: gradient for unknown parameter "${name}"`);
    }
    for (const [name, p] of this.parameters) {
      const g = gradients.get(name);
      if (g === undefined) continue;
      if (!sameShape(g.shape, p.shape)) {
        throw new ShapeError(
          `sgd: gradient of "${name}" has shape ${formatShape(g.shape)} but the parameter ${formatShape(p.shape)}`,
        );
      }
      const lambda = weightDecay > 0 && decays(name, p) ? weightDecay : 0;
      let buffer = this.momentumBuffers.get(name);
      const first = buffer === undefined;
      if (momentum > 0 && buffer === undefined) this.momentumBuffers.set(name, (buffer = new Float32Array(p.size)));
      for (let i = 0; i < p.size; i++) {
        let d = g.data[i]! + lambda * p.data[i]!;
        if (buffer !== undefined) {
          const b = (buffer[i] = first ? d : momentum * buffer[i]! + d);
          d = nesterov ? d + momentum * b : b;
        }
        p.data[i] -= lr * d;
      }
    }
  }

  /** The momentum buffers by parameter name, for checkpoints. */
  state(): Map<string, Float32Array> {
    return new Map([...this.momentumBuffers].map(([k, v]) => [k, v.slice()]));
  }

  loadState(state: ReadonlyMap<string, Float32Array>): void {
    this.momentumBuffers.clear();
    for (const [name, buffer] of state) {
      const p = this.parameters.get(name);
      if (p === undefined || p.size !== buffer.length) {
        throw new ShapeError(`sgd: momentum state "${name}" does not match a parameter of ${buffer.length} values`);
      }
      this.momentumBuffers.set(name, buffer.slice());
    }
  }
}
