import { ShapeError } from '../errors.js';
import { conv2dReference, type Conv2dGeometry } from '../kernels/reference/conv2d.js';
import { formatShape, type Shape } from '../tensor/tensor.js';
import { expectNonNegativeInts, expectPositiveInts, expectRank, windowOutput, type OpDef } from './op.js';

export interface Conv2dAttrs {
  /** [strideH, strideW] */
  stride: readonly [number, number];
  /** [top, left, bottom, right] */
  padding: readonly [number, number, number, number];
  /** [dilationH, dilationW] */
  dilation: readonly [number, number];
  /** 1 = dense; C_in = C_out = groups is depthwise. */
  groups: number;
}

/** Inputs: x [N, C_in, H, W], weight [C_out, C_in / groups, kH, kW], optional bias [C_out]. */
export const conv2dOp: OpDef<'conv2d'> = {
  type: 'conv2d',
  arity: [2, 3],
  inferShape([x, w, b], a) {
    expectRank('conv2d', 'input', x!, 4);
    expectRank('conv2d', 'weight', w!, 4);
    expectPositiveInts('conv2d', 'stride', a.stride);
    expectPositiveInts('conv2d', 'dilation', a.dilation);
    expectNonNegativeInts('conv2d', 'padding', a.padding);
    expectPositiveInts('conv2d', 'groups', [a.groups]);
    const [n, cIn, h, wd] = x!;
    const [cOut, cPerGroup, kh, kw] = w!;
    if (cIn! % a.groups !== 0) {
      throw new ShapeError(`conv2d: input has ${cIn} channels but groups=${a.groups} needs a multiple of ${a.groups}`);
    }
    if (cOut! % a.groups !== 0) {
      throw new ShapeError(
        `conv2d: weight has ${cOut} output channels but groups=${a.groups} needs a multiple of ${a.groups}`,
      );
    }
    if (cPerGroup !== cIn! / a.groups) {
      throw new ShapeError(
        `conv2d: weight ${formatShape(w!)} expects ${cPerGroup} input channels per group but the input ` +
          `has ${cIn} channels in ${a.groups} group(s), i.e. ${cIn! / a.groups} per group`,
      );
    }
    if (b !== undefined && (b.length !== 1 || b[0] !== cOut)) {
      throw new ShapeError(`conv2d: bias must have shape [${cOut}] but has shape ${formatShape(b)}`);
    }
    const [t, l, bo, r] = a.padding;
    const outH = windowOutput('conv2d', 'height', h!, kh!, a.stride[0], t, bo, a.dilation[0]);
    const outW = windowOutput('conv2d', 'width', wd!, kw!, a.stride[1], l, r, a.dilation[1]);
    return [n!, cOut!, outH, outW];
  },
  forward([x, w, b], a, out) {
    conv2dReference(x!.data, w!.data, b?.data ?? null, out.data, conv2dGeometry(x!.shape, w!.shape, out.shape, a));
  },
  macs([x, w], out) {
    const [, cPerGroup, kh, kw] = w!;
    void x;
    return out[0]! * out[1]! * out[2]! * out[3]! * cPerGroup! * kh! * kw!;
  },
};

export function conv2dGeometry(x: Shape, w: Shape, out: Shape, a: Conv2dAttrs): Conv2dGeometry {
  return {
    batch: x[0]!,
    inChannels: x[1]!,
    inHeight: x[2]!,
    inWidth: x[3]!,
    outChannels: out[1]!,
    outHeight: out[2]!,
    outWidth: out[3]!,
    kernelHeight: w[2]!,
    kernelWidth: w[3]!,
    strideHeight: a.stride[0],
    strideWidth: a.stride[1],
    padTop: a.padding[0],
    padLeft: a.padding[1],
    dilationHeight: a.dilation[0],
    dilationWidth: a.dilation[1],
    groups: a.groups,
  };
}
