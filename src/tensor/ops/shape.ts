/**
 * Shape ops: reshape (a view: no copy), broadcastTo (a materialising copy),
 * expandDims and squeeze (reshapes), and sumTo, the reverse of a broadcast
 * that binary ops' gradients use.
 */
import { Tensor, checkTensor, empty, sizeOf } from '../tensor.js';
import { parallel, ELEMENTWISE_COST } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { coalesce, forEachSlice } from './binary.js';
import { sum } from './reduce.js';

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export interface ShapeParams {
  shape: readonly number[];
}

const reshapeRule = defineRule<ShapeParams>('reshape', {
  forward: ([x], { shape }) => x.view(shape),
  vjp: (g, [x]) => [reshape(g, x.shape)],
});

/**
 * The same data under another shape with the same number of elements; one
 * entry may be -1 (inferred). A view of x's block: nothing is copied.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('reshape', 'x', x);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= -1)) {
    throw new ShapeError(`reshape: shape must be an array of non-negative integers (one may be -1), got ${describe(shape)}`);
  }
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1) throw new ShapeError(`reshape: only one entry of shape may be -1, got ${fmt(shape)}`);
  let s = shape.slice();
  if (holes === 1) {
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
    }
    s = shape.map((d) => (d === -1 ? x.size / known : d));
  }
  if (sizeOf(s) !== x.size) {
    throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)} (${sizeOf(s)} elements)`);
  }
  return apply(reshapeRule, [x], { shape: s });
}

const broadcastToRule = defineRule<ShapeParams>('broadcastTo', {
  forward: ([x], { shape }) => {
    const out = empty(shape);
    if (out.size === 0) return out;
    forEachSlice(coalesce(shape, [x.shape]), ([ox], oo, d, [s]) => {
      parallel('broadcast_copy', [x.ptr + 4 * ox, out.ptr + 4 * oo, d[1], d[2], d[3], ...s], d[0] * d[1] * d[2], { cost: ELEMENTWISE_COST * d[3] });
    });
    return out;
  },
  vjp: (g, [x]) => [sumTo(g, x.shape)],
});

// The first axis (negative, from the end) where `from` cannot broadcast to `to`, or 0.
function clash(from: readonly number[], to: readonly number[]): number {
  if (from.length > to.length) return -(to.length + 1);
  for (let i = 1; i <= from.length; i++) {
    const f = from[from.length - i];
    if (f !== 1 && f !== to[to.length - i]) return -i;
  }
  return 0;
}

function checkBroadcastable(fn: string, what: string, from: readonly number[], to: readonly number[]): void {
  const axis = clash(from, to);
  if (axis === 0) return;
  const detail = from.length > to.length ? `rank ${from.length} > ${to.length}` : `axis ${axis}: ${from[from.length + axis]} vs ${to[to.length + axis]}`;
  throw new ShapeError(`${fn}: cannot broadcast ${what} ${fmt(from)} to ${fmt(to)} (${detail})`);
}

/** x broadcast (NumPy rules) to `shape`, as a new tensor. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkTensor('broadcastTo', 'x', x);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`broadcastTo: shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  checkBroadcastable('broadcastTo', 'x', x.shape, shape);
  return apply(broadcastToRule, [x], { shape: shape.slice() });
}

/**
 * Sum g over the dims that broadcasting `shape` to g's shape added or
 * stretched, giving a tensor of `shape` (g itself when the shapes agree).
 */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  checkTensor('sumTo', 'g', g);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`sumTo: shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  checkBroadcastable('sumTo', 'shape', shape, g.shape);
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = sum(g, axes);
  return sameShape(s.shape, shape) ? s : reshape(s, shape);
}

/** x with a new size-1 axis at `axis` (in [-(rank + 1), rank]). */
export function expandDims(x: Tensor, axis: number): Tensor {
  checkTensor('expandDims', 'x', x);
  const r = x.rank;
  if (!Number.isInteger(axis) || axis < -(r + 1) || axis > r) {
    throw new ValueError(`expandDims: axis must be an integer in [${-(r + 1)}, ${r}] for x of shape ${fmt(x.shape)}, got ${describe(axis)}`);
  }
  const a = axis < 0 ? axis + r + 1 : axis;
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** x without its size-1 axes (all of them, or those given). */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  checkTensor('squeeze', 'x', x);
  const r = x.rank;
  let drop: number[];
  if (axes === undefined) drop = x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  else {
    const list = typeof axes === 'number' ? [axes] : axes;
    if (!Array.isArray(list)) throw new ValueError(`squeeze: axes must be an integer or an array of integers, got ${describe(axes)}`);
    drop = [];
    for (const a of list) {
      if (!Number.isInteger(a) || a < -r || a >= r) {
        throw new ValueError(`squeeze: axis ${describe(a)} is out of range for x of shape ${fmt(x.shape)}`);
      }
      const n = a < 0 ? a + r : a;
      if (drop.includes(n)) throw new ValueError(`squeeze: axis ${n} appears more than once in axes ${describe(list)}`);
      if (x.shape[n] !== 1) throw new ShapeError(`squeeze: axis ${n} of x ${fmt(x.shape)} has size ${x.shape[n]}, not 1`);
      drop.push(n);
    }
  }
  return reshape(x, x.shape.filter((_, i) => !drop.includes(i)));
}

export const rules = { reshape: reshapeRule, broadcastTo: broadcastToRule };
