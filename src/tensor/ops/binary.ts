/**
 * Binary elementwise ops with NumPy broadcasting: add, sub, mul, div, maximum,
 * minimum, pow. An argument may be a number, which becomes a 0-d constant.
 *
 * add, sub, mul, div, maximum and minimum are single IEEE operations, rounded
 * once (bit-identical to Math.fround of the float64 operation on the float32
 * inputs). maximum/minimum propagate NaN. pow has JavaScript's Math.pow
 * semantics, within 1 ulp (pow(x, 0) = 1 even for NaN x, but pow(1, NaN) and
 * pow(+-1, +-Inf) are NaN; a negative base with a non-integer exponent is NaN).
 *
 * Gradients are summed back over broadcast dimensions. maximum and minimum
 * send the whole cotangent to the FIRST argument on ties (a == b). pow's
 * gradient with respect to the exponent, out * log(a), is defined as 0 where
 * the base a <= 0 (where log is undefined); with respect to the base,
 * b * a^(b-1), it is 0 where b = 0.
 *
 * The kernels see a broadcast as a coalesced output of at most 4 dims with a
 * stride per operand (0 on broadcast dims); `broadcastShapes` and `coalesce`
 * here are shared with where() and broadcastTo().
 */
import { Tensor, checkTensor, empty, scope } from '../tensor.js';
import { scalar } from '../create.js';
import { parallel, ELEMENTWISE_COST } from '../dispatch.js';
import { defineRule, apply, type Rule } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { sumTo } from './shape.js';
import { neg, log } from './unary.js';
import { where, equal, greater, greaterEqual } from './compare.js';

/** A tensor, or a number taken as a 0-d constant. */
export type Operand = Tensor | number;

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** The NumPy broadcast of `shapes`; a ShapeError naming `fn`, every shape and the first clashing axis otherwise. */
export function broadcastShapes(fn: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (let i = 1; i <= rank; i++) {
    for (const s of shapes) {
      const d = i <= s.length ? s[s.length - i] : 1;
      const o = out[rank - i];
      if (d === o || d === 1) continue;
      if (o === 1) {
        out[rank - i] = d;
        continue;
      }
      const list = shapes.map(fmt);
      const names = list.length === 2 ? `${list[0]} and ${list[1]}` : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
      throw new ShapeError(`${fn}: shapes ${names} do not broadcast (axis -${i}: ${o} vs ${d})`);
    }
  }
  return out;
}

/**
 * A broadcast as few dims as possible: `dims` (outermost first, size-1 dims
 * dropped, adjacent dims merged where every operand allows) and each operand's
 * element strides over them (0 where it is broadcast). The output is
 * contiguous over `dims`. A size-1 output gives dims [1].
 */
export function coalesce(out: readonly number[], operands: readonly (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const rank = out.length;
  const full = operands.map((s) => {
    const st = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let i = s.length - 1; i >= 0; i--) {
      const r = rank - s.length + i;
      st[r] = s[i] === 1 ? 0 : acc;
      acc *= s[i];
    }
    return st;
  });
  const dims: number[] = [];
  const strides: number[][] = operands.map(() => []);
  for (let i = 0; i < rank; i++) {
    const d = out[i];
    if (d === 1) continue;
    const last = dims.length - 1;
    // merge dim i into the previous kept dim when, for every operand, stepping
    // the previous dim equals stepping dim i d times
    if (last >= 0 && full.every((st, k) => strides[k][last] === st[i] * d)) {
      dims[last] *= d;
      full.forEach((st, k) => (strides[k][last] = st[i]));
      continue;
    }
    dims.push(d);
    full.forEach((st, k) => strides[k].push(st[i]));
  }
  if (dims.length === 0) {
    dims.push(1);
    strides.forEach((s) => s.push(0));
  }
  return { dims, strides };
}

/**
 * Call a row-broadcast kernel over a coalesced plan: `call(offsets, d, s)`
 * with the plan padded (or, beyond 4 dims, sliced) to [d0, d1, d2, d3] and
 * the element offsets of each operand and of the output for the slice.
 */
export function forEachSlice(
  plan: { dims: number[]; strides: number[][] },
  call: (offsets: number[], outOffset: number, d: number[], s: number[][]) => void,
): void {
  const { dims, strides } = plan;
  const lead = Math.max(0, dims.length - 4);
  const d = dims.slice(lead);
  while (d.length < 4) d.unshift(1);
  const s = strides.map((st) => {
    const t = st.slice(lead);
    while (t.length < 4) t.unshift(0);
    return t;
  });
  const sliceSize = d[0] * d[1] * d[2] * d[3];
  const idx = new Array<number>(lead).fill(0);
  let slices = 1;
  for (let i = 0; i < lead; i++) slices *= dims[i];
  for (let n = 0; n < slices; n++) {
    const offsets = strides.map((st) => idx.reduce((acc, v, i) => acc + v * st[i], 0));
    call(offsets, n * sliceSize, d, s);
    for (let i = lead - 1; i >= 0; i--) {
      if (++idx[i] < dims[i]) break;
      idx[i] = 0;
    }
  }
}

/** Kernel op codes of assembly/elementwise.ts `binary`. */
export const BINARY_OPS = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  maximum: 4,
  minimum: 5,
  pow: 6,
  equal: 7,
  greater: 8,
  greaterEqual: 9,
  less: 10,
} as const;
export type BinaryOpName = keyof typeof BINARY_OPS;

