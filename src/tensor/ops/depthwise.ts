/**
 * Depthwise 2-D convolution, NHWC, filter [KH, KW, C, M] (TensorFlow's
 * `depthwise_conv2d`): output channel c*M + m is input channel c convolved
 * with w[:, :, c, m], plus an optional bias of C*M.
 *
 *   out[n, oh, ow, c*M + m] = sum_{kh, kw} x[n, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw, c] * w[kh, kw, c, m] + b[c*M + m]
 *
 * Padding: 'valid' (none), 'same' (TensorFlow: out = ceil(in / stride), total
 * pad = max((out - 1)*stride + (k - 1)*dilation + 1 - in, 0), the smaller half
 * on top/left), a number (that many on every side) or [[top, bottom], [left, right]].
 *
 * The kernels are channelwise; for M > 1 the input is first repeated M times
 * along channels (so the filter-gradient reduction stays one kernel) and the
 * input gradient of the repeated channels is folded back.
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { alloc, free } from '../heap.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { channelSums } from './reduce.js';
import { pair, windowGeometry, type Conv2dPadding } from './window.js';

export interface DepthwiseOptions {
  /** Stride, one number or [h, w]; default 1. */
  stride?: number | [number, number];
  /** Default 'valid'. */
  padding?: Conv2dPadding;
  /** Dilation, one number or [h, w]; default 1. */
  dilation?: number | [number, number];
  /** Bias of C*M channels. */
  bias?: Tensor;
}

interface Geometry {
  N: number;
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  M: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
  OH: number;
  OW: number;
}

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;



function geometry(fn: string, x: Tensor, w: Tensor, opts: DepthwiseOptions): Geometry {
  if (x.rank !== 4) throw new ShapeError(`${fn}: x must be rank 4 [N, H, W, C], got shape ${fmt(x)}`);
  if (w.rank !== 4) throw new ShapeError(`${fn}: w must be rank 4 [KH, KW, C, M], got shape ${fmt(w)}`);
  if (x.size === 0) throw new ShapeError(`${fn}: x must have no zero-sized dimension, got shape ${fmt(x)}`);
  if (w.size === 0) throw new ShapeError(`${fn}: w must have no zero-sized dimension, got shape ${fmt(w)}`);
  const [N, H, W, C] = x.shape;
  const [KH, KW, WC, M] = w.shape;
  if (WC !== C) throw new ShapeError(`${fn}: w has ${WC} input channels, x has ${C} (x: ${fmt(x)}, w: ${fmt(w)})`);
  const [sh, sw] = pair(fn, 'stride', opts.stride, 1);
  const [dh, dw] = pair(fn, 'dilation', opts.dilation, 1);
  const { pt, pl, OH, OW } = windowGeometry(fn, [H, W], [KH, KW], [sh, sw], [dh, dw], opts.padding ?? 'valid');
  return { N, H, W, C, KH, KW, M, sh, sw, dh, dw, pt, pl, OH, OW };
}

/** Depthwise convolution of x [N, H, W, C] with w [KH, KW, C, M]; returns [N, OH, OW, C*M]. */
export function depthwiseConv2d(x: Tensor, w: Tensor, opts: DepthwiseOptions = {}): Tensor {
  const fn = 'depthwiseConv2d';
  checkTensor(fn, 'x', x);
  checkTensor(fn, 'w', w);
  if (opts === null || typeof opts !== 'object') throw new ValueError(`${fn}: options must be an object, got ${describe(opts)}`);
  const p = geometry(fn, x, w, opts);
  if (opts.bias === undefined) return apply(depthwiseRule, [x, w], p);
  checkTensor(fn, 'bias', opts.bias);
  const b = opts.bias;
  if (b.rank !== 1 || b.shape[0] !== p.C * p.M) {
    throw new ShapeError(`${fn}: bias must have shape [${p.C * p.M}] (C*M), got ${fmt(b)} (x: ${fmt(x)}, w: ${fmt(w)})`);
  }
  return apply(depthwiseRule, [x, w, b], p);
}

