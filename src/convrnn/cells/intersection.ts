/**
 * Convolutional IntersectionRNN (Collins et al. 2017; nayebi2022 §A.3.6):
 * the state is a gated blend like the UGRNN's, and the output a second gated
 * blend of the input x_t itself with a relu candidate, so h_t ≠ s_t and only
 * s_t is carried. The constant +1 on the two gates' pre-activations is as
 * eq. 9 writes it (not learned).
 */
import type { Tensor } from '../../tensor/tensor.js';
import { split } from '../../tensor/random.js';
import { add } from '../../tensor/ops/binary.js';
import { relu, tanh } from '../../tensor/ops/unary.js';
import { gruState } from '../../tensor/ops/gates.js';
import { ConfigReader } from '../../nn/config.js';
import { cellConv, cellConvInit, type CellConvParams } from './conv.js';
import {
  CONV_CELL_KEYS,
  checkFields,
  checkInputShape,
  checkKey,
  checkStep,
  gateConvSpec,
  readConvCellConfig,
  restState,
  sameShape,
  splitGates,
  type ConfiguredCell,
  type ConvCellConfig,
} from './standard.js';

export type IntersectionRnnConfig = ConvCellConfig;

export interface IntersectionRnnParams {
  /** [W_m; W_n; W_p; W_y] and [b_m; b_n; b_p; b_y]: C -> 4C. */
  w: CellConvParams;
  /** [U_m; U_n; U_p; U_y]: C -> 4C, no bias. */
  u: CellConvParams;
}

export interface IntersectionRnnState {
  s: Tensor;
}

export function intersectionRnn(
  config: Readonly<Record<string, unknown>> = {},
): ConfiguredCell<IntersectionRnnParams, IntersectionRnnState, IntersectionRnnConfig> {
  const r = ConfigReader.of('intersectionRnn', config).only(CONV_CELL_KEYS);
  const cfg: IntersectionRnnConfig = readConvCellConfig(r);
  const specs = (c: number) => ({ w: gateConvSpec(cfg, c, 4, true), u: gateConvSpec(cfg, c, 4, false) });
  return {
    kind: 'intersectionRnn',
    config: cfg,
    outputShape: (inputShape) => sameShape('intersectionRnn.outputShape', inputShape),
    init(k, inputShape) {
      checkKey('intersectionRnn.init', k);
      const sp = specs(checkInputShape('intersectionRnn.init', inputShape)[3]);
      const [kw, ku] = split(k, 2);
      return { w: cellConvInit(kw, sp.w), u: cellConvInit(ku, sp.u) };
    },
    initialState: (inputShape) => ({ s: restState('intersectionRnn.initialState', inputShape) }),
    // nayebi2022 eq. 9:
    //   m_t = tanh(W_m * x_t + U_m * s_{t−1} + b_m)
    //   n_t = relu(W_n * x_t + U_n * s_{t−1} + b_n)
    //   p_t = σ(W_p * x_t + U_p * s_{t−1} + b_p + 1)
    //   y_t = σ(W_y * x_t + U_y * s_{t−1} + b_y + 1)
    //   s_t = p_t∘s_{t−1} + (1 − p_t)∘m_t
    //   h_t = y_t∘x_t + (1 − y_t)∘n_t
    step(params, state, x) {
      const fn = 'intersectionRnn.step';
      checkFields(fn, 'params', params, ['w', 'u']);
      checkFields(fn, 'state', state, ['s']);
      checkStep(fn, x, { s: state.s });
      const sp = specs(x.shape[3]);
      const s = state.s;
      const [mPre, nPre, pPre, yPre] = splitGates(add(cellConv(params.w, x, sp.w), cellConv(params.u, s, sp.u)), 4);
      const sNew = gruState(add(pPre, 1), tanh(mPre), s);
      const h = gruState(add(yPre, 1), relu(nPre), x);
      return [{ s: sNew }, h];
    },
  };
}
