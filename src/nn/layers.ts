/**
 * Layers as pairs of pure functions over plain param trees:
 * `init(key, config) -> params` and `apply(params, x, config) -> y`.
 * Activations are NHWC, conv filters HWIO, linear weights [in, out].
 *
 * Configs are plain JSON-able objects and are validated by both functions: a
 * bad field throws ConfigError naming it (`conv: config.stride must be ...`);
 * an input or param of the wrong shape throws ShapeError. Spatial layers
 * default to 'same' padding (the op default is 'valid').
 */
import { Tensor, checkTensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { Key, split, uniformFloats } from '../tensor/random.js';
import { ConfigError, ShapeError, ValueError, describe } from '../tensor/errors.js';
import { conv2d, type Conv2dPadding } from '../tensor/ops/conv2d.js';
import { depthwiseConv2d } from '../tensor/ops/depthwise.js';
import { matmul } from '../tensor/ops/matmul.js';
import { maxPool as maxPoolOp, avgPool as avgPoolOp } from '../tensor/ops/pool.js';
import { mean } from '../tensor/ops/reduce.js';
import { reshape } from '../tensor/ops/shape.js';
import { add, mul } from '../tensor/ops/binary.js';
import { constantInit, initialize, type InitSpec } from './init.js';
import { ConfigReader } from './config.js';

/** A layer: its params' initialiser and its pure forward function. */
export interface Layer<C, P> {
  init(key: Key, config: C): P;
  apply(params: P, x: Tensor, config: C): Tensor;
}

export type Pair = number | [number, number];

// ---- config validation ------------------------------------------------------------

function padding(r: ConfigReader): Conv2dPadding {
  const v = r.obj.padding ?? 'same';
  if (v === 'same' || v === 'valid') return v;
  if (Number.isInteger(v) && (v as number) >= 0) return v as number;
  if (
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((p) => Array.isArray(p) && p.length === 2 && p.every((d) => Number.isInteger(d) && d >= 0))
  ) {
    return v as [[number, number], [number, number]];
  }
  return r.fail('padding', "'same', 'valid', a non-negative integer or [[top, bottom], [left, right]]");
}

function checkKey(fn: string, k: unknown): asserts k is Key {
  if (!(k instanceof Key)) throw new ValueError(`${fn}: key must be a Key, got ${describe(k)}`);
}

function checkParams(fn: string, params: unknown, fields: readonly string[]): asserts params is Record<string, Tensor> {
  if (typeof params !== 'object' || params === null) throw new ValueError(`${fn}: params must be an object, got ${describe(params)}`);
  for (const f of fields) checkTensor(fn, `params.${f}`, (params as Record<string, unknown>)[f]);
}

function expectShape(fn: string, what: string, t: Tensor, shape: readonly number[]): void {
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${fn}: ${what} must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

function expectNHWC(fn: string, x: Tensor, channels: number): void {
  checkTensor(fn, 'x', x);
  if (x.rank !== 4 || x.shape[3] !== channels) {
    throw new ShapeError(`${fn}: x must be [N, H, W, ${channels}], got [${x.shape.join(', ')}]`);
  }
}

const HE: InitSpec = { kind: 'he', scale: 1 };

// ---- conv -----------------------------------------------------------------------

export interface ConvConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: Pair;
  /** Default 1. */
  stride?: Pair;
  /** Default 'same'. */
  padding?: Conv2dPadding;
  /** Default 1. */
  dilation?: Pair;
  /** Default true. */
  bias?: boolean;
  /** Default He normal, scale 1. */
  init?: InitSpec;
  /** Constant bias value; default 0. */
  biasInit?: number;
}

/** Conv params: w [KH, KW, I, O], b [O] (absent without bias). */
export interface ConvParams {
  w: Tensor;
  b?: Tensor;
}

interface ConvGeo {
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  stride: [number, number];
  padding: Conv2dPadding;
  dilation: [number, number];
  bias: boolean;
}

function convGeo(fn: string, config: unknown): ConvGeo {
  const r = ConfigReader.of(fn, config);
  const [kh, kw] = r.pair('kernelSize');
  return {
    cin: r.posInt('inChannels'),
    cout: r.posInt('outChannels'),
    kh,
    kw,
    stride: r.pair('stride', 1),
    padding: padding(r),
    dilation: r.pair('dilation', 1),
    bias: r.bool('bias', true),
  };
}

/** 2-D convolution (+ bias): x [N, H, W, I] -> [N, OH, OW, O]. */
export const convLayer: Layer<ConvConfig, ConvParams> = {
  init(k, config) {
    const fn = 'conv.init';
    checkKey(fn, k);
    const g = convGeo(fn, config);
    const spec = ConfigReader.of(fn, config).init('init', HE);
    const biasValue = ConfigReader.of(fn, config).num('biasInit', 0);
    const w = initialize(k, [g.kh, g.kw, g.cin, g.cout], spec);
    return g.bias ? { w, b: constantInit([g.cout], biasValue) } : { w };
  },
  apply(params, x, config) {
    const fn = 'conv.apply';
    const g = convGeo(fn, config);
    checkParams(fn, params, g.bias ? ['w', 'b'] : ['w']);
    expectShape(fn, 'params.w', params.w, [g.kh, g.kw, g.cin, g.cout]);
    if (g.bias) expectShape(fn, 'params.b', params.b!, [g.cout]);
    expectNHWC(fn, x, g.cin);
    return conv2d(x, params.w, { stride: g.stride, padding: g.padding, dilation: g.dilation, bias: g.bias ? params.b : undefined });
  },
};

// ---- depthwise ------------------------------------------------------------------

export interface DepthwiseConfig {
  channels: number;
  kernelSize: Pair;
  /** Channel multiplier M; default 1. */
  multiplier?: number;
  stride?: Pair;
  padding?: Conv2dPadding;
  dilation?: Pair;
  /** Default false. */
  bias?: boolean;
  /** Default He normal with depthwise fans (fanIn = KH·KW). */
  init?: InitSpec;
  biasInit?: number;
}

/** Depthwise params: w [KH, KW, C, M], b [C·M] (absent without bias). */
export interface DepthwiseParams {
  w: Tensor;
  b?: Tensor;
}

function depthwiseGeo(fn: string, config: unknown) {
  const r = ConfigReader.of(fn, config);
  const [kh, kw] = r.pair('kernelSize');
  const m = r.posInt('multiplier', 1);
  return {
    c: r.posInt('channels'),
    m,
    kh,
    kw,
    stride: r.pair('stride', 1),
    padding: padding(r),
    dilation: r.pair('dilation', 1),
    bias: r.bool('bias', false),
  };
}

/** Depthwise convolution: x [N, H, W, C] -> [N, OH, OW, C·M] (channel c·M + m from input channel c). */
export const depthwiseLayer: Layer<DepthwiseConfig, DepthwiseParams> = {
  init(k, config) {
    const fn = 'depthwise.init';
    checkKey(fn, k);
    const g = depthwiseGeo(fn, config);
    const spec = ConfigReader.of(fn, config).init('init', HE);
    const biasValue = ConfigReader.of(fn, config).num('biasInit', 0);
    const w = initialize(k, [g.kh, g.kw, g.c, g.m], spec, { depthwise: true });
    return g.bias ? { w, b: constantInit([g.c * g.m], biasValue) } : { w };
  },
  apply(params, x, config) {
    const fn = 'depthwise.apply';
    const g = depthwiseGeo(fn, config);
    checkParams(fn, params, g.bias ? ['w', 'b'] : ['w']);
    expectShape(fn, 'params.w', params.w, [g.kh, g.kw, g.c, g.m]);
    if (g.bias) expectShape(fn, 'params.b', params.b!, [g.c * g.m]);
    expectNHWC(fn, x, g.c);
    return depthwiseConv2d(x, params.w, { stride: g.stride, padding: g.padding, dilation: g.dilation, bias: g.bias ? params.b : undefined });
  },
};

// ---- depth-separable ------------------------------------------------------------

export interface SeparableConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: Pair;
  /** Depthwise channel multiplier; default 1. */
  multiplier?: number;
  stride?: Pair;
  padding?: Conv2dPadding;
  dilation?: Pair;
  /** Bias on the pointwise conv; default true. */
  bias?: boolean;
  /** Default He normal (depthwise fans). */
  depthwiseInit?: InitSpec;
  /** Default He normal. */
  pointwiseInit?: InitSpec;
  biasInit?: number;
}

