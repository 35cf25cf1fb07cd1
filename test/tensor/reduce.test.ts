import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sum, max, min, mean, rules, normalizeAxes } from '../../src/tensor/ops/reduce.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { tensor, uniform } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory, sizeOf } from '../../src/tensor/tensor.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, grad } from '../../src/autodiff/index.js';

// ---- plain float64 reference ---------------------------------------------------------

/** Reduce `axes` of x (row-major `shape`) with `f` from `init`, float64; also the sum of |x| per output. */
function refReduce(
  shape: readonly number[], x: Float32Array, axes: readonly number[], keepDims: boolean, init: number, f: (acc: number, v: number) => number,
): { shape: number[]; data: Float64Array; mag: Float64Array } {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const data = new Float64Array(sizeOf(outShape)).fill(init);
  const mag = new Float64Array(data.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < x.length; i++) {
    let o = 0;
    for (let j = 0; j < shape.length; j++) o = o * outShape[j] + (axes.includes(j) ? 0 : idx[j]);
    data[o] = f(data[o], x[i]);
    mag[o] += Math.abs(x[i]);
    for (let j = shape.length - 1; j >= 0; j--) {
      if (++idx[j] < shape[j]) break;
      idx[j] = 0;
    }
  }
  return { shape: keepDims ? outShape : shape.filter((_, i) => !axes.includes(i)), data, mag };
}

const subsets = (rank: number): number[][] =>
  Array.from({ length: 1 << rank }, (_, m) => Array.from({ length: rank }, (_, i) => i).filter((i) => m & (1 << i)));


describe('sum, max, mean, min against float64 references', () => {
  it('every axes combination (and keepDims) on random rank-4 tensors', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 4, maxLength: 4 }), fc.nat(1000), (shape, seed) =>
        scope(() => {
          const x = uniform(key(seed), shape, -2, 2);
          const xa = x.toArray();
          for (const axes of subsets(4)) {
            for (const keepDims of [false, true]) {
              const s = sum(x, axes, keepDims);
              const rs = refReduce(shape, xa, axes, keepDims, 0, (a, v) => a + v);
              expect(s.shape).toEqual(rs.shape);
              const sa = s.toArray();
              for (let i = 0; i < sa.length; i++) {
                expect(Math.abs(sa[i] - rs.data[i])).toBeLessThanOrEqual(4e-7 * rs.mag[i] * Math.log2(2 + xa.length) + 1e-30);
              }
              const m = max(x, axes, keepDims);
              const rm = refReduce(shape, xa, axes, keepDims, -Infinity, Math.max);
              expect(Array.from(m.toArray())).toEqual(Array.from(rm.data));
              const mn = min(x, axes, keepDims);
              const rmin = refReduce(shape, xa, axes, keepDims, Infinity, Math.min);
              expect(Array.from(mn.toArray())).toEqual(Array.from(rmin.data));
              const me = mean(x, axes, keepDims).toArray();
              const count = axes.reduce((c, a) => c * shape[a], 1);
              for (let i = 0; i < me.length; i++) {
                expect(Math.abs(me[i] - rs.data[i] / count)).toBeLessThanOrEqual((5e-7 * rs.mag[i] * Math.log2(2 + xa.length)) / count + 1e-30);
              }
            }
          }
        }),
      ),
      { numRuns: 25 },
    );
  });

  it('long rows and columns of every length mod 16 (the tree path and the column path)', () => {
    for (const n of [1, 3, 7, 15, 16, 17, 33, 100, 1000]) {
      for (const inner of [1, 2, 3, 4, 5, 33, 64]) {
        scope(() => {
          const shape = [2, n, inner];
          const x = uniform(key(n * 100 + inner), shape, -1, 3);
          const xa = x.toArray();
          const s = sum(x, 1).toArray();
          const rs = refReduce(shape, xa, [1], false, 0, (a, v) => a + v);
          // the worst-case bound of n float32 roundings
          for (let i = 0; i < s.length; i++) expect(Math.abs(s[i] - rs.data[i])).toBeLessThanOrEqual(1.2e-7 * n * rs.mag[i]);
          const m = max(x, 1).toArray();
          expect(Array.from(m)).toEqual(Array.from(refReduce(shape, xa, [1], false, -Infinity, Math.max).data));
        });
      }
    }
  });

  it('negative axes, a single number, and the default (all axes)', () => {
    scope(() => {
      const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      expect(Array.from(sum(x, -1).toArray())).toEqual([6, 15]);
      expect(Array.from(sum(x, [-2]).toArray())).toEqual([5, 7, 9]);
      expect(sum(x).shape).toEqual([]);
      expect(sum(x).item()).toBe(21);
      expect(sum(x, undefined, true).shape).toEqual([1, 1]);
      expect(max(x).item()).toBe(6);
      expect(min(x, 1).toArray()).toEqual(new Float32Array([1, 4]));
      expect(mean(x, 0).toArray()).toEqual(new Float32Array([2.5, 3.5, 4.5]));
      expect(sum(x, []).toArray()).toEqual(x.toArray());
      expect(sum(tensor([5], []), []).item()).toBe(5);
    });
  });

  it('NaN propagates through max and sum; a zero-size axis sums to 0', () => {
    scope(() => {
      const x = tensor([1, NaN, 3, 4], [2, 2]);
      expect(Array.from(max(x, 1).toArray()).map(Number.isNaN)).toEqual([true, false]);
      expect(Number.isNaN(sum(x).item())).toBe(true);
      const e = sum(tensor([], [2, 0, 3]), 1);
      expect(e.shape).toEqual([2, 3]);
      expect(Array.from(e.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    });
  });
});

