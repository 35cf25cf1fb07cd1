/**
 * 2-D convolution (TensorFlow's conv2d): NHWC activations, HWIO filters.
 *
 *   y[n, oh, ow, co] = Σ_{kh, kw, ci} x[n, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw, ci] · w[kh, kw, ci, co] + b[co]
 *
 * Padding: 'valid' (none, the default), 'same' (TensorFlow: out = ceil(in /
 * stride), total pad = max((out - 1)*stride + (k - 1)*dilation + 1 - in, 0),
 * floor(total / 2) on top/left, the rest on bottom/right), a number (that many
 * on every side) or [[top, bottom], [left, right]].
 *
 * Forward and input gradient are implicit GEMMs by indirection on the GEMM
 * micro-kernel (assembly/conv.ts); the filter is packed into 8-column panels
 * in a block this op allocates and frees around the call. The filter gradient
 * is a GEMM sharded over filter rows. A 1x1, stride-1, unpadded convolution is
 * a plain matrix product and runs as one (ops/matmul.ts's kernel).
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { alloc, free } from '../heap.js';
import { K } from '../kernels.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { gemmRaw } from './matmul.js';

export type Conv2dPadding = 'same' | 'valid' | number | [[number, number], [number, number]];

export interface Conv2dOptions {
  /** Stride, one number or [h, w]; default 1. */
  stride?: number | [number, number];
  /** Default 'valid'. */
  padding?: Conv2dPadding;
  /** Dilation, one number or [h, w]; default 1. */
  dilation?: number | [number, number];
  /** Bias of Cout channels, added in the forward kernel. */
  bias?: Tensor;
}

/** The convolution's geometry: every size a kernel needs. */
export interface Conv2dGeometry {
  N: number;
  H: number;
  W: number;
  Cin: number;
  OH: number;
  OW: number;
  Cout: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Convolution of x [N, H, W, Cin] with w [KH, KW, Cin, Cout]; returns [N, OH, OW, Cout]. */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const fn = 'conv2d';
  checkTensor(fn, 'x', x);
  checkTensor(fn, 'w', w);
  checkOptions(fn, opts);
  const g = geometry(fn, x.shape, w.shape, opts);
  if (opts.bias === undefined) return apply(conv2dRule, [x, w], g);
  checkTensor(fn, 'bias', opts.bias);
  const b = opts.bias;
  if (b.rank !== 1 || b.shape[0] !== g.Cout) {
    throw new ShapeError(`${fn}: bias must have shape [${g.Cout}] (Cout), got ${fmt(b.shape)} (x: ${fmt(x.shape)}, w: ${fmt(w.shape)})`);
  }
  return apply(conv2dRule, [x, w, b], g);
}

/**
 * The gradient of conv2d with respect to its input x of shape `xShape`, given the
 * output cotangent dy and the filter w (not recorded; conv2d's vjp uses it).
 */
export function conv2dBackpropInput(dy: Tensor, w: Tensor, xShape: readonly number[], opts: Conv2dOptions = {}): Tensor {
  const fn = 'conv2dBackpropInput';
  checkTensor(fn, 'dy', dy);
  checkTensor(fn, 'w', w);
  checkOptions(fn, opts);
  checkShapeArg(fn, 'xShape', xShape);
  const g = geometry(fn, xShape, w.shape, opts);
  checkDy(fn, dy, g);
  return backpropInput(dy, w, g);
}

/**
 * The gradient of conv2d with respect to its filter w of shape `wShape`, given the
 * input x and the output cotangent dy (not recorded; conv2d's vjp uses it).
 */
export function conv2dBackpropFilter(x: Tensor, dy: Tensor, wShape: readonly number[], opts: Conv2dOptions = {}): Tensor {
  const fn = 'conv2dBackpropFilter';
  checkTensor(fn, 'x', x);
  checkTensor(fn, 'dy', dy);
  checkOptions(fn, opts);
  checkShapeArg(fn, 'wShape', wShape);
  const g = geometry(fn, x.shape, wShape, opts);
  checkDy(fn, dy, g);
  return backpropFilter(x, dy, g);
}

// ---- argument checks ----------------------------------------------------------

