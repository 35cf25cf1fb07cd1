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
 *
 * A 3x3, stride-1, undilated convolution with enough channels runs by Winograd
 * (assembly/winograd.ts): F(4x4, 3x3), 36 multiplies per 4x4 output tile
 * instead of 144, or F(2x2, 3x3), 16 instead of 36, for outputs too small for
 * 4x4 tiles. The input gradient is the same convolution of dy with the flipped,
 * transposed filter and complementary padding (2 - pt, 2 - pl); the filter
 * gradient is F(3x3, 4x4) or F(3x3, 2x2), summed over the batch in the
 * transformed domain. Which path runs depends only on the shapes, so results
 * are the same bits on any number of threads. Winograd rounds differently from
 * the direct sum (its transforms add and subtract before multiplying). Against
 * a float64 reference on a W1-like layer (64 -> 64 channels, 32x32), the
 * largest error per output is, relative to that output's sum of |terms|:
 * direct 3.5e-7, 2x2 tiles 1.7e-7, 4x4 tiles 3.2e-6 (medians 1.4e-8, 1.2e-8,
 * 4e-8); relative to the largest output, 1.4e-6, 9e-7 and 8.6e-6.
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { alloc, free } from '../heap.js';
import { K } from '../kernels.js';
import { parallel, threadsFor } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { gemmRaw } from './matmul.js';
import { channelSums } from './reduce.js';
import { activateInPlace, unaryGrad, readActivation, type FusedActivation } from './unary.js';

import { pair, windowGeometry, type Conv2dPadding } from './window.js';

export type { Conv2dPadding };

export interface Conv2dOptions {
  /** Stride, one number or [h, w]; default 1. */
  stride?: number | [number, number];
  /** Default 'valid'. */
  padding?: Conv2dPadding;
  /** Dilation, one number or [h, w]; default 1. */
  dilation?: number | [number, number];
  /** Bias of Cout channels, added in the forward kernel. */
  bias?: Tensor;
  /** An activation applied to the output in place (see FusedActivation). */
  activation?: FusedActivation;
}