export interface SeparableParams {
  /** w [KH, KW, I, M]. */
  depthwise: { w: Tensor };
  /** w [1, 1, I·M, O], b [O]. */
  pointwise: ConvParams;
}

function separableParts(fn: string, config: unknown): { dw: DepthwiseConfig; pw: ConvConfig } {
  const r = ConfigReader.of(fn, config);
  const m = r.posInt('multiplier', 1);
  const cin = r.posInt('inChannels');
  const dw: DepthwiseConfig = {
    channels: cin,
    kernelSize: r.obj.kernelSize as Pair,
    multiplier: m,
    stride: r.obj.stride as Pair | undefined,
    padding: r.obj.padding as Conv2dPadding | undefined,
    dilation: r.obj.dilation as Pair | undefined,
    bias: false,
    init: r.init('depthwiseInit', HE),
  };
  const pw: ConvConfig = {
    inChannels: cin * m,
    outChannels: r.posInt('outChannels'),
    kernelSize: 1,
    bias: r.bool('bias', true),
    init: r.init('pointwiseInit', HE),
    biasInit: r.num('biasInit', 0),
  };
  depthwiseGeo(fn, dw);
  return { dw, pw };
}

/** Depth-separable convolution: a depthwise conv, then a 1x1 conv (+ bias). */
export const separableLayer: Layer<SeparableConfig, SeparableParams> = {
  init(k, config) {
    const fn = 'separable.init';
    checkKey(fn, k);
    const { dw, pw } = separableParts(fn, config);
    const [k1, k2] = split(k, 2);
    return { depthwise: depthwiseLayer.init(k1, dw) as { w: Tensor }, pointwise: convLayer.init(k2, pw) };
  },
  apply(params, x, config) {
    const fn = 'separable.apply';
    const { dw, pw } = separableParts(fn, config);
    if (typeof params !== 'object' || params === null) throw new ValueError(`${fn}: params must be { depthwise, pointwise }, got ${describe(params)}`);
    return convLayer.apply(params.pointwise, depthwiseLayer.apply(params.depthwise, x, dw), pw);
  },
};

