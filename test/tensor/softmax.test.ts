import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { softmax, logSoftmax, rules } from '../../src/tensor/ops/softmax.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { tensor, uniform } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory, sizeOf } from '../../src/tensor/tensor.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, vjp } from '../../src/autodiff/index.js';

// ---- plain float64 references ----------------------------------------------------------

/** Visit every slice along `axis`: f(indices of the slice's elements). */
function slices(shape: readonly number[], axis: number, f: (idx: number[]) => void): void {
  const n = shape[axis];
  const inner = sizeOf(shape.slice(axis + 1));
  const outer = sizeOf(shape.slice(0, axis));
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) f(Array.from({ length: n }, (_, k) => (o * n + k) * inner + j));
  }
}

function refSoftmax(shape: readonly number[], x: Float32Array, axis: number, log: boolean): Float64Array {
  const y = new Float64Array(x.length);
  slices(shape, axis, (idx) => {
    const m = Math.max(...idx.map((i) => x[i]));
    const s = idx.reduce((acc, i) => acc + Math.exp(x[i] - m), 0);
    for (const i of idx) y[i] = log ? x[i] - m - Math.log(s) : Math.exp(x[i] - m) / s;
  });
  return y;
}

/** Reference vjp: softmax dx = y (g - sum g y); log-softmax dx = g - softmax(x) sum g. */
function refGrad(shape: readonly number[], x: Float32Array, g: Float32Array, axis: number, log: boolean): Float64Array {
  const p = refSoftmax(shape, x, axis, false);
  const dx = new Float64Array(x.length);
  slices(shape, axis, (idx) => {
    const dot = idx.reduce((acc, i) => acc + (log ? g[i] : g[i] * p[i]), 0);
    for (const i of idx) dx[i] = log ? g[i] - p[i] * dot : p[i] * (g[i] - dot);
  });
  return dx;
}

/**
 * Error bounds in float32 arithmetic: x - max rounds to half an ulp of |x - max|
 * (so the relative error of e^(x - max) grows with it), plus a few ulps for exp,
 * the sum (about sqrt(n) roundings) and the division or log.
 */
function bounds(shape: readonly number[], x: Float32Array, axis: number): Float64Array {
  const b = new Float64Array(x.length);
  slices(shape, axis, (idx) => {
    const m = Math.max(...idx.map((i) => x[i]));
    const spread = Math.max(...idx.map((i) => m - x[i]));
    for (const i of idx) b[i] = 2 ** -24 * (m - x[i] + spread + 10 + 2 * Math.sqrt(idx.length));
  });
  return b;
}

const arbCase = fc
  .array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 4 })
  .chain((shape) => fc.tuple(fc.constant(shape), fc.integer({ min: -shape.length, max: shape.length - 1 }), fc.nat(1000)));


describe('softmax and logSoftmax against float64 references', () => {
  it('match on random shapes and axes; softmax slices sum to 1', () => {
    fc.assert(
      fc.property(arbCase, fc.constantFrom(1, 30), ([shape, axis, seed], scale) =>
        scope(() => {
          const x = uniform(key(seed), shape, -scale, scale);
          const xa = x.toArray();
          const a = axis < 0 ? axis + shape.length : axis;
          const y = softmax(x, axis).toArray();
          const ly = logSoftmax(x, axis).toArray();
          const ry = refSoftmax(shape, xa, a, false);
          const rly = refSoftmax(shape, xa, a, true);
          const tol = bounds(shape, xa, a);
          for (let i = 0; i < y.length; i++) {
            expect(Math.abs(y[i] - ry[i])).toBeLessThanOrEqual(tol[i] * ry[i] + 1e-37);
            expect(Math.abs(ly[i] - rly[i])).toBeLessThanOrEqual(tol[i] * Math.max(1, Math.abs(rly[i])));
          }
          slices(shape, a, (idx) => {
            const s = idx.reduce((acc, i) => acc + y[i], 0);
            expect(Math.abs(s - 1)).toBeLessThanOrEqual(1e-6);
          });
        }),
      ),
      { numRuns: 150 },
    );
  });

  it('long rows of every length mod 16, and classification shapes [32, 10] and [64, 1000]', () => {
    for (const shape of [[3, 1], [2, 15], [2, 16], [2, 17], [2, 33], [32, 10], [64, 1000], [4, 1000, 3]]) {
      scope(() => {
        const x = uniform(key(shape[1]), shape, -5, 5);
        const xa = x.toArray();
        const ry = refSoftmax(shape, xa, 1, false);
        const rly = refSoftmax(shape, xa, 1, true);
        const tol = bounds(shape, xa, 1);
        const y = softmax(x, 1).toArray();
        const ly = logSoftmax(x, 1).toArray();
        for (let i = 0; i < y.length; i++) {
          expect(Math.abs(y[i] - ry[i])).toBeLessThanOrEqual(tol[i] * ry[i]);
          expect(Math.abs(ly[i] - rly[i])).toBeLessThanOrEqual(tol[i] * Math.max(1, Math.abs(rly[i])));
        }
      });
    }
  });

  it('is stable for huge logits and exact at the extremes', () => {
    scope(() => {
      const x = tensor([1000, 0, -1000, 1e30, 1e30, -1e30], [2, 3]);
      expect(Array.from(softmax(x).toArray())).toEqual([1, 0, 0, 0.5, 0.5, 0]);
      const ly = logSoftmax(x).toArray();
      expect(ly[0]).toBe(0);
      expect(ly[1]).toBe(-1000);
      expect(ly[2]).toBe(-2000);
      expect(ly[3]).toBeCloseTo(-Math.LN2, 6);
      const z = tensor([-Infinity, 0, 0, 0], [1, 4]);
      expect(Array.from(softmax(z).toArray())).toEqual([0, 1 / 3, 1 / 3, 1 / 3].map(Math.fround));
      expect(logSoftmax(z).toArray()[0]).toBe(-Infinity);
      const one = tensor([7], [1, 1]);
      expect(softmax(one).item()).toBe(1);
      expect(logSoftmax(one).item()).toBe(0);
    });
  });
});

