/**
 * What a trainer needs from a classifier: its parameters and buffers from a
 * key, and a pure loss. Buffers are non-trainable state carried from batch to
 * batch (batch-norm running statistics); the optimizer never sees them.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { Key } from '../tensor/random.js';

export interface LossContext {
  /** Training mode: batch statistics, dropout on. */
  readonly training: boolean;
  /** Randomness for this batch (dropout); derived from the run's key and the step. */
  readonly key: Key;
}

export interface LossResult<B> {
  /** The scalar to minimise (the task loss; regularisers included). */
  loss: Tensor;
  /** [N, classes]: the decoded logits, for accuracy. */
  logits: Tensor;
  /** Buffers after this batch (the input buffers in evaluation). */
  buffers: B;
}

export interface Model<P = unknown, B = unknown> {
  /** The model's config, JSON-able, as saved beside a checkpoint. */
  readonly config: object;
  /** [H, W, C] of one image. */
  readonly inputShape: readonly [number, number, number];
  readonly classes: number;
  init(key: Key): { params: P; buffers: B };
  loss(params: P, buffers: B, images: Tensor, labels: Int32Array, ctx: LossContext): LossResult<B>;
}
