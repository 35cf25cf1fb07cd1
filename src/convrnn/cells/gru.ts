/**
 * Convolutional GRU (nayebi2022 §A.3.3, after Cho et al. 2014), with the
 * constant +1 on the reset gate's pre-activation exactly as eq. 4 writes it
 * (not learned; the update gate has none).
 *
 * The reset and update gates share one fused conv of x and one of s; the
 * candidate's W_c rides in the conv of x, and its U_c reads r_t∘s_{t−1}, so it
 * is a conv of its own.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { split } from '../../tensor/random.js';
import { add, mul } from '../../tensor/ops/binary.js';
import { sigmoid, tanh } from '../../tensor/ops/unary.js';
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

export type GruConfig = ConvCellConfig;

export interface GruParams {
  /** [W_r; W_u; W_c] and [b_r; b_u; b_c]: C -> 3C. */
  w: CellConvParams;
  /** [U_r; U_u]: C -> 2C, no bias. */
  u: CellConvParams;
  /** U_c: C -> C, no bias. */
  uc: CellConvParams;
}

export interface GruState {
  s: Tensor;
}

export function gru(config: Readonly<Record<string, unknown>> = {}): ConfiguredCell<GruParams, GruState, GruConfig> {
  const r = ConfigReader.of('gru', config).only(CONV_CELL_KEYS);
  const cfg: GruConfig = readConvCellConfig(r);
  const specs = (c: number) => ({ w: gateConvSpec(cfg, c, 3, true), u: gateConvSpec(cfg, c, 2, false), uc: gateConvSpec(cfg, c, 1, false) });
  return {
    kind: 'gru',
    config: cfg,
    outputShape: (inputShape) => sameShape('gru.outputShape', inputShape),
    init(k, inputShape) {
      checkKey('gru.init', k);
      const sp = specs(checkInputShape('gru.init', inputShape)[3]);
      const [kw, ku, kc] = split(k, 3);
      return { w: cellConvInit(kw, sp.w), u: cellConvInit(ku, sp.u), uc: cellConvInit(kc, sp.uc) };
    },
    initialState: (inputShape) => ({ s: restState('gru.initialState', inputShape) }),
    // nayebi2022 eq. 4:
    //   r_t = σ(W_r * x_t + U_r * s_{t−1} + b_r + 1)
    //   u_t = σ(W_u * x_t + U_u * s_{t−1} + b_u)
    //   c_t = tanh(W_c * x_t + U_c * (r_t∘s_{t−1}) + b_c)
    //   s_t = u_t∘s_{t−1} + (1 − u_t)∘c_t,   h_t = s_t
    step(params, state, x) {
      const fn = 'gru.step';
      checkFields(fn, 'params', params, ['w', 'u', 'uc']);
      checkFields(fn, 'state', state, ['s']);
      checkStep(fn, x, { s: state.s });
      const sp = specs(x.shape[3]);
      const s = state.s;
      const [wr, wu, wc] = splitGates(cellConv(params.w, x, sp.w), 3);
      const [ur, uu] = splitGates(cellConv(params.u, s, sp.u), 2);
      const rGate = sigmoid(add(add(wr, ur), 1));
      const uPre = add(wu, uu);
      const cand = tanh(add(wc, cellConv(params.uc, mul(rGate, s), sp.uc)));
      const sNew = gruState(uPre, cand, s);
      return [{ s: sNew }, sNew];
    },
  };
}