function checkOptions(fn: string, opts: unknown): void {
  if (opts === null || typeof opts !== 'object') throw new ValueError(`${fn}: options must be an object, got ${describe(opts)}`);
}

function checkShapeArg(fn: string, arg: string, s: unknown): void {
  if (!Array.isArray(s) || !s.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${fn}: ${arg} must be an array of non-negative integers, got ${describe(s)}`);
  }
}

function checkDy(fn: string, dy: Tensor, g: Conv2dGeometry): void {
  const want = [g.N, g.OH, g.OW, g.Cout];
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${fn}: dy must have the convolution's output shape ${fmt(want)}, got ${fmt(dy.shape)}`);
  }
}

function pair(fn: string, arg: string, v: unknown): [number, number] {
  const p = v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ValueError(`${fn}: ${arg} must be a positive integer or [h, w] of positive integers, got ${describe(v)}`);
  }
  return [p[0], p[1]];
}

/** Padding before, and the output size, along one axis. */
function axis(fn: string, name: string, size: number, k: number, s: number, d: number, pad: Conv2dPadding, lo: number, hi: number): [number, number] {
  const span = (k - 1) * d + 1;
  if (pad === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + span - size, 0);
    return [Math.floor(total / 2), out];
  }
  const padded = size + lo + hi;
  if (padded < span) {
    const what = pad === 'valid' ? `the input has ${size}` : `the padded input has ${padded}`;
    throw new ShapeError(`${fn}: the filter spans ${span} ${name} (size ${k}, dilation ${d}) but ${what}`);
  }
  return [lo, Math.floor((padded - span) / s) + 1];
}

function geometry(fn: string, xs: readonly number[], ws: readonly number[], opts: Conv2dOptions): Conv2dGeometry {
  if (xs.length !== 4) throw new ShapeError(`${fn}: x must be rank 4 [N, H, W, Cin], got shape ${fmt(xs)}`);
  if (ws.length !== 4) throw new ShapeError(`${fn}: w must be rank 4 [KH, KW, Cin, Cout], got shape ${fmt(ws)}`);
  if (xs.includes(0)) throw new ShapeError(`${fn}: x must have no zero-sized dimension, got shape ${fmt(xs)}`);
  if (ws.includes(0)) throw new ShapeError(`${fn}: w must have no zero-sized dimension, got shape ${fmt(ws)}`);
  const [N, H, W, Cin] = xs;
  const [KH, KW, WC, Cout] = ws;
  if (WC !== Cin) throw new ShapeError(`${fn}: w has ${WC} input channels, x has ${Cin} (x: ${fmt(xs)}, w: ${fmt(ws)})`);
  const [sh, sw] = pair(fn, 'stride', opts.stride);
  const [dh, dw] = pair(fn, 'dilation', opts.dilation);
  const padding = opts.padding ?? 'valid';
  let lo: [number, number] = [0, 0];
  let hi: [number, number] = [0, 0];
  const bad = () =>
    new ValueError(`${fn}: padding must be 'same', 'valid', a non-negative integer or [[top, bottom], [left, right]], got ${describe(padding)}`);
  if (typeof padding === 'number') {
    if (!Number.isInteger(padding) || padding < 0) throw bad();
    lo = [padding, padding];
    hi = [padding, padding];
  } else if (Array.isArray(padding)) {
    const ok =
      padding.length === 2 &&
      padding.every((p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v >= 0));
    if (!ok) throw bad();
    lo = [padding[0][0], padding[1][0]];
    hi = [padding[0][1], padding[1][1]];
  } else if (padding !== 'same' && padding !== 'valid') {
    throw bad();
  }
  const [pt, OH] = axis(fn, 'rows', H, KH, sh, dh, padding, lo[0], hi[0]);
  const [pl, OW] = axis(fn, 'columns', W, KW, sw, dw, padding, lo[1], hi[1]);
  return { N, H, W, Cin, OH, OW, Cout, KH, KW, sh, sw, dh, dw, pt, pl };
}

// ---- kernel calls (not recorded) ----------------------------------------------

/** A 1x1 stride-1 convolution without padding: a matrix product over pixels. */
const isPointwise = (g: Conv2dGeometry): boolean =>
  g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pl === 0 && g.OH === g.H && g.OW === g.W;

