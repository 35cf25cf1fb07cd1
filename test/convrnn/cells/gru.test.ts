import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gru } from '../../../src/convrnn/cells/gru.js';
import { scope } from '../../../src/tensor/tensor.js';
import { randn, tensor, zeros } from '../../../src/tensor/create.js';
import { key } from '../../../src/tensor/random.js';
import { cellLaws, ctx, full } from './helpers.js';
import { blend, cellConvRef, gate, map, plus, sig, times } from './reference.js';

cellLaws('gru', {
  eq: 'eq. 4',
  make: (c) => gru(c),
  ref: (p, st, x) => {
    const s = st.s;
    const wx = cellConvRef(p.w, x);
    const us = cellConvRef(p.u, s);
    const r = map(plus(gate(wx, 0, 3), gate(us, 0, 2)), (z) => sig(z + 1));
    const uPre = plus(gate(wx, 1, 3), gate(us, 1, 2));
    const c = map(plus(gate(wx, 2, 3), cellConvRef(p.uc, times(r, s))), Math.tanh);
    const next = blend(uPre, s, c);
    return [{ s: next }, next];
  },
  extra: fc.constant({}),
  gradConfigs: [{}, { separable: true, kernelSize: 2 }],
});

describe('gru: hand-computed cases', () => {
  it('init: [W_r; W_u; W_c] with biases, [U_r; U_u] and U_c without', () => {
    scope(() => {
      const p = gru({ kernelSize: 1, biasInit: -1 }).init(key(0), [1, 3, 3, 2]);
      expect(full(p.w).w.shape).toEqual([1, 1, 2, 6]);
      expect(Array.from(full(p.w).b!.toArray())).toEqual([-1, -1, -1, -1, -1, -1]);
      expect(p.u).toMatchObject({ w: { shape: [1, 1, 2, 4] } });
      expect(full(p.u).b).toBeUndefined();
      expect(full(p.uc).b).toBeUndefined();
    });
  });

  it('zero filters and biases at rest stay at rest', () => {
    scope(() => {
      const cell = gru();
      const shape = [2, 3, 3, 2];
      const p = cell.init(key(0), shape);
      const zero = { w: { w: zeros(full(p.w).w.shape), b: zeros([6]) }, u: { w: zeros(full(p.u).w.shape) }, uc: { w: zeros(full(p.uc).w.shape) } };
      const [next, h] = cell.step(zero, cell.initialState(shape), zeros(shape), ctx());
      expect(Array.from(h.toArray()).every((v) => v === 0)).toBe(true);
      expect(Array.from(next.s.toArray()).every((v) => v === 0)).toBe(true);
    });
  });

  it('with zero W, U_r, U_u, b_r = b_c = 0 and U_c = I: s′ = σ(b_u)·s + (1 − σ(b_u))·tanh(σ(0 + 1)·s)', () => {
    scope(() => {
      const shape = [1, 2, 2, 2];
      const bu = 0.3;
      const params = {
        w: { w: zeros([1, 1, 2, 6]), b: tensor([0, 0, bu, bu, 0, 0], [6]) },
        u: { w: zeros([1, 1, 2, 4]) },
        uc: { w: tensor([1, 0, 0, 1], [1, 1, 2, 2]) },
      };
      const s = randn(key(2), shape);
      const [, h] = gru({ kernelSize: 1 }).step(params, { s }, randn(key(1), shape), ctx());
      const sv = s.toArray();
      h.toArray().forEach((v, i) => expect(v).toBeCloseTo(sig(bu) * sv[i] + (1 - sig(bu)) * Math.tanh(sig(1) * sv[i]), 6));
    });
  });
});
