import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { reshape, broadcastTo, expandDims, squeeze, sumTo, rules } from '../../src/tensor/ops/shape.js';
import { mul, coalesce } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { tensor, uniform } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory, sizeOf } from '../../src/tensor/tensor.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, grad } from '../../src/autodiff/index.js';

// ---- plain references -----------------------------------------------------------------

/** x (shape `from`) broadcast to `to`, by explicit multi-index arithmetic. */
function refBroadcast(from: readonly number[], x: Float32Array, to: readonly number[]): Float32Array {
  const out = new Float32Array(sizeOf(to));
  const idx = new Array<number>(to.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let o = 0;
    for (let j = 0; j < from.length; j++) o = o * from[j] + (from[j] === 1 ? 0 : idx[j + to.length - from.length]);
    out[i] = x[o];
    for (let j = to.length - 1; j >= 0; j--) {
      if (++idx[j] < to[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

/** g (shape `to`) summed back to `from` in float64: the adjoint of refBroadcast. */
function refSumTo(to: readonly number[], g: Float32Array, from: readonly number[]): Float64Array {
  const out = new Float64Array(sizeOf(from));
  const idx = new Array<number>(to.length).fill(0);
  for (let i = 0; i < g.length; i++) {
    let o = 0;
    for (let j = 0; j < from.length; j++) o = o * from[j] + (from[j] === 1 ? 0 : idx[j + to.length - from.length]);
    out[o] += g[i];
    for (let j = to.length - 1; j >= 0; j--) {
      if (++idx[j] < to[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

const arbBroadcast = fc
  .array(fc.integer({ min: 1, max: 7 }), { maxLength: 5 })
  .chain((to) =>
    fc
      .tuple(fc.integer({ min: 0, max: to.length }), fc.array(fc.boolean(), { minLength: to.length, maxLength: to.length }))
      .map(([drop, ones]) => [to.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)), to] as const),
  );

describe('reshape', () => {
  it('is a view: no bytes are allocated and the data is shared', () => {
    scope(() => {
      const x = uniform(key(1), [4, 6], -1, 1);
      const before = memory();
      const y = reshape(x, [2, 3, 4]);
      const z = reshape(y, [-1]);
      expect(memory().bytes).toBe(before.bytes);
      expect(memory().tensors).toBe(before.tensors + 2);
      expect(y.ptr).toBe(x.ptr);
      expect(z.shape).toEqual([24]);
      expect(z.toArray()).toEqual(x.toArray());
      // the block outlives the original while a view holds it
      x.dispose();
      expect(z.toArray().length).toBe(24);
    });
  });

  it('infers one -1, and its vjp reshapes back', () => {
    scope(() => {
      expect(reshape(tensor(new Float32Array(12)), [3, -1, 2]).shape).toEqual([3, 2, 2]);
      expect(reshape(tensor([5], []), [1, 1]).shape).toEqual([1, 1]);
      expect(reshape(tensor([], [0, 3]), [3, 0]).shape).toEqual([3, 0]);
      const x = uniform(key(2), [2, 6], -1, 1);
      const r = uniform(key(3), [3, 4], -1, 1);
      checkGrad((t) => sum(mul(reshape(t, [3, 4]), r)), [x]);
      const g = grad((t: Tensor) => sum(mul(reshape(t, [3, 4]), r)))(x);
      expect(g.shape).toEqual([2, 6]);
      expect(g.toArray()).toEqual(r.toArray());
    });
  });

  it('rejects mismatched sizes, several -1s and bad entries with messages naming both shapes', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => reshape(x, [4])).toThrow('reshape: cannot reshape [2, 3] (6 elements) to [4] (4 elements)');
    expect(() => reshape(x, [-1, -1])).toThrow(/only one entry of shape may be -1/);
    expect(() => reshape(x, [4, -1])).toThrow(ShapeError);
    expect(() => reshape(x, [0, -1])).toThrow(ShapeError);
    expect(() => reshape(x, [2.5, 2])).toThrow(ShapeError);
    expect(() => reshape(x, 'a' as never)).toThrow(ShapeError);
    expect(() => reshape(null as never, [1])).toThrow(ValueError);
  });
});

describe('broadcastTo and sumTo', () => {
  it('broadcastTo copies like the reference on random broadcasts; sumTo is its adjoint', () => {
    fc.assert(
      fc.property(arbBroadcast, fc.nat(1000), ([from, to], seed) =>
        scope(() => {
          const x = uniform(key(seed), from, -1, 1);
          const y = broadcastTo(x, to);
          expect(y.shape).toEqual([...to]);
          expect(y.toArray()).toEqual(refBroadcast(from, x.toArray(), to));
          const g = uniform(key(seed + 1), to, -1, 1);
          const s = sumTo(g, from);
          expect(s.shape).toEqual([...from]);
          const want = refSumTo(to, g.toArray(), from);
          const got = s.toArray();
          for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-6 * sizeOf(to));
          // adjoint identity <broadcast(x), g> = <x, sumTo(g)>
          const lhs = refBroadcast(from, x.toArray(), to).reduce((acc, v, i) => acc + v * g.toArray()[i], 0);
          const rhs = x.toArray().reduce((acc, v, i) => acc + v * got[i], 0);
          expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-5 * sizeOf(to));
        }),
      ),
      { numRuns: 120 },
    );
  });

  it('the broadcast copy gives the same bits for any split of its rows', () => {
    scope(() => {
      const x = uniform(key(4), [3, 1, 5], -1, 1);
      const to = [2, 3, 4, 5];
      const { dims, strides } = coalesce(to, [x.shape]);
      expect(dims).toEqual([2, 3, 4, 5]);
      const [s] = strides;
      const whole = empty(to);
      const parts = empty(to);
      K.broadcast_copy(x.ptr, whole.ptr, dims[1], dims[2], dims[3], s[0], s[1], s[2], s[3], 0, 24, 0);
      for (const [b, e] of [[0, 5], [5, 6], [6, 23], [23, 24]]) K.broadcast_copy(x.ptr, parts.ptr, dims[1], dims[2], dims[3], s[0], s[1], s[2], s[3], b, e, 0);
      expect(parts.toArray()).toEqual(whole.toArray());
      expect(whole.toArray()).toEqual(refBroadcast(x.shape, x.toArray(), to));
    });
  });

  it('broadcastTo has the sum-back vjp; sumTo returns g itself when nothing is to be summed', () => {
    scope(() => {
      const x = uniform(key(5), [3, 1], -1, 1);
      const r = uniform(key(6), [2, 3, 4], -1, 1);
      checkGrad((t) => sum(mul(broadcastTo(t, [2, 3, 4]), r)), [x]);
      const g = uniform(key(7), [2, 3], -1, 1);
      expect(sumTo(g, [2, 3])).toBe(g);
      expect(sumTo(g, []).shape).toEqual([]);
      expect(sumTo(g, [1, 3]).shape).toEqual([1, 3]);
    });
  });

  it('reject shapes that do not broadcast, naming both', () => {
    const x = tensor(new Float32Array(3), [3]);
    expect(() => broadcastTo(x, [2, 4])).toThrow('broadcastTo: cannot broadcast x [3] to [2, 4] (axis -1: 3 vs 4)');
    expect(() => broadcastTo(tensor(new Float32Array(6), [2, 3]), [3])).toThrow(/rank 2 > 1/);
    expect(() => broadcastTo(x, [-1])).toThrow(ShapeError);
    expect(() => sumTo(tensor(new Float32Array(6), [2, 3]), [2])).toThrow('sumTo: cannot broadcast shape [2] to [2, 3] (axis -1: 2 vs 3)');
  });
});

describe('expandDims and squeeze', () => {
  it('insert and remove size-1 axes as views', () => {
    scope(() => {
      const x = uniform(key(8), [2, 3], -1, 1);
      const before = memory().bytes;
      expect(expandDims(x, 0).shape).toEqual([1, 2, 3]);
      expect(expandDims(x, 2).shape).toEqual([2, 3, 1]);
      expect(expandDims(x, -1).shape).toEqual([2, 3, 1]);
      expect(expandDims(x, -3).shape).toEqual([1, 2, 3]);
      const y = reshape(x, [1, 2, 1, 3, 1]);
      expect(squeeze(y).shape).toEqual([2, 3]);
      expect(squeeze(y, [0, -1]).shape).toEqual([2, 1, 3]);
      expect(squeeze(y, 2).shape).toEqual([1, 2, 3, 1]);
      expect(memory().bytes).toBe(before);
      const r = uniform(key(9), [2, 3], -1, 1);
      checkGrad((t) => sum(mul(squeeze(expandDims(t, 1)), r)), [x]);
    });
  });

  it('reject bad axes', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => expandDims(x, 3)).toThrow(/expandDims: axis must be an integer in \[-3, 2\]/);
    expect(() => squeeze(x, 0)).toThrow('squeeze: axis 0 of x [2, 3] has size 2, not 1');
    expect(() => squeeze(x, 2)).toThrow(ValueError);
    expect(() => squeeze(reshape(x, [1, 6]), [0, -2])).toThrow(/appears more than once/);
  });
});

describe('shape ops: memory and rules', () => {
  it('leak nothing under a scope, forward and backward', () => {
    const before = memory();
    scope(() => {
      const x = uniform(key(1), [3, 1], -1, 1);
      grad((t: Tensor) => sum(mul(broadcastTo(reshape(t, [1, 3, 1]), [2, 3, 4]), 2)))(x);
    });
    expect(memory()).toEqual(before);
  });

  it('export one rule per primitive', () => {
    expect(Object.keys(rules).sort()).toEqual(['broadcastTo', 'reshape']);
    for (const [k, r] of Object.entries(rules)) expect(r.name).toBe(k);
  });
});
