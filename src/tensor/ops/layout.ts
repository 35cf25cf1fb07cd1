/**
 * Layout ops: transpose, concat, slice, pad (primitives) and stack, unstack
 * (compositions with reshape). They move bits and never round.
 *
 * One strided-copy kernel serves them all: `copy` below drops size-1 axes,
 * merges axes that are contiguous in both source and destination (so the
 * inner loop is a SIMD memcpy whenever it can be) and hands the kernel at most
 * six axes. A transpose that comes down to swapping the last two of its
 * merged axes (NHWC <-> NCHW, a matrix transpose) uses the blocked 4x4 SIMD
 * transpose instead.
 */
import { Tensor, checkTensor, empty, sizeOf } from '../tensor.js';
import { parallel, ELEMENTWISE_COST } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { reshape } from './shape.js';

const MAX_RANK = 6;

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Row-major element strides of `shape`. */
function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

/**
 * dst[Σ t[k]·i[k]] = src[Σ s[k]·i[k]] for every index i < dims (element
 * strides; pointers are byte offsets). Sharded over rows of the merged index
 * space.
 */
function copy(src: number, dst: number, dims: readonly number[], s: readonly number[], t: readonly number[]): void {
  if (dims.some((d) => d === 0)) return;
  const D: number[] = [];
  const S: number[] = [];
  const T: number[] = [];
  for (let k = 0; k < dims.length; k++) {
    if (dims[k] === 1) continue;
    const last = D.length - 1;
    if (last >= 0 && S[last] === s[k] * dims[k] && T[last] === t[k] * dims[k]) {
      D[last] *= dims[k];
      S[last] = s[k];
      T[last] = t[k];
    } else {
      D.push(dims[k]);
      S.push(s[k]);
      T.push(t[k]);
    }
  }
  if (D.length === 0) D.push(1), S.push(1), T.push(1);
  if (D.length > MAX_RANK) throw new Error(`layout copy: ${D.length} axes after merging (at most ${MAX_RANK})`);
  while (D.length < MAX_RANK) D.unshift(1), S.unshift(0), T.unshift(0);
  const rows = D[0] * D[1] * D[2] * D[3] * D[4];
  parallel('copyStrided', [src, dst, ...D, ...S, ...T], rows, { cost: ELEMENTWISE_COST * D[5] });
}

function checkRank(fn: string, x: Tensor): void {
  if (x.rank > MAX_RANK) throw new ShapeError(`${fn}: x has rank ${x.rank} (shape ${fmt(x.shape)}); at most ${MAX_RANK} is supported`);
}

function normalizeAxis(fn: string, axis: unknown, rank: number, arg = 'axis'): number {
  if (typeof axis !== 'number' || !Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new ValueError(`${fn}: ${arg} must be an integer in [${-rank}, ${rank - 1}] for rank ${rank}, got ${describe(axis)}`);
  }
  return axis < 0 ? axis + rank : axis;
}

// ---- transpose --------------------------------------------------------------

interface TransposeParams {
  perm: readonly number[];
}

function invert(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, k) => (inv[p] = k));
  return inv;
}

const transposeRule = defineRule<TransposeParams>('transpose', {
  forward([x], { perm }) {
    const out = empty(perm.map((p) => x.shape[p]));
    if (out.size === 0) return out;
    // Drop size-1 axes, then merge runs of output axes that are consecutive
    // input axes: the permutation of the merged groups is what must move.
    const kept = perm.filter((p) => x.shape[p] !== 1);
    const groups: number[][] = []; // input axes of each merged output axis
    for (const p of kept) {
      const g = groups[groups.length - 1];
      if (g !== undefined && g[g.length - 1] + 1 === p) g.push(p);
      else groups.push([p]);
    }
    const size = (g: number[]): number => sizeOf(g.map((p) => x.shape[p]));
    const m = groups.length;
    // Groups in input order; the swap of the last two is the fast path.
    const byInput = groups.slice().sort((a, b) => a[0] - b[0]);
    const swapLast2 = m >= 2 && groups.slice(0, m - 2).every((g, k) => g === byInput[k]) && groups[m - 2] === byInput[m - 1] && groups[m - 1] === byInput[m - 2];
    if (swapLast2) {
      const rows = size(byInput[m - 2]);
      const cols = size(byInput[m - 1]);
      parallel('transposeLast2', [x.ptr, out.ptr, rows, cols], out.size / rows, { cost: rows, grain: 16 });
    } else {
      const xs = stridesOf(x.shape);
      copy(x.ptr, out.ptr, out.shape, perm.map((p) => xs[p]), stridesOf(out.shape));
    }
    return out;
  },
  vjp: (g, _inputs, _out, { perm }) => [transpose(g, invert(perm))],
});

