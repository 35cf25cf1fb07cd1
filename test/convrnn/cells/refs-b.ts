/**
 * Plain float64 references for the cell tests: NHWC arrays, 'same' convs
 * written as the obvious loops, bilinear resize, batch norm.
 */
import { expect } from 'vitest';
import { Tensor } from '../../../src/tensor/tensor.js';

export interface Arr {
  shape: number[];
  data: Float64Array;
}

export const arr = (t: Tensor): Arr => ({ shape: t.shape.slice(), data: Float64Array.from(t.toArray()) });

export const sig = (v: number): number => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
export const elu = (v: number): number => (v > 0 ? v : Math.expm1(v));
export const softplus = (v: number): number => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
export const relu = (v: number): number => Math.max(v, 0);

export function map(a: Arr, f: (v: number, i: number) => number): Arr {
  return { shape: a.shape.slice(), data: a.data.map(f) };
}

export function zip(a: Arr, b: Arr, f: (p: number, q: number) => number): Arr {
  expect(b.shape).toEqual(a.shape);
  return { shape: a.shape.slice(), data: a.data.map((v, i) => f(v, b.data[i])) };
}

export function zerosArr(shape: readonly number[]): Arr {
  return { shape: shape.slice(), data: new Float64Array(shape.reduce((p, q) => p * q, 1)) };
}

/** Stride-1 'same' conv (TensorFlow: floor((K-1)/2) padding before), x NHWC, w HWIO, optional bias. */
export function convSame(x: Arr, w: Arr, b?: Arr): Arr {
  const [n, h, wd, ci] = x.shape;
  const [kh, kw, wi, co] = w.shape;
  expect(wi).toBe(ci);
  const pt = Math.floor((kh - 1) / 2);
  const pl = Math.floor((kw - 1) / 2);
  const out = zerosArr([n, h, wd, co]);
  for (let b0 = 0; b0 < n; b0++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < wd; j++)
        for (let o = 0; o < co; o++) {
          let acc = b ? b.data[o] : 0;
          for (let di = 0; di < kh; di++)
            for (let dj = 0; dj < kw; dj++) {
              const y = i + di - pt;
              const xx = j + dj - pl;
              if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
              for (let c = 0; c < ci; c++) acc += x.data[((b0 * h + y) * wd + xx) * ci + c] * w.data[((di * kw + dj) * ci + c) * co + o];
            }
          out.data[((b0 * h + i) * wd + j) * co + o] = acc;
        }
  return out;
}

/** Stride-1 'same' depthwise conv, w [KH, KW, C, 1]. */
export function depthwiseSame(x: Arr, w: Arr): Arr {
  const [n, h, wd, c] = x.shape;
  const [kh, kw, wc, m] = w.shape;
  expect([wc, m]).toEqual([c, 1]);
  const pt = Math.floor((kh - 1) / 2);
  const pl = Math.floor((kw - 1) / 2);
  const out = zerosArr(x.shape);
  for (let b0 = 0; b0 < n; b0++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < wd; j++)
        for (let ch = 0; ch < c; ch++) {
          let acc = 0;
          for (let di = 0; di < kh; di++)
            for (let dj = 0; dj < kw; dj++) {
              const y = i + di - pt;
              const xx = j + dj - pl;
              if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
              acc += x.data[((b0 * h + y) * wd + xx) * c + ch] * w.data[(di * kw + dj) * c + ch];
            }
          out.data[((b0 * h + i) * wd + j) * c + ch] = acc;
        }
  return out;
}

/** A cell conv (cells/conv.ts): full { w, b? } or separable { depthwise: { w }, pointwise: { w, b? } }. */
export function cellConvRef(p: Record<string, unknown>, x: Arr): Arr {
  const t = (v: unknown): Arr | undefined => (v === undefined ? undefined : arr(v as Tensor));
  if ('depthwise' in p) {
    const pw = p.pointwise as Record<string, unknown>;
    return convSame(depthwiseSame(x, arr((p.depthwise as Record<string, Tensor>).w)), arr(pw.w as Tensor), t(pw.b));
  }
  return convSame(x, arr(p.w as Tensor), t(p.b));
}

