/**
 * Plain float64 references for the cell tests: NHWC arrays, a direct
 * 'same'-padded conv2d, its depth-separable form, layer norm and the
 * elementwise functions of the cells' equations.
 */
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
