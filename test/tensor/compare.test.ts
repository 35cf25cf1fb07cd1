import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { equal, greater, greaterEqual, less, argmax, oneHot, where, rules } from '../../src/tensor/ops/compare.js';
import { mul, add, coalesce, broadcastShapes } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { tensor, uniform } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory, sizeOf } from '../../src/tensor/tensor.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, grad } from '../../src/autodiff/index.js';

// ---- plain references ----------------------------------------------------------------

/** out[i] = f(operands at the broadcast index of i), by explicit multi-index arithmetic. */
function refBroadcast(shapes: (readonly number[])[], datas: Float32Array[], f: (...v: number[]) => number): { shape: number[]; data: number[] } {
  const rank = Math.max(...shapes.map((s) => s.length));
  const shape = Array.from({ length: rank }, (_, i) => Math.max(...shapes.map((s) => s[i - (rank - s.length)] ?? 1)));
  const idx = new Array<number>(rank).fill(0);
  const at = (s: readonly number[]): number => {
    let o = 0;
    for (let j = 0; j < s.length; j++) o = o * s[j] + (s[j] === 1 ? 0 : idx[j + rank - s.length]);
    return o;
  };
  const data: number[] = [];
  for (let i = 0; i < sizeOf(shape); i++) {
    data.push(f(...shapes.map((s, k) => datas[k][at(s)])));
    for (let j = rank - 1; j >= 0; j--) {
      if (++idx[j] < shape[j]) break;
      idx[j] = 0;
    }
  }
  return { shape, data };
}

/** Small integers with NaN and signed zeros, so equalities and ties are common. */
function ints(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const r = (s >>> 8) % 13;
    out[i] = r === 12 ? NaN : r === 11 ? -0 : r - 5;
  }
  return out;
}

const operandOf = (out: number[]): fc.Arbitrary<number[]> =>
  fc.tuple(fc.integer({ min: 0, max: out.length }), fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length })).map(
    ([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)),
  );
const arbShapes = (k: number): fc.Arbitrary<number[][]> =>
  fc.array(fc.integer({ min: 1, max: 7 }), { maxLength: 5 }).chain((out) => fc.tuple(...Array.from({ length: k }, () => operandOf(out))));

const cmp = {
  equal: [equal, (a: number, b: number) => +(a === b)],
  greater: [greater, (a: number, b: number) => +(a > b)],
  greaterEqual: [greaterEqual, (a: number, b: number) => +(a >= b)],
  less: [less, (a: number, b: number) => +(a < b)],
} as const;

describe('comparisons', () => {
  it('give exactly 1.0 / 0.0 like the JS comparison on random broadcasting pairs (NaN compares false)', () => {
    fc.assert(
      fc.property(arbShapes(2), fc.constantFrom(...(Object.keys(cmp) as (keyof typeof cmp)[])), fc.nat(1000), ([as, bs], name, seed) =>
        scope(() => {
          const a = ints(sizeOf(as), seed);
          const b = ints(sizeOf(bs), seed + 1);
          const [f, r] = cmp[name];
          const out = f(tensor(a, as), tensor(b, bs));
          const want = refBroadcast([as, bs], [a, b], r);
          expect(out.shape).toEqual(want.shape);
          expect(Array.from(out.toArray())).toEqual(want.data);
        }),
      ),
      { numRuns: 150 },
    );
  });

  it('take numbers, have no gradient (zero cotangent through them), and name both shapes on a mismatch', () => {
    scope(() => {
      const x = tensor([1, 2, 3]);
      expect(Array.from(greater(x, 2).toArray())).toEqual([0, 0, 1]);
      expect(Array.from(less(2, x).toArray())).toEqual([0, 0, 1]);
      const g = grad((t: Tensor) => sum(add(mul(greater(t, 1.5), t), equal(t, t))))(x).toArray();
      expect(Array.from(g)).toEqual([0, 1, 1]);
      for (const r of [rules.equal, rules.greater, rules.greaterEqual, rules.less]) {
        expect(r.vjp(x, [x, x], x, undefined, [true, true])).toEqual([null, null]);
      }
      expect(() => equal(tensor([1, 2]), tensor([1, 2, 3]))).toThrow('equal: shapes [2] and [3] do not broadcast (axis -1: 2 vs 3)');
      expect(() => less(x, 'a' as never)).toThrow(ValueError);
    });
  });
});

