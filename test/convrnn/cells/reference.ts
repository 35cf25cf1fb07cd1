/**
 * Plain float64 references for the cell tests: NHWC arrays, a direct
 * 'same'-padded conv2d, its depth-separable form, layer norm and the
 * elementwise functions of the cells' equations, bilinear resize, batch norm.
 */
import { expect } from 'vitest';
import type { Tensor } from '../../../src/tensor/tensor.js';

export interface Arr {
  data: Float64Array;
  shape: number[];
}

export const arr = (t: Tensor): Arr => ({ data: Float64Array.from(t.toArray()), shape: [...t.shape] });

/** A params tree of tensors as the same tree of Arr. */
export function arrTree(tree: unknown): any {
  if (tree !== null && typeof tree === 'object' && 'toArray' in tree) return arr(tree as Tensor);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tree as Record<string, unknown>)) out[k] = arrTree(v);
  return out;
}

export const sig = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
export const elu = (z: number): number => (z > 0 ? z : Math.exp(z) - 1);
export const relu = (z: number): number => Math.max(z, 0);

export const map = (a: Arr, f: (v: number, i: number) => number): Arr => ({ data: a.data.map(f), shape: a.shape });
export const zip = (a: Arr, b: Arr, f: (u: number, v: number) => number): Arr => {
  if (a.data.length !== b.data.length) throw new Error(`reference: size mismatch ${a.shape} vs ${b.shape}`);
  return map(a, (u, i) => f(u, b.data[i]));
};
export const plus = (a: Arr, b: Arr): Arr => zip(a, b, (u, v) => u + v);
export const times = (a: Arr, b: Arr): Arr => zip(a, b, (u, v) => u * v);
/** v [C] broadcast over a [N, H, W, C], times a. */
export const timesChannel = (v: Arr, a: Arr): Arr => map(a, (u, i) => v.data[i % v.data.length] * u);
/** u∘a + (1 − u)∘b with u = σ(z). */
export const blend = (z: Arr, a: Arr, b: Arr): Arr => map(z, (zz, i) => sig(zz) * a.data[i] + (1 - sig(zz)) * b.data[i]);

/** Channels [g·C, (g+1)·C) of a [N, H, W, k·C]. */
export function gate(a: Arr, g: number, k: number): Arr {
  const [n, h, w, kc] = a.shape;
  const c = kc / k;
  const data = new Float64Array(n * h * w * c);
  for (let p = 0; p < n * h * w; p++) for (let j = 0; j < c; j++) data[p * c + j] = a.data[p * kc + g * c + j];
  return { data, shape: [n, h, w, c] };
}

/** TensorFlow's 'same' padding at stride 1: the extra row/column of an even kernel goes after. */
const padBefore = (k: number): number => Math.floor((k - 1) / 2);

/** NHWC x, HWIO w [K, K, I, O], 'same', stride 1, optional bias [O]. */
export function conv2dSame(x: Arr, w: Arr, b?: Arr): Arr {
  const [N, H, W, C] = x.shape;
  const [KH, KW, I, O] = w.shape;
  if (I !== C) throw new Error(`conv2dSame: w has ${I} input channels, x has ${C}`);
  const out = new Float64Array(N * H * W * O);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let o = 0; o < O; o++) {
          let acc = b ? b.data[o] : 0;
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const ih = i - padBefore(KH) + kh;
              const iw = j - padBefore(KW) + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (let c = 0; c < C; c++) acc += x.data[((n * H + ih) * W + iw) * C + c] * w.data[((kh * KW + kw) * C + c) * O + o];
            }
          out[((n * H + i) * W + j) * O + o] = acc;
        }
  return { data: out, shape: [N, H, W, O] };
}

/** Depthwise w [K, K, C, 1], 'same', stride 1. */
export function depthwiseSame(x: Arr, w: Arr): Arr {
  const [N, H, W, C] = x.shape;
  const [KH, KW, , M] = w.shape;
  if (M !== 1) throw new Error('depthwiseSame: multiplier 1 only');
  const out = new Float64Array(N * H * W * C);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let c = 0; c < C; c++) {
          let acc = 0;
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const ih = i - padBefore(KH) + kh;
              const iw = j - padBefore(KW) + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              acc += x.data[((n * H + ih) * W + iw) * C + c] * w.data[(kh * KW + kw) * C + c];
            }
          out[((n * H + i) * W + j) * C + c] = acc;
        }
  return { data: out, shape: [N, H, W, C] };
}

/** A cell conv from its params: full { w, b? } or separable { depthwise: { w }, pointwise: { w, b? } }. */
export function cellConvRef(p: any, x: Arr): Arr {
  if (p.depthwise) return conv2dSame(depthwiseSame(x, p.depthwise.w), p.pointwise.w, p.pointwise.b);
  return conv2dSame(x, p.w, p.b);
}

/** Each example normalised over [H, W, C] (biased variance), then γ [C], β [C] per channel. */
export function layerNormRef(z: Arr, ln: { gamma: Arr; beta: Arr }, eps = 1e-5): Arr {
  const [N, H, W, C] = z.shape;
  const m = H * W * C;
  const out = new Float64Array(z.data.length);
  for (let n = 0; n < N; n++) {
    let mu = 0;
    for (let k = 0; k < m; k++) mu += z.data[n * m + k];
    mu /= m;
    let v = 0;
    for (let k = 0; k < m; k++) v += (z.data[n * m + k] - mu) ** 2;
    v /= m;
    for (let k = 0; k < m; k++) {
      const c = k % C;
      out[n * m + k] = ((z.data[n * m + k] - mu) / Math.sqrt(v + eps)) * ln.gamma.data[c] + ln.beta.data[c];
    }
  }
  return { data: out, shape: z.shape };
}

/** max |got − want| / max(1, |want|) over all elements. */
export function maxRelError(got: ArrayLike<number>, want: Arr): number {
  if (got.length !== want.data.length) return Infinity;
  let e = 0;
  for (let i = 0; i < got.length; i++) e = Math.max(e, Math.abs(got[i] - want.data[i]) / Math.max(1, Math.abs(want.data[i])));
  return e;
}

export const softplus = (v: number): number => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));

export function zerosArr(shape: readonly number[]): Arr {
  return { shape: shape.slice(), data: new Float64Array(shape.reduce((p, q) => p * q, 1)) };
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

/** A cell conv from its params as tensors. */
export const cellConvOf = (p: unknown, x: Arr): Arr => cellConvRef(arrTree(p), x);
