/**
 * Matrix product of 2-D tensors: C = op(A) · op(B), where op transposes when
 * asked (transA: A is stored [K, M]; transB: B is stored [N, K]). The kernel
 * packs B into panels of 8 columns once (the transpose is folded into the
 * packing), then a 4 x 8 register-tiled SIMD kernel sweeps the rows of C.
 *
 * Gradients go through the transpose flags, never a materialised transpose:
 *   C = A·B      dA = g·Bᵀ   dB = Aᵀ·g
 * and the transposed forms follow (see the rule below).
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { alloc, free } from '../heap.js';
import { K } from '../kernels.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';

export interface MatmulOptions {
  /** A is stored [K, M] and used transposed. */
  transA?: boolean;
  /** B is stored [N, K] and used transposed. */
  transB?: boolean;
}

export interface MatmulParams {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** op(a) · op(b) for 2-D tensors a, b. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const fn = 'matmul';
  checkTensor(fn, 'a', a);
  checkTensor(fn, 'b', b);
  if (opts === null || typeof opts !== 'object') throw new ValueError(`${fn}: options must be an object, got ${describe(opts)}`);
  const transA = flag(fn, 'transA', opts.transA);
  const transB = flag(fn, 'transB', opts.transB);
  if (a.rank !== 2) throw new ShapeError(`${fn}: a must be rank 2, got shape ${fmt(a)}`);
  if (b.rank !== 2) throw new ShapeError(`${fn}: b must be rank 2, got shape ${fmt(b)}`);
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [KB, N] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (K !== KB) {
    const da = transA ? `a (transposed) has ${K} columns` : `a has ${K} columns`;
    const db = transB ? `b (transposed) has ${KB} rows` : `b has ${KB} rows`;
    throw new ShapeError(`${fn}: inner dimensions differ: ${da}, ${db} (a: ${fmt(a)}, b: ${fmt(b)})`);
  }
  return apply(matmulRule, [a, b], { M, N, K, transA, transB });
}

function flag(fn: string, arg: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new ValueError(`${fn}: ${arg} must be a boolean, got ${describe(v)}`);
  return v;
}

// ---- kernel calls (not recorded) ----------------------------------------------

/**
 * The product as a new tensor of shape `shape` (M*N elements) from raw heap
 * pointers: op(A) [M, K] · op(B) [K, N] (+ bias[N] when bias != 0).
 */
export function gemmRaw(
  a: number, b: number, M: number, N: number, depth: number, transA: boolean, transB: boolean, bias: number, shape: readonly number[],
): Tensor {
  const out = empty(shape);
  if (M === 0 || N === 0) return out;
  const panels = Math.ceil(N / 8);
  const bp = alloc(panels * depth * 32);
  try {
    parallel('gemm_pack_b', [b, depth, N, transB ? 1 : 0, bp], panels, { cost: 8 * depth });
    parallel('gemm', [a, bp, out.ptr, M, N, depth, transA ? 1 : 0, bias], M, {
      cost: 2 * N * depth,
      grain: 4,
      scratchBytes: K.gemm_scratch(),
    });
  } finally {
    free(bp);
  }
  return out;
}

// ---- the primitive ------------------------------------------------------------

const matmulRule = defineRule<MatmulParams>('matmul', {
  forward([a, b], { M, N, K, transA, transB }) {
    return gemmRaw(a.ptr, b.ptr, M, N, K, transA, transB, 0, [M, N]);
  },
  vjp(g, [a, b], _out, { transA, transB }, needs) {
    // With A' = op(A), B' = op(B): dA' = g·B'ᵀ and dB' = A'ᵀ·g; a stored
    // transpose receives the transpose of its cotangent.
    const da = !needs[0] ? null : transA ? matmul(b, g, { transA: transB, transB: true }) : matmul(g, b, { transB: !transB });
    const db = !needs[1] ? null : transB ? matmul(g, a, { transA: true, transB: transA }) : matmul(a, g, { transA: !transA });
    return [da, db];
  },
});

export const rules = { matmul: matmulRule };
