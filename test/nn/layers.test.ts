import { describe, expect, it } from 'vitest';
import { key, split } from '../../src/tensor/random.js';
import { randn, tensor, ones } from '../../src/tensor/create.js';
import { Tensor, dispose, scope } from '../../src/tensor/tensor.js';
import { ConfigError, ShapeError } from '../../src/tensor/errors.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { checkGrad, grad } from '../../src/autodiff/index.js';
import {
  convLayer,
  depthwiseLayer,
  separableLayer,
  linearLayer,
  maxPool,
  avgPool,
  globalAvgPool,
  flatten,
  dropout,
  type ConvConfig,
  type DepthwiseConfig,
  type SeparableConfig,
  type LinearConfig,
} from '../../src/nn/layers.js';

// ---- plain float64 references -------------------------------------------------------

function samePad(size: number, k: number, s: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + k - size, 0);
  return [Math.floor(total / 2), out];
}

/** NHWC x, HWIO w, 'same' padding, stride s, optional bias. */
function refConv(x: Float32Array, xs: number[], w: Float32Array, ws: number[], s: number, b?: Float32Array): { data: Float64Array; shape: number[] } {
  const [N, H, W, C] = xs;
  const [KH, KW, , O] = ws;
  const [pt, OH] = samePad(H, KH, s);
  const [pl, OW] = samePad(W, KW, s);
  const out = new Float64Array(N * OH * OW * O);
  for (let n = 0; n < N; n++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++)
        for (let o = 0; o < O; o++) {
          let acc = b ? b[o] : 0;
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const ih = oh * s - pt + kh;
              const iw = ow * s - pl + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (let c = 0; c < C; c++) acc += x[((n * H + ih) * W + iw) * C + c] * w[((kh * KW + kw) * C + c) * O + o];
            }
          out[((n * OH + oh) * OW + ow) * O + o] = acc;
        }
  return { data: out, shape: [N, OH, OW, O] };
}

/** Depthwise [KH, KW, C, M], 'same', stride 1: out channel c*M + m. */
function refDepthwise(x: Float32Array, xs: number[], w: Float32Array, ws: number[]): Float64Array {
  const [N, H, W, C] = xs;
  const [KH, KW, , M] = ws;
  const [pt] = samePad(H, KH, 1);
  const [pl] = samePad(W, KW, 1);
  const out = new Float64Array(N * H * W * C * M);
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let ww = 0; ww < W; ww++)
        for (let c = 0; c < C; c++)
          for (let m = 0; m < M; m++) {
            let acc = 0;
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                const ih = h - pt + kh;
                const iw = ww - pl + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * H + ih) * W + iw) * C + c] * w[((kh * KW + kw) * C + c) * M + m];
              }
            out[((n * H + h) * W + ww) * C * M + c * M + m] = acc;
          }
  return out;
}

function expectClose(got: Float32Array, want: ArrayLike<number>, tol = 1e-4): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])))) {
      throw new Error(`element ${i}: got ${got[i]}, want ${want[i]}`);
    }
  }
}

/** A scalar probe of a layer's output: sum(y * r) with fixed random r. */
function probe(y: Tensor, seed: number): Tensor {
  return sum(mul(y, randn(key(seed), y.shape)));
}

// ---- conv -----------------------------------------------------------------------------

