/**
 * Convolutional LSTM (nayebi2022 §A.3.4, after Hochreiter & Schmidhuber
 * 1997), with the paper's options: layer norm on every gate and on the new
 * state (eqs. 5–6, default on), a constant forget-gate bias f_b (default 1,
 * searched in [0, 6], §A.4.1) and peephole connections (eq. 7, default off).
 *
 * The gates read the previous OUTPUT h_{t−1} (eq. 5), so the state carries
 * both s (the memory) and h.
 *
 * Peepholes: V_i, V_f, V_o are per-channel vectors [C] (a diagonal weight, as
 * in the usual peephole LSTM), initialised to 0 so that the cell starts as
 * eq. 6. As eq. 7 writes it, all three read the OLD memory s_{t−1}, the
 * output gate's included.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { split } from '../../tensor/random.js';
import { zeros } from '../../tensor/create.js';
import { add, mul } from '../../tensor/ops/binary.js';
import { lstmOutput, lstmState } from '../../tensor/ops/gates.js';
import { ConfigReader } from '../../nn/config.js';
import { layerNormInit, type LayerNormParams } from '../../nn/norm.js';
import { cellConv, cellConvInit, type CellConvParams } from './conv.js';
import {
  CONV_CELL_KEYS,
  checkFields,
  checkInputShape,
  checkKey,
  checkParamShape,
  checkStep,
  gateConvSpec,
  layerNormHWC,
  readConvCellConfig,
  restState,
  sameShape,
  splitGates,
  type ConfiguredCell,
  type ConvCellConfig,
} from './standard.js';

export type LstmConfig = ConvCellConfig & {
  /** LN in eqs. 5–6; default true. */
  readonly layerNorm: boolean;
  /** Peephole connections, eq. 7; default false. */
  readonly peepholes: boolean;
  /** f_b, a constant added to the forget gate's (normalised) pre-activation; default 1. */
  readonly forgetBias: number;
};

export interface LstmParams {
  /** [W_i; W_j; W_f; W_o] and [b_i; b_j; b_f; b_o]: C -> 4C. */
  w: CellConvParams;
  /** [U_i; U_j; U_f; U_o]: C -> 4C, no bias. */
  u: CellConvParams;
  /** γ, β [C] of each gate's LN and of the state's; present iff config.layerNorm. */
  ln?: { i: LayerNormParams; j: LayerNormParams; f: LayerNormParams; o: LayerNormParams; s: LayerNormParams };
  /** V_i, V_f, V_o [C]; present iff config.peepholes. */
  peep?: { i: Tensor; f: Tensor; o: Tensor };
}

export interface LstmState {
  /** The memory s_t. */
  s: Tensor;
  /** The output h_t, which the gates read at t + 1. */
  h: Tensor;
}

export function lstm(config: Readonly<Record<string, unknown>> = {}): ConfiguredCell<LstmParams, LstmState, LstmConfig> {
  const r = ConfigReader.of('lstm', config).only([...CONV_CELL_KEYS, 'layerNorm', 'peepholes', 'forgetBias']);
  const cfg: LstmConfig = {
    ...readConvCellConfig(r),
    layerNorm: r.bool('layerNorm', true),
    peepholes: r.bool('peepholes', false),
    forgetBias: r.num('forgetBias', 1),
  };
  const specs = (c: number) => ({ w: gateConvSpec(cfg, c, 4, true), u: gateConvSpec(cfg, c, 4, false) });
  return {
    kind: 'lstm',
    config: cfg,
    outputShape: (inputShape) => sameShape('lstm.outputShape', inputShape),
    init(k, inputShape) {
      checkKey('lstm.init', k);
      const c = checkInputShape('lstm.init', inputShape)[3];
      const sp = specs(c);
      const [kw, ku] = split(k, 2);
      const params: LstmParams = { w: cellConvInit(kw, sp.w), u: cellConvInit(ku, sp.u) };
      if (cfg.layerNorm) {
        params.ln = { i: layerNormInit(c), j: layerNormInit(c), f: layerNormInit(c), o: layerNormInit(c), s: layerNormInit(c) };
      }
      if (cfg.peepholes) params.peep = { i: zeros([c]), f: zeros([c]), o: zeros([c]) };
      return params;
    },
    initialState: (inputShape) => ({ s: restState('lstm.initialState', inputShape), h: restState('lstm.initialState', inputShape) }),
    // nayebi2022 eqs. 5–7 (LN only with layerNorm, the V terms only with peepholes):
    //   i_t = LN(W_i * x_t + U_i * h_{t−1} + b_i)    (likewise j_t, f_t, o_t)
    //   s_t = LN(s_{t−1}∘σ(f_t + f_b + V_f∘s_{t−1}) + σ(i_t + V_i∘s_{t−1})∘tanh(j_t))
    //   h_t = tanh(s_t)∘σ(o_t + V_o∘s_{t−1})
    step(params, state, x) {
      const fn = 'lstm.step';
      checkFields(fn, 'params', params, ['w', 'u', ...(cfg.layerNorm ? ['ln'] : []), ...(cfg.peepholes ? ['peep'] : [])]);
      checkFields(fn, 'state', state, ['s', 'h']);
      checkStep(fn, x, { s: state.s, h: state.h });
      const c = x.shape[3];
      const sp = specs(c);
      const { s, h } = state;
      let [i, j, f, o] = splitGates(add(cellConv(params.w, x, sp.w), cellConv(params.u, h, sp.u)), 4);
      const ln = params.ln;
      if (cfg.layerNorm) {
        checkFields(fn, 'params.ln', ln, ['i', 'j', 'f', 'o', 's']);
        [i, j, f, o] = [layerNormHWC(ln.i, i), layerNormHWC(ln.j, j), layerNormHWC(ln.f, f), layerNormHWC(ln.o, o)];
      }
      f = add(f, cfg.forgetBias);
      if (cfg.peepholes) {
        const v = params.peep;
        checkFields(fn, 'params.peep', v, ['i', 'f', 'o']);
        for (const name of ['i', 'f', 'o'] as const) checkParamShape(fn, `params.peep.${name}`, v[name], [c]);
        i = add(i, mul(v.i, s));
        f = add(f, mul(v.f, s));
        o = add(o, mul(v.o, s));
      }
      let sNew = lstmState(i, f, j, s);
      if (cfg.layerNorm) sNew = layerNormHWC(params.ln!.s, sNew);
      const hNew = lstmOutput(o, sNew);
      return [{ s: sNew, h: hNew }, hNew];
    },
  };
}
