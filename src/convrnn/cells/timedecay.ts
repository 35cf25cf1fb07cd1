/**
 * Time decay (nayebi2022 §A.3.1), the simplest recurrence, a control for the
 * gated cells: a leaky accumulation of the layer's feedforward drive with one
 * learned time constant τ per layer.
 *
 * The cell has no convolution of its own: its input x IS F_ℓ(x_t), the
 * layer's feedforward conv already applied. τ is one scalar, stored as a
 * tensor of shape [1] (not 0-d) so that it saves, counts and broadcasts like
 * every other param; it is left unconstrained, as the paper writes it.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { full } from '../../tensor/create.js';
import { add, mul } from '../../tensor/ops/binary.js';
import { ConfigReader } from '../../nn/config.js';
import { checkFields, checkInputShape, checkKey, checkParamShape, checkStep, restState, sameShape, type ConfiguredCell } from './standard.js';

export type TimeDecayConfig = {
  /** Initial τ; default 0 (the cell starts as its feedforward conv alone). */
  readonly tauInit: number;
};

export interface TimeDecayParams {
  /** τ, shape [1]. */
  tau: Tensor;
}

export interface TimeDecayState {
  s: Tensor;
}

export function timeDecay(config: Readonly<Record<string, unknown>> = {}): ConfiguredCell<TimeDecayParams, TimeDecayState, TimeDecayConfig> {
  const r = ConfigReader.of('timeDecay', config).only(['tauInit']);
  const cfg: TimeDecayConfig = { tauInit: r.num('tauInit', 0) };
  return {
    kind: 'timeDecay',
    config: cfg,
    outputShape: (inputShape) => sameShape('timeDecay.outputShape', inputShape),
    init(k, inputShape) {
      checkKey('timeDecay.init', k);
      checkInputShape('timeDecay.init', inputShape);
      return { tau: full([1], cfg.tauInit) };
    },
    initialState: (inputShape) => ({ s: restState('timeDecay.initialState', inputShape) }),
    // nayebi2022 eq. 2: s_t = F(x_t) + τ·s_{t−1}, h_t = s_t (x is F(x_t)).
    step(params, state, x) {
      const fn = 'timeDecay.step';
      checkFields(fn, 'params', params, ['tau']);
      checkParamShape(fn, 'params.tau', params.tau, [1]);
      checkFields(fn, 'state', state, ['s']);
      checkStep(fn, x, { s: state.s });
      const s = add(x, mul(params.tau, state.s));
      return [{ s }, s];
    },
  };
}
