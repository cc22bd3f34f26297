/**
 * Vector-Jacobian products, one rule per op type of the registry. A rule receives the forward's
 * inputs and output and the gradient of the loss with respect to that output, and returns the
 * gradient with respect to each input that needs one (null for the others). Rules validate
 * nothing and compute nothing themselves: the op's `inferShape` validated the shapes when the
 * graph was traced, and the arithmetic lives in the reference backward kernels.
 */
import { UnknownNameError } from '../errors.js';
import {
  avgPool2dBackwardReference,
  batchNormBackwardReference,
  batchNormTrainingBackwardReference,
  channelShuffleBackwardReference,
  channelSumReference,
  clipBackwardReference,
  concatChannelsBackwardReference,
  conv2dInputGradReference,
  conv2dWeightGradReference,
  globalAvgPoolBackwardReference,
  linearBackwardReference,
  maxPool2dBackwardReference,
  mulChannelsBackwardReference,
  reluBackwardReference,
  sigmoidBackwardReference,
  hardSigmoidBackwardReference,
  hardSwishBackwardReference,
  broadcastBackwardReference,
  sliceBackwardReference,
  softmaxBackwardReference,
} from '../kernels/reference/index.js';
import { conv2dGeometry, isOpType, pool2dGeometry, type OpAttrs, type OpType } from '../ops/index.js';
import { broadcastStrides } from '../ops/broadcast.js';
import { sliceRange } from '../ops/layout.js';
import { shapeSize, Tensor } from '../tensor/tensor.js';

export interface BackwardContext<A> {
  /** The op's inputs as the forward saw them. */
  readonly inputs: readonly Tensor[];
  /** The op's forward output. */
  readonly output: Tensor;
  readonly attrs: A;
  /** needs[i]: whether input i needs a gradient (trainable parameters and what depends on them). */
  readonly needs: readonly boolean[];
}

/** The gradient rule of op `T`; without a type argument, any op's. */
export interface GradientRule<T extends OpType = OpType> {
  /** Gradients for each input (null where not needed). May return `gradOutput` itself. */
  backward(ctx: BackwardContext<OpAttrs[T]>, gradOutput: Tensor): (Tensor | null)[];
}

/** A zero tensor shaped like input i, or null when input i needs no gradient. */
function gradFor(ctx: BackwardContext<unknown>, i: number): Tensor | null {
  return ctx.needs[i] ? new Tensor(ctx.inputs[i]!.shape) : null;
}

const conv2dRule: GradientRule<'conv2d'> = {
  backward(ctx, gy) {
    const [x, w] = ctx.inputs;
    const geometry = conv2dGeometry(x!.shape, w!.shape, ctx.output.shape, ctx.attrs);
    const [gx, gw, gb] = [0, 1, 2].map((i) => (i < ctx.inputs.length ? gradFor(ctx, i) : null));
    if (gx) conv2dInputGradReference(gy.data, w!.data, gx.data, geometry);
    if (gw) conv2dWeightGradReference(x!.data, gy.data, gw.data, geometry);
    const [n, c, h, wd] = gy.shape;
    if (gb) channelSumReference(gy.data, gb.data, n!, c!, h! * wd!);
    return ctx.inputs.length === 3 ? [gx!, gw!, gb!] : [gx!, gw!];
  },
};

const batchNormRule: GradientRule<'batchNorm'> = {
  backward(ctx, gy) {
    const [x, gamma, , mean, variance] = ctx.inputs;
    const [n, c, h, w] = x!.shape;
    const [gx, gGamma, gBeta] = [0, 1, 2].map((i) => gradFor(ctx, i));
    batchNormBackwardReference(
      x!.data,
      gy.data,
      gamma!.data,
      mean!.data,
      variance!.data,
      ctx.attrs.eps,
      gx?.data ?? null,
      gGamma?.data ?? null,
      gBeta?.data ?? null,
      n!,
      c!,
      h! * w!,
    );
    return [gx!, gGamma!, gBeta!, null, null]; // running statistics are buffers, never trained
  },
};

const batchNormTrainingRule: GradientRule<'batchNormTraining'> = {
  backward(ctx, gy) {
    const [x, gamma] = ctx.inputs;
    const [n, c, h, w] = x!.shape;
    const [gx, gGamma, gBeta] = [0, 1, 2].map((i) => gradFor(ctx, i));
    batchNormTrainingBackwardReference(
      x!.data,
      gy.data,
      gamma!.data,
      ctx.attrs.eps,
      gx?.data ?? null,
      gGamma?.data ?? null,
      gBeta?.data ?? null,
      n!,
      c!,
      h! * w!,
    );
    return [gx!, gGamma!, gBeta!, null, null];
  },
};