// ---- linear -----------------------------------------------------------------------

export interface LinearConfig {
  inFeatures: number;
  outFeatures: number;
  /** Default true. */
  bias?: boolean;
  /** Default He normal, scale 1. */
  init?: InitSpec;
  biasInit?: number;
}

/** Linear params: w [in, out], b [out]. */
export interface LinearParams {
  w: Tensor;
  b?: Tensor;
}

function linearGeo(fn: string, config: unknown) {
  const r = ConfigReader.of(fn, config);
  return {
    fin: r.posInt('inFeatures'),
    fout: r.posInt('outFeatures'),
    bias: r.bool('bias', true),
  };
}

/** x [..., in] · w + b -> [..., out]. */
export const linearLayer: Layer<LinearConfig, LinearParams> = {
  init(k, config) {
    const fn = 'linear.init';
    checkKey(fn, k);
    const g = linearGeo(fn, config);
    const spec = ConfigReader.of(fn, config).init('init', HE);
    const biasValue = ConfigReader.of(fn, config).num('biasInit', 0);
    const w = initialize(k, [g.fin, g.fout], spec);
    return g.bias ? { w, b: constantInit([g.fout], biasValue) } : { w };
  },
  apply(params, x, config) {
    const fn = 'linear.apply';
    const g = linearGeo(fn, config);
    checkParams(fn, params, g.bias ? ['w', 'b'] : ['w']);
    expectShape(fn, 'params.w', params.w, [g.fin, g.fout]);
    if (g.bias) expectShape(fn, 'params.b', params.b!, [g.fout]);
    checkTensor(fn, 'x', x);
    if (x.rank < 1 || x.shape[x.rank - 1] !== g.fin) {
      throw new ShapeError(`${fn}: x must be [..., ${g.fin}], got [${x.shape.join(', ')}]`);
    }
    const lead = x.shape.slice(0, -1);
    const x2 = x.rank === 2 ? x : reshape(x, [-1, g.fin]);
    let y = matmul(x2, params.w);
    if (g.bias) y = add(y, params.b!);
    return x.rank === 2 ? y : reshape(y, [...lead, g.fout]);
  },
};

