import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  rgcSearch, rgcAsSearchConfig, rgcAsSearchParams, SEARCH_GATES,
  type RgcSearchConfig, type RgcSearchParams, type RgcSearchSpec, type SearchAffine, type SearchGate, type SearchGateConfig, type SearchInput,
} from '../../../src/convrnn/cells/rgcsearch.js';
import type { ConvParams } from '../../../src/nn/layers.js';
import { reciprocalGated, type RgcConfig, type RgcState } from '../../../src/convrnn/cells/rgc.js';
import { Tensor, scope } from '../../../src/tensor/tensor.js';
import { randn } from '../../../src/tensor/create.js';
import { key, split } from '../../../src/tensor/random.js';
import { leaves, unflatten } from '../../../src/tensor/tree.js';
import { ConfigError, ShapeError, ValueError } from '../../../src/tensor/errors.js';
import { add, mul } from '../../../src/tensor/ops/binary.js';
import { sum } from '../../../src/tensor/ops/reduce.js';
import { checkGrad } from '../../../src/autodiff/index.js';
import { type Arr, arr, cellConvOf, concatC, elu, expectClose, map, resizeRef, sig, snapshot, zip } from './reference.js';

const SHAPE = [2, 4, 4, 3];
const ctx = (t: number, below?: Tensor) => ({ t, training: true, below });

/** §A.4.2 in float64, for a validated config: one step from (h, s) with input x and below. */
function searchRef(cfg: RgcSearchSpec, p: RgcSearchParams, st: { h: Arr; s: Arr }, x: Arr, below?: Arr): { h: Arr; s: Arr } {
  const [, hh, ww] = x.shape;
  const env: Partial<Record<SearchInput, Arr>> = { x, sPrev: st.s, hPrev: st.h };
  if (below) env.below = below.shape[1] === hh && below.shape[2] === ww ? below : resizeRef(below, hh, ww);
  const f = { elu, tanh: Math.tanh, sigmoid: sig }[cfg.activation];
  const gateValue = (g: SearchGate, v: { v1: number; v2: number }): Arr => {
    const s = cfg[g];
    if (s.inputs.length === 0) return map(x, () => v.v1 + v.v2 * 0.5);
    const ins = s.inputs.map((i) => env[i]!);
    const z = s.affine === 'add' ? ins.reduce((a, b) => zip(a, b, (u, w) => u + w)) : cellConvOf({ ...p[g] }, concatC(ins));
    return map(z, (zv) => v.v1 + v.v2 * sig(zv));
  };
  const update = (gate: SearchGate, tau: SearchGate, prev: Arr): Arr => {
    const gv = gateValue(gate, cfg.gate);
    const tv = gateValue(tau, cfg.tau);
    return map(x, (xv, i) => f(gv.data[i] * xv + tv.data[i] * prev.data[i]));
  };
  const sFirst = cfg.gateA.inputs.includes('s') || cfg.tauA.inputs.includes('s');
  if (sFirst) {
    env.s = update('gateB', 'tauB', st.s);
    env.h = update('gateA', 'tauA', st.h);
  } else {
    env.h = update('gateA', 'tauA', st.h);
    env.s = update('gateB', 'tauB', st.s);
  }
  return { h: env.h, s: env.s! };
}

const bits = (t: Tensor): number[] => Array.from(t.toArray());

