/**
 * Weight initialisers. Every draw comes from an explicit key, so the same key
 * and shape give the same bits on any run and any thread count.
 *
 * Fans, for the layouts this library uses:
 * - linear [in, out]: fanIn = in, fanOut = out;
 * - conv HWIO [KH, KW, I, O] (and any rank >= 3: receptive field = product of
 *   the leading dims): fanIn = KH·KW·I, fanOut = KH·KW·O;
 * - depthwise [KH, KW, C, M] with `{ depthwise: true }`: each output sees one
 *   input channel, so fanIn = KH·KW and fanOut = KH·KW·M;
 * - a vector [n]: fanIn = fanOut = n.
 *
 * He (Kaiming) normal: N(0, std²) with std = scale·sqrt(2 / fan) (fan = fanIn
 * unless `fan: 'out'`); the papers search scale in [0.25, 2].
 * Glorot (Xavier) uniform: U(-a, a) with a = scale·sqrt(6 / (fanIn + fanOut)).
 */
import { Tensor, sizeOf } from '../tensor/tensor.js';
import { full, randn, uniform } from '../tensor/create.js';
import { Key } from '../tensor/random.js';
import { ConfigError, ShapeError, describe } from '../tensor/errors.js';

export interface FanOptions {
  /** Treat a rank-4 shape as a depthwise filter [KH, KW, C, M]. */
  depthwise?: boolean;
}

export interface HeOptions extends FanOptions {
  /** Multiplies the standard deviation; default 1. */
  scale?: number;
  /** Which fan sets the variance; default 'in'. */
  fan?: 'in' | 'out';
}

export interface GlorotOptions extends FanOptions {
  /** Multiplies the bound of the uniform range; default 1. */
  scale?: number;
}

/**
 * A serialisable initialiser, for layer configs: He normal, Glorot uniform, a
 * plain normal of a given std, or a constant.
 */
export type InitSpec =
  | { kind: 'he'; scale?: number; fan?: 'in' | 'out' }
  | { kind: 'glorot'; scale?: number }
  | { kind: 'normal'; std: number }
  | { kind: 'constant'; value: number };

function checkInitShape(fn: string, shape: unknown): asserts shape is number[] {
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ShapeError(`${fn}: shape must be a non-empty array of positive integers, got ${describe(shape)}`);
  }
}

/** fanIn and fanOut of a weight shape (see the module comment for the layouts). */
export function fans(shape: readonly number[], opts: FanOptions = {}): { fanIn: number; fanOut: number } {
  checkInitShape('fans', shape);
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  if (opts.depthwise) {
    if (shape.length !== 4) throw new ShapeError(`fans: a depthwise filter must be rank 4 [KH, KW, C, M], got ${describe(shape)}`);
    const [kh, kw, , m] = shape;
    return { fanIn: kh * kw, fanOut: kh * kw * m };
  }
  const receptive = sizeOf(shape.slice(0, -2));
  return { fanIn: receptive * shape[shape.length - 2], fanOut: receptive * shape[shape.length - 1] };
}

function checkScale(fn: string, scale: unknown): number {
  if (scale === undefined) return 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) {
    throw new ConfigError(`${fn}: scale must be a positive finite number, got ${describe(scale)}`);
  }
  return scale;
}

/** The He-normal standard deviation for `shape`: scale·sqrt(2 / fan). */
export function heStd(shape: readonly number[], opts: HeOptions = {}): number {
  const scale = checkScale('he', opts.scale);
  const fan = opts.fan ?? 'in';
  if (fan !== 'in' && fan !== 'out') throw new ConfigError(`he: fan must be 'in' or 'out', got ${describe(fan)}`);
  const f = fans(shape, opts);
  return scale * Math.sqrt(2 / (fan === 'in' ? f.fanIn : f.fanOut));
}

/** He (Kaiming) normal initialisation: N(0, (scale·sqrt(2 / fanIn))²). */
export function he(k: Key, shape: readonly number[], opts: HeOptions = {}): Tensor {
  checkInitShape('he', shape);
  return randn(k, shape, heStd(shape, opts));
}

/** The Glorot-uniform bound for `shape`: scale·sqrt(6 / (fanIn + fanOut)). */
export function glorotLimit(shape: readonly number[], opts: GlorotOptions = {}): number {
  const scale = checkScale('glorot', opts.scale);
  const f = fans(shape, opts);
  return scale * Math.sqrt(6 / (f.fanIn + f.fanOut));
}

/** Glorot (Xavier) uniform initialisation: U(-a, a), a = scale·sqrt(6 / (fanIn + fanOut)). */
export function glorot(k: Key, shape: readonly number[], opts: GlorotOptions = {}): Tensor {
  checkInitShape('glorot', shape);
  const a = glorotLimit(shape, opts);
  return uniform(k, shape, -a, a);
}

/** A tensor of `shape` filled with `value` (bias initialisation; the papers search it in [-2, 2]). */
export function constantInit(shape: readonly number[], value = 0): Tensor {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ConfigError(`constantInit: value must be a finite number, got ${describe(value)}`);
  return full(shape, value);
}

/** Check an InitSpec; `field` names it in the error. */
export function checkInitSpec(fn: string, field: string, spec: unknown): asserts spec is InitSpec {
  const bad = (what: string): never => {
    throw new ConfigError(`${fn}: ${field}${what}`);
  };
  if (typeof spec !== 'object' || spec === null) bad(` must be an initialiser { kind: 'he' | 'glorot' | 'normal' | 'constant', ... }, got ${describe(spec)}`);
  const s = spec as Record<string, unknown>;
  const num = (name: string, v: unknown, ok: (x: number) => boolean, want: string): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) bad(`.${name} must be ${want}, got ${describe(v)}`);
  };
  switch (s.kind) {
    case 'he':
      if (s.scale !== undefined) num('scale', s.scale, (x) => x > 0, 'a positive number');
      if (s.fan !== undefined && s.fan !== 'in' && s.fan !== 'out') bad(`.fan must be 'in' or 'out', got ${describe(s.fan)}`);
      return;
    case 'glorot':
      if (s.scale !== undefined) num('scale', s.scale, (x) => x > 0, 'a positive number');
      return;
    case 'normal':
      num('std', s.std, (x) => x >= 0, 'a non-negative number');
      return;
    case 'constant':
      num('value', s.value, () => true, 'a finite number');
      return;
    default:
      bad(`.kind must be 'he', 'glorot', 'normal' or 'constant', got ${describe(s.kind)}`);
  }
}

/** Draw a tensor of `shape` from an InitSpec (the key is unused for 'constant'). */
export function initialize(k: Key, shape: readonly number[], spec: InitSpec, opts: FanOptions = {}): Tensor {
  checkInitSpec('initialize', 'spec', spec);
  checkInitShape('initialize', shape);
  switch (spec.kind) {
    case 'he':
      return he(k, shape, { ...opts, scale: spec.scale, fan: spec.fan });
    case 'glorot':
      return glorot(k, shape, { ...opts, scale: spec.scale });
    case 'normal':
      return randn(k, shape, spec.std);
    case 'constant':
      return constantInit(shape, spec.value);
  }
}
