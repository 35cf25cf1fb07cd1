/**
 * The convolutions inside cells (the W * x and U * s of nayebi2022 §A.3):
 * stride 1, 'same' padding, a configurable kernel size, either a full conv
 * or its depth-separable form (depthwise KxK then pointwise 1x1).
 */
import type { Tensor } from '../../tensor/tensor.js';
import type { Key } from '../../tensor/random.js';
import type { InitSpec } from '../../nn/init.js';
import { convLayer, separableLayer, type ConvConfig, type ConvParams, type SeparableConfig, type SeparableParams } from '../../nn/layers.js';

export interface CellConvSpec {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  /** Depthwise KxK then pointwise 1x1 instead of a full KxK conv; default false. */
  separable?: boolean;
  /** Default true. */
  bias?: boolean;
  /** Constant bias value; default 0. */
  biasInit?: number;
  /** Default He normal, scale 1. */
  init?: InitSpec;
  /** The depthwise stage's init when separable; default `init`. */
  depthwiseInit?: InitSpec;
}

export type CellConvParams = ConvParams | SeparableParams;

function layerConfig(spec: CellConvSpec): ConvConfig | SeparableConfig {
  const common = { inChannels: spec.inChannels, outChannels: spec.outChannels, kernelSize: spec.kernelSize, padding: 'same' as const, bias: spec.bias ?? true, biasInit: spec.biasInit };
  return spec.separable ? { ...common, depthwiseInit: spec.depthwiseInit ?? spec.init, pointwiseInit: spec.init } : { ...common, init: spec.init };
}

export function cellConvInit(k: Key, spec: CellConvSpec): CellConvParams {
  return spec.separable ? separableLayer.init(k, layerConfig(spec) as SeparableConfig) : convLayer.init(k, layerConfig(spec) as ConvConfig);
}

export function cellConv(params: CellConvParams, x: Tensor, spec: CellConvSpec): Tensor {
  return spec.separable
    ? separableLayer.apply(params as SeparableParams, x, layerConfig(spec) as SeparableConfig)
    : convLayer.apply(params as ConvParams, x, layerConfig(spec) as ConvConfig);
}
