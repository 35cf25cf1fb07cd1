/**
 * Max and average pooling, NHWC, with TensorFlow's semantics.
 *
 * size and stride are a number or [h, w]; stride defaults to size. Padding
 * 'valid' (default): out = floor((in - size) / stride) + 1, the window must fit;
 * 'same': out = ceil(in / stride), total pad = max((out - 1)*stride + size - in, 0),
 * the smaller half on top/left. Padded positions never take part: max pooling
 * ignores them, average pooling divides by the number of positions inside the
 * input (so a 'same' corner window of a 3x3 pool averages 4 values, not 9).
 *
 * Max pooling's gradient goes to ONE position per window: the first maximal
 * one in row-major scan order of the window (ties: the earliest wins).
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { pair, windowGeometry } from './window.js';

export interface PoolOptions {
  /** Window size, a number or [h, w]. */
  size: number | [number, number];
  /** Default: the window size. */
  stride?: number | [number, number];
  /** Default 'valid'. */
  padding?: 'same' | 'valid';
}

interface Geometry {
  N: number;
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  pt: number;
  pl: number;
  OH: number;
  OW: number;
}

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;


function geometry(fn: string, x: Tensor, opts: PoolOptions): Geometry {
  checkTensor(fn, 'x', x);
  if (opts === null || typeof opts !== 'object') throw new ValueError(`${fn}: options { size, stride?, padding? } required, got ${describe(opts)}`);
  if (x.rank !== 4) throw new ShapeError(`${fn}: x must be rank 4 [N, H, W, C], got shape ${fmt(x)}`);
  if (x.size === 0) throw new ShapeError(`${fn}: x must have no zero-sized dimension, got shape ${fmt(x)}`);
  const [N, H, W, C] = x.shape;
  const [KH, KW] = pair(fn, 'size', opts.size);
  const [sh, sw] = opts.stride === undefined ? [KH, KW] : pair(fn, 'stride', opts.stride);
  const padding = opts.padding ?? 'valid';
  if (padding !== 'same' && padding !== 'valid') throw new ValueError(`${fn}: padding must be 'same' or 'valid', got ${describe(padding)}`);
  if (padding === 'valid' && (KH > H || KW > W)) {
    throw new ShapeError(`${fn}: window ${KH}x${KW} is larger than the input ${H}x${W} with 'valid' padding (x: ${fmt(x)})`);
  }
  const { pt, pl, OH, OW } = windowGeometry(fn, [H, W], [KH, KW], [sh, sw], [1, 1], padding);
  return { N, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW };
}

const geoArgs = (p: Geometry): number[] => [p.N, p.H, p.W, p.C, p.KH, p.KW, p.sh, p.sw, p.pt, p.pl, p.OH, p.OW];

/** Max pooling of x [N, H, W, C]. */
export function maxPool(x: Tensor, opts: PoolOptions): Tensor {
  return apply(maxPoolRule, [x], geometry('maxPool', x, opts));
}

/** Average pooling of x [N, H, W, C] over the window positions inside the input. */
export function avgPool(x: Tensor, opts: PoolOptions): Tensor {
  return apply(avgPoolRule, [x], geometry('avgPool', x, opts));
}

// ---- kernel calls (not recorded) ----------------------------------------------

function maxPoolBackward(x: Tensor, g: Tensor, p: Geometry): Tensor {
  const dx = empty(x.shape);
  const cost = p.OW * p.C * (p.KH * p.KW + Math.ceil(p.KH / p.sh) * p.KW);
  // Scratch: the argmax of the window rows covering a dx row (assembly/pool.ts).
  const R = Math.ceil(p.KH / p.sh);
  const scratchBytes = Math.ceil((4 * R) / 16) * 16 + 4 * R * p.OW * p.C;
  parallel('maxpool_backward', [x.ptr, g.ptr, dx.ptr, ...geoArgs(p)], p.N * p.H, { cost, scratchBytes });
  return dx;
}

function avgPoolBackward(g: Tensor, p: Geometry): Tensor {
  const dx = empty([p.N, p.H, p.W, p.C]);
  const cost = p.OW * p.C * Math.ceil(p.KH / p.sh) * p.KW;
  parallel('avgpool_backward', [g.ptr, dx.ptr, ...geoArgs(p)], p.N * p.H, { cost });
  return dx;
}

// ---- the primitives -------------------------------------------------------------

/**
 * The cost (dispatch.ts) of a forward row: 6 per window element read, which
 * puts 1M of cost near 33 us of one thread, as for the compute-bound kernels
 * (measured: a 2x2 max pool of [32, 16, 16, 64], 524K elements, 104 us on one
 * thread, 58 us split over two; at 1 per element read it stayed on one).
 */
const rowCost = (p: Geometry): number => 6 * p.OW * p.C * p.KH * p.KW;

const maxPoolRule = defineRule<Geometry>('maxPool', {
  forward([x], p) {
    const out = empty([p.N, p.OH, p.OW, p.C]);
    parallel('maxpool_forward', [x.ptr, out.ptr, ...geoArgs(p)], p.N * p.OH, { cost: rowCost(p) });
    return out;
  },
  vjp(g, [x], _out, p) {
    return [maxPoolBackward(x, g, p)];
  },
});

const avgPoolRule = defineRule<Geometry>('avgPool', {
  forward([x], p) {
    const out = empty([p.N, p.OH, p.OW, p.C]);
    parallel('avgpool_forward', [x.ptr, out.ptr, ...geoArgs(p)], p.N * p.OH, { cost: rowCost(p) });
    return out;
  },
  vjp(g, _inputs, _out, p) {
    return [avgPoolBackward(g, p)];
  },
});

export const rules = { maxPool: maxPoolRule, avgPool: avgPoolRule };
