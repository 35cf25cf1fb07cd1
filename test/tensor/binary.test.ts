import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  add, sub, mul, div, maximum, minimum, pow, rules, broadcastShapes, coalesce, BINARY_OPS, type BinaryOpName,
} from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { tensor, uniform, scalar } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory, sizeOf } from '../../src/tensor/tensor.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, grad } from '../../src/autodiff/index.js';

// ---- plain references ----------------------------------------------------------

type Fn = (a: Tensor | number, b: Tensor | number) => Tensor;
const fns: Record<string, Fn> = { add, sub, mul, div, maximum, minimum, pow };


const exact: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => Math.max(a, b),
  minimum: (a, b) => Math.min(a, b),
};

/** Reference broadcast: out[i] = f(a[ia], b[ib]) by explicit multi-index arithmetic. */
function refBroadcast(
  as: readonly number[], a: Float32Array, bs: readonly number[], b: Float32Array, f: (x: number, y: number) => number,
): { shape: number[]; data: Float64Array } {
  const rank = Math.max(as.length, bs.length);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = as[i - (rank - as.length)] ?? 1;
    const db = bs[i - (rank - bs.length)] ?? 1;
    shape.push(da === 1 ? db : da);
  }
  const n = sizeOf(shape);
  const data = new Float64Array(n);
  const idx = new Array<number>(rank).fill(0);
  const at = (s: readonly number[]): number => {
    let o = 0;
    for (let j = 0; j < s.length; j++) o = o * s[j] + (s[j] === 1 ? 0 : idx[j + rank - s.length]);
    return o;
  };
  for (let i = 0; i < n; i++) {
    data[i] = f(a[at(as)], b[at(bs)]);
    for (let j = rank - 1; j >= 0; j--) {
      if (++idx[j] < shape[j]) break;
      idx[j] = 0;
    }
  }
  return { shape, data };
}

const sameValue = (x: number, y: number): boolean => Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y));

/** Data with a sprinkling of specials (+-0, +-Inf, NaN, repeats for ties). */
function data(n: number, seed: number, specials = true): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const sp = [0, -0, Infinity, -Infinity, NaN, 1, -1, 0.5];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    if (specials && s % 11 === 0) out[i] = sp[(s >>> 8) % sp.length];
    else out[i] = ((s >>> 8) / 2 ** 24 - 0.5) * 8;
  }
  return out;
}

// operand shapes that broadcast to `out`: a suffix of it with some dims set to 1
const operandOf = (out: number[]): fc.Arbitrary<number[]> =>
  fc.tuple(fc.integer({ min: 0, max: out.length }), fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length })).map(
    ([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)),
  );
const arbPair = fc
  .array(fc.integer({ min: 1, max: 7 }), { maxLength: 5 })
  .chain((out) => fc.tuple(operandOf(out), operandOf(out)));


