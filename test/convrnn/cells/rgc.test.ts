import { describe, expect, it } from 'vitest';
import type { ConvParams } from '../../../src/nn/layers.js';
import { reciprocalGated, type RgcConfig, type RgcParams, type RgcState } from '../../../src/convrnn/cells/rgc.js';
import { Tensor, scope } from '../../../src/tensor/tensor.js';
import { full, randn } from '../../../src/tensor/create.js';
import { key, split } from '../../../src/tensor/random.js';
import { leaves, unflatten } from '../../../src/tensor/tree.js';
import { ConfigError, ShapeError, ValueError } from '../../../src/tensor/errors.js';
import { add, mul } from '../../../src/tensor/ops/binary.js';
import { sum } from '../../../src/tensor/ops/reduce.js';
import { checkGrad } from '../../../src/autodiff/index.js';
import { type Arr, arr, cellConvOf, elu, expectClose, map, sig, snapshot } from './reference.js';

const SHAPE = [2, 4, 4, 3];
const ctx = (t: number) => ({ t, training: true });

/** eqs. 10–11 in float64: one step from (h, s) with input x. */
function rgcRef(p: RgcParams, st: { h: Arr; s: Arr }, x: Arr): { h: Arr; s: Arr } {
  const conv = (q: unknown, a: Arr) => cellConvOf(q as Record<string, unknown>, a);
  const [zsh, zhh, zhs, zss] = [conv(p.wsh, st.s), conv(p.whh, st.h), conv(p.whs, st.h), conv(p.wss, st.s)];
  const h = map(x, (xv, i) => elu((1 - sig(zsh.data[i])) * xv + (1 - sig(zhh.data[i])) * st.h.data[i]));
  const s = map(x, (xv, i) => elu((1 - sig(zhs.data[i])) * xv + (1 - sig(zss.data[i])) * st.s.data[i]));
  return { h, s };
}

