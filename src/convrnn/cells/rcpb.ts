/**
 * The recurrent convolutional processing block (RCPB) of zhang2021 (Appendix
 * B.2, eqs. 2f–2i):
 *
 *   y^{(t)} = Act(BatchNorm^{(t)}(Conv_ff(y_below) + Conv_lat(y^{(t-1)}))),   y^{(0)} = 0   (2i, 2h)
 *
 * The layer's feedforward conv F_ℓ computes Conv_ff(y_below) and hands it to
 * the cell as x, so the cell holds Conv_lat (KxK, C -> C, no bias: a batch
 * norm follows) and one batch norm per iteration: the convs are shared
 * across iterations, the batch norms are not ("learned separately for each
 * inference iteration"). The block runs `iterations` = T' iterations, steps
 * t = 0 .. T'−1 (ctx.t) using batch norm t; for t ≥ T' it repeats its last
 * output, y^{(t)} = y^{(T')}, and its state does not change. With T' = 1 the
 * block is a plain CPB, Act(BN(x)), and has no lateral conv.
 *
 * The batch norms' running statistics are buffers (state.buffers.bn[t]):
 * ctx.training uses the batch statistics and updates the running ones;
 * evaluation uses the running ones. In evaluation each BN^{(t)} is the fixed
 * per-channel affine map z ↦ γ_t·(z − μ_t)/sqrt(σ²_t + ε) + β_t, which is what
 * the multi-path reformulation (zhang2021 §4.2, Appendix E) needs: no
 * separate "affine" mode is required.
 */
import type { Tensor } from '../../tensor/tensor.js';
import { zeros } from '../../tensor/create.js';
import { ValueError, describe } from '../../tensor/errors.js';
import { add } from '../../tensor/ops/binary.js';
import { elu, relu, softplus } from '../../tensor/ops/unary.js';
import { ConfigReader } from '../../nn/config.js';
import { convLayer, type ConvConfig, type ConvParams } from '../../nn/layers.js';
import { batchNorm, batchNormInit, type BatchNormParams, type BatchNormState } from '../../nn/norm.js';
import type { InitSpec } from '../../nn/init.js';
import type { Cell, StepContext } from '../cell.js';
import { checkFields, checkInputShape, checkKey, checkParamShape, checkStep, sameShape } from './standard.js';

export type RcpbActivation = 'relu' | 'softplus' | 'elu' | 'identity';

export interface RcpbConfig {
  /** T' ≥ 1: the iterations with their own batch norm; required. */
  iterations: number;
  /** Lateral conv kernel size; default 3. */
  kernelSize?: number;
  /** Default 'relu'. */
  activation?: RcpbActivation;
  /** Lateral conv weight init; default He normal, scale 1. */
  init?: InitSpec;
  /** Batch-norm momentum (weight of the old running statistics); default 0.9. */
  bnMomentum?: number;
  /** Batch-norm epsilon; default 1e-5. */
  bnEps?: number;
}

export interface RcpbParams {
  /** Conv_lat, w [K, K, C, C]; absent when iterations = 1. */
  lateral?: ConvParams;
  /** BatchNorm^{(t)}, t = 0 .. T'−1: gamma, beta [C]. */
  bn: BatchNormParams[];
}

export interface RcpbBuffers {
  /** Running mean and variance of BatchNorm^{(t)}, t = 0 .. T'−1. */
  bn: BatchNormState[];
}

/** y = y^{(t-1)}, [N, H, W, C]; buffers: the running statistics. */
export interface RcpbState {
  y: Tensor;
  buffers: RcpbBuffers;
}

const ACTIVATIONS: readonly RcpbActivation[] = ['relu', 'softplus', 'elu', 'identity'];

/** Read and validate an RCPB config; `fn` names the caller in errors. */
export function readRcpbConfig(fn: string, config: unknown): Required<RcpbConfig> {
  const r = ConfigReader.of(fn, config).only(['iterations', 'kernelSize', 'activation', 'init', 'bnMomentum', 'bnEps']);
  const bnEps = r.num('bnEps', 1e-5);
  if (!(bnEps > 0)) r.fail('bnEps', 'a positive number');
  return {
    iterations: r.posInt('iterations'),
    kernelSize: r.posInt('kernelSize', 3),
    activation: r.oneOf('activation', ACTIVATIONS, 'relu'),
    init: r.init('init', { kind: 'he', scale: 1 }),
    bnMomentum: r.num('bnMomentum', 0.9, 0, 1),
    bnEps,
  };
}