describe('convLayer', () => {
  const cfg: ConvConfig = { inChannels: 3, outChannels: 4, kernelSize: 3, stride: 2 };
  it('init: w HWIO with He std, b = biasInit; no b without bias', () => {
    const p = convLayer.init(key(0), { ...cfg, biasInit: 0.5, init: { kind: 'he', scale: 2 } });
    expect(p.w.shape).toEqual([3, 3, 3, 4]);
    expect(Array.from(p.b!.toArray())).toEqual([0.5, 0.5, 0.5, 0.5]);
    const q = convLayer.init(key(0), { ...cfg, bias: false });
    expect(Object.keys(q)).toEqual(['w']);
    dispose([p, q]);
  });
  it('apply: matches a plain convolution (same padding, stride 2, bias)', () => {
    const p = convLayer.init(key(1), { ...cfg, biasInit: 0.25 });
    const x = randn(key(2), [2, 5, 6, 3]);
    const y = convLayer.apply(p, x, cfg);
    const ref = refConv(x.toArray(), x.shape.slice(), p.w.toArray(), p.w.shape.slice(), 2, p.b!.toArray());
    expect(y.shape).toEqual(ref.shape);
    expectClose(y.toArray(), ref.data);
    dispose([p, x, y]);
  });
  it('gradients match finite differences', () => {
    const p = convLayer.init(key(3), cfg);
    const x = randn(key(4), [1, 4, 4, 3]);
    const b = randn(key(5), [4]);
    checkGrad((x, w, b) => probe(convLayer.apply({ w, b }, x, cfg), 9), [x, p.w, b]);
    dispose([p, x, b]);
  });
  it('validates config and shapes', () => {
    const p = convLayer.init(key(0), cfg);
    const x = randn(key(0), [1, 4, 4, 3]);
    expect(() => convLayer.init(key(0), { ...cfg, outChannels: 0 })).toThrow(/config\.outChannels/);
    expect(() => convLayer.init(key(0), { ...cfg, kernelSize: [3] as never })).toThrow(ConfigError);
    expect(() => convLayer.apply(p, x, { ...cfg, stride: -1 })).toThrow(/config\.stride/);
    expect(() => convLayer.apply(p, x, { ...cfg, padding: 'full' as never })).toThrow(/config\.padding/);
    expect(() => convLayer.init(key(0), { ...cfg, init: { kind: 'he', scale: -1 } })).toThrow(/config\.init\.scale must be/);
    expect(() => convLayer.apply(p, randn(key(0), [1, 4, 4, 2]), cfg)).toThrow(ShapeError);
    expect(() => convLayer.apply(p, x, { ...cfg, outChannels: 5 })).toThrow(/params\.w must have shape/);
    dispose([p, x]);
  });
});

// ---- depthwise / separable ---------------------------------------------------------------

describe('depthwiseLayer', () => {
  const cfg: DepthwiseConfig = { channels: 3, kernelSize: 3, multiplier: 2 };
  it('apply matches a plain depthwise convolution; gradients check', () => {
    const p = depthwiseLayer.init(key(1), cfg);
    expect(p.w.shape).toEqual([3, 3, 3, 2]);
    expect(p.b).toBeUndefined();
    const x = randn(key(2), [2, 4, 5, 3]);
    const y = depthwiseLayer.apply(p, x, cfg);
    expect(y.shape).toEqual([2, 4, 5, 6]);
    expectClose(y.toArray(), refDepthwise(x.toArray(), x.shape.slice(), p.w.toArray(), p.w.shape.slice()));
    const xs = randn(key(3), [1, 4, 4, 3]);
    checkGrad((x, w) => probe(depthwiseLayer.apply({ w }, x, cfg), 8), [xs, p.w]);
    const cb = { ...cfg, bias: true };
    const b = randn(key(4), [6]);
    checkGrad((x, w, b) => probe(depthwiseLayer.apply({ w, b }, x, cb), 8), [xs, p.w, b]);
    dispose([p, x, y, xs, b]);
  });
  it('He init uses the depthwise fan-in KH*KW', () => {
    const p = depthwiseLayer.init(key(5), { channels: 64, kernelSize: 3, multiplier: 4 });
    const v = p.w.toArray();
    let q = 0;
    for (const a of v) q += a * a;
    expect(Math.sqrt(q / v.length) / Math.sqrt(2 / 9)).toBeGreaterThan(0.93);
    expect(Math.sqrt(q / v.length) / Math.sqrt(2 / 9)).toBeLessThan(1.07);
    dispose(p);
  });
});