describe('softmax vjps', () => {
  it('checkGrad passes for softmax and logSoftmax on every axis', () => {
    for (const axis of [0, 1, 2, -1]) {
      scope(() => {
        const x = uniform(key(axis + 5), [2, 3, 5], -2, 2);
        const r = uniform(key(7), [2, 3, 5], -1, 1);
        checkGrad((t) => sum(mul(softmax(t, axis), r)), [x], { eps: 1e-3 });
        checkGrad((t) => sum(mul(logSoftmax(t, axis), r)), [x], { eps: 1e-3 });
      });
    }
  });

  it('the fused backward matches the reference vjp on random shapes and axes', () => {
    fc.assert(
      fc.property(arbCase, fc.boolean(), ([shape, axis, seed], log) =>
        scope(() => {
          const x = uniform(key(seed), shape, -3, 3);
          const g = uniform(key(seed + 1), shape, -1, 1);
          const [, pull] = vjp((t: Tensor) => (log ? logSoftmax(t, axis) : softmax(t, axis)), x);
          const [dx] = pull(g) as [Tensor];
          const a = axis < 0 ? axis + shape.length : axis;
          const want = refGrad(shape, x.toArray(), g.toArray(), a, log);
          const got = dx.toArray();
          for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(2e-6 * (1 + shape[a]));
        }),
      ),
      { numRuns: 80 },
    );
  });
});

describe('softmax kernels', () => {
  it('give the same bits for any split of the slices into ranges', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(1, 3, 16, 21, 50),
        fc.constantFrom(1, 2, 5, 8),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
        (outer, n, inner, cuts) =>
          scope(() => {
            const x = uniform(key(outer * 100 + n + inner), [outer, n, inner], -4, 4);
            const g = uniform(key(3), [outer, n, inner], -1, 1);
            const total = outer * inner;
            const bounds = [0, ...cuts.map((c) => Math.floor(c * total)).sort((a, b) => a - b), total];
            const same = (a: Tensor, b: Tensor): void => expect(new Uint32Array(a.toArray().buffer)).toEqual(new Uint32Array(b.toArray().buffer));
            for (const log of [0, 1]) {
              const whole = empty([outer, n, inner]);
              const parts = empty([outer, n, inner]);
              K.softmax(x.ptr, whole.ptr, outer, n, inner, log, 0, total, 0);
              for (let i = 0; i + 1 < bounds.length; i++) K.softmax(x.ptr, parts.ptr, outer, n, inner, log, bounds[i], bounds[i + 1], 0);
              same(parts, whole);
              const dw = empty([outer, n, inner]);
              const dp = empty([outer, n, inner]);
              K.softmax_grad(whole.ptr, g.ptr, dw.ptr, outer, n, inner, log, 0, total, 0);
              for (let i = 0; i + 1 < bounds.length; i++) K.softmax_grad(whole.ptr, g.ptr, dp.ptr, outer, n, inner, log, bounds[i], bounds[i + 1], 0);
              same(dp, dw);
            }
          }),
      ),
      { numRuns: 60 },
    );
  });
});

describe('softmax: arguments and memory', () => {
  it('rejects bad axes, 0-d and empty axes with typed errors naming the function', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => softmax(x, 2)).toThrow(ValueError);
    expect(() => logSoftmax(x, -3)).toThrow(/logSoftmax: axis must be an integer in \[-2, 1\]/);
    expect(() => softmax(x, 0.5)).toThrow(ValueError);
    expect(() => softmax(tensor([1], []))).toThrow(ShapeError);
    expect(() => softmax(tensor([], [2, 0]))).toThrow(/softmax: axis 1 of x \[2, 0\] has size 0/);
    expect(() => softmax('x' as never)).toThrow(/softmax: x must be a Tensor/);
  });

  it('leaks nothing under a scope, forward and backward', () => {
    const before = memory();
    scope(() => {
      const x = uniform(key(1), [3, 4], -1, 1);
      const [, pull] = vjp((t: Tensor) => logSoftmax(softmax(t, 0)), x);
      pull(uniform(key(2), [3, 4], -1, 1));
    });
    expect(memory()).toEqual(before);
  });

  it('exports one rule per primitive', () => {
    expect(Object.keys(rules).sort()).toEqual(['logSoftmax', 'softmax']);
    for (const [k, r] of Object.entries(rules)) expect(r.name).toBe(k);
  });
});