describe('binary ops with broadcasting', () => {
  it('add, sub, mul, div, maximum, minimum are bit-exact (one IEEE rounding) on random broadcasting pairs', () => {
    fc.assert(
      fc.property(arbPair, fc.constantFrom(...Object.keys(exact)), fc.nat(10000), ([as, bs], name, seed) =>
        scope(() => {
          const a = data(sizeOf(as), seed);
          const b = data(sizeOf(bs), seed + 7);
          const out = fns[name](tensor(a, as), tensor(b, bs));
          const want = refBroadcast(as, a, bs, b, (x, y) => Math.fround(exact[name](x, y)));
          expect(out.shape).toEqual(want.shape);
          const got = out.toArray();
          for (let i = 0; i < got.length; i++) {
            if (!sameValue(got[i], want.data[i])) throw new Error(`${name} [${as}] [${bs}] at ${i}: ${got[i]} vs ${want.data[i]}`);
          }
        }),
      ),
      { numRuns: 250 },
    );
  });

  it('pow is within 1 ulp of Math.pow on random broadcasting pairs', () => {
    const ulp = (v: number): number => {
      const x = Math.abs(Math.fround(v));
      return x < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(x)) - 23);
    };
    fc.assert(
      fc.property(arbPair, fc.nat(10000), fc.boolean(), ([as, bs], seed, negBase) =>
        scope(() => {
          // positive bases with real exponents, or any bases with integer exponents
          const a = data(sizeOf(as), seed).map((v) => (negBase ? v : Math.abs(v)));
          const b = data(sizeOf(bs), seed + 3).map((v) => (negBase ? Math.round(v) : v));
          const got = pow(tensor(a, as), tensor(b, bs)).toArray();
          const want = refBroadcast(as, a, bs, b, Math.pow).data;
          for (let i = 0; i < got.length; i++) {
            const w = want[i];
            const wf = Math.fround(w);
            const ok = sameValue(got[i], wf) || (Number.isFinite(wf) && Math.abs(got[i] - w) <= ulp(w));
            if (!ok) throw new Error(`pow at ${i}: ${got[i]} vs ${w}`);
          }
        }),
      ),
      { numRuns: 150 },
    );
  });

  it('pow follows Math.pow at the edges', () => {
    const a = [1, 1, NaN, -1, -8, 0, 0, -0, 2, 4, -4];
    const b = [NaN, Infinity, 0, Infinity, 1 / 3, -1, 2, 3, 0.5, 0.5, 0.5];
    const got = Array.from(pow(tensor(a), tensor(b)).toArray());
    expect(got).toEqual(a.map((x, i) => Math.fround(Math.pow(x, b[i]))));
    expect(got).toEqual([NaN, NaN, 1, NaN, NaN, Infinity, 0, -0, Math.fround(Math.SQRT2), 2, NaN]);
  });

  it('numbers are 0-d constants on either side', () => {
    scope(() => {
      const x = tensor([1, 2, 3]);
      expect(Array.from(add(x, 1).toArray())).toEqual([2, 3, 4]);
      expect(Array.from(sub(1, x).toArray())).toEqual([0, -1, -2]);
      expect(Array.from(div(x, 2).toArray())).toEqual([0.5, 1, 1.5]);
      expect(Array.from(pow(2, x).toArray())).toEqual([2, 4, 8]);
      const s = mul(3, 4);
      expect(s.shape).toEqual([]);
      expect(s.item()).toBe(12);
    });
  });

  it('maximum/minimum propagate NaN and order signed zeros like Math.max/min', () => {
    const a = tensor([NaN, 1, -0, 0]);
    const b = tensor([1, NaN, 0, -0]);
    const mx = Array.from(maximum(a, b).toArray());
    const mn = Array.from(minimum(a, b).toArray());
    expect(mx.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(mn.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(Object.is(mx[2], 0) && Object.is(mx[3], 0)).toBe(true);
    expect(Object.is(mn[2], -0) && Object.is(mn[3], -0)).toBe(true);
  });

  it('handles more than 4 dims that cannot be coalesced (rank 6, alternating broadcasts)', () => {
    scope(() => {
      const as = [2, 1, 3, 1, 2, 1];
      const bs = [1, 2, 1, 3, 1, 2];
      expect(coalesce([2, 2, 3, 3, 2, 2], [as, bs]).dims.length).toBe(6);
      const a = data(sizeOf(as), 1, false);
      const b = data(sizeOf(bs), 2, false);
      const got = mul(tensor(a, as), tensor(b, bs)).toArray();
      const want = refBroadcast(as, a, bs, b, (x, y) => Math.fround(x * y)).data;
      expect(Array.from(got)).toEqual(Array.from(want));
    });
  });

  it('coalesces a bias add to one broadcast dim and equal shapes to one flat dim', () => {
    expect(coalesce([16, 32, 32, 64], [[16, 32, 32, 64], [64]])).toEqual({ dims: [16384, 64], strides: [[64, 1], [0, 1]] });
    expect(coalesce([2, 3, 4], [[2, 3, 4], [2, 3, 4]])).toEqual({ dims: [24], strides: [[1], [1]] });
    expect(coalesce([2, 3, 4], [[2, 3, 4], []])).toEqual({ dims: [24], strides: [[1], [0]] });
    expect(coalesce([], [[], []])).toEqual({ dims: [1], strides: [[0], [0]] });
  });

  it('empty shapes give empty results', () => {
    scope(() => {
      expect(add(tensor([], [0, 3]), tensor([1, 2, 3])).shape).toEqual([0, 3]);
      expect(mul(tensor([], [2, 0]), tensor([], [1, 0])).shape).toEqual([2, 0]);
    });
  });
});

