/**
 * The generic ops that imported ONNX graphs use (reshape, transpose, slice, broadcasting add and
 * multiply, gemm, matmul) against PyTorch (scripts/make_onnx_fixtures.py), and their shape errors.
 */
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../src/errors.js';
import {
  broadcastAddOp,
  broadcastMulOp,
  gemmOp,
  matmulOp,
  reshapeOp,
  runOp,
  sliceOp,
  transposeOp,
} from '../src/ops/index.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const f = loadFixture('onnx/reference.safetensors');
const t = (name: string): Tensor => get(f, `ops/${name}`);

function expectClose(actual: Tensor, expected: Tensor): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(maxAbsDiff(actual, expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(expected)));
}

describe('generic ops match PyTorch', () => {
  it('reshape with 0 (copy) and -1 (infer)', () => {
    expectClose(runOp(reshapeOp, [t('x')], { shape: [0, -1, 7] }), t('reshape'));
    expectClose(runOp(reshapeOp, [t('x')], { shape: [2, 15, 7] }), t('reshape'));
  });

  it('transpose of a 4-D tensor', () => {
    expectClose(runOp(transposeOp, [t('x')], { perm: [2, 0, 3, 1] }), t('transpose'));
  });

  it('slice with a negative end', () => {
    expectClose(runOp(sliceOp, [t('x')], { axis: 2, start: 1, end: -1 }), t('slice'));
    expectClose(runOp(sliceOp, [t('x')], { axis: 2, start: -4, end: 4 }), t('slice'));
  });

  it('broadcasting add and multiply', () => {
    expectClose(runOp(broadcastAddOp, [t('x'), t('y')], {}), t('add'));
    expectClose(runOp(broadcastMulOp, [t('y'), t('x')], {}), t('mul'));
  });

  it('gemm with alpha, beta, transA and transB', () => {
    const [a, b, c] = [t('gemm_a'), t('gemm_b'), t('gemm_c')];
    expectClose(runOp(gemmOp, [a, b, c], { alpha: 1.5, beta: 0.25, transA: false, transB: true }), t('gemm'));
    expectClose(runOp(gemmOp, [t('gemm_at'), b, c], { alpha: 0.5, beta: -2, transA: true, transB: true }), t('gemm_t'));
  });

  it('matmul with broadcast batch axes and a 1-D operand', () => {
    expectClose(runOp(matmulOp, [t('matmul_a'), t('matmul_b')], {}), t('matmul'));
    expectClose(runOp(matmulOp, [t('matmul_v'), t('matmul_b')], {}), t('matmul_vb'));
  });
});

describe('generic ops refuse impossible shapes with a clear error', () => {
  const x = (): Tensor => t('x'); // [2, 3, 5, 7]
  it.each([
    [() => runOp(reshapeOp, [x()], { shape: [4, -1] }), /cannot reshape \[2, 3, 5, 7\] \(210 values\) to \[4, -1\]/],
    [() => runOp(reshapeOp, [x()], { shape: [-1, -1] }), /more than one -1/],
    [() => runOp(reshapeOp, [x()], { shape: [0, 0, 0, 0, 0] }), /copies dimension 4/],
    [() => runOp(transposeOp, [x()], { perm: [0, 1, 1, 2] }), /not a permutation/],
    [() => runOp(sliceOp, [x()], { axis: 4, start: 0, end: 1 }), /axis 4 is out of range/],
    [() => runOp(broadcastAddOp, [x(), t('gemm_a')], {}), /do not broadcast/],
    [
      () => runOp(gemmOp, [t('gemm_a'), t('gemm_b')], { alpha: 1, beta: 1, transA: false, transB: false }),
      /inner sizes 5 and 6/,
    ],
    [() => runOp(matmulOp, [t('matmul_b'), t('matmul_a')], {}), /inner sizes 5 and 3/],
  ])('case %#', (run, message) => {
    expect(run).toThrow(ShapeError);
    expect(run).toThrow(message);
  });
});