const reluRule: GradientRule<'relu'> = {
  backward(ctx, gy) {
    const gx = new Tensor(gy.shape);
    reluBackwardReference(ctx.inputs[0]!.data, gy.data, gx.data);
    return [gx];
  },
};

const clipRule: GradientRule<'clip'> = {
  backward(ctx, gy) {
    const gx = new Tensor(gy.shape);
    clipBackwardReference(ctx.inputs[0]!.data, gy.data, gx.data, ctx.attrs.min, ctx.attrs.max);
    return [gx];
  },
};

const sigmoidRule: GradientRule<'sigmoid'> = {
  backward(ctx, gy) {
    const gx = new Tensor(gy.shape);
    sigmoidBackwardReference(ctx.output.data, gy.data, gx.data);
    return [gx];
  },
};

const hardSigmoidRule: GradientRule<'hardSigmoid'> = {
  backward(ctx, gy) {
    const gx = new Tensor(gy.shape);
    hardSigmoidBackwardReference(ctx.inputs[0]!.data, gy.data, gx.data, ctx.attrs.alpha, ctx.attrs.beta);
    return [gx];
  },
};

const hardSwishRule: GradientRule<'hardSwish'> = {
  backward(ctx, gy) {
    const gx = new Tensor(gy.shape);
    hardSwishBackwardReference(ctx.inputs[0]!.data, gy.data, gx.data, ctx.attrs.alpha, ctx.attrs.beta);
    return [gx];
  },
};

/** Broadcast add and multiply: each operand's gradient summed over the axes it was broadcast along. */
function broadcastRule<T extends 'broadcastAdd' | 'broadcastMul'>(mul: boolean): GradientRule<T> {
  return {
    backward(ctx, gy) {
      const [a, b] = ctx.inputs as [Tensor, Tensor];
      const ga = ctx.needs[0] ? new Tensor(a.shape) : null;
      const gb = ctx.needs[1] ? new Tensor(b.shape) : null;
      broadcastBackwardReference(
        gy.data,
        gy.shape,
        a.data,
        broadcastStrides(a.shape, gy.shape),
        b.data,
        broadcastStrides(b.shape, gy.shape),
        ga?.data ?? null,
        gb?.data ?? null,
        mul,
      );
      return [ga, gb];
    },
  };
}

const addRule: GradientRule<'add'> = {
  backward: (ctx, gy) => ctx.needs.map((need) => (need ? gy : null)),
};

const mulChannelsRule: GradientRule<'mulChannels'> = {
  backward(ctx, gy) {
    const [x, s] = ctx.inputs;
    const [n, c, h, w] = x!.shape;
    const [gx, gs] = [0, 1].map((i) => gradFor(ctx, i));
    mulChannelsBackwardReference(x!.data, s!.data, gy.data, gx?.data ?? null, gs?.data ?? null, n! * c!, h! * w!);
    return [gx, gs];
  },
};

const maxPool2dRule: GradientRule<'maxPool2d'> = {
  backward(ctx, gy) {
    const x = ctx.inputs[0]!;
    const gx = new Tensor(x.shape);
    maxPool2dBackwardReference(x.data, gy.data, gx.data, pool2dGeometry(x.shape, gy.shape, ctx.attrs));
    return [gx];
  },
};

const avgPool2dRule: GradientRule<'avgPool2d'> = {
  backward(ctx, gy) {
    const x = ctx.inputs[0]!;
    const gx = new Tensor(x.shape);
    avgPool2dBackwardReference(
      gy.data,
      gx.data,
      pool2dGeometry(x.shape, gy.shape, ctx.attrs),
      ctx.attrs.countIncludePad,
    );
    return [gx];
  },
};

const globalAvgPoolRule: GradientRule<'globalAvgPool'> = {
  backward(ctx, gy) {
    const x = ctx.inputs[0]!;
    const [n, c, h, w] = x.shape;
    const gx = new Tensor(x.shape);
    globalAvgPoolBackwardReference(gy.data, gx.data, n! * c!, h! * w!);
    return [gx];
  },
};

