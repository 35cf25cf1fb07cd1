import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { simpleRnn } from '../../../src/convrnn/cells/simplernn.js';
import { scope } from '../../../src/tensor/tensor.js';
import { randn, tensor, zeros, ones } from '../../../src/tensor/create.js';
import { key } from '../../../src/tensor/random.js';
import { cellLaws, ctx, full } from './helpers.js';
import { cellConvRef, elu, layerNormRef, map, plus } from './reference.js';

cellLaws('simpleRnn', {
  eq: 'eq. 3',
  make: (c) => simpleRnn(c),
  // a = W_s * s + b_s, i = W_i * x + b_i, s' = elu(LN(i + a)), h = s'
  ref: (p, st, x, cfg) => {
    const z = plus(cellConvRef(p.wi, x), cellConvRef(p.ws, st.s));
    const s = map(cfg.layerNorm ? layerNormRef(z, p.ln) : z, elu);
    return [{ s }, s];
  },
  extra: fc.record({ layerNorm: fc.boolean() }),
  gradConfigs: [{ layerNorm: true }, { layerNorm: false, separable: true, kernelSize: 2 }],
  flags: ['layerNorm'],
});

describe('simpleRnn: hand-computed cases', () => {
  it('fills its defaults and has LN params γ = 1, β = 0 only with layerNorm', () => {
    scope(() => {
      expect(simpleRnn().config).toEqual({ kernelSize: 3, separable: false, init: { kind: 'he', scale: 1 }, biasInit: 0, layerNorm: true });
      const p = simpleRnn({ biasInit: 0.5 }).init(key(0), [1, 4, 4, 3]);
      expect(p.wi).toMatchObject({ w: { shape: [3, 3, 3, 3] }, b: { shape: [3] } });
      expect(Array.from(full(p.ws).b!.toArray())).toEqual([0.5, 0.5, 0.5]);
      expect(Array.from(p.ln!.gamma.toArray())).toEqual([1, 1, 1]);
      expect(Array.from(p.ln!.beta.toArray())).toEqual([0, 0, 0]);
      expect(simpleRnn({ layerNorm: false }).init(key(0), [1, 4, 4, 3]).ln).toBeUndefined();
    });
  });

  it('with zero filters the state is elu of the summed biases, layer-normalised over H, W, C', () => {
    scope(() => {
      const shape = [1, 2, 2, 2];
      const params = (ln: boolean) => ({
        wi: { w: zeros([1, 1, 2, 2]), b: tensor([1.5, -0.5], [2]) },
        ws: { w: zeros([1, 1, 2, 2]), b: tensor([-0.5, -2.5], [2]) },
        ...(ln ? { ln: { gamma: ones([2]), beta: zeros([2]) } } : {}),
      });
      const x = randn(key(1), shape);
      const s = randn(key(2), shape);
      // b_i + b_s = [1, −3] in every position
      const [, plain] = simpleRnn({ kernelSize: 1, layerNorm: false }).step(params(false), { s }, x, ctx());
      const want = [1, Math.exp(-3) - 1];
      plain.toArray().forEach((v, i) => expect(v).toBeCloseTo(want[i % 2], 6));
      // LN: mean −1, variance 4, so (z − mean)/sqrt(4 + eps) = ±1/sqrt(1 + eps/4)
      const [, normed] = simpleRnn({ kernelSize: 1 }).step(params(true), { s }, x, ctx());
      const u = 1 / Math.sqrt(1 + 1e-5 / 4);
      const wantLn = [u, Math.exp(-u) - 1];
      normed.toArray().forEach((v, i) => expect(v).toBeCloseTo(wantLn[i % 2], 6));
    });
  });
});
