import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { matmul, rules } from '../../src/tensor/ops/matmul.js';
import { randn } from '../../src/tensor/create.js';
import { Tensor, scope } from '../../src/tensor/tensor.js';
import { alloc, free, heapF32 } from '../../src/tensor/heap.js';
import { K } from '../../src/tensor/kernels.js';
import { key, split } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad } from '../../src/autodiff/index.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { mul } from '../../src/tensor/ops/binary.js';

// ---- plain float64 reference ---------------------------------------------------------

/** op(A) · op(B) in float64, and Σ|terms| per element for the tolerance. */
function reference(a: Float32Array, b: Float32Array, M: number, N: number, Kd: number, transA: boolean, transB: boolean): [Float64Array, Float64Array] {
  const c = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++)
      for (let k = 0; k < Kd; k++) {
        const av = transA ? a[k * M + i] : a[i * Kd + k];
        const bv = transB ? b[j * Kd + k] : b[k * N + j];
        c[i * N + j] += av * bv;
        mag[i * N + j] += Math.abs(av * bv);
      }
  return [c, mag];
}

function expectClose(got: Float32Array, want: Float64Array, mag: Float64Array): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 2e-5 * mag[i] + 1e-30)) throw new Error(`c[${i}]: got ${got[i]}, want ${want[i]} (|terms| ${mag[i]})`);
  }
}

const dim = fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 40);

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  seed: number;
}

const caseArb: fc.Arbitrary<Case> = fc.record({ M: dim, N: dim, K: dim, transA: fc.boolean(), transB: fc.boolean(), seed: fc.nat(1 << 30) });

function operands(c: Case): [Tensor, Tensor] {
  const [ka, kb] = split(key(c.seed));
  return [randn(ka, c.transA ? [c.K, c.M] : [c.M, c.K]), randn(kb, c.transB ? [c.N, c.K] : [c.K, c.N])];
}

// ---- tests -----------------------------------------------------------------------------

describe('matmul against a float64 reference', () => {
  it('op(A)·op(B) agrees for random sizes (1, 3, 7, 33, ...) and every transpose combination', () => {
    fc.assert(
      fc.property(caseArb, (c) =>
        scope(() => {
          const [a, b] = operands(c);
          const y = matmul(a, b, { transA: c.transA, transB: c.transB });
          expect(y.shape).toEqual([c.M, c.N]);
          const [want, mag] = reference(a.toArray(), b.toArray(), c.M, c.N, c.K, c.transA, c.transB);
          expectClose(y.toArray(), want, mag);
        }),
      ),
      { numRuns: 120 },
    );
  });
  it('agrees when K spans several cache blocks and M, N are large and ragged', () => {
    for (const c of [
      { M: 70, N: 45, K: 600, transA: false, transB: false, seed: 1 },
      { M: 37, N: 20, K: 513, transA: true, transB: true, seed: 2 },
      { M: 130, N: 8, K: 257, transA: true, transB: false, seed: 3 },
    ]) {
      scope(() => {
        const [a, b] = operands(c);
        const [want, mag] = reference(a.toArray(), b.toArray(), c.M, c.N, c.K, c.transA, c.transB);
        expectClose(matmul(a, b, { transA: c.transA, transB: c.transB }).toArray(), want, mag);
      });
    }
  });
  it('an empty inner dimension gives zeros; empty outer dimensions give empty results', () =>
    scope(() => {
      expect(Array.from(matmul(randn(key(1), [3, 0]), randn(key(2), [0, 2])).toArray())).toEqual([0, 0, 0, 0, 0, 0]);
      expect(matmul(randn(key(1), [0, 4]), randn(key(2), [4, 2])).shape).toEqual([0, 2]);
    }));
});

