import { describe, expect, it } from 'vitest';
import { rcpb, rcpbBuffers, type RcpbConfig, type RcpbParams, type RcpbState } from '../../../src/convrnn/cells/rcpb.js';
import { Tensor, scope } from '../../../src/tensor/tensor.js';
import { randn, tensor, uniform } from '../../../src/tensor/create.js';
import { key, split } from '../../../src/tensor/random.js';
import { leaves, unflatten } from '../../../src/tensor/tree.js';
import { ConfigError, ShapeError, ValueError } from '../../../src/tensor/errors.js';
import { add, mul } from '../../../src/tensor/ops/binary.js';
import { sum } from '../../../src/tensor/ops/reduce.js';
import { checkGrad } from '../../../src/autodiff/index.js';
import { type Arr, arr, batchNormRef, cellConvOf, elu, expectClose, map, relu, snapshot, softplus, zip } from './reference.js';

const SHAPE = [2, 4, 4, 3];
const ACT: Record<string, (v: number) => number> = { relu, softplus, elu, identity: (v) => v };

/** Random gamma/beta per iteration, so each iteration's batch norm is distinct. */
function randomParams(cell: ReturnType<typeof rcpb>, seed: number): RcpbParams {
  const p = cell.init(key(seed), SHAPE);
  const ks = split(key(seed + 1), 2 * p.bn.length);
  return { ...p, bn: p.bn.map((_, t) => ({ gamma: uniform(ks[2 * t], [3], 0.5, 1.5), beta: randn(ks[2 * t + 1], [3], 0.3) })) };
}

interface RefState {
  y: Arr;
  bn: { mean: Arr; var: Arr }[];
}

/** zhang2021 eq. 2i in float64, with B.2's repetition for t ≥ T'. */
function rcpbRef(cfg: Required<RcpbConfig>, p: RcpbParams, st: RefState, x: Arr, t: number, training: boolean): RefState {
  if (t >= cfg.iterations) return st;
  const z = p.lateral ? zip(x, cellConvOf({ ...p.lateral }, st.y), (a, b) => a + b) : x;
  const r = batchNormRef(z, arr(p.bn[t].gamma), arr(p.bn[t].beta), st.bn[t], { training, momentum: cfg.bnMomentum, eps: cfg.bnEps });
  const bn = st.bn.slice();
  bn[t] = { mean: { shape: [3], data: r.mean }, var: { shape: [3], data: r.var } };
  return { y: map(r.y, ACT[cfg.activation]), bn };
}

const refState = (s: RcpbState): RefState => ({ y: arr(s.y), bn: s.buffers.bn.map((b) => ({ mean: arr(b.mean), var: arr(b.var) })) });

function expectStateClose(s: RcpbState, r: RefState): void {
  expectClose(s.y, r.y, 1e-4, 1e-4);
  s.buffers.bn.forEach((b, t) => {
    expectClose(b.mean, r.bn[t].mean, 1e-5, 1e-5);
    expectClose(b.var, r.bn[t].var, 1e-5, 1e-5);
  });
}

