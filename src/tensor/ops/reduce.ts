/**
 * Reductions: sum, max, and the composites mean and min, over any set of axes
 * (negative axes count from the end; none given = all axes).
 *
 * The reduced axes are grouped into runs of adjacent axes (size-1 axes in
 * between join a run); each run is one primitive application reducing the
 * middle axis of an (outer, n, inner) view, innermost run first. The kernel
 * owns each output in one range and sums it in an order fixed by the shape
 * alone (see assembly/reduce.ts), so results are identical on any thread
 * count.
 *
 * max's gradient goes to ONE maximal element per output: the first in
 * row-major order within a run (when several runs are reduced, the first
 * along each run, innermost run first). min(x) = -max(-x) inherits this.
 */
import { Tensor, checkTensor, empty, sizeOf } from '../tensor.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { reshape, broadcastTo } from './shape.js';
import { div } from './binary.js';
import { neg } from './unary.js';

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** `axes` as sorted, distinct, non-negative axes of a rank-`rank` tensor (none given: all). */
export function normalizeAxes(fn: string, rank: number, axes: number | readonly number[] | undefined): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  if (!Array.isArray(list)) throw new ValueError(`${fn}: axes must be an integer or an array of integers, got ${describe(axes)}`);
  const seen = new Set<number>();
  for (const a of list) {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new ValueError(`${fn}: axis ${describe(a)} is out of range for rank ${rank} (expected an integer in [${-rank}, ${rank - 1}])`);
    }
    const n = a < 0 ? a + rank : a;
    if (seen.has(n)) throw new ValueError(`${fn}: axis ${n} appears more than once in axes ${describe(list)}`);
    seen.add(n);
  }
  return [...seen].sort((p, q) => p - q);
}

export interface Run {
  /** Reduce dims [lo, hi) of the input. */
  lo: number;
  hi: number;
}

// (outer, n, inner) of reducing dims [lo, hi) of `shape`
function view(shape: readonly number[], { lo, hi }: Run): [number, number, number] {
  return [sizeOf(shape.slice(0, lo)), sizeOf(shape.slice(lo, hi)), sizeOf(shape.slice(hi))];
}

function reducedShape(shape: readonly number[], { lo, hi }: Run): number[] {
  return [...shape.slice(0, lo), ...shape.slice(hi)];
}

// The shape of the run's output cotangent with the reduced dims kept as 1s.
function keptShape(shape: readonly number[], { lo, hi }: Run): number[] {
  return shape.map((d, i) => (i >= lo && i < hi ? 1 : d));
}

// Shards of whole vector blocks of columns (the kernel's 32- and 4-wide paths).
const grainOf = (inner: number): number => (inner >= 32 ? 32 : inner >= 4 ? 4 : 1);

function reduceForward(kernel: 'reduce_sum' | 'reduce_max', x: Tensor, run: Run): Tensor {
  const out = empty(reducedShape(x.shape, run));
  const [outer, n, inner] = view(x.shape, run);
  parallel(kernel, [x.ptr, out.ptr, outer, n, inner], outer * inner, { cost: Math.max(1, n), grain: grainOf(inner) });
  return out;
}

/** Σ of x over every axis but the last: the per-channel sums of a bias gradient. Not recorded. */
export function channelSums(x: Tensor): Tensor {
  return reduceForward('reduce_sum', x, { lo: 0, hi: x.rank - 1 });
}

const sumRule = defineRule<Run>('sum', {
  forward: ([x], run) => reduceForward('reduce_sum', x, run),
  vjp: (g, [x], _out, run) => [broadcastTo(reshape(g, keptShape(x.shape, run)), x.shape)],
});

const maxRule = defineRule<Run>('max', {
  forward: ([x], run) => reduceForward('reduce_max', x, run),
  vjp: (g, [x], out, run) => [maxGrad(x, out, g, run)],
});

/** dx of a max over one run: g at the first maximal element of each reduced slice, 0 elsewhere. Not recorded. */
function maxGrad(x: Tensor, y: Tensor, g: Tensor, run: Run): Tensor {
  const dx = empty(x.shape);
  const [outer, n, inner] = view(x.shape, run);
  parallel('reduce_max_grad', [x.ptr, y.ptr, g.ptr, dx.ptr, outer, n, inner], outer * inner, { cost: Math.max(1, n), grain: grainOf(inner) });
  return dx;
}

// Runs of reduced axes, innermost first; size-1 axes next to a run join it.
function runs(shape: readonly number[], axes: readonly number[]): Run[] {
  const reduced = new Set(axes);
  const out: Run[] = [];
  let i = shape.length - 1;
  while (i >= 0) {
    if (!reduced.has(i)) {
      i--;
      continue;
    }
    let lo = i;
    let hi = i + 1;
    while (hi < shape.length && shape[hi] === 1) hi++;
    while (lo > 0 && (reduced.has(lo - 1) || shape[lo - 1] === 1)) lo--;
    out.push({ lo, hi });
    i = lo - 1;
  }
  return out;
}

function reduce(fn: 'sum' | 'max', x: Tensor, axes: number | readonly number[] | undefined, keepDims: boolean): Tensor {
  checkTensor(fn, 'x', x);
  const ax = normalizeAxes(fn, x.rank, axes);
  if (typeof keepDims !== 'boolean') throw new ValueError(`${fn}: keepDims must be a boolean, got ${describe(keepDims)}`);
  if (fn === 'max') {
    for (const a of ax) {
      if (x.shape[a] === 0) throw new ShapeError(`max: cannot take the max over axis ${a} of size 0 (x: ${fmt(x.shape)})`);
    }
  }
  const target = keepDims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
  const rule = fn === 'sum' ? sumRule : maxRule;
  let y = x;
  for (const run of runs(x.shape, ax)) y = apply(rule, [y], run);
  if (y === x || y.shape.length !== target.length || y.shape.some((d, i) => d !== target[i])) y = reshape(y, target);
  return y;
}

/** Sum over `axes` (default: all); keepDims keeps them as size 1. */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduce('sum', x, axes, keepDims);
}

/** Max over `axes` (default: all); NaN if any element is NaN. The gradient goes to the first maximal element. */
export function max(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduce('max', x, axes, keepDims);
}

/** Min over `axes`: -max(-x); the gradient goes to the first minimal element. */
export function min(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  checkTensor('min', 'x', x);
  for (const a of normalizeAxes('min', x.rank, axes)) {
    if (x.shape[a] === 0) throw new ShapeError(`min: cannot take the min over axis ${a} of size 0 (x: ${fmt(x.shape)})`);
  }
  return neg(max(neg(x), axes, keepDims));
}

/** Mean over `axes` (default: all): sum / count. */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  checkTensor('mean', 'x', x);
  const ax = normalizeAxes('mean', x.rank, axes);
  let count = 1;
  for (const a of ax) count *= x.shape[a];
  return div(sum(x, ax, keepDims), count);
}

export const rules = { sum: sumRule, max: maxRule };