/** conv2d's primitive parameters: the geometry and the activation. */
interface Conv2dParams extends Conv2dGeometry {
  activation: FusedActivation | null;
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
  // Not { ...geometry, activation }: in V8 (Node 20) an object spread followed by
  // more properties builds each object with a map of its own, and every later
  // property read of it goes the slow, megamorphic way (measured 25x slower).
  const p: Conv2dParams = Object.assign(geometry(fn, x.shape, w.shape, opts), { activation: readActivation(fn, opts.activation) });
  if (opts.bias === undefined) return apply(conv2dRule, [x, w], p);
  checkTensor(fn, 'bias', opts.bias);
  const b = opts.bias;
  if (b.rank !== 1 || b.shape[0] !== p.Cout) {
    throw new ShapeError(`${fn}: bias must have shape [${p.Cout}] (Cout), got ${fmt(b.shape)} (x: ${fmt(x.shape)}, w: ${fmt(w.shape)})`);
  }
  return apply(conv2dRule, [x, w, b], p);
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
  return filterGrads(x, dy, g, false)[0];
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



function geometry(fn: string, xs: readonly number[], ws: readonly number[], opts: Conv2dOptions): Conv2dGeometry {
  if (xs.length !== 4) throw new ShapeError(`${fn}: x must be rank 4 [N, H, W, Cin], got shape ${fmt(xs)}`);
  if (ws.length !== 4) throw new ShapeError(`${fn}: w must be rank 4 [KH, KW, Cin, Cout], got shape ${fmt(ws)}`);
  if (xs.includes(0)) throw new ShapeError(`${fn}: x must have no zero-sized dimension, got shape ${fmt(xs)}`);
  if (ws.includes(0)) throw new ShapeError(`${fn}: w must have no zero-sized dimension, got shape ${fmt(ws)}`);
  const [N, H, W, Cin] = xs;
  const [KH, KW, WC, Cout] = ws;
  if (WC !== Cin) throw new ShapeError(`${fn}: w has ${WC} input channels, x has ${Cin} (x: ${fmt(xs)}, w: ${fmt(ws)})`);
  const [sh, sw] = pair(fn, 'stride', opts.stride, 1);
  const [dh, dw] = pair(fn, 'dilation', opts.dilation, 1);
  const { pt, pl, OH, OW } = windowGeometry(fn, [H, W], [KH, KW], [sh, sw], [dh, dw], opts.padding ?? 'valid');
  return { N, H, W, Cin, OH, OW, Cout, KH, KW, sh, sw, dh, dw, pt, pl };
}

// ---- kernel calls (not recorded) ----------------------------------------------

/** A 1x1 stride-1 convolution without padding: a matrix product over pixels. */
const isPointwise = (g: Conv2dGeometry): boolean =>
  g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pl === 0 && g.OH === g.H && g.OW === g.W;

const geoArgs = (g: Conv2dGeometry): number[] => [
  g.N, g.H, g.W, g.Cin, g.OH, g.OW, g.Cout, g.KH, g.KW, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl,
];

/**
 * A 3x3 filter at stride 1 without dilation: the shapes Winograd handles; up to
 * Cin·Cout = 2^17 (362 x 362), where the transformed filter (36/9 of the
 * filter's size) and the filter gradient's per-thread sums (36·Cin·Cout floats)
 * stay under ~20 MB.
 */
const isWinogradShape = (g: Conv2dGeometry): boolean =>
  g.KH === 3 && g.KW === 3 && g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 && g.Cin * g.Cout <= 1 << 17;

/** A Winograd tile size: 4 for F(4x4, 3x3) / F(3x3, 4x4), 2 for F(2x2, 3x3) / F(3x3, 2x2), 0 for the direct kernels. */
export type WinogradTile = 0 | 2 | 4;

/**
 * The tile for N images of OH x OW outputs (of dy, for the filter gradient), by
 * multiplies per channel pair: 4x4 tiles when they take at most 0.7 of 2x2 tiles'
 * (they waste more at the edges; their transforms cost more) and there are enough
 * of them (≥ 64) to repay the larger filter transform; 2x2 tiles when they cover the
 * output without much waste (at most 1.5x its pixels: not for 1-pixel-wide or 3x3
 * outputs); else none. Measured on this engine's kernels, 1 thread.
 */
function winogradTile(N: number, OH: number, OW: number): WinogradTile {
  const t2 = Math.ceil(OH / 2) * Math.ceil(OW / 2);
  const t4 = Math.ceil(OH / 4) * Math.ceil(OW / 4);
  if (36 * t4 <= 0.7 * 16 * t2 && N * t4 >= 64) return 4;
  if (4 * t2 <= 1.5 * OH * OW) return 2;
  return 0;
}

// The transformed products are Cin deep (forward) or Cout deep (input
// gradient): too short below these channel counts to beat the direct kernels.
// The filter gradient wins from tiny channel counts on.
const winogradForward = (g: Conv2dGeometry): WinogradTile => (isWinogradShape(g) && g.Cin >= 8 ? winogradTile(g.N, g.OH, g.OW) : 0);
const winogradInput = (g: Conv2dGeometry): WinogradTile => (isWinogradShape(g) && g.Cout >= 4 ? winogradTile(g.N, g.H, g.W) : 0);
const winogradFilter = (g: Conv2dGeometry): WinogradTile => (isWinogradShape(g) && g.Cin * g.Cout >= 16 ? winogradTile(g.N, g.OH, g.OW) : 0);

/** @internal The Winograd tile (0: direct) each of the three convolutions of geometry `g` uses; tests pin the paths. */
export const winogradPaths = (g: Conv2dGeometry): { forward: WinogradTile; input: WinogradTile; filter: WinogradTile } => ({
  forward: winogradForward(g),
  input: winogradInput(g),
  filter: winogradFilter(g),
});

/**
 * The conv of `src` [N, H, W, A] to `out` [N, OH, OW, B] by Winograd with `tile`,
 * with the 3x3 filter w [3, 3, Cin, Cout] as is (flip 0: A = Cin, B = Cout) or
 * flipped and transposed (flip 1: the input gradient, A = Cout, B = Cin), padding pt, pl before.
 * The transformed filter is a derived layout of w: made once per scope, however
 * many time steps apply the filter.
 */
function winogradConv(
  tile: 2 | 4, src: number, w: Tensor, flip: 0 | 1, bias: number, out: number,
  N: number, H: number, W: number, A: number, OH: number, OW: number, B: number, pt: number, pl: number,
): void {
  const [, , Cin, Cout] = w.shape;
  const planes = (tile + 2) ** 2;
  const panels = Math.ceil(B / 8);
  // Its cost: the divisions by 6 and 24 make each output ~28 of dispatch.ts's
  // units (measured: 32 x 32 channels 34 us on one thread, 23 us on two).
  const transform = (up: number): void =>
    parallel(tile === 4 ? 'winograd4_filter' : 'winograd_filter', [w.ptr, Cin, Cout, flip, up], A, {
      cost: 28 * planes * panels * 8,
      scratchBytes: K.winograd_filter_scratch(),
    });
  w.derived(`winograd${tile}:${flip}`, planes * panels * A * 32, transform, (up) =>
    parallel(tile === 4 ? 'winograd4_forward' : 'winograd_forward', [src, up, bias, out, N, H, W, A, OH, OW, B, pt, pl], N * Math.ceil(OH / tile), {
      cost: 2 * planes * Math.ceil(OW / tile) * A * B,
      scratchBytes: tile === 4 ? K.winograd4_forward_scratch(A, B) : K.winograd_forward_scratch(A, B),
    }),
  );
}

function forward(x: Tensor, w: Tensor, b: Tensor | null, g: Conv2dGeometry): Tensor {
  const shape = [g.N, g.OH, g.OW, g.Cout];
  const bias = b === null ? 0 : b.ptr;
  const P = g.N * g.H * g.W;
  if (isPointwise(g)) return gemmRaw(x.ptr, w.ptr, P, g.Cout, g.Cin, false, false, bias, shape);
  const tile = winogradForward(g);
  if (tile !== 0) {
    const y = empty(shape);
    winogradConv(tile, x.ptr, w, 0, bias, y.ptr, g.N, g.H, g.W, g.Cin, g.OH, g.OW, g.Cout, g.pt, g.pl);
    return y;
  }
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
  const tile = winogradInput(g);
  if (tile !== 0) {
    // The convolution of dy with the flipped, transposed filter and padding 2 - pt, 2 - pl.
    const dx = empty(shape);
    winogradConv(tile, dy.ptr, w, 1, 0, dx.ptr, g.N, g.OH, g.OW, g.Cout, g.H, g.W, g.Cin, 2 - g.pt, 2 - g.pl);
    return dx;
  }
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

/**
 * dw, and with `bias` db (dy summed over its pixels per channel): the
 * F(3x3, 4x4) filter gradient sums dy from the loads its transform makes
 * anyway; the other paths take channelSums. A W7 step made 76 such sums, 7 ms
 * of a 1-thread step, each a pass over dy after the filter gradient's; against
 * that pass with dy still in cache, the fused sum measured 1-11% faster on
 * W7's layers at 2 threads and about even at 1. The sum's order is fixed by
 * the shape (runs as for dw), like every sum here.
 */
export function filterGrads(x: Tensor, dy: Tensor, g: Conv2dGeometry, bias: boolean): [Tensor, Tensor | null] {
  const tile = winogradFilter(g);
  if (tile !== 4) return [backpropFilter(x, dy, g, tile), bias ? channelSums(dy) : null];
  const dw = empty([g.KH, g.KW, g.Cin, g.Cout]);
  const db = bias ? empty([g.Cout]) : null;
  const { T, R, runTiles } = filterGradRuns(g);
  const flops = 2 * 36 * T * g.Cin * g.Cout;
  const { cg, og, units } = filterGradBlocks(g.Cin, g.Cout, Math.ceil(threadsFor(flops) / R));
  const runBytes = 36 * K.winograd4_filter_grad_plane(g.Cin, g.Cout);
  const m = R > 1 ? alloc((R + 1) * runBytes) : 0; // the runs' sums, then their total
  const parts = db !== null && R > 1 ? alloc(R * g.Cout * 4) : 0; // the runs' sums of dy
  try {
    const dbArg = db === null ? 0 : R > 1 ? parts : db.ptr;
    parallel('winograd4_filter_grad', [x.ptr, dy.ptr, dw.ptr, m, dbArg, g.N, g.H, g.W, g.Cin, g.OH, g.OW, g.Cout, g.pt, g.pl, cg, og, R, runTiles], units * R, {
      cost: flops / (units * R),
      scratchBytes: K.winograd4_filter_grad_scratch(g.Cin, g.Cout),
    });
    if (R > 1) {
      const total = m + R * runBytes;
      parallel('reduce_sum', [m, total, 1, R, runBytes / 4], runBytes / 4, { cost: R, grain: 4 });
      parallel('winograd4_filter_grad_out', [total, dw.ptr, g.Cin, g.Cout], g.Cin, { cost: 36 * 8 * g.Cout, scratchBytes: 384 });
      if (db !== null) parallel('reduce_sum', [parts, db.ptr, 1, R, g.Cout], g.Cout, { cost: R });
    }
  } finally {
    if (m !== 0) free(m);
    if (parts !== 0) free(parts);
  }
  return [dw, db];
}

/** dw by the 2x2 Winograd (tile 2), direct (tile 0) or pointwise path. */
function backpropFilter(x: Tensor, dy: Tensor, g: Conv2dGeometry, tile: number): Tensor {
  const shape = [g.KH, g.KW, g.Cin, g.Cout];
  const P = g.N * g.OH * g.OW;
  if (isPointwise(g)) return gemmRaw(x.ptr, dy.ptr, g.Cin, g.Cout, P, true, false, 0, shape);
  const dw = empty(shape);
  if (tile !== 0) {
    const tiles = g.N * Math.ceil(g.OH / tile) * Math.ceil(g.OW / tile);
    const flops = 2 * (tile + 2) ** 2 * tiles * g.Cin * g.Cout;
    const { cg, og, units } = filterGradBlocks(g.Cin, g.Cout, threadsFor(flops));
    parallel('winograd_filter_grad', [x.ptr, dy.ptr, dw.ptr, g.N, g.H, g.W, g.Cin, g.OH, g.OW, g.Cout, g.pt, g.pl, cg, og], units, {
      cost: flops / units,
      scratchBytes: K.winograd_filter_grad_scratch(g.Cin, g.Cout),
    });
    return dw;
  }
  parallel('conv2d_backprop_filter', [x.ptr, dy.ptr, dw.ptr, ...geoArgs(g)], g.KH * g.KW * g.Cin, {
    cost: 2 * P * g.Cout,
    grain: g.Cin % 4 === 0 ? 4 : g.Cin,
    scratchBytes: K.conv2d_backprop_filter_scratch(g.OW, g.Cin, g.Cout),
  });
  return dw;
}

/**
 * How the Winograd filter gradient is cut for `threads` threads: into blocks of
 * cg input x og output channels (multiples of 4 and 8), `units` of them. A block
 * transforms the tiles of x for its input channels and of dy for its output
 * channels, so cutting either side repeats the other side's transform; the cut
 * minimises the slowest thread's work per tile, counted in units of one channel
 * pair's products: a channel of x costs ~6 of them, a channel of dy ~4 (measured,
 * 1 thread). Bits do not depend on the cut: every dw element is summed over the
 * tiles in one order whatever block computes it.
 */
export function filterGradBlocks(Cin: number, Cout: number, threads: number): { cg: number; og: number; units: number } {
  const quads = Math.ceil(Cin / 4);
  const panels = Math.ceil(Cout / 8);
  let best = { cg: Cin, og: Cout, units: 1 };
  let bestSpan = Infinity;
  for (let gin = 1; gin <= Math.min(quads, threads); gin++) {
    for (let gout = 1; gin * gout <= threads && gout <= panels; gout++) {
      const cg = 4 * Math.ceil(quads / gin);
      const og = 8 * Math.ceil(panels / gout);
      const units = Math.ceil(Cin / cg) * Math.ceil(Cout / og);
      const a = Math.min(cg, Cin);
      const b = Math.min(og, Cout);
      const span = Math.ceil(units / threads) * (6 * a + 4 * b + a * b);
      if (span < bestSpan) [best, bestSpan] = [{ cg, og, units }, span];
    }
  }
  return best;
}

/**
 * How the F(3x3, 4x4) filter gradient cuts its T tiles into R runs of runTiles
 * (the last run takes the rest), each summed on its own, the R sums then added
 * in order. Fixed by the shape, so the bits never depend on the thread count.
 * Runs let threads share the tiles without repeating a transform, as channel
 * blocks do (filterGradBlocks cuts what the runs leave); but each run writes
 * its own sums M (36 planes of Cin x Cout) where a single run keeps them in one
 * thread's cache, and the R sums are then read back and added. So a run must be
 * long enough to repay that traffic: at least RUN_TILES tiles where M is small
 * (up to RUN_SUMS_BYTES, it stays in the caches), at least LONG_RUN_TILES where
 * it is larger (up to LONG_RUN_SUMS_BYTES), none beyond; at most MAX_RUNS. (The
 * kernel's blocks of tiles are its own affair: they change no bits.)
 * Measured against channel blocks alone, at 2 threads: 3 -> 32 channels at
 * 32x32 (batch 32) 10-20% faster, 32 -> 32 at 16x16 2-13% faster (at 1 thread
 * even and 1-5% slower). Larger sums, interleaved with channel blocks:
 * 64 -> 64 at 32x32, batch 16 (M 590 KB, 4 runs of 256 tiles) 3.5-4.5% faster
 * at 2 threads, 1% slower at 1; 32 -> 64 at 16x16, batch 32 (295 KB, 2 runs of
 * 256) within 2% either way; but 4 runs of 128 tiles of 295 KB sums were
 * 2-4% slower at 1 thread, and 2 runs of 64 tiles of 128 -> 128 (2.4 MB) 1-10%
 * slower at 1 and 2 threads.
 */
export function filterGradRuns(g: Conv2dGeometry): { T: number; R: number; runTiles: number } {
  const T = g.N * Math.ceil(g.OH / 4) * Math.ceil(g.OW / 4);
  const sums = 36 * K.winograd4_filter_grad_plane(g.Cin, g.Cout);
  const least = sums <= RUN_SUMS_BYTES ? RUN_TILES : sums <= LONG_RUN_SUMS_BYTES ? LONG_RUN_TILES : Infinity;
  const most = Math.floor(T / least);
  const R = most >= 2 ? Math.min(MAX_RUNS, 2 ** Math.floor(Math.log2(most))) : 1;
  return { T, R, runTiles: R === 1 ? T : Math.floor(T / R) };
}

const RUN_SUMS_BYTES = 192 << 10;
const RUN_TILES = 64;
const LONG_RUN_SUMS_BYTES = 640 << 10;
const LONG_RUN_TILES = 256;
const MAX_RUNS = 4;

// ---- the primitive ------------------------------------------------------------

const conv2dRule = defineRule<Conv2dParams>('conv2d', {
  forward([x, w, b], p) {
    const y = forward(x, w, b ?? null, p);
    if (p.activation !== null) activateInPlace(p.activation, y);
    return y;
  },
  vjp(g, [x, w, b], y, p, needs) {
    const dy = p.activation === null ? g : unaryGrad(p.activation, y, y, g);
    const dx = needs[0] ? backpropInput(dy, w, p) : null;
    const bias = b !== undefined && needs[2];
    const [dw, db] = needs[1] ? filterGrads(x, dy, p, bias) : [null, bias ? channelSums(dy) : null];
    if (dy !== g) dy.dispose();
    return b === undefined ? [dx, dw] : [dx, dw, db];
  },
});

export const rules = { conv2d: conv2dRule };
