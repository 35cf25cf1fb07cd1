/**
 * softmax and logSoftmax along one axis, numerically stable (the max is
 * subtracted before exponentiating), each one fused kernel with a fused
 * backward:
 *   softmax:    y = e^(x - m) / sum e^(x - m),      dx = y (g - sum(g y))
 *   logSoftmax: y = (x - m) - log sum e^(x - m),    dx = g - e^y sum(g)
 * The sums run in an order fixed by the shape (see assembly/softmax.ts), so
 * the results do not depend on the thread count.
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply, type Rule } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';

export interface AxisParams {
  axis: number;
}

// (outer, n, inner) of x around `axis`
function view(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  shape.forEach((d, i) => {
    if (i < axis) outer *= d;
    if (i > axis) inner *= d;
  });
  return [outer, shape[axis], inner];
}

function softmaxRule(name: 'softmax' | 'logSoftmax', log: number): Rule<AxisParams> {
  return defineRule<AxisParams>(name, {
    forward: ([x], { axis }) => {
      const y = empty(x.shape);
      const [outer, n, inner] = view(x.shape, axis);
      parallel('softmax', [x.ptr, y.ptr, outer, n, inner, log], outer * inner, { cost: 30 * n });
      return y;
    },
    vjp: (g, [x], y, { axis }) => {
      const dx = empty(x.shape);
      const [outer, n, inner] = view(x.shape, axis);
      parallel('softmax_grad', [y.ptr, g.ptr, dx.ptr, outer, n, inner, log], outer * inner, { cost: (log ? 25 : 4) * n });
      return [dx];
    },
  });
}

const softmaxR = softmaxRule('softmax', 0);
const logSoftmaxR = softmaxRule('logSoftmax', 1);

function check(fn: string, x: Tensor, axis: number): number {
  checkTensor(fn, 'x', x);
  const r = x.rank;
  if (r === 0) throw new ShapeError(`${fn}: x must have at least one axis, got a 0-d tensor`);
  if (!Number.isInteger(axis) || axis < -r || axis >= r) {
    throw new ValueError(`${fn}: axis must be an integer in [${-r}, ${r - 1}] for x of shape [${x.shape.join(', ')}], got ${describe(axis)}`);
  }
  const a = axis < 0 ? axis + r : axis;
  if (x.shape[a] === 0) throw new ShapeError(`${fn}: axis ${a} of x [${x.shape.join(', ')}] has size 0`);
  return a;
}

/** e^x / sum e^x along `axis` (default: the last). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return apply(softmaxR, [x], { axis: check('softmax', x, axis) });
}

/** x - log sum e^x along `axis` (default: the last). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return apply(logSoftmaxR, [x], { axis: check('logSoftmax', x, axis) });
}

export const rules = { softmax: softmaxR, logSoftmax: logSoftmaxR };
