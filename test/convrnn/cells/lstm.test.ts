import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lstm } from '../../../src/convrnn/cells/lstm.js';
import { scope } from '../../../src/tensor/tensor.js';
import { randn, tensor, zeros, ones } from '../../../src/tensor/create.js';
import { key } from '../../../src/tensor/random.js';
import { cellLaws, ctx, full } from './helpers.js';
import { cellConvRef, gate, layerNormRef, map, plus, sig, timesChannel, type Arr } from './reference.js';

cellLaws('lstm', {
  eq: 'eqs. 5–7',
  make: (c) => lstm(c),
  ref: (p, st, x, cfg) => {
    const pre = plus(cellConvRef(p.w, x), cellConvRef(p.u, st.h));
    let [i, j, f, o]: Arr[] = [0, 1, 2, 3].map((g) => gate(pre, g, 4));
    if (cfg.layerNorm) [i, j, f, o] = [layerNormRef(i, p.ln.i), layerNormRef(j, p.ln.j), layerNormRef(f, p.ln.f), layerNormRef(o, p.ln.o)];
    f = map(f, (z) => z + cfg.forgetBias);
    if (cfg.peepholes) {
      i = plus(i, timesChannel(p.peep.i, st.s));
      f = plus(f, timesChannel(p.peep.f, st.s));
      o = plus(o, timesChannel(p.peep.o, st.s));
    }
    let s = map(st.s, (sv, k) => sv * sig(f.data[k]) + sig(i.data[k]) * Math.tanh(j.data[k]));
    if (cfg.layerNorm) s = layerNormRef(s, p.ln.s);
    const h = map(s, (sv, k) => Math.tanh(sv) * sig(o.data[k]));
    return [{ s, h }, h];
  },
  extra: fc.record({ layerNorm: fc.boolean(), peepholes: fc.boolean(), forgetBias: fc.double({ min: 0, max: 6, noNaN: true }) }),
  gradConfigs: [
    { layerNorm: true, peepholes: true },
    { layerNorm: false, peepholes: true, separable: true, kernelSize: 2, forgetBias: 0.5 },
  ],
  flags: ['layerNorm', 'peepholes'],
});

describe('lstm: hand-computed cases', () => {
  it('fills its defaults; LN params for four gates and the state, peepholes V = 0 of shape [C]', () => {
    scope(() => {
      expect(lstm().config).toMatchObject({ layerNorm: true, peepholes: false, forgetBias: 1, kernelSize: 3 });
      const p = lstm({ peepholes: true }).init(key(0), [1, 3, 3, 2]);
      expect(full(p.w).w.shape).toEqual([3, 3, 2, 8]);
      expect(full(p.u).b).toBeUndefined();
      expect(Object.keys(p.ln!).sort()).toEqual(['f', 'i', 'j', 'o', 's']);
      for (const v of [p.peep!.i, p.peep!.f, p.peep!.o]) expect(Array.from(v.toArray())).toEqual([0, 0]);
      const plain = lstm({ layerNorm: false }).init(key(0), [1, 3, 3, 2]);
      expect(plain.ln).toBeUndefined();
      expect(plain.peep).toBeUndefined();
    });
  });

  it('with zero filters and biases: s′ = σ(f_b)·s and h = tanh(s′)·σ(0), with peepholes s′ = σ(f_b + V_f·s)·s and h = tanh(s′)·σ(V_o·s)', () => {
    scope(() => {
      const shape = [1, 2, 2, 2];
      const zero = { w: { w: zeros([1, 1, 2, 8]), b: zeros([8]) }, u: { w: zeros([1, 1, 2, 8]) } };
      const s = randn(key(2), shape);
      const h0 = randn(key(3), shape);
      const x = randn(key(1), shape);
      const sv = s.toArray();
      const fb = 2.5;
      const [n1, h1] = lstm({ kernelSize: 1, layerNorm: false, forgetBias: fb }).step(zero, { s, h: h0 }, x, ctx());
      n1.s.toArray().forEach((v, k) => expect(v).toBeCloseTo(sig(fb) * sv[k], 6));
      h1.toArray().forEach((v, k) => expect(v).toBeCloseTo(Math.tanh(sig(fb) * sv[k]) * 0.5, 6));
      expect(n1.h.toArray()).toEqual(h1.toArray());

      const vi = [3, -1];
      const vf = [0.5, -2];
      const vo = [1, 2];
      const peep = { i: tensor(vi, [2]), f: tensor(vf, [2]), o: tensor(vo, [2]) };
      const [n2, h2] = lstm({ kernelSize: 1, layerNorm: false, peepholes: true }).step({ ...zero, peep }, { s, h: h0 }, x, ctx());
      const s2 = Array.from(sv, (v, k) => sig(1 + vf[k % 2] * v) * v);
      n2.s.toArray().forEach((v, k) => expect(v).toBeCloseTo(s2[k], 6));
      h2.toArray().forEach((v, k) => expect(v).toBeCloseTo(Math.tanh(s2[k]) * sig(vo[k % 2] * sv[k]), 6));
    });
  });

  it('with zero filters and layer norm: LN(0) = β = 0 for every gate, so s′ = LN(σ(f_b)·s)', () => {
    scope(() => {
      const shape = [2, 2, 2, 2];
      const ln = () => ({ gamma: ones([2]), beta: zeros([2]) });
      const params = {
        w: { w: zeros([3, 3, 2, 8]), b: zeros([8]) },
        u: { w: zeros([3, 3, 2, 8]) },
        ln: { i: ln(), j: ln(), f: ln(), o: ln(), s: { gamma: tensor([2, 0.5], [2]), beta: tensor([0.1, -0.1], [2]) } },
      };
      const s = randn(key(2), shape);
      const [next, h] = lstm().step(params, { s, h: randn(key(3), shape) }, randn(key(1), shape), ctx());
      const scaled: Arr = { data: Float64Array.from(s.toArray(), (v) => sig(1) * v), shape };
      const want = layerNormRef(scaled, { gamma: { data: Float64Array.of(2, 0.5), shape: [2] }, beta: { data: Float64Array.of(0.1, -0.1), shape: [2] } });
      next.s.toArray().forEach((v, k) => expect(v).toBeCloseTo(want.data[k], 5));
      h.toArray().forEach((v, k) => expect(v).toBeCloseTo(Math.tanh(want.data[k]) * 0.5, 5));
    });
  });

  it('rejects a non-finite forgetBias and peepholes of the wrong shape', () => {
    scope(() => {
      expect(() => lstm({ forgetBias: '1' })).toThrow(/config\.forgetBias must be a finite number/);
      const cell = lstm({ peepholes: true, layerNorm: false });
      const shape = [1, 3, 3, 2];
      const p = cell.init(key(0), shape);
      const bad = { ...p, peep: { ...p.peep!, o: zeros([1]) } };
      expect(() => cell.step(bad, cell.initialState(shape), randn(key(1), shape), ctx())).toThrow(/params\.peep\.o must have shape \[2\]/);
    });
  });
});
