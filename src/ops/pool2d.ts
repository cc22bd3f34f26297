import {
  avgPool2dReference,
  globalAvgPoolReference,
  maxPool2dReference,
  type Pool2dGeometry,
} from '../kernels/reference/pool2d.js';
import { ShapeError } from '../errors.js';
import type { Shape } from '../tensor/tensor.js';
import { expectNonNegativeInts, expectPositiveInts, expectRank, windowOutput, type OpDef } from './op.js';

export interface Pool2dAttrs {
  /** [kH, kW] */
  kernel: readonly [number, number];
  /** [strideH, strideW] */
  stride: readonly [number, number];
  /** [top, left, bottom, right] */
  padding: readonly [number, number, number, number];
}

export interface AvgPool2dAttrs extends Pool2dAttrs {
  /** Divide by the whole window, padding included (PyTorch's default), or by the real pixels. */
  countIncludePad: boolean;
}

function poolShape(op: string, [x]: readonly Shape[], a: Pool2dAttrs): Shape {
  expectRank(op, 'input', x!, 4);
  expectPositiveInts(op, 'kernel', a.kernel);
  expectPositiveInts(op, 'stride', a.stride);
  expectNonNegativeInts(op, 'padding', a.padding);
  const [t, l, b, r] = a.padding;
  if (Math.max(t, b) >= a.kernel[0] || Math.max(l, r) >= a.kernel[1]) {
    // A window made only of padding has no defined maximum (PyTorch refuses it too).
    throw new ShapeError(
      `${op}: padding [${a.padding.join(', ')}] must be smaller than the kernel [${a.kernel.join(', ')}]`,
    );
  }
  const [n, c, h, w] = x!;
  return [
    n!,
    c!,
    windowOutput(op, 'height', h!, a.kernel[0], a.stride[0], t, b),
    windowOutput(op, 'width', w!, a.kernel[1], a.stride[1], l, r),
  ];
}

export function pool2dGeometry(x: Shape, out: Shape, a: Pool2dAttrs): Pool2dGeometry {
  return {
    batch: x[0]!,
    channels: x[1]!,
    inHeight: x[2]!,
    inWidth: x[3]!,
    outHeight: out[2]!,
    outWidth: out[3]!,
    kernelHeight: a.kernel[0],
    kernelWidth: a.kernel[1],
    strideHeight: a.stride[0],
    strideWidth: a.stride[1],
    padTop: a.padding[0],
    padLeft: a.padding[1],
    padBottom: a.padding[2],
    padRight: a.padding[3],
  };
}

export const maxPool2dOp: OpDef<'maxPool2d'> = {
  type: 'maxPool2d',
  arity: 1,
  inferShape: (inputs, a) => poolShape('maxPool2d', inputs, a),
  forward([x], a, out) {
    maxPool2dReference(x!.data, out.data, pool2dGeometry(x!.shape, out.shape, a));
  },
  macs: () => 0,
};

export const avgPool2dOp: OpDef<'avgPool2d'> = {
  type: 'avgPool2d',
  arity: 1,
  inferShape: (inputs, a) => poolShape('avgPool2d', inputs, a),
  forward([x], a, out) {
    avgPool2dReference(x!.data, out.data, pool2dGeometry(x!.shape, out.shape, a), a.countIncludePad);
  },
  macs: () => 0,
};

/** [N, C, H, W] → [N, C, 1, 1], like PyTorch's AdaptiveAvgPool2d(1) and ONNX GlobalAveragePool. */
export const globalAvgPoolOp: OpDef<'globalAvgPool'> = {
  type: 'globalAvgPool',
  arity: 1,
  inferShape([x]) {
    expectRank('globalAvgPool', 'input', x!, 4);
    return [x![0]!, x![1]!, 1, 1];
  },
  forward([x], _a, out) {
    const [n, c, h, w] = x!.shape;
    globalAvgPoolReference(x!.data, out.data, n!, c!, h! * w!);
  },
  macs: () => 0,
};
