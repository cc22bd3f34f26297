/** Matrix products as imported ONNX graphs use them: Gemm and (batched, broadcasting) MatMul. */
import { ShapeError } from '../errors.js';
import { gemmReference, matmulReference } from '../kernels/reference/matmul.js';
import { formatShape, shapeSize, type Shape } from '../tensor/tensor.js';
import { broadcastShapes, broadcastStrides } from './broadcast.js';
import { expectRank, type OpDef } from './op.js';

export interface GemmAttrs {
  alpha: number;
  beta: number;
  transA: boolean;
  transB: boolean;
}

/** ONNX Gemm: Y = alpha · op(A) · op(B) + beta · C, C broadcastable to [M, N]. */
export const gemmOp: OpDef<'gemm'> = {
  type: 'gemm',
  arity: [2, 3],
  inferShape([a, b, c], at) {
    expectRank('gemm', 'A', a!, 2);
    expectRank('gemm', 'B', b!, 2);
    const [m, k] = at.transA ? [a![1]!, a![0]!] : [a![0]!, a![1]!];
    const [kb, n] = at.transB ? [b![1]!, b![0]!] : [b![0]!, b![1]!];
    if (k !== kb) {
      throw new ShapeError(
        `gemm: A ${formatShape(a!)}${at.transA ? 'ᵀ' : ''} and B ${formatShape(b!)}${at.transB ? 'ᵀ' : ''} ` +
          `have inner sizes ${k} and ${kb}`,
      );
    }
    if (c !== undefined) {
      const out = broadcastShapes('gemm', c, [m, n]);
      if (c.length > 2 || out[0] !== m || out[1] !== n) {
        throw new ShapeError(`gemm: C ${formatShape(c)} does not broadcast to [${m}, ${n}]`);
      }
    }
    return [m, n];
  },
  forward([a, b, c], at, out) {
    const [m, n] = out.shape as [number, number];
    const k = at.transA ? a!.shape[0]! : a!.shape[1]!;
    const cStrides = c ? broadcastStrides(c.shape, [m, n]) : [0, 0];
    gemmReference(a!.data, b!.data, c?.data ?? null, out.data, {
      m,
      n,
      k,
      transA: at.transA,
      transB: at.transB,
      alpha: at.alpha,
      beta: at.beta,
      cRowStride: cStrides[0]!,
      cColStride: cStrides[1]!,
    });
  },
  macs: ([a], out, at) => out[0]! * out[1]! * a![at.transA ? 0 : 1]!,
};

interface MatmulPlan {
  out: number[];
  batch: number[];
  m: number;
  k: number;
  n: number;
}

/** NumPy matmul shapes: 1-D operands are promoted to matrices, batch axes broadcast. */
function planMatmul(a: Shape, b: Shape): MatmulPlan {
  if (a.length < 1 || b.length < 1) throw new ShapeError('matmul: operands must have at least one axis');
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const [m, k] = [a2[a2.length - 2]!, a2[a2.length - 1]!];
  const [kb, n] = [b2[b2.length - 2]!, b2[b2.length - 1]!];
  if (k !== kb) {
    throw new ShapeError(`matmul: ${formatShape(a)} and ${formatShape(b)} have inner sizes ${k} and ${kb}`);
  }
  const batch = broadcastShapes('matmul', a2.slice(0, -2), b2.slice(0, -2));
  const out = [...batch];
  if (a.length > 1) out.push(m);
  if (b.length > 1) out.push(n);
  return { out, batch, m, k, n };
}

export const matmulOp: OpDef<'matmul'> = {
  type: 'matmul',
  arity: 2,
  inferShape: ([a, b]) => planMatmul(a!, b!).out,
  forward([a, b], _at, out) {
    const { batch, m, k, n } = planMatmul(a!.shape, b!.shape);
    const aBatch = a!.shape.length > 2 ? a!.shape.slice(0, -2) : [];
    const bBatch = b!.shape.length > 2 ? b!.shape.slice(0, -2) : [];
    const aStrides = broadcastStrides(aBatch, batch);
    const bStrides = broadcastStrides(bBatch, batch);
    const count = shapeSize(batch);
    const aOffsets: number[] = [];
    const bOffsets: number[] = [];
    for (let t = 0; t < count; t++) {
      let rest = t;
      let ai = 0;
      let bi = 0;
      for (let d = batch.length - 1; d >= 0; d--) {
        const idx = rest % batch[d]!;
        rest = Math.floor(rest / batch[d]!);
        ai += idx * aStrides[d]!;
        bi += idx * bStrides[d]!;
      }
      aOffsets.push(ai * m * k);
      bOffsets.push(bi * k * n);
    }
    matmulReference(a!.data, b!.data, out.data, m, k, n, aOffsets, bOffsets);
  },
  macs: ([a, b]) => {
    const { batch, m, k, n } = planMatmul(a!, b!);
    return shapeSize(batch) * m * k * n;
  },
};
