import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { randn, tensor } from '../../src/tensor/create.js';
import { Tensor, dispose } from '../../src/tensor/tensor.js';
import { ConfigError, ShapeError } from '../../src/tensor/errors.js';
import { add, mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { checkGrad, valueAndGrad } from '../../src/autodiff/index.js';
import { batchNorm, batchNormInit, layerNorm, layerNormInit } from '../../src/nn/norm.js';

/** Per-channel mean and biased variance of x [P, C] (row-major, channels last). */
function channelStats(x: Float32Array, c: number): { mean: number[]; v: number[] } {
  const p = x.length / c;
  const mean = new Array(c).fill(0);
  const v = new Array(c).fill(0);
  for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) mean[j] += x[i * c + j] / p;
  for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) v[j] += (x[i * c + j] - mean[j]) ** 2 / p;
  return { mean, v };
}

function probe(y: Tensor, seed: number): Tensor {
  return sum(mul(y, randn(key(seed), y.shape)));
}

describe('batchNorm', () => {
  const C = 3;
  const shape = [4, 3, 2, C];
  const makeX = () => add(mul(randn(key(1), shape), tensor([1, 2, 0.5])), tensor([0.5, -1, 3]));

  it('init: gamma 1, beta 0, running mean 0, var 1, validated options', () => {
    const bn = batchNormInit(C, { momentum: 0.8, eps: 1e-3 });
    expect(Array.from(bn.params.gamma.toArray())).toEqual([1, 1, 1]);
    expect(Array.from(bn.params.beta.toArray())).toEqual([0, 0, 0]);
    expect(Array.from(bn.state.mean.toArray())).toEqual([0, 0, 0]);
    expect(Array.from(bn.state.var.toArray())).toEqual([1, 1, 1]);
    expect(bn.config).toEqual({ momentum: 0.8, eps: 1e-3 });
    expect(() => batchNormInit(0)).toThrow(/channels/);
    expect(() => batchNormInit(3, { momentum: 1.5 })).toThrow(ConfigError);
    expect(() => batchNormInit(3, { eps: 0 })).toThrow(/eps/);
    dispose(bn);
  });

  it('training: normalises each channel over N, H, W with the batch statistics', () => {
    const x = makeX();
    const params = { gamma: tensor([1, 2, -1]), beta: tensor([0, 0.5, 1]) };
    const state = { mean: tensor([0.1, 0.2, 0.3]), var: tensor([1, 2, 3]) };
    const eps = 1e-5;
    const [y] = batchNorm(params, state, x, { training: true, eps });
    const xv = x.toArray();
    const { mean, v } = channelStats(xv, C);
    const yv = y.toArray();
    const g = [1, 2, -1];
    const b = [0, 0.5, 1];
    for (let i = 0; i < yv.length; i++) {
      const c = i % C;
      expect(yv[i]).toBeCloseTo((g[c] * (xv[i] - mean[c])) / Math.sqrt(v[c] + eps) + b[c], 4);
    }
    dispose([x, params, state, y]);
  });

  it('running statistics: new = momentum * old + (1 - momentum) * batch (unbiased variance)', () => {
    const x = makeX();
    const bn = batchNormInit(C);
    const state = { mean: tensor([0.1, 0.2, 0.3]), var: tensor([1, 2, 3]) };
    const momentum = 0.7;
    const [, s1] = batchNorm(bn.params, state, x, { training: true, momentum });
    const n = x.size / C;
    const { mean, v } = channelStats(x.toArray(), C);
    const m1 = s1.mean.toArray();
    const v1 = s1.var.toArray();
    const old = { mean: [0.1, 0.2, 0.3], var: [1, 2, 3] };
    for (let c = 0; c < C; c++) {
      expect(m1[c]).toBeCloseTo(momentum * old.mean[c] + (1 - momentum) * mean[c], 5);
      expect(v1[c]).toBeCloseTo(momentum * old.var[c] + (1 - momentum) * v[c] * (n / (n - 1)), 5);
    }
    // No hidden mutation: the old state is untouched.
    expect(Array.from(state.mean.toArray())).toEqual(Array.from(tensor([0.1, 0.2, 0.3]).toArray()));
    dispose([x, bn, state, s1]);
  });

  it('eval: uses the running statistics and returns the same state', () => {
    const x = makeX();
    const params = { gamma: tensor([1, 2, -1]), beta: tensor([0, 0.5, 1]) };
    const state = { mean: tensor([0.5, -1, 3]), var: tensor([1, 4, 0.25]) };
    const eps = 1e-3;
    const [y, s] = batchNorm(params, state, x, { training: false, eps });
    expect(s).toBe(state);
    const xv = x.toArray();
    const yv = y.toArray();
    const g = [1, 2, -1];
    const b = [0, 0.5, 1];
    const m = [0.5, -1, 3];
    const vv = [1, 4, 0.25];
    for (let i = 0; i < yv.length; i++) {
      const c = i % C;
      expect(yv[i]).toBeCloseTo((g[c] * (xv[i] - m[c])) / Math.sqrt(vv[c] + eps) + b[c], 4);
    }
    // Training on the same batch gives a different output (batch statistics).
    const [yt] = batchNorm(params, state, x, { training: true, eps });
    expect(Math.abs(yt.toArray()[0] - yv[0])).toBeGreaterThan(1e-3);
    dispose([x, params, state, y, yt]);
  });

  it('repeated training steps on one batch converge the running stats to the batch statistics', () => {
    const x = makeX();
    const bn = batchNormInit(C, { momentum: 0.5 });
    let state = bn.state;
    for (let i = 0; i < 40; i++) {
      const [y, s] = batchNorm(bn.params, state, x, { training: true, ...bn.config });
      dispose([y, state]);
      state = s;
    }
    const n = x.size / C;
    const { mean, v } = channelStats(x.toArray(), C);
    const m = state.mean.toArray();
    const vv = state.var.toArray();
    for (let c = 0; c < C; c++) {
      expect(m[c]).toBeCloseTo(mean[c], 4);
      expect(vv[c]).toBeCloseTo((v[c] * n) / (n - 1), 4);
    }
    dispose([x, bn.params, state]);
  });

  it('gradients check in both modes; the state update is not differentiated', () => {
    const x = randn(key(5), [3, 2, 2, C]);
    const gamma = tensor([1.2, 0.7, -0.4]);
    const beta = tensor([0.1, -0.2, 0.3]);
    const state = { mean: tensor([0.1, 0.2, 0.3]), var: tensor([1, 2, 3]) };
    checkGrad((x, gamma, beta) => probe(batchNorm({ gamma, beta }, state, x, { training: true })[0], 3), [x, gamma, beta]);
    checkGrad((x, gamma, beta) => probe(batchNorm({ gamma, beta }, state, x, { training: false })[0], 3), [x, gamma, beta]);
    const [[loss, aux], g] = valueAndGrad(
      (gamma: Tensor) => {
        const [y, s] = batchNorm({ gamma, beta }, state, x, { training: true });
        return [probe(y, 3), s];
      },
      0,
      { hasAux: true },
    )(gamma);
    expect(aux.mean.shape).toEqual([C]);
    expect(g.shape).toEqual([C]);
    dispose([x, gamma, beta, state, loss, aux, g]);
  });

  it('checks shapes and options', () => {
    const bn = batchNormInit(C);
    expect(() => batchNorm(bn.params, bn.state, randn(key(0), [2, 2, 2, 4]), { training: true })).toThrow(ShapeError);
    expect(() => batchNorm(bn.params, bn.state, randn(key(0), [3]), { training: true })).toThrow(/rank >= 2/);
    expect(() => batchNorm(bn.params, bn.state, randn(key(0), [2, 3]), {} as never)).toThrow(/training/);
    dispose(bn);
  });
});