describe('reduction vjps', () => {
  it('checkGrad passes for sum, mean, max and min over several axes sets', () => {
    for (const axes of [[0], [1, 2], [0, 2], undefined]) {
      scope(() => {
        // distinct values spaced by >= 0.05 so the max/min never flips within eps
        const n = 2 * 3 * 4;
        const perm = Array.from({ length: n }, (_, i) => (i * 7) % n);
        const x = tensor(perm.map((v) => v * 0.05 - 0.6), [2, 3, 4]);
        for (const f of [sum, mean, max, min]) {
          const y = f(x, axes);
          const r = uniform(key(9), y.shape, -1, 1);
          checkGrad((t) => sum(mul(f(t, axes), r)), [x], { eps: 1e-3 });
        }
      });
    }
  });

  it('max sends the gradient to the first maximal element (row-major within the reduced axes)', () => {
    scope(() => {
      const x = tensor([1, 3, 3, 0, 2, 2, 2, 1], [2, 4]);
      expect(Array.from(grad((t: Tensor) => sum(max(t, 1)))(x).toArray())).toEqual([0, 1, 0, 0, 1, 0, 0, 0]);
      const y = tensor([5, 1, 5, 5], [2, 2]);
      expect(Array.from(grad((t: Tensor) => max(t))(y).toArray())).toEqual([1, 0, 0, 0]);
      expect(Array.from(grad((t: Tensor) => sum(min(t, 0)))(x).toArray()).map(Math.abs)).toEqual([1, 0, 0, 1, 0, 1, 1, 0]);
    });
  });
});

describe('reduction kernels', () => {
  it('give the same bits for any split of the outputs into ranges', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(1, 2, 3, 17, 40),
        fc.constantFrom(1, 2, 3, 4, 7, 36),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
        (outer, n, inner, cuts) =>
          scope(() => {
            const x = uniform(key(outer * 1000 + n * 10 + inner), [outer, n, inner], -1, 1);
            const total = outer * inner;
            const bounds = [0, ...cuts.map((c) => Math.floor(c * total)).sort((a, b) => a - b), total];
            for (const kernel of ['reduce_sum', 'reduce_max', 'argmax'] as const) {
              const whole = empty([total]);
              const parts = empty([total]);
              K[kernel](x.ptr, whole.ptr, outer, n, inner, 0, total, 0);
              for (let i = 0; i + 1 < bounds.length; i++) K[kernel](x.ptr, parts.ptr, outer, n, inner, bounds[i], bounds[i + 1], 0);
              expect(new Uint32Array(parts.toArray().buffer)).toEqual(new Uint32Array(whole.toArray().buffer));
            }
            const y = empty([total]);
            K.reduce_max(x.ptr, y.ptr, outer, n, inner, 0, total, 0);
            const g = uniform(key(5), [total], -1, 1);
            const whole = empty([outer, n, inner]);
            const parts = empty([outer, n, inner]);
            K.reduce_max_grad(x.ptr, y.ptr, g.ptr, whole.ptr, outer, n, inner, 0, total, 0);
            for (let i = 0; i + 1 < bounds.length; i++) K.reduce_max_grad(x.ptr, y.ptr, g.ptr, parts.ptr, outer, n, inner, bounds[i], bounds[i + 1], 0);
            expect(new Uint32Array(parts.toArray().buffer)).toEqual(new Uint32Array(whole.toArray().buffer));
          }),
      ),
      { numRuns: 60 },
    );
  });

  it('sum of a bias-gradient shape [16, 32, 32, 64] over [0, 1, 2] is one pass and matches the reference', () => {
    scope(() => {
      const shape = [16, 32, 32, 64];
      const x = uniform(key(1), shape, -1, 1);
      const s = sum(x, [0, 1, 2]).toArray();
      const xa = x.toArray();
      for (const c of [0, 13, 63]) {
        let r = 0;
        let m = 0;
        for (let i = c; i < xa.length; i += 64) {
          r += xa[i];
          m += Math.abs(xa[i]);
        }
        expect(Math.abs(s[c] - r)).toBeLessThanOrEqual(1e-5 * m);
      }
    });
  });
});

describe('reductions: arguments and memory', () => {
  it('duplicate and out-of-range axes are ValueErrors naming the function', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => sum(x, [0, 0])).toThrow(ValueError);
    expect(() => sum(x, [1, -1])).toThrow(/sum: axis 1 appears more than once/);
    expect(() => max(x, 2)).toThrow(/max: axis 2 is out of range for rank 2/);
    expect(() => mean(x, -3)).toThrow(/mean: axis -3 is out of range/);
    expect(() => min(x, 1.5)).toThrow(ValueError);
    expect(() => sum(x, 'a' as never)).toThrow(ValueError);
    expect(() => sum(3 as never)).toThrow(/sum: x must be a Tensor/);
    expect(() => max(tensor([], [2, 0]), 1)).toThrow(ShapeError);
    expect(() => min(tensor([], [0]))).toThrow(/min: cannot take the min over axis 0 of size 0/);
    expect(normalizeAxes('f', 3, [-1, 0])).toEqual([0, 2]);
  });

  it('leak nothing under a scope, forward and backward', () => {
    const before = memory();
    scope(() => {
      const x = uniform(key(1), [3, 4, 5], -1, 1);
      for (const f of [sum, max, min, mean]) grad((t: Tensor) => sum(f(t, [0, 2], true)))(x);
    });
    expect(memory()).toEqual(before);
  });

  it('export one rule per primitive', () => {
    expect(Object.keys(rules).sort()).toEqual(['max', 'sum']);
    for (const [k, r] of Object.entries(rules)) expect(r.name).toBe(k);
  });
});