/** Fresh running statistics (mean 0, variance 1) of every iteration's batch norm. */
export function rcpbBuffers(config: RcpbConfig, inputShape: readonly number[]): RcpbBuffers {
  const cfg = readRcpbConfig('rcpbBuffers', config);
  const c = checkInputShape('rcpbBuffers', inputShape)[3];
  return { bn: Array.from({ length: cfg.iterations }, () => batchNormInit(c).state) };
}

/** Zhang's RCPB (see the module comment). */
export function rcpb(config: RcpbConfig): Cell<RcpbParams, RcpbState> {
  const cfg = readRcpbConfig('rcpb', config);
  const T = cfg.iterations;
  const bnOpts = { momentum: cfg.bnMomentum, eps: cfg.bnEps };
  const act = (z: Tensor): Tensor => (cfg.activation === 'identity' ? z : { relu, softplus, elu }[cfg.activation](z));
  const lateralConv = (c: number): ConvConfig => ({ inChannels: c, outChannels: c, kernelSize: cfg.kernelSize, padding: 'same', bias: false, init: cfg.init });

  const checkBuffers = (fn: string, buffers: unknown, c: number): RcpbBuffers => {
    checkFields(fn, 'buffers', buffers, ['bn']);
    const bn = buffers.bn;
    if (!Array.isArray(bn) || bn.length !== T) {
      throw new ValueError(`${fn}: buffers.bn must be an array of ${T} batch-norm states (one per iteration), got ${describe(bn)}`);
    }
    bn.forEach((b, t) => {
      checkFields(fn, `buffers.bn[${t}]`, b, ['mean', 'var']);
      checkParamShape(fn, `buffers.bn[${t}].mean`, b.mean, [c]);
      checkParamShape(fn, `buffers.bn[${t}].var`, b.var, [c]);
    });
    return buffers as unknown as RcpbBuffers;
  };

  return {
    kind: 'rcpb',
    config: cfg,
    outputShape: (inputShape) => sameShape('rcpb.outputShape', inputShape),
    init(k, inputShape) {
      checkKey('rcpb.init', k);
      const c = checkInputShape('rcpb.init', inputShape)[3];
      const bn = Array.from({ length: T }, () => batchNormInit(c).params);
      return T > 1 ? { lateral: convLayer.init(k, lateralConv(c)), bn } : { bn };
    },
    initialState(inputShape, buffers) {
      const fn = 'rcpb.initialState';
      const shape = checkInputShape(fn, inputShape);
      const b = buffers === undefined ? rcpbBuffers(cfg, shape) : checkBuffers(fn, buffers, shape[3]);
      return { y: zeros(shape), buffers: b };
    },
    step(params, state, x, ctx: StepContext) {
      const fn = 'rcpb.step';
      checkFields(fn, 'ctx', ctx, ['t', 'training']);
      const { t, training } = ctx;
      if (!Number.isInteger(t) || t < 0) throw new ValueError(`${fn}: ctx.t must be a non-negative integer, got ${describe(t)}`);
      if (typeof training !== 'boolean') throw new ValueError(`${fn}: ctx.training must be a boolean, got ${describe(training)}`);
      checkFields(fn, 'state', state, ['y', 'buffers']);
      checkStep(fn, x, { y: state.y });
      const shape = x.shape;
      checkBuffers(fn, state.buffers, shape[3]);
      checkFields(fn, 'params', params, T > 1 ? ['lateral', 'bn'] : ['bn']);
      if (!Array.isArray(params.bn) || params.bn.length !== T) {
        throw new ValueError(`${fn}: params.bn must be an array of ${T} batch-norm params (one per iteration), got ${describe(params.bn)}`);
      }
      // zhang2021 B.2: a block of T' iterations repeats y^{(T')} for t > T'.
      if (t >= T) return [state, state.y];
      // eq. 2i: y^{(t)} = Act(BN^{(t)}(Conv_ff(y_below) + Conv_lat(y^{(t-1)}))), Conv_ff(y_below) = x
      const z = params.lateral === undefined ? x : add(x, convLayer.apply(params.lateral, state.y, lateralConv(shape[3])));
      const [normed, bnState] = batchNorm(params.bn[t], state.buffers.bn[t], z, { training, ...bnOpts });
      const y = act(normed);
      const bn = state.buffers.bn.slice();
      bn[t] = bnState;
      return [{ y, buffers: { bn } }, y];
    },
  };
}