// ---- kernel calls (not recorded) ----------------------------------------------

const geoArgs = (p: Geometry, channels: number): number[] => [
  p.N, p.H, p.W, channels, p.KH, p.KW, p.sh, p.sw, p.dh, p.dw, p.pt, p.pl, p.OH, p.OW,
];

/** x repeated M times along channels, in a raw heap block (caller frees); x's own block when M = 1. */
function expanded(x: Tensor, p: Geometry): number {
  if (p.M === 1) return x.ptr;
  const pixels = p.N * p.H * p.W;
  const ptr = alloc(pixels * p.C * p.M * 4);
  parallel('depthwise_expand', [x.ptr, p.C, p.M, ptr], pixels, { cost: p.C * p.M });
  return ptr;
}

function release(ptr: number, x: Tensor): void {
  if (ptr !== x.ptr) free(ptr);
}

function forward(x: Tensor, w: Tensor, b: Tensor | null, p: Geometry): Tensor {
  const CM = p.C * p.M;
  const out = empty([p.N, p.OH, p.OW, CM]);
  const xr = expanded(x, p);
  try {
    parallel('depthwise_forward', [xr, w.ptr, b === null ? 0 : b.ptr, out.ptr, ...geoArgs(p, CM)], p.N * p.OH, {
      cost: 2 * p.OW * CM * p.KH * p.KW,
    });
  } finally {
    release(xr, x);
  }
  return out;
}

/** Gradient with respect to x of <depthwiseConv2d(x, w), g>. */
function depthwiseBackwardInput(g: Tensor, w: Tensor, p: Geometry): Tensor {
  const CM = p.C * p.M;
  const cost = 2 * p.W * CM * p.KH * p.KW;
  if (p.M === 1) {
    const dx = empty([p.N, p.H, p.W, p.C]);
    parallel('depthwise_backward_input', [g.ptr, w.ptr, dx.ptr, ...geoArgs(p, CM)], p.N * p.H, { cost });
    return dx;
  }
  const pixels = p.N * p.H * p.W;
  const dxr = alloc(pixels * CM * 4);
  try {
    parallel('depthwise_backward_input', [g.ptr, w.ptr, dxr, ...geoArgs(p, CM)], p.N * p.H, { cost });
    const dx = empty([p.N, p.H, p.W, p.C]);
    parallel('depthwise_fold', [dxr, p.C, p.M, dx.ptr], pixels, { cost: CM });
    return dx;
  } finally {
    free(dxr);
  }
}

/** Gradient with respect to w of <depthwiseConv2d(x, w), g>. */
function depthwiseBackwardFilter(x: Tensor, g: Tensor, p: Geometry): Tensor {
  const CM = p.C * p.M;
  const dw = empty([p.KH, p.KW, p.C, p.M]);
  const xr = expanded(x, p);
  try {
    parallel('depthwise_backward_filter', [xr, g.ptr, dw.ptr, ...geoArgs(p, CM)], Math.ceil(CM / 4), {
      cost: 8 * p.N * p.OH * p.OW * p.KH * p.KW,
    });
  } finally {
    release(xr, x);
  }
  return dw;
}

// ---- the primitive ------------------------------------------------------------

const depthwiseRule = defineRule<Geometry>('depthwiseConv2d', {
  forward([x, w, b], p) {
    return forward(x, w, b ?? null, p);
  },
  vjp(g, [x, w, b], _out, p, needs) {
    const dx = needs[0] ? depthwiseBackwardInput(g, w, p) : null;
    const dw = needs[1] ? depthwiseBackwardFilter(x, g, p) : null;
    return b === undefined ? [dx, dw] : [dx, dw, needs[2] ? channelSums(g) : null];
  },
});

export const rules = { depthwiseConv2d: depthwiseRule };