describe('separableLayer', () => {
  const cfg: SeparableConfig = { inChannels: 2, outChannels: 3, kernelSize: 3, multiplier: 2 };
  it('is a depthwise conv then a 1x1 conv with bias', () => {
    const p = separableLayer.init(key(1), { ...cfg, biasInit: 0.1 });
    expect(p.depthwise.w.shape).toEqual([3, 3, 2, 2]);
    expect(p.pointwise.w.shape).toEqual([1, 1, 4, 3]);
    const x = randn(key(2), [2, 4, 4, 2]);
    const y = separableLayer.apply(p, x, cfg);
    const mid = refDepthwise(x.toArray(), [2, 4, 4, 2], p.depthwise.w.toArray(), [3, 3, 2, 2]);
    const ref = refConv(Float32Array.from(mid), [2, 4, 4, 4], p.pointwise.w.toArray(), [1, 1, 4, 3], 1, p.pointwise.b!.toArray());
    expectClose(y.toArray(), ref.data);
    checkGrad((x, dw, pw, b) => probe(separableLayer.apply({ depthwise: { w: dw }, pointwise: { w: pw, b } }, x, cfg), 3), [
      x,
      p.depthwise.w,
      p.pointwise.w,
      p.pointwise.b!,
    ]);
    dispose([p, x, y]);
  });
  it('validates its config', () => {
    expect(() => separableLayer.init(key(0), { ...cfg, multiplier: 0 })).toThrow(/config\.multiplier/);
    expect(() => separableLayer.init(key(0), { ...cfg, kernelSize: 0 })).toThrow(/config\.kernelSize/);
  });
});

// ---- linear ---------------------------------------------------------------------------------

describe('linearLayer', () => {
  const cfg: LinearConfig = { inFeatures: 5, outFeatures: 3 };
  it('x [B, in] · w [in, out] + b, and over leading dims', () => {
    const p = linearLayer.init(key(1), { ...cfg, biasInit: 1 });
    const x = randn(key(2), [4, 5]);
    const y = linearLayer.apply(p, x, cfg);
    const xv = x.toArray();
    const wv = p.w.toArray();
    const ref = new Float64Array(12);
    for (let i = 0; i < 4; i++)
      for (let o = 0; o < 3; o++) {
        let acc = 1;
        for (let k = 0; k < 5; k++) acc += xv[i * 5 + k] * wv[k * 3 + o];
        ref[i * 3 + o] = acc;
      }
    expectClose(y.toArray(), ref);
    const y3 = linearLayer.apply(p, tensor(xv, [2, 2, 5]), cfg);
    expect(y3.shape).toEqual([2, 2, 3]);
    expectClose(y3.toArray(), ref);
    dispose([p, x, y, y3]);
  });
  it('gradients check; shape errors', () => {
    const p = linearLayer.init(key(3), cfg);
    const x = randn(key(4), [3, 5]);
    checkGrad((x, w, b) => probe(linearLayer.apply({ w, b }, x, cfg), 1), [x, p.w, p.b!]);
    expect(() => linearLayer.apply(p, randn(key(0), [3, 4]), cfg)).toThrow(ShapeError);
    expect(() => linearLayer.init(key(0), { ...cfg, inFeatures: 1.5 })).toThrow(/config\.inFeatures/);
    dispose([p, x]);
  });
});

// ---- pooling, flatten ----------------------------------------------------------------------

