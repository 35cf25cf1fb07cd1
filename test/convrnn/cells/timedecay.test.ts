import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { timeDecay } from '../../../src/convrnn/cells/timedecay.js';
import { scope } from '../../../src/tensor/tensor.js';
import { randn, tensor } from '../../../src/tensor/create.js';
import { key } from '../../../src/tensor/random.js';
import { cellLaws, ctx } from './helpers.js';
import { map } from './reference.js';

cellLaws('timeDecay', {
  eq: 'eq. 2',
  make: (c) => timeDecay(c),
  // s_t = F(x_t) + τ·s_{t−1}, h_t = s_t
  ref: (p, st, x) => {
    const s = map(x, (v, i) => v + p.tau.data[0] * st.s.data[i]);
    return [{ s }, s];
  },
  extra: fc.record({ tauInit: fc.double({ min: -1, max: 1, noNaN: true }) }),
  gradConfigs: [{}],
  noConv: true,
});

describe('timeDecay: hand-computed cases', () => {
  it('has one learned τ of shape [1], initialised to tauInit (default 0)', () => {
    scope(() => {
      expect(timeDecay().config).toEqual({ tauInit: 0 });
      const p = timeDecay({ tauInit: -0.25 }).init(key(0), [2, 3, 3, 4]);
      expect(Object.keys(p)).toEqual(['tau']);
      expect(p.tau.shape).toEqual([1]);
      expect(Array.from(p.tau.toArray())).toEqual([-0.25]);
    });
  });

  it('with τ = 0 the step returns exactly its input, whatever the state', () => {
    scope(() => {
      const cell = timeDecay();
      const shape = [2, 3, 3, 2];
      const x = randn(key(1), shape);
      const [next, h] = cell.step(cell.init(key(0), shape), { s: randn(key(2), shape) }, x, ctx());
      expect(h.toArray()).toEqual(x.toArray());
      expect(next.s.toArray()).toEqual(x.toArray());
    });
  });

  it('with τ = 0.5 each element is fround(x + fround(0.5·s)), and a constant input accumulates as a geometric series', () => {
    scope(() => {
      const cell = timeDecay({ tauInit: 0.5 });
      const shape = [1, 2, 2, 1];
      const params = cell.init(key(0), shape);
      const x = tensor([1, -2, 0.25, 3], shape);
      const s = tensor([4, 1, -8, 0.5], shape);
      const [, h] = cell.step(params, { s }, x, ctx());
      expect(Array.from(h.toArray())).toEqual([3, -1.5, -3.75, 3.25]);
      let state = cell.initialState(shape);
      for (let t = 0; t < 4; t++) [state] = cell.step(params, state, x, ctx(t));
      // s_4 = x·(1 + τ + τ² + τ³) = x·1.875
      expect(Array.from(state.s.toArray())).toEqual([1.875, -3.75, 0.46875, 5.625]);
    });
  });

  it('rejects a τ of another shape', () => {
    scope(() => {
      const cell = timeDecay();
      const x = randn(key(1), [1, 2, 2, 1]);
      expect(() => cell.step({ tau: tensor([0, 0], [2]) }, cell.initialState([1, 2, 2, 1]), x, ctx())).toThrow(/params\.tau must have shape \[1\]/);
    });
  });
});