describe('matmul gradients', () => {
  for (const [transA, transB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    it(`checkGrad with transA=${transA}, transB=${transB}`, () =>
      scope(() => {
        const c = { M: 5, N: 3, K: 6, transA, transB, seed: 7 };
        const [a, b] = operands(c);
        const R = randn(key(9), [5, 3]);
        checkGrad((x: Tensor, y: Tensor) => sum(mul(matmul(x, y, { transA, transB }), R)), [a, b]);
      }));
  }
  it('the vjp satisfies <A·B, G> = <A, vjp_A(G)> = <B, vjp_B(G)> exactly in shape and closely in value', () => {
    fc.assert(
      fc.property(caseArb, (c) =>
        scope(() => {
          const [a, b] = operands(c);
          const p = { M: c.M, N: c.N, K: c.K, transA: c.transA, transB: c.transB };
          const y = rules.matmul.forward([a, b], p);
          const g = randn(key(c.seed + 1), [c.M, c.N]);
          const [da, db] = rules.matmul.vjp(g, [a, b], y, p, [true, true]);
          expect(da!.shape).toEqual(a.shape);
          expect(db!.shape).toEqual(b.shape);
          const dot = (u: Float32Array, v: Float32Array): [number, number] => {
            let s = 0;
            let m = 0;
            for (let i = 0; i < u.length; i++) {
              s += u[i] * v[i];
              m += Math.abs(u[i] * v[i]);
            }
            return [s, m];
          };
          const [lhs, m0] = dot(y.toArray(), g.toArray());
          const [ra, m1] = dot(a.toArray(), da!.toArray());
          const [rb, m2] = dot(b.toArray(), db!.toArray());
          const tol = 1e-5 * (m0 + m1 + m2) + 1e-30;
          expect(Math.abs(lhs - ra)).toBeLessThanOrEqual(tol);
          expect(Math.abs(lhs - rb)).toBeLessThanOrEqual(tol);
        }),
      ),
      { numRuns: 40 },
    );
  });
});

describe('gemm kernels are deterministic under any range split', () => {
  it('gemm over random row ranges and gemm_pack_b over random panel ranges give the same bytes as one range', () => {
    const splitArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 });
    const ranges = (total: number, cuts: number[]): [number, number][] => {
      const pts = [...new Set(cuts.map((u) => Math.floor(u * total)).filter((p) => p > 0 && p < total))].sort((x, y) => x - y);
      const bounds = [0, ...pts, total];
      return bounds.slice(1).map((e, i) => [bounds[i], e]);
    };
    const bigDim = fc.constantFrom(1, 3, 7, 33, 70, 300);
    fc.assert(
      fc.property(fc.record({ M: bigDim, N: dim, K: bigDim, transA: fc.boolean(), transB: fc.boolean(), seed: fc.nat(1 << 30) }), splitArb, (c, cuts) =>
        scope(() => {
          const [a, b] = operands(c);
          const bias = randn(key(c.seed + 5), [c.N]);
          const panels = Math.ceil(c.N / 8);
          const bp = [alloc(panels * c.K * 32), alloc(panels * c.K * 32)];
          const out = [alloc(c.M * c.N * 4), alloc(c.M * c.N * 4)];
          const s = alloc(K.gemm_scratch());
          const heap = heapF32();
          try {
            for (const o of out) heap.fill(NaN, o >>> 2, (o >>> 2) + c.M * c.N);
            K.gemm_pack_b(b.ptr, c.K, c.N, c.transB ? 1 : 0, bp[0], 0, panels, s);
            for (const [lo, hi] of ranges(panels, cuts)) K.gemm_pack_b(b.ptr, c.K, c.N, c.transB ? 1 : 0, bp[1], lo, hi, s);
            const bytes = (p: number, n: number): Uint8Array => new Uint8Array(heapF32().buffer).slice(p, p + n);
            expect(bytes(bp[1], panels * c.K * 32)).toEqual(bytes(bp[0], panels * c.K * 32));
            K.gemm(a.ptr, bp[0], out[0], c.M, c.N, c.K, c.transA ? 1 : 0, bias.ptr, 0, c.M, s);
            for (const [lo, hi] of ranges(c.M, cuts)) {
              heap.fill(-3, s >>> 2, (s + K.gemm_scratch()) >>> 2);
              K.gemm(a.ptr, bp[0], out[1], c.M, c.N, c.K, c.transA ? 1 : 0, bias.ptr, lo, hi, s);
            }
            expect(bytes(out[1], c.M * c.N * 4)).toEqual(bytes(out[0], c.M * c.N * 4));
          } finally {
            bp.forEach(free);
            out.forEach(free);
            free(s);
          }
        }),
      ),
      { numRuns: 60 },
    );
  });
});

describe('matmul rejects bad inputs with typed errors', () => {
  it('ranks, inner dimensions and options', () =>
    scope(() => {
      const a = randn(key(1), [2, 3]);
      const b = randn(key(2), [4, 5]);
      expect(() => matmul(a, b)).toThrow(ShapeError);
      expect(() => matmul(a, b)).toThrow(/matmul: inner dimensions differ: a has 3 columns, b has 4 rows \(a: \[2, 3\], b: \[4, 5\]\)/);
      expect(() => matmul(a, b, { transA: true, transB: true })).toThrow(/a \(transposed\) has 2 columns, b \(transposed\) has 5 rows/);
      expect(matmul(a, randn(key(3), [5, 3]), { transB: true }).shape).toEqual([2, 5]);
      expect(() => matmul(randn(key(1), [2, 3, 4]), b)).toThrow(/matmul: a must be rank 2, got shape \[2, 3, 4\]/);
      expect(() => matmul(a, randn(key(1), [3]))).toThrow(/matmul: b must be rank 2, got shape \[3\]/);
      expect(() => matmul(a, b, { transA: 1 as never })).toThrow(ValueError);
      expect(() => matmul(a, b, { transA: 1 as never })).toThrow(/matmul: transA must be a boolean, got 1/);
      expect(() => matmul(a, 'b' as never)).toThrow(/matmul: b must be a Tensor/);
      expect(() => matmul(a, b, 3 as never)).toThrow(/options must be an object/);
    }));
});