describe('layerNorm', () => {
  it('init beta = 0, gamma = 1; output has mean 0 and variance 1 over the normalised axes', () => {
    const p = layerNormInit([3, 4]);
    expect(Array.from(p.gamma.toArray()).every((v) => v === 1)).toBe(true);
    expect(Array.from(p.beta.toArray()).every((v) => v === 0)).toBe(true);
    const x = add(mul(randn(key(1), [5, 2, 3, 4]), 3), 7);
    for (const [params, axes, group] of [
      [p, [-2, -1], 12],
      [layerNormInit(4), -1, 4],
      [layerNormInit(4), [1, 2, 3], 24],
    ] as const) {
      const y = layerNorm(params, x, { axes, eps: 1e-6 }).toArray();
      for (let g0 = 0; g0 < y.length; g0 += group) {
        let m = 0;
        let q = 0;
        for (let i = 0; i < group; i++) m += y[g0 + i] / group;
        for (let i = 0; i < group; i++) q += (y[g0 + i] - m) ** 2 / group;
        expect(Math.abs(m)).toBeLessThan(1e-5);
        expect(q).toBeCloseTo(1, 4);
      }
    }
    dispose([p, x]);
  });
  it('applies gamma and beta; gradients check', () => {
    const x = randn(key(2), [3, 4]);
    const gamma = tensor([1, 2, 0.5, -1]);
    const beta = tensor([0, 1, -1, 2]);
    const y = layerNorm({ gamma, beta }, x).toArray();
    const xv = x.toArray();
    for (let r = 0; r < 3; r++) {
      const row = Array.from(xv.slice(r * 4, r * 4 + 4));
      const m = row.reduce((a, b) => a + b) / 4;
      const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / 4;
      row.forEach((val, c) => expect(y[r * 4 + c]).toBeCloseTo(([1, 2, 0.5, -1][c] * (val - m)) / Math.sqrt(v + 1e-5) + [0, 1, -1, 2][c], 4));
    }
    checkGrad((x, gamma, beta) => probe(layerNorm({ gamma, beta }, x), 4), [x, gamma, beta]);
    const x4 = randn(key(3), [2, 2, 2, 3]);
    const p = layerNormInit([2, 2, 3]);
    checkGrad((x, gamma, beta) => probe(layerNorm({ gamma, beta }, x, { axes: [1, 2, 3] }), 5), [x4, p.gamma, p.beta]);
    dispose([x, gamma, beta, x4, p]);
  });
  it('rejects non-trailing axes and mismatched params', () => {
    const x = randn(key(2), [2, 3, 4]);
    const p = layerNormInit(4);
    expect(() => layerNorm(p, x, { axes: [0] })).toThrow(/trailing/);
    expect(() => layerNorm(p, x, { axes: [-1, -1] })).toThrow(ConfigError);
    expect(() => layerNorm(layerNormInit(3), x)).toThrow(ShapeError);
    expect(() => layerNorm(layerNormInit([3, 4]), x, { axes: -1 })).toThrow(ShapeError);
    expect(() => layerNormInit(0)).toThrow(ConfigError);
    dispose([x, p]);
  });
});
