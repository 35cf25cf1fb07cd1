/**
 * Optimizers as pure functions over param trees (in the manner of optax):
 * `init(params) -> state` and `update(params, grads, state, step?) ->
 * [newParams, newState]`. An update runs in its own scope: it frees every
 * intermediate, disposes nothing it was given, and returns trees of fresh
 * tensors only (never one of its inputs), so the caller may dispose the old
 * params, grads and state afterwards.
 *
 * Parameters are paired with their gradients (and optimizer slots) by dotted
 * name (see tree.ts), so grads must hold exactly the names of params.
 *
 * Every state holds `count`, a 0-d tensor with the number of updates applied
 * (exact in float32 up to 2^24). `step`, when given, overrides it as the
 * index of this update (0 for the first): it picks the learning rate from a
 * schedule and Adam's bias correction, and the new count is step + 1.
 *
 * Laws, per tensor, with g the gradient plus weightDecay · p:
 *   SGD:        p' = p - lr · g
 *   momentum:   v' = mu · v + g;  p' = p - lr · v'                (TensorFlow / PyTorch form)
 *   Nesterov:   v' = mu · v + g;  p' = p - lr · (g + mu · v')
 *   Adam:       m' = b1 · m + (1 - b1) · g;  v' = b2 · v + (1 - b2) · g²
 *               p' = p - lr · (m' / c1) / (sqrt(v' / c2) + eps),  c1 = 1 - b1^t, c2 = 1 - b2^t, t = step + 1
 *
 * Gradient transforms (clipByValue, clipByGlobalNorm) are stateless functions
 * of a grads tree; `withGradTransforms(opt, ...transforms)` applies them in
 * order before any optimizer's update.
 */
import { Tensor, scope, checkTensor } from '../tensor/tensor.js';
import { scalar, zeros } from '../tensor/create.js';
import { ConfigError, ValueError, describe } from '../tensor/errors.js';
import { add, div, maximum, minimum, mul, sub } from '../tensor/ops/binary.js';
import { sum } from '../tensor/ops/reduce.js';
import { sqrt, square } from '../tensor/ops/unary.js';
import { checkSameTree, flattenParams, rebuild, treeMap } from './tree.js';
import type { Schedule } from './schedule.js';

export interface Optimizer<S> {
  init(params: unknown): S;
  update<P>(params: P, grads: P, state: S, step?: number): [P, S];
}

/** A stateless transformation of a gradient tree (clipping). */
export type GradTransform = <T>(grads: T) => T;

export interface SgdOptions {
  lr: number | Schedule;
  /** Default 0 (plain SGD, no velocity slot). */
  momentum?: number;
  /** Default false; needs momentum > 0. */
  nesterov?: boolean;
  /** Coupled L2 weight decay added to the gradient; default 0. */
  weightDecay?: number;
}

export interface SgdState {
  count: Tensor;
  /** Present when momentum > 0: a tree like params. */
  velocity?: unknown;
}

export interface AdamOptions {
  lr: number | Schedule;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Coupled L2 weight decay added to the gradient; default 0. */
  weightDecay?: number;
}

export interface AdamState {
  count: Tensor;
  m: unknown;
  v: unknown;
}

// ---- validation ----------------------------------------------------------------------

function checkOpts(fn: string, opts: unknown): Record<string, unknown> {
  if (typeof opts !== 'object' || opts === null) throw new ConfigError(`${fn}: options must be an object, got ${describe(opts)}`);
  return opts as Record<string, unknown>;
}

function numIn(fn: string, o: Record<string, unknown>, field: string, dflt: number, ok: (x: number) => boolean, want: string): number {
  const v = o[field] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new ConfigError(`${fn}: ${field} must be ${want}, got ${describe(o[field])}`);
  return v;
}

function lrOf(fn: string, lr: unknown): (step: number) => number {
  if (typeof lr === 'function') {
    return (step) => {
      const v = (lr as Schedule)(step);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ValueError(`${fn}: the schedule gave ${describe(v)} at step ${step}; expected a non-negative number`);
      return v;
    };
  }
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new ConfigError(`${fn}: lr must be a non-negative number or a schedule (step) => lr, got ${describe(lr)}`);
  return () => lr;
}