/** out = a (op) b with broadcasting, into a fresh tensor: the forward of every binary primitive. */
export function binaryForward(name: BinaryOpName, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(name, a.shape, b.shape);
  const out = empty(shape);
  if (out.size === 0) return out;
  const op = BINARY_OPS[name];
  const cost = name === 'pow' ? 40 : ELEMENTWISE_COST;
  const plan = coalesce(shape, [a.shape, b.shape]);
  if (plan.dims.length === 1) {
    parallel('binary_flat', [op, a.ptr, plan.strides[0][0], b.ptr, plan.strides[1][0], out.ptr], out.size, { cost, grain: 16 });
    return out;
  }
  forEachSlice(plan, ([oa, ob], oo, d, [sa, sb]) => {
    const args = [op, a.ptr + 4 * oa, b.ptr + 4 * ob, out.ptr + 4 * oo, d[1], d[2], d[3], ...sa, ...sb];
    parallel('binary', args, d[0] * d[1] * d[2], { cost: cost * d[3] });
  });
  return out;
}

/** A number argument as a 0-d constant; a tensor checked. */
export function operand(fn: string, arg: string, x: unknown): Tensor {
  if (typeof x === 'number') return scalar(x);
  if (!(x instanceof Tensor)) throw new ValueError(`${fn}: ${arg} must be a Tensor or a number, got ${describe(x)}`);
  checkTensor(fn, arg, x);
  return x;
}

function binaryOp(rule: Rule<void>, name: BinaryOpName, a: Operand, b: Operand): Tensor {
  if (!(a instanceof Tensor) && typeof a !== 'number') throw new ValueError(`${name}: a must be a Tensor or a number, got ${describe(a)}`);
  if (!(b instanceof Tensor) && typeof b !== 'number') throw new ValueError(`${name}: b must be a Tensor or a number, got ${describe(b)}`);
  if (a instanceof Tensor) checkTensor(name, 'a', a);
  if (b instanceof Tensor) checkTensor(name, 'b', b);
  broadcastShapes(name, typeof a === 'number' ? [] : a.shape, typeof b === 'number' ? [] : b.shape);
  return apply(rule, [operand(name, 'a', a), operand(name, 'b', b)], undefined);
}

/** a + b. */
export function add(a: Operand, b: Operand): Tensor {
  return binaryOp(addRule, 'add', a, b);
}

/** a - b. */
export function sub(a: Operand, b: Operand): Tensor {
  return binaryOp(subRule, 'sub', a, b);
}

/** a * b. */
export function mul(a: Operand, b: Operand): Tensor {
  return binaryOp(mulRule, 'mul', a, b);
}

/** a / b. */
export function div(a: Operand, b: Operand): Tensor {
  return binaryOp(divRule, 'div', a, b);
}

/** Elementwise max(a, b); the gradient goes to a on ties. */
export function maximum(a: Operand, b: Operand): Tensor {
  return binaryOp(maximumRule, 'maximum', a, b);
}

/** Elementwise min(a, b); the gradient goes to a on ties. */
export function minimum(a: Operand, b: Operand): Tensor {
  return binaryOp(minimumRule, 'minimum', a, b);
}

/** a ** b (as Math.pow); d/db is taken as 0 where a <= 0. */
export function pow(a: Operand, b: Operand): Tensor {
  return binaryOp(powRule, 'pow', a, b);
}

const addRule = defineRule('add', {
  forward: ([a, b]) => binaryForward('add', a, b),
  vjp: (g, [a, b], _out, _p, needs) => [needs[0] ? sumTo(g, a.shape) : null, needs[1] ? sumTo(g, b.shape) : null],
});

const subRule = defineRule('sub', {
  forward: ([a, b]) => binaryForward('sub', a, b),
  vjp: (g, [a, b], _out, _p, needs) => [needs[0] ? sumTo(g, a.shape) : null, needs[1] ? scope(() => neg(sumTo(g, b.shape))) : null],
});

const mulRule = defineRule('mul', {
  forward: ([a, b]) => binaryForward('mul', a, b),
  vjp: (g, [a, b], _out, _p, needs) =>
    scope(() => [needs[0] ? sumTo(mul(g, b), a.shape) : null, needs[1] ? sumTo(mul(g, a), b.shape) : null]),
});

const divRule = defineRule('div', {
  forward: ([a, b]) => binaryForward('div', a, b),
  // d(a/b)/db = -a/b^2 = -out/b
  vjp: (g, [a, b], out, _p, needs) =>
    scope(() => [needs[0] ? sumTo(div(g, b), a.shape) : null, needs[1] ? neg(sumTo(div(mul(g, out), b), b.shape)) : null]),
});

const maximumRule = defineRule('maximum', {
  forward: ([a, b]) => binaryForward('maximum', a, b),
  vjp: (g, [a, b]) =>
    scope(() => {
      const toA = greaterEqual(a, b);
      return [sumTo(where(toA, g, 0), a.shape), sumTo(where(toA, 0, g), b.shape)];
    }),
});

const minimumRule = defineRule('minimum', {
  forward: ([a, b]) => binaryForward('minimum', a, b),
  vjp: (g, [a, b]) =>
    scope(() => {
      const toA = greaterEqual(b, a);
      return [sumTo(where(toA, g, 0), a.shape), sumTo(where(toA, 0, g), b.shape)];
    }),
});

const powRule = defineRule('pow', {
  forward: ([a, b]) => binaryForward('pow', a, b),
  // d/da = b a^(b-1), 0 where b = 0 (a^0 is constant); d/db = out log(a) where a > 0, else 0
  vjp: (g, [a, b], out) =>
    scope(() => [
      sumTo(mul(g, where(equal(b, 0), 0, mul(b, pow(a, sub(b, 1))))), a.shape),
      sumTo(where(greater(a, 0), mul(g, mul(out, log(a))), 0), b.shape),
    ]),
});

export const rules = {
  add: addRule,
  sub: subRule,
  mul: mulRule,
  div: divRule,
  maximum: maximumRule,
  minimum: minimumRule,
  pow: powRule,
};