describe('binary vjps', () => {
  const pairs: [number[], number[]][] = [
    [[2, 3], [2, 3]],
    [[2, 3, 4], [3, 1]],
    [[4], [3, 1, 4]],
    [[2, 1, 3], [1, 4, 1]],
    [[3], []],
  ];

  it('checkGrad passes for add, sub, mul, div, pow with broadcasting (cotangents summed back)', () => {
    for (const [as, bs] of pairs) {
      for (const name of ['add', 'sub', 'mul', 'div', 'pow']) {
        scope(() => {
          const positive = name === 'div' || name === 'pow';
          const a = uniform(key(1), as, positive ? 0.5 : -2, 2);
          const b = uniform(key(2), bs, positive ? 0.5 : -2, 2);
          const outShape = broadcastShapes('test', as, bs);
          const r = uniform(key(3), outShape, -1, 1);
          checkGrad((x, y) => sum(mul(fns[name](x, y), r)), [a, b], { eps: 1e-3 });
        });
      }
    }
  });

  it('checkGrad passes for maximum and minimum away from ties', () => {
    for (const [as, bs] of pairs) {
      for (const name of ['maximum', 'minimum']) {
        scope(() => {
          // a on a grid of odd multiples of 0.25, b of multiples of 0.5: |a - b| >= 0.25
          const a = tensor(Array.from({ length: sizeOf(as) }, (_, i) => ((i * 7) % 9) * 0.5 - 2 + 0.25), as);
          const b = tensor(Array.from({ length: sizeOf(bs) }, (_, i) => ((i * 5) % 7) * 0.5 - 1.5), bs);
          const r = uniform(key(4), broadcastShapes('test', as, bs), -1, 1);
          checkGrad((x, y) => sum(mul(fns[name](x, y), r)), [a, b], { eps: 1e-3 });
        });
      }
    }
  });

  it('maximum and minimum send the gradient to the first argument on ties', () => {
    scope(() => {
      const a = tensor([1, 2, 3]);
      const b = tensor([1, 5, 0]);
      for (const [f, ga, gb] of [
        [maximum, [1, 0, 1], [0, 1, 0]],
        [minimum, [1, 1, 0], [0, 0, 1]],
      ] as const) {
        const [da, db] = grad((x: Tensor, y: Tensor) => sum(f(x, y)), [0, 1])(a, b) as Tensor[];
        expect(Array.from(da.toArray())).toEqual(ga);
        expect(Array.from(db.toArray())).toEqual(gb);
      }
    });
  });

  it('pow: the exponent gradient is 0 where the base is <= 0, the base gradient 0 where the exponent is 0', () => {
    scope(() => {
      const a = tensor([-2, 0, 2]);
      const b = tensor([2, 2, 2]);
      const [da, db] = grad((x: Tensor, y: Tensor) => sum(pow(x, y)), [0, 1])(a, b) as Tensor[];
      expect(Array.from(da.toArray())).toEqual([-4, 0, 4]);
      const d = db.toArray();
      expect(d[0]).toBe(0);
      expect(d[1]).toBe(0);
      expect(d[2]).toBeCloseTo(4 * Math.LN2, 5);
      // and the base gradient of a^0 is 0, also at a = 0 (not 0 * 0^-1 = NaN)
      const z = grad((x: Tensor) => sum(pow(x, 0)))(tensor([0, 2])).toArray();
      expect(Array.from(z)).toEqual([0, 0]);
    });
  });

  it('an operand used twice gets both cotangents (the vjp may hand back g itself)', () => {
    scope(() => {
      const x = tensor([1, -2, 3]);
      expect(Array.from(grad((t: Tensor) => sum(add(t, t)))(x).toArray())).toEqual([2, 2, 2]);
      expect(Array.from(grad((t: Tensor) => sum(mul(t, t)))(x).toArray())).toEqual([2, -4, 6]);
      expect(Array.from(grad((t: Tensor) => sum(sub(t, t)))(x).toArray())).toEqual([0, 0, 0]);
    });
  });

  it('a broadcast operand gets the cotangent summed over its broadcast dims', () => {
    scope(() => {
      const x = uniform(key(5), [4, 3], -1, 1);
      const bias = tensor([1, 2, 3]);
      const g = grad((b: Tensor) => sum(mul(add(x, b), x)))(bias).toArray();
      const xa = x.toArray();
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let r = 0; r < 4; r++) s += xa[r * 3 + c];
        expect(g[c]).toBeCloseTo(s, 5);
      }
    });
  });
});