describe('rgcSearch', () => {
  const HE = { kind: 'he', scale: 1 } as const;
  it.each([{}, { init: HE }, { separable: true, init: HE }, { kernelSize: 1, init: HE }, { kernelSize: 5, gateBias: true, gateBiasInit: -0.4, init: HE }] as RgcConfig[])(
    'the RGC as a search point (%j) gives the RGC bit for bit: same init from the same key, same steps with the mapped params',
    (rgcConfig) => {
      scope(() => {
        const rgc = reciprocalGated(rgcConfig);
        const search = rgcSearch(rgcAsSearchConfig(rgcConfig));
        const params = rgc.init(key(4), SHAPE);
        const mapped = rgcAsSearchParams(params);
        expect(snapshot(leaves(search.init(key(4), SHAPE)))).toEqual(snapshot(leaves(mapped)));
        let a = rgc.initialState(SHAPE);
        let b = search.initialState(SHAPE);
        for (let t = 0; t < 3; t++) {
          const x = randn(key(50 + t), SHAPE);
          let ya: Tensor, yb: Tensor;
          [a, ya] = rgc.step(params, a, x, ctx(t));
          [b, yb] = search.step(mapped, b, x, ctx(t));
          expect(bits(yb)).toEqual(bits(ya));
          expect(bits(b.s)).toEqual(bits(a.s));
        }
      });
    },
  );

  it('the default config is the RGC point', () => {
    expect(rgcSearch({}).config).toEqual(rgcSearch(rgcAsSearchConfig()).config);
    expect(rgcSearch().config).toMatchObject({
      gateA: { inputs: ['sPrev'], affine: 'conv', kernelSize: 3 },
      tauA: { inputs: ['hPrev'] },
      gateB: { inputs: ['hPrev'] },
      tauB: { inputs: ['sPrev'] },
      tau: { v1: 1, v2: -1 },
      gate: { v1: 1, v2: -1 },
      activation: 'elu',
    });
    expect(() => rgcAsSearchConfig({ kernelSize: 9 })).toThrow(/config\.kernelSize/);
  });

  // A random valid point: per gate a subset of its inputs, an Affine, K; v's; f; biases.
  const gateArb = (allowed: SearchInput[]): fc.Arbitrary<SearchGateConfig> =>
    fc
      .record({
        inputs: fc.subarray(allowed),
        affine: fc.constantFrom<SearchAffine>('add', 'conv1x1', 'conv', 'separable'),
        kernelSize: fc.integer({ min: 3, max: 7 }),
      })
      .map(({ inputs, affine, kernelSize }) => (affine === 'conv' || affine === 'separable' ? { inputs, affine, kernelSize } : { inputs, affine }));
  const vArb = fc.oneof(
    fc.constant({ v1: 1, v2: -1 }),
    fc.record({ v1: fc.double({ min: -1.5, max: 1.5, noNaN: true }), v2: fc.double({ min: -1.5, max: 1.5, noNaN: true }) }),
  );
  const configArb: fc.Arbitrary<RgcSearchConfig> = fc
    .record({
      gateA: gateArb(['below', 'x', 'sPrev', 'hPrev', 's']),
      tauA: gateArb(['below', 'x', 'sPrev', 'hPrev', 's']),
      gateB: gateArb(['below', 'x', 'sPrev', 'hPrev', 'h']),
      tauB: gateArb(['below', 'x', 'sPrev', 'hPrev', 'h']),
      tau: vArb,
      gate: vArb,
      activation: fc.constantFrom('elu' as const, 'tanh' as const, 'sigmoid' as const),
      gateBias: fc.boolean(),
      init: fc.constant({ kind: 'he', scale: 1 } as const),
    })
    .filter((c) => !((c.gateA.inputs!.includes('s') || c.tauA.inputs!.includes('s')) && (c.gateB.inputs!.includes('h') || c.tauB.inputs!.includes('h'))));

  it('random valid configs: state and output keep the input shape, steps equal the float64 §A.4.2 reference, and are pure', () => {
    fc.assert(
      fc.property(configArb, fc.integer({ min: 0, max: 1000 }), (config, seed) =>
        scope(() => {
          const cell = rgcSearch(config);
          const cfg = cell.config as unknown as RgcSearchSpec;
          const addsBelow = SEARCH_GATES.some((g) => cfg[g].affine === 'add' && cfg[g].inputs.includes('below'));
          // 'add' needs below with C channels; otherwise another channel count and spatial size (resized).
          const belowShape = addsBelow ? [2, 2, 2, 3] : [2, 8, 8, 2];
          const [k0, k1, k2, k3, k4] = split(key(seed), 5);
          const params = cell.init(k0, SHAPE, belowShape);
          const state = { h: randn(k1, SHAPE, 0.5), s: randn(k2, SHAPE, 0.5) };
          const x = randn(k3, SHAPE);
          const below = randn(k4, belowShape);
          const args = [...leaves(params), state.h, state.s, x, below];
          const before = snapshot(args);
          const [next, y] = cell.step(params, state, x, ctx(1, below));
          expect(cell.outputShape(SHAPE)).toEqual(SHAPE);
          expect(y.shape).toEqual(SHAPE);
          expect(next.s.shape).toEqual(SHAPE);
          expect(y).toBe(next.h);
          const ref = searchRef(cfg, params, { h: arr(state.h), s: arr(state.s) }, arr(x), arr(below));
          expectClose(next.h, ref.h, 1e-4, 1e-4);
          expectClose(next.s, ref.s, 1e-4, 1e-4);
          const [again, y2] = cell.step(params, state, x, ctx(1, below));
          expect(snapshot([again.h, again.s, y2])).toEqual(snapshot([next.h, next.s, y]));
          expect(snapshot(args)).toEqual(before);
        }),
      ),
      { numRuns: 15, seed: 20240601 },
    );
  });

  it('BPTT: the gradient through 3 steps w.r.t. every param, x and below matches finite differences', () => {
    const shape = [2, 4, 4, 2];
    const configs: [RgcSearchConfig, number[]][] = [
      // s_t first; below resized from 2x2 and concatenated; separable, 1x1, add and KxK affines; general v's; tanh.
      [
        {
          gateA: { inputs: ['below', 'x', 's'], affine: 'separable', kernelSize: 3 },
          tauA: { inputs: ['sPrev', 'hPrev'], affine: 'conv1x1' },
          gateB: { inputs: ['x', 'hPrev'], affine: 'add' },
          tauB: { inputs: ['below', 'sPrev'], affine: 'conv', kernelSize: 3 },
          tau: { v1: 0.5, v2: 0.8 },
          gate: { v1: 0.2, v2: 1 },
          activation: 'tanh',
          gateBias: true,
          gateBiasInit: 0.1,
          init: { kind: 'he', scale: 1 },
        },
        [2, 2, 2, 3],
      ],
      // h_t first, read by both 'b' gates; an empty gate; the fused RGC form; sigmoid.
      [
        {
          gateA: { inputs: ['x', 'hPrev'], affine: 'conv', kernelSize: 4 },
          tauA: { inputs: [] },
          gateB: { inputs: ['h'], affine: 'separable', kernelSize: 3 },
          tauB: { inputs: ['sPrev', 'h', 'below'], affine: 'conv1x1' },
          activation: 'sigmoid',
          init: { kind: 'he', scale: 1 },
        },
        [2, 4, 4, 1],
      ],
    ];
    scope(() => {
      for (const [config, belowShape] of configs) {
        const cell = rgcSearch(config);
        const params = cell.init(key(12), shape, belowShape);
        const pl = leaves(params);
        const xs = [0, 1, 2].map((t) => randn(key(60 + t), shape));
        const belows = [0, 1, 2].map((t) => randn(key(70 + t), belowShape));
        const probe = randn(key(80), shape);
        const loss = (...args: Tensor[]): Tensor => {
          const p = unflatten(params, args.slice(0, pl.length));
          let st: RgcState = cell.initialState(shape);
          for (let t = 0; t < 3; t++) [st] = cell.step(p, st, args[pl.length + t], ctx(t, args[pl.length + 3 + t]));
          return sum(mul(add(st.h, mul(st.s, 0.5)), probe));
        };
        checkGrad(loss, [...pl, ...xs, ...belows], { maxElements: 16 });
      }
    });
  });

  it('invalid configs are ConfigErrors naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ tauA: { kernelSize: 8 } }, /config\.tauA\.kernelSize must be an integer in \[3, 7\]/],
      [{ gateA: { inputs: ['foo'] } }, /config\.gateA\.inputs\[0\]/],
      [{ gateB: { inputs: ['x', 's'] } }, /config\.gateB\.inputs\[1\]/],
      [{ tauA: { inputs: ['h'] } }, /config\.tauA\.inputs\[0\]/],
      [{ tauB: { affine: 'mul' } }, /config\.tauB\.affine/],
      [{ gateA: { inputs: ['s'] }, tauB: { inputs: ['h'] } }, /config\.tauB\.inputs must not contain 'h'.*config\.gateA\.inputs contains 's'/],
      [{ gateA: { inputs: ['x', 'x'] } }, /config\.gateA\.inputs lists "x" twice/],
      [{ gateA: { inputs: 'x' } }, /config\.gateA\.inputs must be an array/],
      [{ tauA: { affine: 'add', kernelSize: 3 } }, /config\.tauA\.kernelSize/],
      [{ gateB: { input: ['x'] } }, /config\.gateB\.input/],
      [{ tau: { v1: 1, v3: 2 } }, /config\.tau\.v3/],
      [{ gate: { v2: Number.NaN } }, /config\.gate\.v2/],
      [{ activation: 'relu' }, /config\.activation/],
      [{ gateBiasInit: 1 }, /config\.gateBiasInit/],
      [{ foo: 1 }, /config\.foo/],
      [{ gateA: 3 }, /config\.gateA must be an object/],
    ];
    for (const [config, msg] of bad) {
      expect(() => rgcSearch(config as RgcSearchConfig), JSON.stringify(config)).toThrow(ConfigError);
      expect(() => rgcSearch(config as RgcSearchConfig), JSON.stringify(config)).toThrow(msg);
    }
  });

  it('below: required at init and step when read; add needs C channels', () => {
    scope(() => {
      const cell = rgcSearch({ gateA: { inputs: ['below'], affine: 'conv1x1' } });
      expect(() => cell.init(key(1), SHAPE)).toThrow(ValueError);
      expect(() => cell.init(key(1), SHAPE)).toThrow(/config\.gateA\.inputs contains 'below'/);
      const params = cell.init(key(1), SHAPE, [2, 8, 8, 5]);
      expect((params.gateA as ConvParams).w.shape).toEqual([1, 1, 5, 3]);
      const state = cell.initialState(SHAPE);
      const x = randn(key(2), SHAPE);
      expect(() => cell.step(params, state, x, ctx(0))).toThrow(/ctx\.below is absent/);
      expect(() => cell.step(params, state, x, ctx(0, randn(key(3), [1, 8, 8, 5])))).toThrow(ShapeError);
      expect(() => cell.step(params, state, x, ctx(0, randn(key(3), [2, 8, 8, 4])))).toThrow(ShapeError);
      const adder = rgcSearch({ tauB: { inputs: ['below', 'x'], affine: 'add' } });
      expect(() => adder.init(key(1), SHAPE, [2, 4, 4, 2])).toThrow(/config\.tauB\.affine 'add'/);
      const ap = adder.init(key(1), SHAPE, [2, 4, 4, 3]);
      expect(ap.tauB).toBeUndefined();
      expect(() => adder.step(ap, state, x, ctx(0, randn(key(3), [2, 4, 4, 1])))).toThrow(/config\.tauB\.affine 'add'/);
    });
  });

  it('a gate with no inputs is the constant v1 + v2/2 and has no params', () => {
    scope(() => {
      // gate_a = 0.2 + 0.6/2 = 0.5, τ_a = 1 − 1/2 = 0.5 (the 'add' of nothing): h = elu(½x + ½h_prev).
      const cell = rgcSearch({ gateA: { inputs: [] }, tauA: { inputs: [], affine: 'add' }, gate: { v1: 0.2, v2: 0.6 } });
      const params = cell.init(key(1), SHAPE);
      expect(Object.keys(params)).toEqual(['gateB', 'tauB']);
      const hPrev = randn(key(2), SHAPE);
      const x = randn(key(3), SHAPE);
      const [next] = cell.step(params, { h: hPrev, s: randn(key(4), SHAPE) }, x, ctx(1));
      expectClose(next.h, zip(arr(x), arr(hPrev), (xv, hv) => elu(0.5 * xv + 0.5 * hv)), 1e-6, 1e-6);
    });
  });
});
