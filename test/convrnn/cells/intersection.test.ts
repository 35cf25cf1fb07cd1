import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { intersectionRnn } from '../../../src/convrnn/cells/intersection.js';
import { scope } from '../../../src/tensor/tensor.js';
import { randn, zeros } from '../../../src/tensor/create.js';
import { key } from '../../../src/tensor/random.js';
import { cellLaws, ctx, full } from './helpers.js';
import { blend, cellConvRef, gate, map, plus, relu, sig } from './reference.js';

cellLaws('intersectionRnn', {
  eq: 'eq. 9',
  make: (c) => intersectionRnn(c),
  ref: (p, st, x) => {
    const s = st.s;
    const pre = plus(cellConvRef(p.w, x), cellConvRef(p.u, s));
    const m = map(gate(pre, 0, 4), Math.tanh);
    const n = map(gate(pre, 1, 4), relu);
    const pPre = map(gate(pre, 2, 4), (z) => z + 1);
    const yPre = map(gate(pre, 3, 4), (z) => z + 1);
    return [{ s: blend(pPre, s, m) }, blend(yPre, x, n)];
  },
  extra: fc.constant({}),
  gradConfigs: [{}, { separable: true, kernelSize: 1 }],
});

describe('intersectionRnn: hand-computed cases', () => {
  it('with zero filters and biases: p = y = σ(0 + 1), m = n = 0, so s′ = σ(1)·s and h = σ(1)·x', () => {
    scope(() => {
      const cell = intersectionRnn();
      const shape = [2, 3, 3, 2];
      const p = cell.init(key(0), shape);
      expect(full(p.w).w.shape).toEqual([3, 3, 2, 8]);
      const zero = { w: { w: zeros(full(p.w).w.shape), b: zeros([8]) }, u: { w: zeros(full(p.u).w.shape) } };
      const s = randn(key(2), shape);
      const x = randn(key(1), shape);
      const [next, h] = cell.step(zero, { s }, x, ctx());
      const sv = s.toArray();
      const xv = x.toArray();
      next.s.toArray().forEach((v, i) => expect(v).toBeCloseTo(sig(1) * sv[i], 6));
      h.toArray().forEach((v, i) => expect(v).toBeCloseTo(sig(1) * xv[i], 6));
    });
  });
});
