import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ugrnn } from '../../../src/convrnn/cells/ugrnn.js';
import { scope } from '../../../src/tensor/tensor.js';
import { randn, zeros } from '../../../src/tensor/create.js';
import { key } from '../../../src/tensor/random.js';
import { cellLaws, ctx, full } from './helpers.js';
import { blend, cellConvRef, gate, map, plus, sig } from './reference.js';

cellLaws('ugrnn', {
  eq: 'eq. 8',
  make: (c) => ugrnn(c),
  ref: (p, st, x) => {
    const s = st.s;
    const pre = plus(cellConvRef(p.w, x), cellConvRef(p.u, s));
    const c = map(gate(pre, 0, 2), Math.tanh);
    const gPre = map(gate(pre, 1, 2), (z) => z + 1);
    const next = blend(gPre, s, c);
    return [{ s: next }, next];
  },
  extra: fc.constant({}),
  gradConfigs: [{}, { separable: true, kernelSize: 4 }],
});

describe('ugrnn: hand-computed cases', () => {
  it('with zero filters and biases: g = σ(0 + 1), c = 0, so s′ = σ(1)·s (and rest stays at rest)', () => {
    scope(() => {
      const cell = ugrnn({ kernelSize: 2 });
      const shape = [2, 3, 3, 2];
      const p = cell.init(key(0), shape);
      expect(full(p.w).w.shape).toEqual([2, 2, 2, 4]);
      expect(full(p.u).b).toBeUndefined();
      const zero = { w: { w: zeros(full(p.w).w.shape), b: zeros([4]) }, u: { w: zeros(full(p.u).w.shape) } };
      const s = randn(key(2), shape);
      const [next, h] = cell.step(zero, { s }, randn(key(1), shape), ctx());
      const sv = s.toArray();
      h.toArray().forEach((v, i) => expect(v).toBeCloseTo(sig(1) * sv[i], 6));
      expect(next.s.toArray()).toEqual(h.toArray());
      const [, rest] = cell.step(zero, cell.initialState(shape), zeros(shape), ctx());
      expect(Array.from(rest.toArray()).every((v) => v === 0)).toBe(true);
    });
  });
});