describe('pooling and flatten', () => {
  it('maxPool / avgPool / globalAvgPool on a hand case', () => {
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 4, 4, 1]);
    expect(Array.from(maxPool(x, { size: 2 }).toArray())).toEqual([6, 8, 14, 16]);
    expect(Array.from(avgPool(x, { size: 2 }).toArray())).toEqual([3.5, 5.5, 11.5, 13.5]);
    expect(Array.from(maxPool(x, { size: 3, stride: 1 }).toArray())).toEqual([11, 12, 15, 16]);
    const g = globalAvgPool(x);
    expect(g.shape).toEqual([1, 1]);
    expect(g.item()).toBe(8.5);
    expect(globalAvgPool(x, true).shape).toEqual([1, 1, 1, 1]);
    expect(() => maxPool(x, { size: 0 })).toThrow(/config\.size/);
    expect(() => avgPool(x, { size: 2, padding: 'full' as never })).toThrow(ConfigError);
    dispose(x);
  });
  it('pooling gradients check', () => {
    // Distinct, well-separated values so max pooling has no near-ties.
    const vals = Array.from({ length: 2 * 4 * 4 * 2 }, (_, i) => ((i * 37) % 64) * 0.25);
    const x = tensor(vals, [2, 4, 4, 2]);
    checkGrad((x) => probe(maxPool(x, { size: 2 }), 2), [x]);
    checkGrad((x) => probe(avgPool(x, { size: 3, stride: 1, padding: 'same' }), 2), [x]);
    checkGrad((x) => probe(globalAvgPool(x), 2), [x]);
    dispose(x);
  });
  it('flatten keeps the batch axis', () => {
    const x = randn(key(0), [2, 3, 4, 5]);
    const f = flatten(x);
    expect(f.shape).toEqual([2, 60]);
    expect(f.toArray()).toEqual(x.toArray());
    dispose([x, f]);
  });
});

// ---- dropout ----------------------------------------------------------------------------------

describe('dropout', () => {
  it('same key, same mask; another key, another mask', () => {
    const x = ones([1000]);
    const [k1, k2] = split(key(7));
    const a = dropout(k1, x, 0.3, true).toArray();
    const b = dropout(k1, x, 0.3, true).toArray();
    const c = dropout(k2, x, 0.3, true).toArray();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    dispose(x);
  });
  it('keeps 1 - rate of the elements, scaled by 1 / (1 - rate): E[y] = x', () => {
    const n = 20000;
    const x = ones([n]);
    for (const rate of [0.1, 0.5, 0.8]) {
      const y = dropout(key(11), x, rate, true).toArray();
      let kept = 0;
      let total = 0;
      const scaled = Math.fround(1 / (1 - rate));
      let wrong = 0;
      for (const v of y) {
        if (v !== 0) {
          kept++;
          if (v !== scaled) wrong++;
        }
        total += v;
      }
      expect(wrong).toBe(0);
      const sd = Math.sqrt(rate * (1 - rate) / n);
      expect(Math.abs(kept / n - (1 - rate))).toBeLessThan(5 * sd);
      expect(Math.abs(total / n - 1)).toBeLessThan((5 * sd) / (1 - rate));
    }
    dispose(x);
  });
  it('is the identity in eval mode or at rate 0; its gradient is the mask', () => {
    const x = randn(key(1), [4, 8]);
    expect(dropout(key(2), x, 0.5, false)).toBe(x);
    expect(dropout(key(2), x, 0, true)).toBe(x);
    const y = dropout(key(3), x, 0.5, true);
    const g = grad((x: Tensor) => sum(dropout(key(3), x, 0.5, true)))(x);
    const yv = y.toArray();
    const xv = x.toArray();
    const gv = g.toArray();
    for (let i = 0; i < yv.length; i++) expect(gv[i]).toBeCloseTo(yv[i] / xv[i], 5);
    expect(() => dropout(key(0), x, 1, true)).toThrow(/rate/);
    expect(() => dropout(key(0), x, -0.1, true)).toThrow(ConfigError);
    dispose([x, y, g]);
  });
  it('leaks nothing inside a scope', () => {
    const x = randn(key(1), [16]);
    const y = scope(() => dropout(key(4), x, 0.5, true));
    expect(y.shape).toEqual([16]);
    dispose([x, y]);
  });
});
