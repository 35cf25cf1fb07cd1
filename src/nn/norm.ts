/**
 * Normalisation layers, pure: batch norm's running statistics live in a
 * separate STATE tree that `batchNorm` returns updated alongside its output,
 * never mutated in place.
 *
 * Batch norm over x [N, H, W, C] (or any [..., C]: statistics over every axis
 * but the last):
 *   training:  mu = mean(x), var = mean((x - mu)²)  (biased, over N·H·W values)
 *              y = gamma · (x - mu) / sqrt(var + eps) + beta
 *              running.mean' = momentum · running.mean + (1 - momentum) · mu
 *              running.var'  = momentum · running.var  + (1 - momentum) · var · n / (n - 1)
 *              (the running variance is the unbiased estimate, n = N·H·W; n = 1 uses var)
 *   eval:      y = gamma · (x - running.mean) / sqrt(running.var + eps) + beta; state unchanged.
 * The gradient in training flows through mu and var (the full batch-norm
 * gradient); the state update is cut off from differentiation.
 *
 * Layer norm over the trailing axes (Ba et al. 2016), with the papers' init
 * beta = 0, gamma = 1:
 *   y = gamma · (x - mean) / sqrt(var + eps) + beta, mean and var (biased) over `axes`.
 */
import { Tensor, checkTensor } from '../tensor/tensor.js';
import { ones, zeros } from '../tensor/create.js';
import { ConfigError, ShapeError, ValueError, describe } from '../tensor/errors.js';
import { stopGradient } from '../autodiff/index.js';
import { add, div, mul, sub } from '../tensor/ops/binary.js';
import { mean } from '../tensor/ops/reduce.js';
import { sqrt, square } from '../tensor/ops/unary.js';

export interface BatchNormOptions {
  /** Weight of the old running statistics; default 0.9. */
  momentum?: number;
  /** Added to the variance; default 1e-5. */
  eps?: number;
}

export interface BatchNormParams {
  gamma: Tensor;
  beta: Tensor;
}

export interface BatchNormState {
  mean: Tensor;
  var: Tensor;
}

function checkMomentumEps(fn: string, opts: BatchNormOptions): { momentum: number; eps: number } {
  if (typeof opts !== 'object' || opts === null) throw new ConfigError(`${fn}: options must be an object, got ${describe(opts)}`);
  const momentum = opts.momentum ?? 0.9;
  const eps = opts.eps ?? 1e-5;
  if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
    throw new ConfigError(`${fn}: momentum must be a number in [0, 1], got ${describe(opts.momentum)}`);
  }
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) throw new ConfigError(`${fn}: eps must be a positive number, got ${describe(opts.eps)}`);
  return { momentum, eps };
}

/**
 * Params gamma = 1, beta = 0 and state mean = 0, var = 1, each [channels];
 * `config` is the validated { momentum, eps } to pass on to `batchNorm`.
 */
export function batchNormInit(
  channels: number,
  opts: BatchNormOptions = {},
): { params: BatchNormParams; state: BatchNormState; config: Required<BatchNormOptions> } {
  if (!Number.isInteger(channels) || channels < 1) throw new ConfigError(`batchNormInit: channels must be a positive integer, got ${describe(channels)}`);
  const config = checkMomentumEps('batchNormInit', opts);
  return {
    params: { gamma: ones([channels]), beta: zeros([channels]) },
    state: { mean: zeros([channels]), var: ones([channels]) },
    config,
  };
}

export interface BatchNormApplyOptions extends BatchNormOptions {
  training: boolean;
}

function checkVec(fn: string, what: string, t: unknown, c: number): void {
  checkTensor(fn, what, t);
  if (t.rank !== 1 || t.shape[0] !== c) throw new ShapeError(`${fn}: ${what} must have shape [${c}], got [${t.shape.join(', ')}]`);
}

/**
 * Batch norm of x [..., C]; returns [y, newState]. In eval mode newState is
 * `state` itself. See the module comment for the laws.
 */