const geoArgs = (g: Conv2dGeometry): number[] => [
  g.N, g.H, g.W, g.Cin, g.OH, g.OW, g.Cout, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl,
];

function forward(x: Tensor, w: Tensor, b: Tensor | null, g: Conv2dGeometry): Tensor {
  const shape = [g.N, g.OH, g.OW, g.Cout];
  const bias = b === null ? 0 : b.ptr;
  const P = g.N * g.H * g.W;
  if (isPointwise(g)) return gemmRaw(x.ptr, w.ptr, P, g.Cout, g.Cin, false, false, bias, shape);
  const Kd = g.KH * g.KW * g.Cin;
  const panels = Math.ceil(g.Cout / 8);
  const y = empty(shape);
  const bp = alloc(panels * Kd * 32);
  try {
    parallel('gemm_pack_b', [w.ptr, Kd, g.Cout, 0, bp], panels, { cost: 8 * Kd });
    parallel('conv2d_forward', [x.ptr, bp, bias, y.ptr, ...geoArgs(g)], g.N * g.OH, {
      cost: 2 * g.OW * g.Cout * Kd,
      scratchBytes: K.conv2d_forward_scratch(g.Cin, g.KH, g.KW, g.sw),
    });
  } finally {
    free(bp);
  }
  return y;
}

function backpropInput(dy: Tensor, w: Tensor, g: Conv2dGeometry): Tensor {
  const shape = [g.N, g.H, g.W, g.Cin];
  if (isPointwise(g)) return gemmRaw(dy.ptr, w.ptr, g.N * g.H * g.W, g.Cin, g.Cout, false, true, 0, shape);
  const Kd = g.KH * g.KW * g.Cout;
  const panels = Math.ceil(g.Cin / 8);
  const dx = empty(shape);
  const bp = alloc(panels * Kd * 32);
  try {
    parallel('conv2d_pack_filter_t', [w.ptr, g.KH, g.KW, g.Cin, g.Cout, bp], panels, { cost: 8 * Kd });
    parallel('conv2d_backprop_input', [dy.ptr, bp, dx.ptr, ...geoArgs(g)], g.N * g.H, {
      cost: (2 * g.W * g.Cin * Kd) / (g.sh * g.sw),
      scratchBytes: K.conv2d_backprop_input_scratch(g.Cout, g.KH, g.KW),
    });
  } finally {
    free(bp);
  }
  return dx;
}

function backpropFilter(x: Tensor, dy: Tensor, g: Conv2dGeometry): Tensor {
  const shape = [g.KH, g.KW, g.Cin, g.Cout];
  const P = g.N * g.OH * g.OW;
  if (isPointwise(g)) return gemmRaw(x.ptr, dy.ptr, g.Cin, g.Cout, P, true, false, 0, shape);
  const dw = empty(shape);
  parallel('conv2d_backprop_filter', [x.ptr, dy.ptr, dw.ptr, ...geoArgs(g)], g.KH * g.KW * g.Cin, {
    cost: 2 * P * g.Cout,
    grain: g.Cin % 4 === 0 ? 4 : g.Cin,
    scratchBytes: K.conv2d_backprop_filter_scratch(g.OW, g.Cin, g.Cout),
  });
  return dw;
}

/** Σ of dy over batch and pixels, per output channel, in pixel order. */
function biasGrad(dy: Tensor, g: Conv2dGeometry): Tensor {
  const db = empty([g.Cout]);
  parallel('conv2d_bias_grad', [dy.ptr, g.N * g.OH * g.OW, g.Cout, db.ptr], g.Cout, { cost: g.N * g.OH * g.OW, grain: 32 });
  return db;
}

// ---- the primitive ------------------------------------------------------------

const conv2dRule = defineRule<Conv2dGeometry>('conv2d', {
  forward([x, w, b], g) {
    return forward(x, w, b ?? null, g);
  },
  vjp(dy, [x, w, b], _out, g) {
    const dx = backpropInput(dy, w, g);
    const dw = backpropFilter(x, dy, g);
    return b === undefined ? [dx, dw] : [dx, dw, biasGrad(dy, g)];
  },
});

export const rules = { conv2d: conv2dRule };