describe('where', () => {
  it('selects like the reference with all three operands broadcast (a NaN condition counts as true)', () => {
    fc.assert(
      fc.property(arbShapes(3), fc.nat(1000), ([cs, as, bs], seed) =>
        scope(() => {
          const c = ints(sizeOf(cs), seed).map((v) => (v > 0 ? 0 : v));
          const a = ints(sizeOf(as), seed + 1);
          const b = ints(sizeOf(bs), seed + 2);
          const out = where(tensor(c, cs), tensor(a, as), tensor(b, bs));
          const want = refBroadcast([cs, as, bs], [c, a, b], (p, q, r) => (p !== 0 ? q : r));
          expect(out.shape).toEqual(want.shape);
          const got = Array.from(out.toArray());
          got.forEach((v, i) => expect(Object.is(v, want.data[i]) || (Number.isNaN(v) && Number.isNaN(want.data[i]))).toBe(true));
        }),
      ),
      { numRuns: 150 },
    );
  });

  it('its kernel gives the same bits for any split of the rows', () => {
    fc.assert(
      fc.property(arbShapes(3), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }), ([cs, as, bs], cuts) =>
        scope(() => {
          const shape = broadcastShapes('t', cs, as, bs);
          const plan = coalesce(shape, [cs, as, bs]);
          if (plan.dims.length > 4) return;
          const d = plan.dims.slice();
          const st = plan.strides.map((s) => s.slice());
          while (d.length < 4) {
            d.unshift(1);
            st.forEach((s) => s.unshift(0));
          }
          const c = tensor(ints(sizeOf(cs), 1), cs);
          const a = tensor(ints(sizeOf(as), 2), as);
          const b = tensor(ints(sizeOf(bs), 3), bs);
          const rows = d[0] * d[1] * d[2];
          const run = (out: Tensor, b0: number, b1: number): void =>
            K.where_bcast(c.ptr, a.ptr, b.ptr, out.ptr, d[1], d[2], d[3], ...(st[0] as [number, number, number, number]), ...(st[1] as [number, number, number, number]), ...(st[2] as [number, number, number, number]), b0, b1, 0);
          const whole = empty(shape);
          const parts = empty(shape);
          run(whole, 0, rows);
          const bounds = [0, ...cuts.map((x) => Math.floor(x * rows)).sort((p, q) => p - q), rows];
          for (let i = 0; i + 1 < bounds.length; i++) run(parts, bounds[i], bounds[i + 1]);
          expect(new Uint32Array(parts.toArray().buffer)).toEqual(new Uint32Array(whole.toArray().buffer));
        }),
      ),
      { numRuns: 80 },
    );
  });

  it('is differentiable in a and b (cotangents masked and summed back), not in the condition', () => {
    scope(() => {
      const c = tensor([1, 0, 1, 0, 0, 1], [2, 3]);
      const a = uniform(key(1), [2, 3], -1, 1);
      const b = uniform(key(2), [3], -1, 1);
      const r = uniform(key(3), [2, 3], -1, 1);
      checkGrad((x, y) => sum(mul(where(c, x, y), r)), [a, b], { eps: 1e-3 });
      const [ga, gb] = grad((x: Tensor, y: Tensor) => sum(where(c, x, y)), [0, 1])(a, b) as Tensor[];
      expect(Array.from(ga.toArray())).toEqual([1, 0, 1, 0, 0, 1]);
      expect(Array.from(gb.toArray())).toEqual([1, 2, 0]);
      expect(rules.where.vjp(a, [c, a, a], a, undefined, [true, true, true])[0]).toBeNull();
      expect(Array.from(where(c, 5, b).toArray())).toEqual([5, b.toArray()[1], 5, b.toArray()[0], b.toArray()[1], 5]);
    });
  });

  it('rejects bad arguments and non-broadcasting shapes naming all three', () => {
    const t = tensor([1, 2]);
    expect(() => where(t, tensor([1, 2, 3]), 0)).toThrow('where: shapes [2], [3] and [] do not broadcast (axis -1: 2 vs 3)');
    expect(() => where(1 as never, t, t)).toThrow(/where: cond must be a Tensor/);
    expect(() => where(t, t, 'b' as never)).toThrow(/where: b must be a Tensor or a number/);
  });
});