describe('binary kernels', () => {
  it('give the same bits for any split of the rows (broadcasting kernel) or elements (flat kernel)', () => {
    fc.assert(
      fc.property(arbPair, fc.constantFrom(...(Object.keys(BINARY_OPS) as BinaryOpName[])), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }), ([as, bs], name, cuts) =>
        scope(() => {
          const shape = broadcastShapes('test', as, bs);
          const a = tensor(data(sizeOf(as), 3), as);
          const b = tensor(data(sizeOf(bs), 4), bs);
          const plan = coalesce(shape, [as, bs]);
          if (plan.dims.length > 4) return;
          const n = sizeOf(shape);
          const whole = empty(shape);
          const parts = empty(shape);
          const op = BINARY_OPS[name];
          if (plan.dims.length === 1) {
            const [sa, sb] = [plan.strides[0][0], plan.strides[1][0]];
            K.binary_flat(op, a.ptr, sa, b.ptr, sb, whole.ptr, 0, n, 0);
            const bounds = [0, ...cuts.map((c) => Math.floor(c * n)).sort((p, q) => p - q), n];
            for (let i = 0; i + 1 < bounds.length; i++) K.binary_flat(op, a.ptr, sa, b.ptr, sb, parts.ptr, bounds[i], bounds[i + 1], 0);
          } else {
            const d = plan.dims.slice();
            const [sa, sb] = plan.strides.map((s) => s.slice());
            while (d.length < 4) {
              d.unshift(1);
              sa.unshift(0);
              sb.unshift(0);
            }
            const rows = d[0] * d[1] * d[2];
            const call = (ptr: number, b0: number, b1: number): void =>
              K.binary(op, a.ptr, b.ptr, ptr, d[1], d[2], d[3], sa[0], sa[1], sa[2], sa[3], sb[0], sb[1], sb[2], sb[3], b0, b1, 0);
            call(whole.ptr, 0, rows);
            const bounds = [0, ...cuts.map((c) => Math.floor(c * rows)).sort((p, q) => p - q), rows];
            for (let i = 0; i + 1 < bounds.length; i++) call(parts.ptr, bounds[i], bounds[i + 1]);
          }
          expect(new Uint32Array(parts.toArray().buffer)).toEqual(new Uint32Array(whole.toArray().buffer));
        }),
      ),
      { numRuns: 150 },
    );
  });
});

describe('binary ops: arguments and memory', () => {
  it('shape errors name the op, both shapes and the clashing axis', () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(4), [4]);
    expect(() => add(a, b)).toThrow(ShapeError);
    expect(() => add(a, b)).toThrow('add: shapes [2, 3] and [4] do not broadcast (axis -1: 3 vs 4)');
    expect(() => mul(tensor(new Float32Array(6), [3, 2, 1]), tensor(new Float32Array(8), [4, 2, 1]))).toThrow(
      'mul: shapes [3, 2, 1] and [4, 2, 1] do not broadcast (axis -3: 3 vs 4)',
    );
  });

  it('rejects non-tensors, disposed tensors', () => {
    expect(() => add('1' as never, 1)).toThrow(ValueError);
    expect(() => mul(tensor([1]), null as never)).toThrow(/mul: b must be a Tensor or a number, got null/);
    const t = tensor([1]);
    t.dispose();
    expect(() => sub(t, 1)).toThrow(/sub: a was disposed/);
  });

  it('never write into their inputs, and leak nothing under a scope (the constants of numbers included)', () => {
    const before = memory();
    scope(() => {
      const x = tensor([1, 2, 3]);
      const y = tensor([4, 5, 6]);
      for (const f of Object.values(fns)) f(x, y);
      expect(Array.from(x.toArray())).toEqual([1, 2, 3]);
      expect(Array.from(y.toArray())).toEqual([4, 5, 6]);
      for (const name of Object.keys(fns)) grad((t: Tensor) => sum(fns[name](t, 2)))(x);
      scalar(1);
    });
    expect(memory()).toEqual(before);
  });

  it('export one rule per primitive', () => {
    expect(Object.keys(rules).sort()).toEqual(['add', 'div', 'maximum', 'minimum', 'mul', 'pow', 'sub']);
    for (const [k, r] of Object.entries(rules)) expect(r.name).toBe(k);
  });
});