describe('reciprocalGated', () => {
  const HE = { kind: 'he', scale: 1 } as const;
  const configs: RgcConfig[] = [{ init: HE }, { separable: true, init: HE }, { kernelSize: 1, init: HE }, { kernelSize: 4, gateBias: true, gateBiasInit: 0.3, init: HE }];

  it.each(configs)('one step equals the float64 eqs. 10–11 from a random state (%j)', (config) => {
    scope(() => {
      const cell = reciprocalGated(config);
      const [k1, k2, k3, k4] = split(key(7), 4);
      const params = cell.init(k1, SHAPE);
      const state = { h: randn(k2, SHAPE), s: randn(k3, SHAPE) };
      const x = randn(k4, SHAPE);
      const [next, out] = cell.step(params, state, x, ctx(1));
      const ref = rgcRef(params, { h: arr(state.h), s: arr(state.s) }, arr(x));
      expectClose(next.h, ref.h);
      expectClose(next.s, ref.s);
      expect(out).toBe(next.h);
    });
  });

  it('three steps from the zero state equal the float64 fold', () => {
    scope(() => {
      const cell = reciprocalGated({ gateBias: true, gateBiasInit: -0.5, init: HE });
      const params = cell.init(key(3), SHAPE);
      let state = cell.initialState(SHAPE);
      let ref = { h: arr(state.h), s: arr(state.s) };
      for (let t = 0; t < 3; t++) {
        const x = randn(key(100 + t), SHAPE);
        [state] = cell.step(params, state, x, ctx(t));
        ref = rgcRef(params, ref, arr(x));
        expectClose(state.h, ref.h);
        expectClose(state.s, ref.s);
      }
    });
  });

  it('init: zero gates by default (a separable gate: He depthwise, zero pointwise), He on request from split keys; same key, same bits', () => {
    scope(() => {
      const p = reciprocalGated().init(key(1), SHAPE);
      expect(Object.keys(p)).toEqual(['wsh', 'whh', 'whs', 'wss']);
      for (const w of Object.values(p) as ConvParams[]) {
        expect(w.w.shape).toEqual([3, 3, 3, 3]);
        expect(w.w.toArray().every((v) => v === 0)).toBe(true);
        expect(w.b).toBeUndefined();
      }
      const cell = reciprocalGated({ init: HE });
      const he = cell.init(key(1), SHAPE);
      const convs = Object.values(he) as ConvParams[];
      expect(snapshot(leaves(cell.init(key(1), SHAPE)))).toEqual(snapshot(leaves(he)));
      expect(Array.from(convs[0].w.toArray())).not.toEqual(Array.from(convs[1].w.toArray()));
      // He normal, fan-in 3·3·3: the sample standard deviation of 81 draws is near sqrt(2/27).
      const v = convs[0].w.toArray();
      const sd = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
      expect(sd).toBeGreaterThan(0.5 * Math.sqrt(2 / 27));
      expect(sd).toBeLessThan(1.5 * Math.sqrt(2 / 27));
      const biased = reciprocalGated({ gateBias: true, gateBiasInit: 0.25 }).init(key(1), SHAPE);
      expect(Array.from((biased.wss as ConvParams).b!.toArray())).toEqual([0.25, 0.25, 0.25]);
      const sep = reciprocalGated({ separable: true }).init(key(1), SHAPE).wsh as { depthwise: { w: Tensor }; pointwise: ConvParams };
      expect(sep.depthwise.w.shape).toEqual([3, 3, 3, 1]);
      expect(sep.depthwise.w.toArray().some((x) => x !== 0)).toBe(true);
      expect(sep.pointwise.w.toArray().every((x) => x === 0)).toBe(true);
    });
  });

  it('BPTT: the gradient through 3 steps w.r.t. every param and every input matches finite differences', () => {
    scope(() => {
      const shape = [2, 4, 4, 2];
      for (const config of [{ gateBias: true, gateBiasInit: 0.1, init: HE }, { separable: true, init: HE }] as RgcConfig[]) {
        const cell = reciprocalGated(config);
        const params = cell.init(key(11), shape);
        const pl = leaves(params);
        const xs = [0, 1, 2].map((t) => randn(key(20 + t), shape));
        const probe = randn(key(30), shape);
        const loss = (...args: Tensor[]): Tensor => {
          const p = unflatten(params, args.slice(0, pl.length));
          let st: RgcState = cell.initialState(shape);
          for (let t = 0; t < 3; t++) [st] = cell.step(p, st, args[pl.length + t], ctx(t));
          return sum(mul(add(st.h, mul(st.s, 0.5)), probe));
        };
        checkGrad(loss, [...pl, ...xs], { maxElements: 24 });
      }
    });
  });

  it('purity: the same arguments give the same bits twice and are left unchanged', () => {
    scope(() => {
      const cell = reciprocalGated({ init: HE });
      const params = cell.init(key(5), SHAPE);
      const state = { h: randn(key(6), SHAPE), s: randn(key(7), SHAPE) };
      const x = randn(key(8), SHAPE);
      const args = [...leaves(params), state.h, state.s, x];
      const before = snapshot(args);
      const [a, ya] = cell.step(params, state, x, ctx(0));
      const [b, yb] = cell.step(params, state, x, ctx(0));
      expect(snapshot([a.h, a.s, ya])).toEqual(snapshot([b.h, b.s, yb]));
      expect(snapshot(args)).toEqual(before);
    });
  });

  /**
   * Bypassing law (nayebi2018 §3). With zero gate weights and no biases every
   * gate is 1 − σ(0) = ½, so from the zero state
   *   h_0 = s_0 = elu(½x_0),   h_t = s_t = elu(½x_t + ½h_{t-1}),
   * and for a constant input x ≥ 0 (elu = identity there)
   *   h_t = (1 − 2^{−(t+1)})·x:  ½ of the input passes at t = 0, ¾ at t = 1, ⅞ at t = 2.
   * At t = 0 the gate convs see the zero state, so h_0 = s_0 = elu(½x_0) holds
   * for ANY gate weights (without biases): the input bypasses the state.
   */
  it('bypassing law: zero gate weights pass ½, ¾, ⅞ of a constant input; h_0 = elu(x_0/2) for any weights', () => {
    scope(() => {
      const zero = reciprocalGated({ init: { kind: 'constant', value: 0 } });
      const params = zero.init(key(0), SHAPE);
      const xs = [0, 1, 2].map((t) => randn(key(40 + t), SHAPE));
      let state = zero.initialState(SHAPE);
      let h = map(arr(xs[0]), () => 0);
      for (let t = 0; t < 3; t++) {
        [state] = zero.step(params, state, xs[t], ctx(t));
        const hPrev = h;
        h = map(arr(xs[t]), (xv, i) => elu(0.5 * xv + 0.5 * hPrev.data[i]));
        expectClose(state.h, h, 1e-6, 1e-6);
        expectClose(state.s, h, 1e-6, 1e-6);
      }

      const x = full(SHAPE, 0.8);
      state = zero.initialState(SHAPE);
      for (let t = 0; t < 3; t++) {
        [state] = zero.step(params, state, x, ctx(t));
        expectClose(state.h, map(arr(x), (v) => (1 - 2 ** -(t + 1)) * v), 1e-6, 1e-6);
      }

      const cell = reciprocalGated({ init: { kind: 'he', scale: 2 } });
      const [s0] = cell.step(cell.init(key(9), SHAPE), cell.initialState(SHAPE), xs[0], ctx(0));
      const want = map(arr(xs[0]), (v) => elu(v / 2));
      expectClose(s0.h, want, 1e-6, 1e-6);
      expectClose(s0.s, want, 1e-6, 1e-6);
    });
  });

  it('keeps the input shape and validates config and arguments', () => {
    const cell = reciprocalGated();
    expect(cell.kind).toBe('rgc');
    expect(cell.config).toEqual({ kernelSize: 3, separable: false, init: { kind: 'constant', value: 0 }, gateBias: false, gateBiasInit: 0 });
    expect(cell.outputShape([2, 5, 3, 4])).toEqual([2, 5, 3, 4]);
    expect(() => reciprocalGated({ kernelSize: 0 })).toThrow(/config\.kernelSize/);
    expect(() => reciprocalGated({ kernelsize: 3 } as RgcConfig)).toThrow(ConfigError);
    expect(() => reciprocalGated({ gateBiasInit: 1 })).toThrow(/config\.gateBiasInit/);
    expect(() => reciprocalGated({ init: { kind: 'he', scale: -1 } })).toThrow(ConfigError);
    expect(() => cell.outputShape([2, 4, 4])).toThrow(ShapeError);
    expect(() => cell.initialState(SHAPE, {})).toThrow(ValueError);
    scope(() => {
      const params = cell.init(key(1), SHAPE);
      const state = cell.initialState(SHAPE);
      expect(() => cell.step(params, state, randn(key(2), [2, 4, 4, 2]), ctx(0))).toThrow(ShapeError);
      expect(() => cell.step(params, { h: state.h } as RgcState, randn(key(2), SHAPE), ctx(0))).toThrow(/state\.s/);
      expect(() => cell.init(key(1), [2, 4, 0, 3])).toThrow(ShapeError);
    });
  });
});