const channelShuffleRule: GradientRule<'channelShuffle'> = {
  backward(ctx, gy) {
    const [n, c, h, w] = gy.shape;
    const gx = new Tensor(gy.shape);
    channelShuffleBackwardReference(gy.data, gx.data, n!, c!, h! * w!, ctx.attrs.groups);
    return [gx];
  },
};

const concatRule: GradientRule<'concat'> = {
  backward(ctx, gy) {
    const [n, , h, w] = gy.shape;
    const grads = ctx.inputs.map((_, i) => gradFor(ctx, i));
    concatChannelsBackwardReference(
      gy.data,
      ctx.inputs.map((t) => t.shape[1]!),
      grads.map((g) => g?.data ?? null),
      n!,
      h! * w!,
    );
    return grads;
  },
};

const sliceRule: GradientRule<'slice'> = {
  backward(ctx, gy) {
    const shape = ctx.inputs[0]!.shape;
    const dim = shape[ctx.attrs.axis]!;
    const [start, length] = sliceRange(dim, ctx.attrs);
    const inner = shapeSize(shape.slice(ctx.attrs.axis + 1));
    const gx = new Tensor(shape);
    sliceBackwardReference(gy.data, gx.data, shapeSize(shape.slice(0, ctx.attrs.axis)), dim, inner, start, length);
    return [gx];
  },
};

const flattenRule: GradientRule<'flatten'> = {
  // Flatten only relabels the shape; the gradient shares the output gradient's storage.
  backward: (ctx, gy) => [gy.reshape(ctx.inputs[0]!.shape)],
};

const linearRule: GradientRule<'linear'> = {
  backward(ctx, gy) {
    const [x, w] = ctx.inputs;
    const [n, inF] = x!.shape;
    const grads = ctx.inputs.map((_, i) => gradFor(ctx, i));
    linearBackwardReference(
      x!.data,
      w!.data,
      gy.data,
      grads[0]?.data ?? null,
      grads[1]?.data ?? null,
      grads[2]?.data ?? null,
      n!,
      inF!,
      w!.shape[0]!,
    );
    return grads;
  },
};

const softmaxRule: GradientRule<'softmax'> = {
  backward(ctx, gy) {
    const width = gy.shape[gy.shape.length - 1]!;
    const gx = new Tensor(gy.shape);
    softmaxBackwardReference(ctx.output.data, gy.data, gx.data, width === 0 ? 0 : gy.size / width, width);
    return [gx];
  },
};

/** One rule per differentiable op type; the ops of imported ONNX graphs (reshape, gemm, …) have none. */
const rules: { readonly [T in OpType]?: GradientRule<T> } = {
  conv2d: conv2dRule,
  batchNorm: batchNormRule,
  batchNormTraining: batchNormTrainingRule,
  relu: reluRule,
  clip: clipRule,
  sigmoid: sigmoidRule,
  add: addRule,
  mulChannels: mulChannelsRule,
  maxPool2d: maxPool2dRule,
  avgPool2d: avgPool2dRule,
  globalAvgPool: globalAvgPoolRule,
  channelShuffle: channelShuffleRule,
  concat: concatRule,
  flatten: flattenRule,
  slice: sliceRule,
  hardSigmoid: hardSigmoidRule,
  hardSwish: hardSwishRule,
  broadcastAdd: broadcastRule<'broadcastAdd'>(false),
  broadcastMul: broadcastRule<'broadcastMul'>(true),
  linear: linearRule,
  softmax: softmaxRule,
};

/** The gradient rule of an op type; the error lists the ops that have one. */
export function getGradientRule(type: string): GradientRule {
  const rule: GradientRule | undefined = isOpType(type) ? rules[type] : undefined;
  if (rule === undefined) {
    throw new UnknownNameError(
      `autograd: op "${type}" has no gradient rule; ops with one: ${differentiableOps().join(', ')}`,
    );
  }
  return rule;
}

/** The gradient rule of a graph node; the error names the node (`stage2.0.act (hardSwish)`). */
export function gradientRuleOf(node: { op: string; name?: string; output: string }): GradientRule {
  try {
    return getGradientRule(node.op);
  } catch (e) {
    if (!(e instanceof UnknownNameError)) throw e;
    throw new UnknownNameError(
      `autograd: node ${node.name || node.output} (${node.op}): ${e.message.slice('autograd: '.length)}`,
    );
  }
}

export function differentiableOps(): string[] {
  return Object.keys(rules);
}