export function batchNorm(params: BatchNormParams, state: BatchNormState, x: Tensor, opts: BatchNormApplyOptions): [Tensor, BatchNormState] {
  const fn = 'batchNorm';
  if (typeof opts !== 'object' || opts === null || typeof opts.training !== 'boolean') {
    throw new ConfigError(`${fn}: options must include training: boolean, got ${describe(opts?.training)}`);
  }
  const { momentum, eps } = checkMomentumEps(fn, opts);
  checkTensor(fn, 'x', x);
  if (x.rank < 2) throw new ShapeError(`${fn}: x must be [..., C] with a batch axis (rank >= 2), got [${x.shape.join(', ')}]`);
  if (typeof params !== 'object' || params === null) throw new ValueError(`${fn}: params must be { gamma, beta }, got ${describe(params)}`);
  if (typeof state !== 'object' || state === null) throw new ValueError(`${fn}: state must be { mean, var }, got ${describe(state)}`);
  const c = x.shape[x.rank - 1];
  checkVec(fn, 'params.gamma', params.gamma, c);
  checkVec(fn, 'params.beta', params.beta, c);
  checkVec(fn, 'state.mean', state.mean, c);
  checkVec(fn, 'state.var', state.var, c);
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  if (!opts.training) {
    const scale = div(params.gamma, sqrt(add(state.var, eps)));
    return [add(mul(sub(x, state.mean), scale), params.beta), state];
  }
  const n = x.size / c;
  const mu = mean(x, axes);
  const centered = sub(x, mu);
  const v = mean(square(centered), axes);
  const y = add(mul(centered, div(params.gamma, sqrt(add(v, eps)))), params.beta);
  const bessel = n > 1 ? n / (n - 1) : 1;
  const newState: BatchNormState = {
    mean: add(mul(state.mean, momentum), mul(stopGradient(mu), 1 - momentum)),
    var: add(mul(state.var, momentum), mul(stopGradient(v), (1 - momentum) * bessel)),
  };
  return [y, newState];
}

export interface LayerNormParams {
  gamma: Tensor;
  beta: Tensor;
}

/** gamma = 1, beta = 0 of `shape` (the normalised trailing dims, or a suffix of them such as [C]). */
export function layerNormInit(shape: number | readonly number[]): LayerNormParams {
  const s = typeof shape === 'number' ? [shape] : shape;
  if (!Array.isArray(s) || s.length === 0 || !s.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ConfigError(`layerNormInit: shape must be a positive integer or a non-empty array of them, got ${describe(shape)}`);
  }
  return { gamma: ones(s), beta: zeros(s) };
}

export interface LayerNormOptions {
  /** The trailing axes to normalise over (negative or not); default [-1]. */
  axes?: number | readonly number[];
  /** Default 1e-5. */
  eps?: number;
}

/**
 * Layer norm of x over its trailing `axes`. gamma and beta must have the
 * shape of a suffix of x's shape no longer than the normalised axes (e.g.
 * [C], or [H, W, C] when normalising over H, W, C).
 */
export function layerNorm(params: LayerNormParams, x: Tensor, opts: LayerNormOptions = {}): Tensor {
  const fn = 'layerNorm';
  checkTensor(fn, 'x', x);
  if (typeof opts !== 'object' || opts === null) throw new ConfigError(`${fn}: options must be an object, got ${describe(opts)}`);
  const eps = opts.eps ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) throw new ConfigError(`${fn}: eps must be a positive number, got ${describe(opts.eps)}`);
  const r = x.rank;
  const list = opts.axes === undefined ? [-1] : typeof opts.axes === 'number' ? [opts.axes] : opts.axes;
  if (!Array.isArray(list) || list.length === 0 || !list.every((a) => Number.isInteger(a) && a >= -r && a < r)) {
    throw new ConfigError(`${fn}: axes must be a non-empty list of axes of x (rank ${r}), got ${describe(opts.axes)}`);
  }
  const axes = [...new Set(list.map((a) => (a < 0 ? a + r : a)))].sort((p, q) => p - q);
  if (axes.length !== list.length || axes.some((a, i) => a !== r - axes.length + i)) {
    throw new ConfigError(`${fn}: axes must be the trailing axes of x (shape [${x.shape.join(', ')}]), got ${describe(opts.axes)}`);
  }
  if (typeof params !== 'object' || params === null) throw new ValueError(`${fn}: params must be { gamma, beta }, got ${describe(params)}`);
  for (const name of ['gamma', 'beta'] as const) {
    const t = params[name];
    checkTensor(fn, `params.${name}`, t);
    const suffix = x.shape.slice(r - t.rank);
    if (t.rank > axes.length || t.shape.some((d, i) => d !== suffix[i])) {
      throw new ShapeError(
        `${fn}: params.${name} has shape [${t.shape.join(', ')}]; expected a suffix of x's normalised dims [${x.shape.slice(r - axes.length).join(', ')}]`,
      );
    }
  }
  const mu = mean(x, axes, true);
  const centered = sub(x, mu);
  const v = mean(square(centered), axes, true);
  return add(mul(div(centered, sqrt(add(v, eps))), params.gamma), params.beta);
}
