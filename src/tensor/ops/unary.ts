/**
 * Unary elementwise ops: exp, log, sigmoid, tanh, elu (alpha 1), relu,
 * softplus, sqrt, neg, abs, square, reciprocal.
 *
 * The kernels use their own vectorised exp and log (Cephes-style range
 * reduction and polynomials, no FMA: the same bits on every CPU), accurate to
 * about 1-2 float32 ulp (sigmoid, softplus: ~3) with IEEE edges: exp(-104) =
 * 0, exp(89) = +Inf, log(0) = -Inf, log(x < 0) = NaN, sigmoid(+-100) = 1 / 0
 * exactly, tanh(+-Inf) = +-1; NaN in, NaN out. sqrt, neg, abs, square and
 * reciprocal are single correctly rounded IEEE operations.
 *
 * Each vjp is one fused backward kernel over (x, y, g): relu and abs take
 * derivative 0 at x = 0; elu's uses e^x = y + 1.
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { parallel, ELEMENTWISE_COST } from '../dispatch.js';
import { defineRule, apply, type Rule } from '../primitive.js';
import { ValueError, describe } from '../errors.js';

/** Kernel op codes of assembly/elementwise.ts `unary` / `unary_grad`. */
export const UNARY_OPS = {
  exp: 0,
  log: 1,
  sigmoid: 2,
  tanh: 3,
  elu: 4,
  relu: 5,
  softplus: 6,
  sqrt: 7,
  neg: 8,
  abs: 9,
  square: 10,
  reciprocal: 11,
} as const;
export type UnaryOpName = keyof typeof UNARY_OPS;

// Rough cost per element in flops, at least a memory-bound op's (decides whether splitting over threads pays).
const E = ELEMENTWISE_COST;
const COST: Record<UnaryOpName, number> = {
  exp: 20, log: 30, sigmoid: 25, tanh: 40, elu: 20, relu: E, softplus: 60,
  sqrt: E, neg: E, abs: E, square: E, reciprocal: E,
};

function unaryForward(name: UnaryOpName, x: Tensor): Tensor {
  const y = empty(x.shape);
  parallel('unary', [UNARY_OPS[name], x.ptr, y.ptr], x.size, { cost: COST[name], grain: 16 });
  return y;
}

/**
 * The activations an op can apply to its own fresh output (conv2d, the gate
 * blends): op(..., { activation }) is activation(op(...)) to the bit without
 * keeping the pre-activation, which a training step would otherwise hold until
 * the backward pass. The vjp takes the derivative from the output (y > 0
 * exactly where the input is; for elu, e^x = y + 1).
 */
export type FusedActivation = 'elu' | 'relu';
const FUSED_ACTIVATIONS: readonly FusedActivation[] = ['elu', 'relu'];

/** An `activation` option checked: one of FusedActivation, or null when undefined. */
export function readActivation(fn: string, act: unknown): FusedActivation | null {
  if (act === undefined) return null;
  if (!FUSED_ACTIVATIONS.includes(act as FusedActivation)) {
    throw new ValueError(`${fn}: activation must be one of ${FUSED_ACTIVATIONS.map((a) => `'${a}'`).join(', ')} or undefined, got ${describe(act)}`);
  }
  return act as FusedActivation;
}

/**
 * Apply `name` to `y` in place: for an op to activate the fresh output it is
 * about to return (nothing else has seen it yet). Not recorded.
 */
export function activateInPlace(name: UnaryOpName, y: Tensor): void {
  parallel('unary', [UNARY_OPS[name], y.ptr, y.ptr], y.size, { cost: COST[name], grain: 16 });
}

/**
 * dx = f'(x) * g in one pass over (x, y = f(x), g): the backward kernel every
 * unary vjp calls (exported for fused ops that reuse it). Not recorded.
 */
export function unaryGrad(name: UnaryOpName, x: Tensor, y: Tensor, g: Tensor): Tensor {
  const dx = empty(x.shape);
  parallel('unary_grad', [UNARY_OPS[name], x.ptr, y.ptr, g.ptr, dx.ptr], x.size, { cost: COST[name], grain: 16 });
  return dx;
}

function unaryRule(name: UnaryOpName): Rule<void> {
  return defineRule(name, {
    forward: ([x]) => unaryForward(name, x),
    vjp: (g, [x], y) => [unaryGrad(name, x, y, g)],
  });
}

const expRule = unaryRule('exp');
const logRule = unaryRule('log');
const sigmoidRule = unaryRule('sigmoid');
const tanhRule = unaryRule('tanh');
const eluRule = unaryRule('elu');
const reluRule = unaryRule('relu');
const softplusRule = unaryRule('softplus');
const sqrtRule = unaryRule('sqrt');
const negRule = unaryRule('neg');
const absRule = unaryRule('abs');
const squareRule = unaryRule('square');
const reciprocalRule = unaryRule('reciprocal');

function unary(rule: Rule<void>, x: Tensor): Tensor {
  checkTensor(rule.name, 'x', x);
  return apply(rule, [x], undefined);
}

/** e^x. */
export function exp(x: Tensor): Tensor {
  return unary(expRule, x);
}

/** Natural logarithm (-Inf at 0, NaN below). */
export function log(x: Tensor): Tensor {
  return unary(logRule, x);
}

/** 1 / (1 + e^-x). */
export function sigmoid(x: Tensor): Tensor {
  return unary(sigmoidRule, x);
}

/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unary(tanhRule, x);
}

/** ELU with alpha 1 (Clevert et al. 2016): x for x > 0, e^x - 1 otherwise. */
export function elu(x: Tensor): Tensor {
  return unary(eluRule, x);
}

/** max(x, 0); derivative 0 at 0. */
export function relu(x: Tensor): Tensor {
  return unary(reluRule, x);
}

/** log(1 + e^x), computed stably. */
export function softplus(x: Tensor): Tensor {
  return unary(softplusRule, x);
}

/** Square root (NaN below 0). */
export function sqrt(x: Tensor): Tensor {
  return unary(sqrtRule, x);
}

/** -x. */
export function neg(x: Tensor): Tensor {
  return unary(negRule, x);
}

/** |x|; derivative 0 at 0. */
export function abs(x: Tensor): Tensor {
  return unary(absRule, x);
}

/** x * x. */
export function square(x: Tensor): Tensor {
  return unary(squareRule, x);
}

/** 1 / x. */
export function reciprocal(x: Tensor): Tensor {
  return unary(reciprocalRule, x);
}

export const rules = {
  exp: expRule,
  log: logRule,
  sigmoid: sigmoidRule,
  tanh: tanhRule,
  elu: eluRule,
  relu: reluRule,
  softplus: softplusRule,
  sqrt: sqrtRule,
  neg: negRule,
  abs: absRule,
  square: squareRule,
  reciprocal: reciprocalRule,
};