describe('argmax', () => {
  it('gives the first maximal index on every axis of random tensors with ties (NaN counts as maximal)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }), fc.nat(1000), (shape, seed) =>
        scope(() => {
          const xa = ints(sizeOf(shape), seed);
          const x = tensor(xa, shape);
          for (let axis = 0; axis < shape.length; axis++) {
            const got = argmax(x, axis - shape.length).toArray();
            const n = shape[axis];
            const inner = sizeOf(shape.slice(axis + 1));
            const outer = sizeOf(shape.slice(0, axis));
            const want: number[] = [];
            for (let o = 0; o < outer; o++) {
              for (let j = 0; j < inner; j++) {
                let best = 0;
                for (let k = 0; k < n; k++) {
                  const v = xa[(o * n + k) * inner + j];
                  if (Number.isNaN(v)) {
                    best = k;
                    break;
                  }
                  if (v > xa[(o * n + best) * inner + j]) best = k;
                }
                want.push(best);
              }
            }
            expect(Array.from(got)).toEqual(want);
          }
        }),
      ),
      { numRuns: 100 },
    );
  });

  it('defaults to the last axis, removes it, and rejects bad axes', () => {
    scope(() => {
      const x = tensor([0, 5, 5, 9, 1, 2], [2, 3]);
      const a = argmax(x);
      expect(a.shape).toEqual([2]);
      expect(Array.from(a.toArray())).toEqual([1, 0]);
      expect(() => argmax(x, 2)).toThrow(/argmax: axis must be an integer in \[-2, 1\]/);
      expect(() => argmax(tensor([], [0]))).toThrow(ShapeError);
      expect(rules.argmax.vjp(a, [x], a, { axis: 1 }, [true])).toEqual([null]);
    });
  });
});

describe('oneHot', () => {
  it('puts a single 1 per row at the label', () => {
    scope(() => {
      const t = oneHot(new Int32Array([2, 0, 1]), 3);
      expect(t.shape).toEqual([3, 3]);
      expect(Array.from(t.toArray())).toEqual([0, 0, 1, 1, 0, 0, 0, 1, 0]);
      expect(oneHot([], 4).shape).toEqual([0, 4]);
      expect(Array.from(oneHot([3], 4).toArray())).toEqual([0, 0, 0, 1]);
    });
  });

  it('rejects labels out of range, non-integers and bad depths', () => {
    expect(() => oneHot([0, 3], 3)).toThrow(/oneHot: labels\[1\] must be an integer in \[0, 2\], got 3/);
    expect(() => oneHot([-1], 3)).toThrow(ValueError);
    expect(() => oneHot([0.5], 3)).toThrow(ValueError);
    expect(() => oneHot([0], 0)).toThrow(/oneHot: depth must be a positive integer/);
    expect(() => oneHot('abc' as never, 3)).toThrow(ValueError);
  });
});

describe('compare ops: memory and rules', () => {
  it('leak nothing under a scope', () => {
    const before = memory();
    scope(() => {
      const x = uniform(key(1), [3, 4], -1, 1);
      equal(x, 0);
      argmax(x);
      oneHot([1, 2], 3);
      grad((t: Tensor) => sum(where(greater(t, 0), t, 0)))(x);
    });
    expect(memory()).toEqual(before);
  });

  it('export one rule per primitive', () => {
    expect(Object.keys(rules).sort()).toEqual(['argmax', 'equal', 'greater', 'greaterEqual', 'less', 'where']);
    for (const [k, r] of Object.entries(rules)) expect(r.name).toBe(k);
  });
});
