/**
 * The factored ("what" and "where") readout of Klindt et al. (2017), the
 * mapping the papers fit from a model layer to recorded neurons: each output
 * unit n has a spatial mask s_n [H, W] and a channel mask w_n [C], and
 *
 *   r[b, n] = Σ_{h, w, c} x[b, h, w, c] · s_n[h, w] · w_n[c] + bias[n].
 *
 * Params: spatial [H, W, N], channel [C, N], bias [N]. The apply contracts
 * channels first with one matrix product, [B·H·W, C] · [C, N] -> [B, H·W, N],
 * then weights by the spatial masks and sums over positions: two ops for all
 * units, no per-unit loop.
 *
 * Default init: spatial ~ N(0, 1 / (H·W)), channel ~ N(0, 1 / C), bias 0, so
 * a prediction starts on the scale of the features.
 */
import { Tensor, checkTensor } from '../tensor/tensor.js';
import { Key, split } from '../tensor/random.js';
import { scalar } from '../tensor/create.js';
import { ConfigError, ShapeError, ValueError, describe } from '../tensor/errors.js';
import { add, mul } from '../tensor/ops/binary.js';
import { matmul } from '../tensor/ops/matmul.js';
import { sum } from '../tensor/ops/reduce.js';
import { reshape } from '../tensor/ops/shape.js';
import { checkInitSpec, constantInit, initialize, type InitSpec } from './init.js';
import { l1, laplacianPenalty } from './losses.js';

export interface ReadoutConfig {
  height: number;
  width: number;
  channels: number;
  /** Number of output units (neurons) N. */
  units: number;
  /** Default true. */
  bias?: boolean;
  /** Default normal with std 1/sqrt(H·W). */
  spatialInit?: InitSpec;
  /** Default normal with std 1/sqrt(C). */
  channelInit?: InitSpec;
  /** Default 0 (e.g. a neuron's mean response). */
  biasInit?: number;
}

export interface ReadoutParams {
  spatial: Tensor;
  channel: Tensor;
  bias?: Tensor;
}

function checkConfig(fn: string, config: unknown): { h: number; w: number; c: number; n: number; bias: boolean } {
  if (typeof config !== 'object' || config === null) throw new ConfigError(`${fn}: config must be an object, got ${describe(config)}`);
  const c = config as Record<string, unknown>;
  const pos = (field: string): number => {
    const v = c[field];
    if (!Number.isInteger(v) || (v as number) < 1) throw new ConfigError(`${fn}: config.${field} must be a positive integer, got ${describe(v)}`);
    return v as number;
  };
  const bias = c.bias ?? true;
  if (typeof bias !== 'boolean') throw new ConfigError(`${fn}: config.bias must be a boolean, got ${describe(c.bias)}`);
  return { h: pos('height'), w: pos('width'), c: pos('channels'), n: pos('units'), bias };
}

/** Params of a factored readout from [H, W, C] features to N units. */
export function readoutInit(k: Key, config: ReadoutConfig): ReadoutParams {
  const fn = 'readoutInit';
  if (!(k instanceof Key)) throw new ValueError(`${fn}: key must be a Key, got ${describe(k)}`);
  const g = checkConfig(fn, config);
  const spatialSpec: InitSpec = config.spatialInit ?? { kind: 'normal', std: 1 / Math.sqrt(g.h * g.w) };
  const channelSpec: InitSpec = config.channelInit ?? { kind: 'normal', std: 1 / Math.sqrt(g.c) };
  checkInitSpec(fn, 'config.spatialInit', spatialSpec);
  checkInitSpec(fn, 'config.channelInit', channelSpec);
  const biasValue = config.biasInit ?? 0;
  if (typeof biasValue !== 'number' || !Number.isFinite(biasValue)) throw new ConfigError(`${fn}: config.biasInit must be a finite number, got ${describe(biasValue)}`);
  const [ks, kc] = split(k, 2);
  const spatial = initialize(ks, [g.h, g.w, g.n], spatialSpec);
  const channel = initialize(kc, [g.c, g.n], channelSpec);
  return g.bias ? { spatial, channel, bias: constantInit([g.n], biasValue) } : { spatial, channel };
}

/** Predictions [B, N] from features x [B, H, W, C]. */
export function readout(params: ReadoutParams, x: Tensor): Tensor {
  const fn = 'readout';
  if (typeof params !== 'object' || params === null) throw new ValueError(`${fn}: params must be { spatial, channel, bias? }, got ${describe(params)}`);
  checkTensor(fn, 'params.spatial', params.spatial);
  checkTensor(fn, 'params.channel', params.channel);
  checkTensor(fn, 'x', x);
  const s = params.spatial;
  const w = params.channel;
  if (s.rank !== 3) throw new ShapeError(`${fn}: params.spatial must be [H, W, N], got [${s.shape.join(', ')}]`);
  const [h, wd, n] = s.shape;
  if (w.rank !== 2 || w.shape[1] !== n) throw new ShapeError(`${fn}: params.channel must be [C, ${n}], got [${w.shape.join(', ')}]`);
  const c = w.shape[0];
  if (x.rank !== 4 || x.shape[1] !== h || x.shape[2] !== wd || x.shape[3] !== c) {
    throw new ShapeError(`${fn}: x must be [B, ${h}, ${wd}, ${c}] to match the masks, got [${x.shape.join(', ')}]`);
  }
  if (params.bias !== undefined) {
    checkTensor(fn, 'params.bias', params.bias);
    if (params.bias.rank !== 1 || params.bias.shape[0] !== n) throw new ShapeError(`${fn}: params.bias must be [${n}], got [${params.bias.shape.join(', ')}]`);
  }
  const b = x.shape[0];
  const byChannel = reshape(matmul(reshape(x, [b * h * wd, c]), w), [b, h * wd, n]);
  const r = sum(mul(byChannel, reshape(s, [h * wd, n])), 1);
  return params.bias === undefined ? r : add(r, params.bias);
}

export interface ReadoutPenaltyOptions {
  /** Weight of Σ |spatial| (sparsity of the "where" masks). */
  spatialL1?: number;
  /** Weight of Σ |channel| (sparsity of the "what" weights). */
  channelL1?: number;
  /** Weight of the Laplacian smoothness of each spatial mask (see laplacianPenalty). */
  spatialSmooth?: number;
}

/** λs·Σ|spatial| + λc·Σ|channel| + λsmooth·laplacianPenalty(spatial); 0 weights (the default) leave a term out. */
export function readoutPenalty(params: ReadoutParams, opts: ReadoutPenaltyOptions): Tensor {
  const fn = 'readoutPenalty';
  if (typeof opts !== 'object' || opts === null) throw new ConfigError(`${fn}: options must be an object, got ${describe(opts)}`);
  const weight = (field: keyof ReadoutPenaltyOptions): number => {
    const v = opts[field] ?? 0;
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ConfigError(`${fn}: ${field} must be a non-negative number, got ${describe(opts[field])}`);
    return v;
  };
  const terms: Tensor[] = [];
  const ws = weight('spatialL1');
  const wc = weight('channelL1');
  const wl = weight('spatialSmooth');
  if (ws > 0) terms.push(mul(l1(params.spatial), ws));
  if (wc > 0) terms.push(mul(l1(params.channel), wc));
  if (wl > 0) terms.push(mul(laplacianPenalty(params.spatial), wl));
  if (terms.length === 0) return scalar(0);
  return terms.reduce((a, t) => add(a, t));
}