const MAX_COUNT = 2 ** 24;

/** The index of this update: `step` if given, else the state's count. */
function stepOf(fn: string, state: { count?: unknown }, step: unknown): number {
  if (step !== undefined) {
    if (!Number.isInteger(step) || (step as number) < 0 || (step as number) >= MAX_COUNT) {
      throw new ValueError(`${fn}: step must be an integer in [0, 2^24), got ${describe(step)}`);
    }
    return step as number;
  }
  checkTensor(fn, 'state.count', state.count);
  const t = state.count.item();
  if (!Number.isInteger(t) || t < 0 || t >= MAX_COUNT) throw new ValueError(`${fn}: state.count must hold an integer in [0, 2^24), got ${describe(t)}`);
  return t;
}

function checkState(fn: string, state: unknown, slots: readonly string[]): Record<string, unknown> {
  if (typeof state !== 'object' || state === null) throw new ValueError(`${fn}: state must be the object init() returned, got ${describe(state)}`);
  const s = state as Record<string, unknown>;
  for (const slot of slots) if (s[slot] === undefined) throw new ValueError(`${fn}: state has no ${slot} (was it made by this optimizer's init?)`);
  return s;
}

// ---- SGD -------------------------------------------------------------------------------

/** Stochastic gradient descent with optional (Nesterov) momentum and weight decay. */
export function sgd(opts: SgdOptions): Optimizer<SgdState> {
  const fn = 'sgd';
  const o = checkOpts(fn, opts);
  const lrAt = lrOf(fn, o.lr);
  const mu = numIn(fn, o, 'momentum', 0, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  const wd = numIn(fn, o, 'weightDecay', 0, (x) => x >= 0, 'a non-negative number');
  const nesterov = o.nesterov ?? false;
  if (typeof nesterov !== 'boolean') throw new ConfigError(`${fn}: nesterov must be a boolean, got ${describe(o.nesterov)}`);
  if (nesterov && mu === 0) throw new ConfigError(`${fn}: nesterov needs momentum > 0`);
  return {
    init(params) {
      flattenParams(params);
      const count = scalar(0);
      return mu > 0 ? { count, velocity: treeMap(params, (t) => zeros(t.shape)) } : { count };
    },
    update<P>(params: P, grads: P, state: SgdState, step?: number): [P, SgdState] {
      const f = 'sgd.update';
      const s = checkState(f, state, mu > 0 ? ['count', 'velocity'] : ['count']);
      return scope(() => {
        const [fp, fg, fv] = checkSameTree(f, mu > 0 ? [params, grads, s.velocity] : [params, grads], ['params', 'grads', 'state.velocity']);
        const t = stepOf(f, s, step);
        const lr = lrAt(t);
        const newP = new Map<string, Tensor>();
        const newV = new Map<string, Tensor>();
        for (const [name, p] of fp) {
          let g = fg.get(name)!;
          if (wd > 0) g = add(g, mul(p, wd));
          let d = g;
          if (mu > 0) {
            const v = add(mul(fv.get(name)!, mu), g);
            newV.set(name, v);
            d = nesterov ? add(g, mul(v, mu)) : v;
          }
          newP.set(name, sub(p, mul(d, lr)));
        }
        const count = scalar(t + 1);
        const newState: SgdState = mu > 0 ? { count, velocity: rebuild(params, newV) } : { count };
        return [rebuild(params, newP), newState] as [P, SgdState];
      });
    },
  };
}

// ---- Adam ------------------------------------------------------------------------------

/** Adam (Kingma & Ba 2015) with bias correction and optional coupled weight decay. */
export function adam(opts: AdamOptions): Optimizer<AdamState> {
  const fn = 'adam';
  const o = checkOpts(fn, opts);
  const lrAt = lrOf(fn, o.lr);
  const b1 = numIn(fn, o, 'beta1', 0.9, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  const b2 = numIn(fn, o, 'beta2', 0.999, (x) => x >= 0 && x < 1, 'a number in [0, 1)');
  const eps = numIn(fn, o, 'eps', 1e-8, (x) => x > 0, 'a positive number');
  const wd = numIn(fn, o, 'weightDecay', 0, (x) => x >= 0, 'a non-negative number');
  return {
    init(params) {
      flattenParams(params);
      return { count: scalar(0), m: treeMap(params, (t) => zeros(t.shape)), v: treeMap(params, (t) => zeros(t.shape)) };
    },
    update<P>(params: P, grads: P, state: AdamState, step?: number): [P, AdamState] {
      const f = 'adam.update';
      const s = checkState(f, state, ['count', 'm', 'v']);
      return scope(() => {
        const [fp, fg, fm, fv] = checkSameTree(f, [params, grads, s.m, s.v], ['params', 'grads', 'state.m', 'state.v']);
        const t = stepOf(f, s, step);
        const lr = lrAt(t);
        const c1 = 1 - b1 ** (t + 1);
        const c2 = 1 - b2 ** (t + 1);
        const newP = new Map<string, Tensor>();
        const newM = new Map<string, Tensor>();
        const newV = new Map<string, Tensor>();
        for (const [name, p] of fp) {
          let g = fg.get(name)!;
          if (wd > 0) g = add(g, mul(p, wd));
          const m = add(mul(fm.get(name)!, b1), mul(g, 1 - b1));
          const v = add(mul(fv.get(name)!, b2), mul(square(g), 1 - b2));
          newM.set(name, m);
          newV.set(name, v);
          const denom = add(sqrt(mul(v, 1 / c2)), eps);
          newP.set(name, sub(p, div(mul(m, lr / c1), denom)));
        }
        return [rebuild(params, newP), { count: scalar(t + 1), m: rebuild(params, newM), v: rebuild(params, newV) }] as [P, AdamState];
      });
    },
  };
}

// ---- gradient transforms -------------------------------------------------------------

/** Clip every gradient element to [-limit, limit] (the papers clip at 0.7). */
export function clipByValue(limit: number): GradTransform {
  if (typeof limit !== 'number' || !(limit > 0) || !Number.isFinite(limit)) throw new ConfigError(`clipByValue: limit must be a positive number, got ${describe(limit)}`);
  return <T>(grads: T): T => treeMap(grads, (g) => minimum(maximum(g, -limit), limit));
}

/** sqrt(Σ over all tensors of Σ t²), a 0-d tensor. */
export function globalNorm(tree: unknown): Tensor {
  let total: Tensor | null = null;
  for (const t of flattenParams(tree).values()) {
    const s = sum(square(t));
    total = total === null ? s : add(total, s);
  }
  return sqrt(total ?? scalar(0));
}

/**
 * Scale all gradients by maxNorm / max(norm, maxNorm), norm = the global norm
 * over the whole tree: a tree whose norm is within maxNorm is multiplied by
 * exactly 1 (unchanged bits); a larger one is rescaled to norm maxNorm.
 */
export function clipByGlobalNorm(maxNorm: number): GradTransform {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new ConfigError(`clipByGlobalNorm: maxNorm must be a positive number, got ${describe(maxNorm)}`);
  }
  return <T>(grads: T): T => {
    const factor = div(maxNorm, maximum(globalNorm(grads), maxNorm));
    return treeMap(grads, (g) => mul(g, factor));
  };
}

/** `opt` with `transforms` applied, in order, to the gradients before each update. */
export function withGradTransforms<S>(opt: Optimizer<S>, ...transforms: GradTransform[]): Optimizer<S> {
  if (typeof opt !== 'object' || opt === null || typeof opt.update !== 'function' || typeof opt.init !== 'function') {
    throw new ConfigError(`withGradTransforms: opt must be an optimizer { init, update }, got ${describe(opt)}`);
  }
  transforms.forEach((t, i) => {
    if (typeof t !== 'function') throw new ConfigError(`withGradTransforms: transforms[${i}] must be a function, got ${describe(t)}`);
  });
  return {
    init: (params) => opt.init(params),
    update<P>(params: P, grads: P, state: S, step?: number): [P, S] {
      return scope(() => {
        let g = grads;
        for (const t of transforms) g = t(g);
        return opt.update(params, g, state, step);
      });
    },
  };
}
