/**
 * Ops without a gradient of their own: comparisons (1.0 where true, 0.0 where
 * false, with broadcasting; NaN compares false), argmax, oneHot, and where,
 * which selects between two tensors by a condition and passes each cotangent
 * back through the elements it selected (the condition gets none).
 */
import { Tensor, checkTensor, empty, scope } from '../tensor.js';
import { heapF32 } from '../heap.js';
import { parallel, ELEMENTWISE_COST } from '../dispatch.js';
import { defineRule, apply, type Rule } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { binaryForward, broadcastShapes, coalesce, forEachSlice, operand, type BinaryOpName, type Operand } from './binary.js';
import { sumTo } from './shape.js';

function compareRule(name: BinaryOpName): Rule<void> {
  return defineRule(name, {
    forward: ([a, b]) => binaryForward(name, a, b),
    vjp: () => [null, null],
  });
}

const equalRule = compareRule('equal');
const greaterRule = compareRule('greater');
const greaterEqualRule = compareRule('greaterEqual');
const lessRule = compareRule('less');

function compare(rule: Rule<void>, a: Operand, b: Operand): Tensor {
  const name = rule.name;
  for (const [arg, v] of [['a', a], ['b', b]] as const) {
    if (!(v instanceof Tensor) && typeof v !== 'number') throw new ValueError(`${name}: ${arg} must be a Tensor or a number, got ${describe(v)}`);
    if (v instanceof Tensor) checkTensor(name, arg, v);
  }
  broadcastShapes(name, typeof a === 'number' ? [] : a.shape, typeof b === 'number' ? [] : b.shape);
  return apply(rule, [operand(name, 'a', a), operand(name, 'b', b)], undefined);
}

/** 1 where a == b, else 0. */
export function equal(a: Operand, b: Operand): Tensor {
  return compare(equalRule, a, b);
}

/** 1 where a > b, else 0. */
export function greater(a: Operand, b: Operand): Tensor {
  return compare(greaterRule, a, b);
}

/** 1 where a >= b, else 0. */
export function greaterEqual(a: Operand, b: Operand): Tensor {
  return compare(greaterEqualRule, a, b);
}

/** 1 where a < b, else 0. */
export function less(a: Operand, b: Operand): Tensor {
  return compare(lessRule, a, b);
}

// ---- where ----------------------------------------------------------------

const whereRule = defineRule('where', {
  forward: ([c, a, b]) => {
    const shape = broadcastShapes('where', c.shape, a.shape, b.shape);
    const out = empty(shape);
    if (out.size === 0) return out;
    forEachSlice(coalesce(shape, [c.shape, a.shape, b.shape]), ([oc, oa, ob], oo, d, [sc, sa, sb]) => {
      const args = [c.ptr + 4 * oc, a.ptr + 4 * oa, b.ptr + 4 * ob, out.ptr + 4 * oo, d[1], d[2], d[3], ...sc, ...sa, ...sb];
      parallel('where_bcast', args, d[0] * d[1] * d[2], { cost: ELEMENTWISE_COST * d[3] });
    });
    return out;
  },
  vjp: (g, [c, a, b]) => scope(() => [null, sumTo(where(c, g, 0), a.shape), sumTo(where(c, 0, g), b.shape)]),
});

/**
 * Elementwise c != 0 ? a : b, broadcasting all three (a NaN condition counts
 * as true). Differentiable with respect to a and b: each gets the cotangent
 * where it was selected, 0 elsewhere.
 */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  checkTensor('where', 'cond', cond);
  for (const [arg, v] of [['a', a], ['b', b]] as const) {
    if (!(v instanceof Tensor) && typeof v !== 'number') throw new ValueError(`where: ${arg} must be a Tensor or a number, got ${describe(v)}`);
    if (v instanceof Tensor) checkTensor('where', arg, v);
  }
  broadcastShapes('where', cond.shape, typeof a === 'number' ? [] : a.shape, typeof b === 'number' ? [] : b.shape);
  return apply(whereRule, [cond, operand('where', 'a', a), operand('where', 'b', b)], undefined);
}

// ---- argmax -----------------------------------------------------------------

export interface AxisParams {
  axis: number;
}

const argmaxRule = defineRule<AxisParams>('argmax', {
  forward: ([x], { axis }) => {
    const shape = x.shape.filter((_, i) => i !== axis);
    const out = empty(shape);
    let outer = 1;
    let inner = 1;
    x.shape.forEach((d, i) => {
      if (i < axis) outer *= d;
      if (i > axis) inner *= d;
    });
    const n = x.shape[axis];
    parallel('argmax', [x.ptr, out.ptr, outer, n, inner], outer * inner, { cost: n });
    return out;
  },
  vjp: () => [null],
});

/**
 * The index of the first maximal element along `axis` (default: the last), as
 * float32 values; the axis is removed. A NaN counts as maximal (as in NumPy).
 */
export function argmax(x: Tensor, axis = -1): Tensor {
  checkTensor('argmax', 'x', x);
  const r = x.rank;
  if (!Number.isInteger(axis) || axis < -r || axis >= r) {
    throw new ValueError(`argmax: axis must be an integer in [${-r}, ${r - 1}] for x of shape [${x.shape.join(', ')}], got ${describe(axis)}`);
  }
  const a = axis < 0 ? axis + r : axis;
  if (x.shape[a] === 0) throw new ShapeError(`argmax: axis ${a} of x [${x.shape.join(', ')}] has size 0`);
  return apply(argmaxRule, [x], { axis: a });
}

// ---- oneHot -----------------------------------------------------------------

/** [labels.length, depth] with a 1 at (i, labels[i]) and 0 elsewhere. Labels must be integers in [0, depth). */
export function oneHot(labels: Int32Array | readonly number[], depth: number): Tensor {
  if (!(labels instanceof Int32Array) && !Array.isArray(labels)) {
    throw new ValueError(`oneHot: labels must be an Int32Array or an array of integers, got ${describe(labels)}`);
  }
  if (!Number.isInteger(depth) || depth < 1) throw new ValueError(`oneHot: depth must be a positive integer, got ${describe(depth)}`);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= depth) {
      throw new ValueError(`oneHot: labels[${i}] must be an integer in [0, ${depth - 1}], got ${describe(l)}`);
    }
  }
  const out = empty([labels.length, depth]);
  const f = heapF32();
  const p = out.ptr >>> 2;
  f.fill(0, p, p + out.size);
  for (let i = 0; i < labels.length; i++) f[p + i * depth + labels[i]] = 1;
  return out;
}

export const rules = {
  equal: equalRule,
  greater: greaterRule,
  greaterEqual: greaterEqualRule,
  less: lessRule,
  where: whereRule,
  argmax: argmaxRule,
};