// ---- pooling, flatten ---------------------------------------------------------------

export interface PoolConfig {
  size: Pair;
  /** Default: the window size. */
  stride?: Pair;
  /** Default 'valid'. */
  padding?: 'same' | 'valid';
}

function poolOpts(fn: string, config: unknown): { size: [number, number]; stride: [number, number]; padding: 'same' | 'valid' } {
  const r = ConfigReader.of(fn, config);
  const size = r.pair('size');
  const stride = r.has('stride') ? r.pair('stride') : size;
  const padding = r.oneOf('padding', ['same', 'valid'] as const, 'valid');
  return { size, stride, padding };
}

/** Max pooling of x [N, H, W, C] (TensorFlow semantics; see ops/pool.ts). */
export function maxPool(x: Tensor, config: PoolConfig): Tensor {
  return maxPoolOp(x, poolOpts('maxPool', config));
}

/** Average pooling of x [N, H, W, C] over the window positions inside the input. */
export function avgPool(x: Tensor, config: PoolConfig): Tensor {
  return avgPoolOp(x, poolOpts('avgPool', config));
}

/** Mean over H and W: [N, H, W, C] -> [N, C] ([N, 1, 1, C] with keepDims). */
export function globalAvgPool(x: Tensor, keepDims = false): Tensor {
  checkTensor('globalAvgPool', 'x', x);
  if (x.rank !== 4) throw new ShapeError(`globalAvgPool: x must be [N, H, W, C], got [${x.shape.join(', ')}]`);
  return mean(x, [1, 2], keepDims);
}

/** [N, ...] -> [N, product of the rest] (a view). */
export function flatten(x: Tensor): Tensor {
  checkTensor('flatten', 'x', x);
  if (x.rank < 1) throw new ShapeError(`flatten: x must have a batch axis, got a scalar`);
  const n = x.shape[0];
  return reshape(x, [n, n === 0 ? 0 : x.size / n]);
}

// ---- dropout ------------------------------------------------------------------------

/**
 * Inverted dropout: in training, each element is kept with probability
 * 1 - rate and scaled by 1 / (1 - rate), so E[y] = x; outside training (or at
 * rate 0) x itself is returned. Element i is dropped when the key's i-th
 * uniform draw u_i (24-bit, in [0, 1)) is below `rate`: the same key gives the
 * same mask for the same shape.
 */
export function dropout(k: Key, x: Tensor, rate: number, training: boolean): Tensor {
  checkKey('dropout', k);
  checkTensor('dropout', 'x', x);
  if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) throw new ConfigError(`dropout: rate must be a number in [0, 1), got ${describe(rate)}`);
  if (typeof training !== 'boolean') throw new ConfigError(`dropout: training must be a boolean, got ${describe(training)}`);
  if (!training || rate === 0) return x;
  const u = uniformFloats(k, x.size);
  const keep = 1 / (1 - rate);
  const mask = new Float32Array(x.size);
  for (let i = 0; i < u.length; i++) mask[i] = u[i] >= rate ? keep : 0;
  return mul(x, tensor(mask, x.shape));
}
