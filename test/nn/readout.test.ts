import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { randn, tensor } from '../../src/tensor/create.js';
import { Tensor, dispose } from '../../src/tensor/tensor.js';
import { ConfigError, ShapeError } from '../../src/tensor/errors.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { checkGrad } from '../../src/autodiff/index.js';
import { readout, readoutInit, readoutPenalty } from '../../src/nn/readout.js';
import { laplacianPenalty } from '../../src/nn/losses.js';

/** r[b, n] = Σ_{h,w,c} x[b,h,w,c] s[h,w,n] w[c,n] + bias[n], one unit at a time, in float64. */
function refReadout(x: Float32Array, [B, H, W, C]: number[], s: Float32Array, w: Float32Array, bias: Float32Array | null, N: number): Float64Array {
  const out = new Float64Array(B * N);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++) {
      let acc = bias ? bias[n] : 0;
      for (let h = 0; h < H; h++)
        for (let ww = 0; ww < W; ww++)
          for (let c = 0; c < C; c++) acc += x[((b * H + h) * W + ww) * C + c] * s[(h * W + ww) * N + n] * w[c * N + n];
      out[b * N + n] = acc;
    }
  return out;
}

describe('factored readout', () => {
  const cfg = { height: 4, width: 5, channels: 3, units: 6 };

  it('init: spatial [H, W, N], channel [C, N], bias [N]; bias optional', () => {
    const p = readoutInit(key(0), { ...cfg, biasInit: 0.5 });
    expect(p.spatial.shape).toEqual([4, 5, 6]);
    expect(p.channel.shape).toEqual([3, 6]);
    expect(Array.from(p.bias!.toArray())).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
    const q = readoutInit(key(0), { ...cfg, bias: false });
    expect(q.bias).toBeUndefined();
    expect(() => readoutInit(key(0), { ...cfg, units: 0 })).toThrow(/config\.units/);
    expect(() => readoutInit(key(0), { ...cfg, spatialInit: { kind: 'normal', std: -1 } })).toThrow(ConfigError);
    dispose([p, q]);
  });

  it('matches a per-unit plain loop', () => {
    const p = readoutInit(key(1), { ...cfg, biasInit: 0.25 });
    const x = randn(key(2), [3, 4, 5, 3]);
    const y = readout(p, x);
    expect(y.shape).toEqual([3, 6]);
    const ref = refReadout(x.toArray(), x.shape.slice(), p.spatial.toArray(), p.channel.toArray(), p.bias!.toArray(), 6);
    const got = y.toArray();
    for (let i = 0; i < ref.length; i++) expect(got[i]).toBeCloseTo(ref[i], 4);
    const q = { spatial: p.spatial, channel: p.channel };
    const y2 = readout(q, x).toArray();
    for (let i = 0; i < ref.length; i++) expect(y2[i]).toBeCloseTo(ref[i] - 0.25, 4);
    dispose([p, x, y]);
  });

  it('gradients check for features and all three params', () => {
    const p = readoutInit(key(3), { height: 2, width: 3, channels: 2, units: 3 });
    const x = randn(key(4), [2, 2, 3, 2]);
    const bias = randn(key(5), [3]);
    const r = randn(key(6), [2, 3]);
    checkGrad((x, s, w, b) => sum(mul(readout({ spatial: s, channel: w, bias: b }, x), r)), [x, p.spatial, p.channel, bias]);
    dispose([p, x, bias, r]);
  });

  it('rejects features that do not match the masks', () => {
    const p = readoutInit(key(1), cfg);
    expect(() => readout(p, randn(key(0), [1, 4, 5, 2]))).toThrow(ShapeError);
    expect(() => readout(p, randn(key(0), [1, 5, 4, 3]))).toThrow(/\[B, 4, 5, 3\]/);
    dispose(p);
  });

  it('penalty: weighted L1 of each mask plus Laplacian smoothness of the spatial masks', () => {
    const spatial = tensor([1, -2, 0, 3, 0.5, -1], [1, 2, 3]);
    const channel = tensor([2, -1, 0.5], [1, 3]);
    const p = { spatial, channel };
    expect(readoutPenalty(p, {}).item()).toBe(0);
    expect(readoutPenalty(p, { spatialL1: 2 }).item()).toBeCloseTo(2 * 7.5, 5);
    expect(readoutPenalty(p, { channelL1: 0.5 }).item()).toBeCloseTo(0.5 * 3.5, 5);
    const lap = laplacianPenalty(spatial).item();
    expect(readoutPenalty(p, { spatialL1: 1, channelL1: 1, spatialSmooth: 3 }).item()).toBeCloseTo(7.5 + 3.5 + 3 * lap, 4);
    checkGrad((s: Tensor, c: Tensor) => readoutPenalty({ spatial: s, channel: c }, { spatialL1: 0.3, channelL1: 0.2, spatialSmooth: 0.1 }), [spatial, channel]);
    expect(() => readoutPenalty(p, { spatialL1: -1 })).toThrow(/spatialL1/);
    dispose(p);
  });
});
