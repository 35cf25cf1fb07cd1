/**
 * What the standard ConvRNN cells of nayebi2022 §A.3 (eqs. 2–9: time decay,
 * SimpleRNN, GRU, LSTM, UGRNN, IntersectionRNN) share: their common config
 * fields, the shape and argument checks of the Cell contract, and the fused
 * gate convolutions.
 *
 * Fused gates: a cell with k gates computes W_1 * x, ..., W_k * x as ONE conv
 * of x to k·C channels (the stacked filter [W_1; ...; W_k], carrying the
 * gates' biases b_1..b_k) and U_1 * s, ..., U_k * s as one bias-free conv of
 * s to k·C channels, then slices gate g out of channels [g·C, (g+1)·C). For a
 * full conv this is exactly the k separate convs. In the depth-separable form
 * (`separable: true`) the stacked filter is itself depth-separable: one
 * depthwise KxK filter per input channel, shared by the k gates, then a 1x1
 * conv to k·C channels.
 */
import { Tensor, checkTensor } from '../../tensor/tensor.js';
import { Key } from '../../tensor/random.js';
import { zeros } from '../../tensor/create.js';
import { ShapeError, ValueError, describe } from '../../tensor/errors.js';
import { slice } from '../../tensor/ops/layout.js';
import type { ConfigReader } from '../../nn/config.js';
import type { InitSpec } from '../../nn/init.js';
import { layerNorm, type LayerNormParams } from '../../nn/norm.js';
import type { CellConvSpec } from './conv.js';
import type { Cell } from '../cell.js';

/** The config fields of every cell with convolutions (all but time decay). */
export type ConvCellConfig = {
  /** Kernel size of the W and U convs; default 3. */
  readonly kernelSize: number;
  /** Depth-separable W and U convs; default false. */
  readonly separable: boolean;
  /** Initialiser of the conv filters; default He normal, scale 1. */
  readonly init: InitSpec;
  /** Constant initial value of the gate biases b; default 0. */
  readonly biasInit: number;
};

export const CONV_CELL_KEYS = ['kernelSize', 'separable', 'init', 'biasInit'] as const;

export function readConvCellConfig(r: ConfigReader): ConvCellConfig {
  return {
    kernelSize: r.posInt('kernelSize', 3),
    separable: r.bool('separable', false),
    init: r.init('init', { kind: 'he', scale: 1 }),
    biasInit: r.num('biasInit', 0),
  };
}

/** inputShape as [N, H, W, C] of positive integers. */
export function checkInputShape(fn: string, inputShape: unknown): [number, number, number, number] {
  if (!Array.isArray(inputShape) || inputShape.length !== 4 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ShapeError(`${fn}: inputShape must be [N, H, W, C] of positive integers, got ${describe(inputShape)}`);
  }
  return [inputShape[0], inputShape[1], inputShape[2], inputShape[3]];
}

export function checkKey(fn: string, k: unknown): asserts k is Key {
  if (!(k instanceof Key)) throw new ValueError(`${fn}: key must be a Key, got ${describe(k)}`);
}

/** Zeros of the input's shape: the papers' cells start from rest. */
export function restState(fn: string, inputShape: unknown): Tensor {
  return zeros(checkInputShape(fn, inputShape));
}

/** params (or state) must be an object holding each of `fields`. */
export function checkFields(fn: string, what: string, obj: unknown, fields: readonly string[]): asserts obj is Record<string, unknown> {
  if (typeof obj !== 'object' || obj === null) throw new ValueError(`${fn}: ${what} must be an object with ${fields.join(', ')}, got ${describe(obj)}`);
  for (const f of fields) {
    if ((obj as Record<string, unknown>)[f] === undefined) throw new ValueError(`${fn}: ${what}.${f} is missing`);
  }
}

/** x is NHWC and every state tensor has x's shape. */
export function checkStep(fn: string, x: unknown, state: Readonly<Record<string, unknown>>): asserts x is Tensor {
  checkTensor(fn, 'x', x);
  if (x.rank !== 4) throw new ShapeError(`${fn}: x must be [N, H, W, C], got [${x.shape.join(', ')}]`);
  for (const [name, t] of Object.entries(state)) {
    checkTensor(fn, `state.${name}`, t);
    if (t.rank !== 4 || t.shape.some((d, i) => d !== x.shape[i])) {
      throw new ShapeError(`${fn}: state.${name} must have x's shape [${x.shape.join(', ')}], got [${t.shape.join(', ')}]`);
    }
  }
}

/** A param tensor must have `shape` exactly (where broadcasting would hide a mistake). */
export function checkParamShape(fn: string, what: string, t: unknown, shape: readonly number[]): asserts t is Tensor {
  checkTensor(fn, what, t);
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${fn}: ${what} must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

/**
 * The spec of a fused gate conv from C channels to gates·C channels: the W
 * convs carry the gates' biases, the U convs have none (one b per gate, as
 * the equations write it).
 */
export function gateConvSpec(config: ConvCellConfig, channels: number, gates: number, bias: boolean): CellConvSpec {
  return {
    inChannels: channels,
    outChannels: gates * channels,
    kernelSize: config.kernelSize,
    separable: config.separable,
    bias,
    biasInit: config.biasInit,
    init: config.init,
  };
}

/** [N, H, W, k·C] -> k tensors [N, H, W, C] (channels [g·C, (g+1)·C) for gate g). */
export function splitGates(t: Tensor, k: number): Tensor[] {
  if (k === 1) return [t];
  const c = t.shape[3] / k;
  return Array.from({ length: k }, (_, g) => slice(t, [0, 0, 0, g * c], [-1, -1, -1, c]));
}

/**
 * The cells' layer norm (Ba et al. 2016; nayebi2022 eqs. 3, 5, 6): each
 * example normalised over all of [H, W, C] (as TensorFlow's layer_norm does
 * by default), then a per-channel scale γ [C] (init 1) and offset β [C]
 * (init 0). eps is layerNorm's 1e-5 (TensorFlow's layer_norm: 1e-12). On a
 * constant input (zero variance) LN's gain is γ/sqrt(eps), so a cell run on
 * one, e.g. in a layer the stimulus has not reached, has a gradient that steep.
 */
export function layerNormHWC(params: LayerNormParams, z: Tensor): Tensor {
  return layerNorm(params, z, { axes: [1, 2, 3] });
}

/** A cell whose `config` has its validated type. */
export type ConfiguredCell<P, S, C> = Cell<P, S> & { readonly config: C };

/** The output of every standard cell has its input's shape [N, H, W, C]. */
export function sameShape(fn: string, inputShape: unknown): number[] {
  return checkInputShape(fn, inputShape).slice();
}