describe('rcpb', () => {
  it.each(['relu', 'softplus', 'elu', 'identity'] as const)(
    'T\' = 3 (%s): training steps, then evaluation with the learned running statistics, equal the float64 eq. 2i; t ≥ T\' repeats',
    (activation) => {
      scope(() => {
        const cell = rcpb({ iterations: 3, activation, bnMomentum: 0.8 });
        const cfg = cell.config as Required<RcpbConfig>;
        const params = randomParams(cell, 3);
        /** Five steps from the zero output with `buffers`, each checked against the reference. */
        const run = (training: boolean, buffers?: RcpbState['buffers']): RcpbState => {
          let state = cell.initialState(SHAPE, buffers);
          let ref = refState(state);
          for (let t = 0; t < 5; t++) {
            const x = randn(key(10 + t), SHAPE);
            const prev = state;
            let y: Tensor;
            [state, y] = cell.step(params, state, x, { t, training });
            ref = rcpbRef(cfg, params, ref, arr(x), t, training);
            expectStateClose(state, ref);
            expect(y).toBe(state.y);
            if (t >= 3) expect(state).toBe(prev);
          }
          return state;
        };
        run(false, run(true).buffers);
      });
    },
  );

  it('each iteration has its own batch norm: a different gamma at t = 1 leaves t = 0 bit-identical and changes t = 1', () => {
    scope(() => {
      const cell = rcpb({ iterations: 3 });
      const a = randomParams(cell, 5);
      const b: RcpbParams = { ...a, bn: a.bn.map((p, t) => (t === 1 ? { ...p, gamma: mul(p.gamma, 2) } : p)) };
      for (const training of [true, false]) {
        let sa = cell.initialState(SHAPE);
        let sb = cell.initialState(SHAPE);
        const ys: [number[], number[]][] = [];
        for (let t = 0; t < 2; t++) {
          const x = randn(key(20 + t), SHAPE);
          [sa] = cell.step(a, sa, x, { t, training });
          [sb] = cell.step(b, sb, x, { t, training });
          ys.push([Array.from(sa.y.toArray()), Array.from(sb.y.toArray())]);
        }
        expect(ys[0][1]).toEqual(ys[0][0]);
        expect(ys[1][1]).not.toEqual(ys[1][0]);
      }
    });
  });

  it('running statistics: training updates only iteration t\'s buffers; evaluation uses them and changes nothing', () => {
    scope(() => {
      const cell = rcpb({ iterations: 2 });
      const params = randomParams(cell, 7);
      const s0 = cell.initialState(SHAPE);
      const x = randn(key(30), SHAPE);
      const [s1] = cell.step(params, s0, x, { t: 0, training: true });
      expect(s1.buffers.bn[1]).toBe(s0.buffers.bn[1]);
      expect(Array.from(s1.buffers.bn[0].mean.toArray())).not.toEqual([0, 0, 0]);
      const [s2] = cell.step(params, s1, x, { t: 1, training: true });
      expect(s2.buffers.bn[0]).toBe(s1.buffers.bn[0]);
      expect(Array.from(s2.buffers.bn[1].var.toArray())).not.toEqual([1, 1, 1]);
      // Evaluation at t = 0 with custom statistics: the fixed affine map γ(z − μ)/sqrt(σ² + ε) + β, then relu.
      const mean = tensor([0.5, -1, 2]);
      const variance = tensor([4, 0.25, 1]);
      const buffers = { bn: [{ mean, var: variance }, s2.buffers.bn[1]] };
      const state = cell.initialState(SHAPE, buffers);
      const [e] = cell.step(params, state, x, { t: 0, training: false });
      expect(e.buffers.bn[0]).toBe(buffers.bn[0]);
      expect(e.buffers.bn[1]).toBe(buffers.bn[1]);
      const g = arr(params.bn[0].gamma).data;
      const bt = arr(params.bn[0].beta).data;
      const m = [0.5, -1, 2];
      const v = [4, 0.25, 1];
      expectClose(e.y, map(arr(x), (xv, i) => relu((g[i % 3] * (xv - m[i % 3])) / Math.sqrt(v[i % 3] + 1e-5) + bt[i % 3])), 1e-5, 1e-5);
    });
  });

  it('T\' = 1 is a CPB: no lateral conv, y = Act(BN(x)), repeated afterwards', () => {
    scope(() => {
      const cell = rcpb({ iterations: 1, activation: 'identity' });
      const params = cell.init(key(1), SHAPE);
      expect(Object.keys(params)).toEqual(['bn']);
      const x = randn(key(2), SHAPE, 2);
      const [s1, y] = cell.step(params, cell.initialState(SHAPE), x, { t: 0, training: true });
      const r = batchNormRef(arr(x), arr(params.bn[0].gamma), arr(params.bn[0].beta), { mean: { shape: [3], data: new Float64Array(3) }, var: { shape: [3], data: new Float64Array([1, 1, 1]) } }, { training: true, momentum: 0.9, eps: 1e-5 });
      expectClose(y, r.y, 1e-5, 1e-5);
      expectClose(s1.buffers.bn[0].mean, { shape: [3], data: r.mean }, 1e-6, 1e-6);
      expectClose(s1.buffers.bn[0].var, { shape: [3], data: r.var }, 1e-6, 1e-6);
      const [s2, y2] = cell.step(params, s1, randn(key(3), SHAPE), { t: 1, training: true });
      expect(s2).toBe(s1);
      expect(y2).toBe(y);
    });
  });

  it('BPTT: the gradient through 3 steps (and a repeated 4th) w.r.t. every param and input matches finite differences', () => {
    scope(() => {
      const shape = [2, 4, 4, 2];
      const cell = rcpb({ iterations: 3, activation: 'elu' });
      const base = cell.init(key(9), shape);
      const ks = split(key(10), 6);
      const params: RcpbParams = { ...base, bn: base.bn.map((_, t) => ({ gamma: uniform(ks[2 * t], [2], 0.5, 1.5), beta: randn(ks[2 * t + 1], [2], 0.3) })) };
      const pl = leaves(params);
      const xs = [0, 1, 2].map((t) => randn(key(40 + t), shape));
      const probe = randn(key(50), shape);
      const buffers = { bn: [0, 1, 2].map((t) => ({ mean: randn(key(60 + t), [2], 0.3), var: uniform(key(70 + t), [2], 0.5, 2) })) };
      for (const training of [true, false]) {
        const loss = (...args: Tensor[]): Tensor => {
          const p = unflatten(params, args.slice(0, pl.length));
          let st = cell.initialState(shape, buffers);
          let acc: Tensor | undefined;
          for (let t = 0; t < 4; t++) {
            let y: Tensor;
            [st, y] = cell.step(p, st, args[pl.length + Math.min(t, 2)], { t, training });
            acc = acc === undefined ? mul(y, 0.3) : add(acc, y);
          }
          return sum(mul(acc!, probe));
        };
        checkGrad(loss, [...pl, ...xs], { maxElements: 24 });
      }
    });
  });

  it('purity: the same arguments give the same bits twice and are left unchanged', () => {
    scope(() => {
      const cell = rcpb({ iterations: 2 });
      const params = randomParams(cell, 11);
      const state = { y: randn(key(12), SHAPE), buffers: rcpbBuffers({ iterations: 2 }, SHAPE) };
      const x = randn(key(13), SHAPE);
      const args = [...leaves(params), ...leaves(state), x];
      const before = snapshot(args);
      const [a, ya] = cell.step(params, state, x, { t: 1, training: true });
      const [b, yb] = cell.step(params, state, x, { t: 1, training: true });
      expect(snapshot([...leaves(a), ya])).toEqual(snapshot([...leaves(b), yb]));
      expect(snapshot(args)).toEqual(before);
    });
  });

  it('buffers, config and arguments are validated', () => {
    scope(() => {
      const buf = rcpbBuffers({ iterations: 2 }, SHAPE);
      expect(buf.bn.length).toBe(2);
      expect(snapshot(leaves(buf))).toEqual([[0, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1]]);
      const cell = rcpb({ iterations: 2 });
      expect(cell.kind).toBe('rcpb');
      expect(cell.config).toEqual({ iterations: 2, kernelSize: 3, activation: 'relu', init: { kind: 'he', scale: 1 }, bnMomentum: 0.9, bnEps: 1e-5 });
      expect(cell.outputShape(SHAPE)).toEqual(SHAPE);
      const params = cell.init(key(1), SHAPE);
      expect(params.lateral!.w.shape).toEqual([3, 3, 3, 3]);
      expect(params.lateral!.b).toBeUndefined();
      expect(() => cell.initialState(SHAPE, { bn: [buf.bn[0]] })).toThrow(/buffers\.bn must be an array of 2/);
      expect(() => cell.initialState([2, 4, 4, 2], buf)).toThrow(ShapeError);
      const state = cell.initialState(SHAPE);
      const x = randn(key(2), SHAPE);
      expect(() => cell.step(params, state, x, { t: -1, training: true })).toThrow(/ctx\.t/);
      expect(() => cell.step(params, state, x, { t: 0 } as never)).toThrow(ValueError);
      expect(() => cell.step(params, state, randn(key(2), [2, 4, 4, 2]), { t: 0, training: true })).toThrow(ShapeError);
      expect(() => cell.step({ bn: params.bn }, state, x, { t: 0, training: true })).toThrow(/params\.lateral/);
    });
    const bad: [unknown, RegExp][] = [
      [{}, /config\.iterations/],
      [{ iterations: 0 }, /config\.iterations/],
      [{ iterations: 2, activation: 'tanh' }, /config\.activation/],
      [{ iterations: 2, kernelSize: 2.5 }, /config\.kernelSize/],
      [{ iterations: 2, bnMomentum: 2 }, /config\.bnMomentum/],
      [{ iterations: 2, bnEps: 0 }, /config\.bnEps/],
      [{ iterations: 2, bn: 'affine' }, /config\.bn/],
    ];
    for (const [config, msg] of bad) {
      expect(() => rcpb(config as RcpbConfig)).toThrow(ConfigError);
      expect(() => rcpb(config as RcpbConfig)).toThrow(msg);
    }
  });
});
