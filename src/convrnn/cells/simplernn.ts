/**
 * SimpleRNN (nayebi2022 §A.3.2): a conv of the input plus a conv of the
 * state, layer-normalised, through an elu. Layer norm is on by default (the
 * paper's shallow SimpleRNN); its deeper SimpleRNN omits it.
 *
 * Each of the two convs carries its own bias, b_i and b_s, as eq. 3 writes it.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { split } from '../../tensor/random.js';
import { add } from '../../tensor/ops/binary.js';
import { elu } from '../../tensor/ops/unary.js';
import { ConfigReader } from '../../nn/config.js';
import { layerNormInit, type LayerNormParams } from '../../nn/norm.js';
import { cellConv, cellConvInit, type CellConvParams } from './conv.js';
import {
  CONV_CELL_KEYS,
  checkFields,
  checkInputShape,
  checkKey,
  checkStep,
  gateConvSpec,
  layerNormHWC,
  readConvCellConfig,
  restState,
  sameShape,
  type ConfiguredCell,
  type ConvCellConfig,
} from './standard.js';

export type SimpleRnnConfig = ConvCellConfig & {
  /** LN in eq. 3; default true. */
  readonly layerNorm: boolean;
};

export interface SimpleRnnParams {
  /** W_i and b_i: C -> C. */
  wi: CellConvParams;
  /** W_s and b_s: C -> C. */
  ws: CellConvParams;
  /** γ, β [C]; present iff config.layerNorm. */
  ln?: LayerNormParams;
}

export interface SimpleRnnState {
  s: Tensor;
}

export function simpleRnn(config: Readonly<Record<string, unknown>> = {}): ConfiguredCell<SimpleRnnParams, SimpleRnnState, SimpleRnnConfig> {
  const r = ConfigReader.of('simpleRnn', config).only([...CONV_CELL_KEYS, 'layerNorm']);
  const cfg: SimpleRnnConfig = { ...readConvCellConfig(r), layerNorm: r.bool('layerNorm', true) };
  const spec = (c: number) => gateConvSpec(cfg, c, 1, true);
  return {
    kind: 'simpleRnn',
    config: cfg,
    outputShape: (inputShape) => sameShape('simpleRnn.outputShape', inputShape),
    init(k, inputShape) {
      checkKey('simpleRnn.init', k);
      const c = checkInputShape('simpleRnn.init', inputShape)[3];
      const [ki, ks] = split(k, 2);
      const params: SimpleRnnParams = { wi: cellConvInit(ki, spec(c)), ws: cellConvInit(ks, spec(c)) };
      if (cfg.layerNorm) params.ln = layerNormInit(c);
      return params;
    },
    initialState: (inputShape) => ({ s: restState('simpleRnn.initialState', inputShape) }),
    // nayebi2022 eq. 3:
    //   a_t = W_s * s_{t−1} + b_s,  i_t = W_i * x_t + b_i,
    //   s_t = elu(LN(i_t + a_t)),   h_t = s_t.
    step(params, state, x) {
      const fn = 'simpleRnn.step';
      checkFields(fn, 'params', params, cfg.layerNorm ? ['wi', 'ws', 'ln'] : ['wi', 'ws']);
      checkFields(fn, 'state', state, ['s']);
      checkStep(fn, x, { s: state.s });
      const c = x.shape[3];
      const a = cellConv(params.ws, state.s, spec(c));
      const i = cellConv(params.wi, x, spec(c));
      const z = add(i, a);
      const s = elu(cfg.layerNorm ? layerNormHWC(params.ln!, z) : z);
      return [{ s }, s];
    },
  };
}
