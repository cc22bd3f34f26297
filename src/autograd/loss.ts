import { ShapeError } from '../errors.js';
import { crossEntropyReference } from '../kernels/reference/dense-backward.js';
import { formatShape, Tensor } from '../tensor/tensor.js';

export interface CrossEntropyOptions {
  /** ε of PyTorch's CrossEntropyLoss(label_smoothing=ε), in [0, 1]; default 0. */
  labelSmoothing?: number;
}

/**
 * Mean cross-entropy of logits [N, K] against integer labels, and its gradient ∂loss/∂logits,
 * which `backward` takes as the output gradient.
 *
 * @example
 * const { loss, gradient } = crossEntropy(tape.output, [3, 1], { labelSmoothing: 0.1 });
 */
export function crossEntropy(
  logits: Tensor,
  labels: ArrayLike<number>,
  options: CrossEntropyOptions = {},
): { loss: number; gradient: Tensor } {
  const smoothing = options.labelSmoothing ?? 0;
  if (logits.rank !== 2) {
    throw new ShapeError(
      `crossEntropy: logits must have shape [N, classes] but have shape ${formatShape(logits.shape)}`,
    );
  }
  const [n, k] = logits.shape as [number, number];
  if (labels.length !== n) {
    throw new ShapeError(`crossEntropy: ${n} rows of logits but ${labels.length} labels`);
  }
  for (let i = 0; i < n; i++) {
    const label = labels[i]!;
    if (!Number.isInteger(label) || label < 0 || label >= k) {
      throw new ShapeError(`crossEntropy: label ${i} is ${label} but must be an integer in [0, ${k})`);
    }
  }
  if (!(smoothing >= 0 && smoothing <= 1)) {
    throw new ShapeError(`crossEntropy: labelSmoothing must be in [0, 1] but is ${smoothing}`);
  }
  const gradient = new Tensor(logits.shape);
  const loss = crossEntropyReference(logits.data, labels, gradient.data, n, k, smoothing);
  return { loss, gradient };
}
