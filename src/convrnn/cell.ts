/**
 * The cell contract (DESIGN "convrnn"): a cell is built from a validated,
 * JSON-able config and is three pure functions,
 *
 *   init(key, inputShape)          -> params  (a pytree of tensors)
 *   initialState(inputShape)       -> state   (zeros: the papers start from rest)
 *   step(params, state, x, ctx)    -> [newState, output]
 *
 * `inputShape` is the NHWC shape of the cell's input x (the output of the
 * layer's feedforward conv F_ℓ). Unrolling is a fold of `step` over time; a
 * network is itself a cell, so unrolling any model is one fold.
 *
 * State that must outlive one sequence (the running statistics of a batch
 * norm) lives under `state.buffers`: `initialState(shape, buffers)` seeds it,
 * the fold carries it, and whoever unrolls reads it back from the final state.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { Key } from '../tensor/random.js';

export interface StepContext {
  /** This step's index, 0-based, within the unroll. */
  readonly t: number;
  /** Batch statistics and their running averages in training; running averages in evaluation. */
  readonly training: boolean;
  /**
   * The layer's input before its feedforward conv (under conduction delays, the
   * layer below's output at t-1, h^{ℓ-1}_{t-1}), for cells whose gates read it
   * (the RGC search space, nayebi2022 §A.4.2). Absent for a first layer.
   */
  readonly below?: Tensor;
}

export interface Cell<P = unknown, S = unknown> {
  /** The cell's name in configs ('rgc', 'lstm', ...). */
  readonly kind: string;
  /** The validated config, defaults filled in. */
  readonly config: object;
  /** NHWC shape of the output for an input of `inputShape`. */
  outputShape(inputShape: readonly number[]): number[];
  init(key: Key, inputShape: readonly number[], belowShape?: readonly number[]): P;
  initialState(inputShape: readonly number[], buffers?: unknown): S;
  step(params: P, state: S, x: Tensor, ctx: StepContext): [S, Tensor];
}
