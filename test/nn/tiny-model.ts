/**
 * A small classifier for trainer and CLI tests, with the signature of
 * buildModel(config, { inputShape, classes }): conv 3x3 -> batch norm ->
 * relu -> dropout -> global average pool -> linear. It has buffers (the
 * batch-norm running statistics) and uses the step key (dropout), so resume
 * tests cover both. `delayMs` makes every training step wait that long (for
 * interrupting a run mid-way).
 */
import type { Tensor } from '../../src/tensor/tensor.js';
import { split } from '../../src/tensor/random.js';
import { relu } from '../../src/tensor/ops/unary.js';
import { convLayer, linearLayer, globalAvgPool, dropout, type ConvParams, type LinearParams } from '../../src/nn/layers.js';
import { batchNorm, batchNormInit, type BatchNormParams, type BatchNormState } from '../../src/nn/norm.js';
import { softmaxCrossEntropy } from '../../src/nn/losses.js';
import type { Model } from '../../src/nn/model.js';

export interface TinyParams {
  conv: ConvParams;
  bn: BatchNormParams;
  fc: LinearParams;
}
export interface TinyBuffers {
  bn: BatchNormState;
}

export interface TinyConfig {
  filters?: number;
  dropout?: number;
  delayMs?: number;
}

export function tinyModel(config: TinyConfig, opts: { inputShape: readonly [number, number, number]; classes: number }): Model<TinyParams, TinyBuffers> {
  const filters = config.filters ?? 4;
  const rate = config.dropout ?? 0;
  const delayMs = config.delayMs ?? 0;
  const [, , channels] = opts.inputShape;
  const conv = { inChannels: channels, outChannels: filters, kernelSize: 3 };
  const fc = { inFeatures: filters, outFeatures: opts.classes };
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  return {
    config: { ...config },
    inputShape: [opts.inputShape[0], opts.inputShape[1], opts.inputShape[2]],
    classes: opts.classes,
    init(k) {
      const [k1, k2] = split(k, 2);
      const bn = batchNormInit(filters);
      return { params: { conv: convLayer.init(k1, conv), bn: bn.params, fc: linearLayer.init(k2, fc) }, buffers: { bn: bn.state } };
    },
    loss(params, buffers, images: Tensor, labels, ctx) {
      if (delayMs > 0 && ctx.training) Atomics.wait(sleeper, 0, 0, delayMs);
      const [y, bnState] = batchNorm(params.bn, buffers.bn, convLayer.apply(params.conv, images, conv), { training: ctx.training });
      const h = dropout(ctx.key, relu(y), rate, ctx.training);
      const logits = linearLayer.apply(params.fc, globalAvgPool(h), fc);
      return { loss: softmaxCrossEntropy(logits, labels), logits, buffers: { bn: bnState } };
    },
  };
}