/**
 * Permute the axes of x: out.shape[k] = x.shape[perm[k]]. The default perm
 * reverses the axes. Rank at most 6.
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  checkTensor('transpose', 'x', x);
  checkRank('transpose', x);
  const r = x.rank;
  const p = perm ?? Array.from({ length: r }, (_, k) => r - 1 - k);
  if (!Array.isArray(p) || p.length !== r) {
    throw new ShapeError(`transpose: perm must list each of the ${r} axes of x ${fmt(x.shape)} once, got ${describe(perm)}`);
  }
  const seen = new Set<number>();
  for (const a of p) {
    if (!Number.isInteger(a) || a < 0 || a >= r) {
      throw new ValueError(`transpose: perm ${describe(p)} has axis ${describe(a)}, expected integers in [0, ${r - 1}] for x ${fmt(x.shape)}`);
    }
    if (seen.has(a)) throw new ValueError(`transpose: perm ${describe(p)} lists axis ${a} twice`);
    seen.add(a);
  }
  return apply(transposeRule, [x], { perm: p.slice() });
}

// ---- concat ---------------------------------------------------------------------

interface AxisParams {
  axis: number;
}

/** Copy the `parts` (shape and pointer) side by side along `axis` into `out`. */
function concatInto(out: Tensor, parts: readonly Tensor[], axis: number): void {
  const outer = sizeOf(out.shape.slice(0, axis));
  const inner = sizeOf(out.shape.slice(axis + 1));
  const outRow = out.shape[axis] * inner;
  let offset = 0;
  for (const x of parts) {
    const row = x.shape[axis] * inner;
    copy(x.ptr, out.ptr + 4 * offset, [outer, row], [row, 1], [outRow, 1]);
    offset += row;
  }
}

const concatRule = defineRule<AxisParams>('concat', {
  forward(xs, { axis }) {
    const shape = xs[0].shape.slice();
    shape[axis] = xs.reduce((n, x) => n + x.shape[axis], 0);
    const out = empty(shape);
    if (out.size > 0) concatInto(out, xs, axis);
    return out;
  },
  vjp(g, xs, _out, { axis }) {
    let offset = 0;
    return xs.map((x) => {
      const begin = g.shape.map((_, k) => (k === axis ? offset : 0));
      offset += x.shape[axis];
      return slice(g, begin, x.shape);
    });
  },
});

/** The tensors of `xs` (same shape except along `axis`) joined along `axis`. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new ValueError(`concat: xs must be a non-empty array of tensors, got ${describe(xs)}`);
  }
  xs.forEach((x, i) => checkTensor('concat', `xs[${i}]`, x));
  const first = xs[0];
  if (first.rank === 0) throw new ShapeError('concat: cannot concatenate 0-d tensors (xs[0] has shape [])');
  const a = normalizeAxis('concat', axis, first.rank);
  xs.forEach((x: Tensor, i: number) => {
    if (x.rank !== first.rank || x.shape.some((d, k) => k !== a && d !== first.shape[k])) {
      throw new ShapeError(
        `concat: xs[${i}] has shape ${fmt(x.shape)}, xs[0] has ${fmt(first.shape)}; all must agree except on axis ${a}`,
      );
    }
  });
  return apply(concatRule, xs, { axis: a });
}

// ---- slice ------------------------------------------------------------------------

interface SliceParams {
  begin: readonly number[];
  size: readonly number[];
}

const sliceRule = defineRule<SliceParams>('slice', {
  forward([x], { begin, size }) {
    const out = empty(size);
    const xs = stridesOf(x.shape);
    const start = begin.reduce((o, b, k) => o + b * xs[k], 0);
    copy(x.ptr + 4 * start, out.ptr, size, xs, stridesOf(size));
    return out;
  },
  vjp: (g, [x], _out, { begin, size }) => [pad(g, begin.map((b, k) => [b, x.shape[k] - b - size[k]] as [number, number]))],
});

/**
 * The block of x starting at `begin` with extent `size` on each axis; a size
 * of -1 runs to the end of the axis. Rank at most 6.
 */
