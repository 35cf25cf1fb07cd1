/**
 * Convolutional UGRNN, the update-gate RNN of Collins et al. 2017
 * (nayebi2022 §A.3.5): one gate g blends the old state with a tanh
 * candidate. The constant +1 on g's pre-activation is as eq. 8 writes it
 * (not learned).
 */
import type { Tensor } from '../../tensor/tensor.js';
import { split } from '../../tensor/random.js';
import { add } from '../../tensor/ops/binary.js';
import { tanh } from '../../tensor/ops/unary.js';
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

export type UgrnnConfig = ConvCellConfig;

export interface UgrnnParams {
  /** [W_c; W_g] and [b_c; b_g]: C -> 2C. */
  w: CellConvParams;
  /** [U_c; U_g]: C -> 2C, no bias. */
  u: CellConvParams;
}

export interface UgrnnState {
  s: Tensor;
}

export function ugrnn(config: Readonly<Record<string, unknown>> = {}): ConfiguredCell<UgrnnParams, UgrnnState, UgrnnConfig> {
  const r = ConfigReader.of('ugrnn', config).only(CONV_CELL_KEYS);
  const cfg: UgrnnConfig = readConvCellConfig(r);
  const specs = (c: number) => ({ w: gateConvSpec(cfg, c, 2, true), u: gateConvSpec(cfg, c, 2, false) });
  return {
    kind: 'ugrnn',
    config: cfg,
    outputShape: (inputShape) => sameShape('ugrnn.outputShape', inputShape),
    init(k, inputShape) {
      checkKey('ugrnn.init', k);
      const sp = specs(checkInputShape('ugrnn.init', inputShape)[3]);
      const [kw, ku] = split(k, 2);
      return { w: cellConvInit(kw, sp.w), u: cellConvInit(ku, sp.u) };
    },
    initialState: (inputShape) => ({ s: restState('ugrnn.initialState', inputShape) }),
    // nayebi2022 eq. 8:
    //   c_t = tanh(W_c * x_t + U_c * s_{t−1} + b_c)
    //   g_t = σ(W_g * x_t + U_g * s_{t−1} + b_g + 1)
    //   s_t = g_t∘s_{t−1} + (1 − g_t)∘c_t,   h_t = s_t
    step(params, state, x) {
      const fn = 'ugrnn.step';
      checkFields(fn, 'params', params, ['w', 'u']);
      checkFields(fn, 'state', state, ['s']);
      checkStep(fn, x, { s: state.s });
      const sp = specs(x.shape[3]);
      const s = state.s;
      const [cPre, gPre] = splitGates(add(cellConv(params.w, x, sp.w), cellConv(params.u, s, sp.u)), 2);
      const sNew = gruState(add(gPre, 1), tanh(cPre), s);
      return [{ s: sNew }, sNew];
    },
  };
}