/** Concatenation on the channel axis. */
export function concatC(xs: Arr[]): Arr {
  const [n, h, w] = xs[0].shape;
  const cs = xs.map((a) => a.shape[3]);
  const ct = cs.reduce((p, q) => p + q, 0);
  const out = zerosArr([n, h, w, ct]);
  for (let p = 0; p < n * h * w; p++) {
    let off = 0;
    xs.forEach((a, k) => {
      for (let c = 0; c < cs[k]; c++) out.data[p * ct + off + c] = a.data[p * cs[k] + c];
      off += cs[k];
    });
  }
  return out;
}

/** Bilinear resize with half-pixel centers (TF2 tf.image.resize). */
export function resizeRef(x: Arr, oh: number, ow: number): Arr {
  const [n, h, w, c] = x.shape;
  const out = zerosArr([n, oh, ow, c]);
  const src = (d: number, inn: number, outn: number): [number, number, number] => {
    const s = (d + 0.5) * (inn / outn) - 0.5;
    const f = Math.floor(s);
    return [Math.max(f, 0), Math.min(Math.ceil(s), inn - 1), s - f];
  };
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const [y0, y1, ly] = src(i, h, oh);
        const [x0, x1, lx] = src(j, w, ow);
        for (let ch = 0; ch < c; ch++) {
          const at = (y: number, xx: number): number => x.data[((b * h + y) * w + xx) * c + ch];
          const top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * lx;
          const bot = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * lx;
          out.data[((b * oh + i) * ow + j) * c + ch] = top + (bot - top) * ly;
        }
      }
  return out;
}

/** Batch norm over all axes but the last; returns y and the updated running statistics. */
export function batchNormRef(
  x: Arr,
  gamma: Arr,
  beta: Arr,
  run: { mean: Arr; var: Arr },
  opts: { training: boolean; momentum: number; eps: number },
): { y: Arr; mean: Float64Array; var: Float64Array } {
  const c = x.shape[x.shape.length - 1];
  const p = x.data.length / c;
  let mu = run.mean.data.slice();
  let v = run.var.data.slice();
  const newMean = run.mean.data.slice();
  const newVar = run.var.data.slice();
  if (opts.training) {
    mu = new Float64Array(c);
    v = new Float64Array(c);
    for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) mu[j] += x.data[i * c + j] / p;
    for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) v[j] += (x.data[i * c + j] - mu[j]) ** 2 / p;
    for (let j = 0; j < c; j++) {
      newMean[j] = opts.momentum * run.mean.data[j] + (1 - opts.momentum) * mu[j];
      newVar[j] = opts.momentum * run.var.data[j] + (1 - opts.momentum) * v[j] * (p / (p - 1));
    }
  }
  const y = map(x, (val, i) => {
    const j = i % c;
    return (gamma.data[j] * (val - mu[j])) / Math.sqrt(v[j] + opts.eps) + beta.data[j];
  });
  return { y, mean: newMean, var: newVar };
}

/** Every element of `got` within atol + rtol·|ref| of `ref`. */
export function expectClose(got: Tensor, ref: Arr, atol = 2e-5, rtol = 2e-5): void {
  expect(got.shape).toEqual(ref.shape);
  const g = got.toArray();
  let worst = 0;
  let at = -1;
  ref.data.forEach((r, i) => {
    const excess = Math.abs(g[i] - r) - (atol + rtol * Math.abs(r));
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  });
  expect(at, at < 0 ? '' : `element ${at}: got ${g[at]}, reference ${ref.data[at]}`).toBe(-1);
}

/** The tensors' bytes (for purity checks). */
export const snapshot = (ts: readonly Tensor[]): number[][] => ts.map((t) => Array.from(t.toArray()));