export function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
  checkTensor('slice', 'x', x);
  checkRank('slice', x);
  const r = x.rank;
  if (!Array.isArray(begin) || begin.length !== r || !begin.every((b) => Number.isInteger(b) && b >= 0)) {
    throw new ShapeError(`slice: begin must be ${r} non-negative integers for x ${fmt(x.shape)}, got ${describe(begin)}`);
  }
  if (!Array.isArray(size) || size.length !== r || !size.every((s) => Number.isInteger(s) && s >= -1)) {
    throw new ShapeError(`slice: size must be ${r} integers >= -1 for x ${fmt(x.shape)}, got ${describe(size)}`);
  }
  const resolved = size.map((s, k) => (s === -1 ? x.shape[k] - begin[k] : s));
  for (let k = 0; k < r; k++) {
    if (begin[k] + Math.max(resolved[k], 0) > x.shape[k] || resolved[k] < 0) {
      throw new ShapeError(
        `slice: on axis ${k}, begin ${begin[k]} + size ${size[k]} exceeds the extent ${x.shape[k]} of x ${fmt(x.shape)}`,
      );
    }
  }
  return apply(sliceRule, [x], { begin: begin.slice(), size: resolved });
}

// ---- pad --------------------------------------------------------------------------

interface PadParams {
  paddings: readonly (readonly [number, number])[];
  value: number;
}

const padRule = defineRule<PadParams>('pad', {
  forward([x], { paddings, value }) {
    const out = empty(x.shape.map((d, k) => paddings[k][0] + d + paddings[k][1]));
    if (out.size === 0) return out;
    if (out.size > x.size) parallel('layoutFill', [out.ptr, value], out.size, { cost: ELEMENTWISE_COST });
    const os = stridesOf(out.shape);
    const start = paddings.reduce((o, [b], k) => o + b * os[k], 0);
    copy(x.ptr, out.ptr + 4 * start, x.shape, stridesOf(x.shape), os);
    return out;
  },
  vjp: (g, [x], _out, { paddings }) => [slice(g, paddings.map(([b]) => b), x.shape)],
});

/**
 * x with paddings[k] = [before, after] elements of `value` added on axis k.
 * Rank at most 6.
 */
export function pad(x: Tensor, paddings: readonly (readonly [number, number])[], value = 0): Tensor {
  checkTensor('pad', 'x', x);
  checkRank('pad', x);
  const ok =
    Array.isArray(paddings) &&
    paddings.length === x.rank &&
    paddings.every((p) => Array.isArray(p) && p.length === 2 && p.every((n) => Number.isInteger(n) && n >= 0));
  if (!ok) {
    throw new ShapeError(`pad: paddings must be ${x.rank} pairs [before, after] of non-negative integers for x ${fmt(x.shape)}, got ${describe(paddings)}`);
  }
  if (typeof value !== 'number') throw new ValueError(`pad: value must be a number, got ${describe(value)}`);
  return apply(padRule, [x], { paddings: paddings.map(([b, a]) => [b, a] as [number, number]), value });
}

// ---- stack / unstack (compositions) ---------------------------------------------

/** The tensors of `xs` (all one shape) joined along a new axis `axis` (in [-(rank + 1), rank]). */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new ValueError(`stack: xs must be a non-empty array of tensors, got ${describe(xs)}`);
  }
  xs.forEach((x, i) => checkTensor('stack', `xs[${i}]`, x));
  const shape = xs[0].shape;
  xs.forEach((x: Tensor, i: number) => {
    if (x.rank !== shape.length || x.shape.some((d, k) => d !== shape[k])) {
      throw new ShapeError(`stack: xs[${i}] has shape ${fmt(x.shape)}, xs[0] has ${fmt(shape)}; all must be equal`);
    }
  });
  const a = normalizeAxis('stack', axis, shape.length + 1);
  const expanded = [...shape.slice(0, a), 1, ...shape.slice(a)];
  return concat(
    xs.map((x) => reshape(x, expanded)),
    a,
  );
}

/** The slices of x along `axis`, that axis removed: the inverse of stack. */
export function unstack(x: Tensor, axis = 0): Tensor[] {
  checkTensor('unstack', 'x', x);
  checkRank('unstack', x);
  if (x.rank === 0) throw new ShapeError('unstack: x is 0-d (shape []); it has no axis to unstack');
  const a = normalizeAxis('unstack', axis, x.rank);
  const rest = x.shape.filter((_, k) => k !== a);
  const size = x.shape.map((d, k) => (k === a ? 1 : d));
  return Array.from({ length: x.shape[a] }, (_, i) =>
    reshape(
      slice(
        x,
        x.shape.map((_, k) => (k === a ? i : 0)),
        size,
      ),
      rest,
    ),
  );
}

export const rules = { transpose: transposeRule, concat: concatRule, slice: sliceRule, pad: padRule };
