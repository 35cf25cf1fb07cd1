/**
 * The RGC search space (nayebi2022 §A.4.2, nayebi2018 Supplemental §6.3):
 * a family of cells generalising the reciprocal gated cell (./rgc.ts), one
 * point per config.
 *
 *   τ_a = v1^τ + v2^τ·σ(Affine(S_τa))     gate_a = v1^g + v2^g·σ(Affine(S_ga))
 *   τ_b = v1^τ + v2^τ·σ(Affine(S_τb))     gate_b = v1^g + v2^g·σ(Affine(S_gb))
 *   a_t = gate_a·in_t + τ_a·h_{t-1},  h_t = f(a_t)
 *   b_t = gate_b·in_t + τ_b·s_{t-1},  s_t = f(b_t),   f ∈ {elu, tanh, σ}
 *
 * in_t is the cell's input x_t (the output of the layer's feedforward conv).
 * The paper writes one set S_a for both 'a' gates and one S_b for both 'b'
 * gates, but the RGC it generalises reads s for gate_a and h for τ_a, so each
 * of the four gates has its own input set and its own Affine here:
 *   'a' gates (tauA, gateA) read a subset of {below, x, sPrev, hPrev, s}
 *   'b' gates (tauB, gateB) read a subset of {below, x, sPrev, hPrev, h}
 * with below = h^{ℓ-1}_{t-1} (ctx.below), x = x_t, sPrev = s_{t-1},
 * hPrev = h_{t-1}, s = s_t, h = h_t.
 *
 * Affine of a gate's inputs, concatenated on channels in the order above,
 * to C channels: 'add' (the paper's +: their sum, no params; every input must
 * have C channels), 'conv1x1', 'conv' (KxK) or 'separable' (KxK
 * depth-separable), K ∈ {3, ..., 7}; the convs are bias-free unless
 * `gateBias`. A gate with no inputs has Affine(∅) = 0 (an empty sum), so it
 * is the constant v1 + v2·σ(0) = v1 + v2/2 and has no params.
 *
 * Evaluation order. The connectivity matrix of §A.4.2 lets s_t feed h_t
 * and h_t feed s_t, but not both at once (each would wait for the other).
 * If an 'a' gate reads s, s_t is computed first; otherwise h_t is, and the
 * 'b' gates may read h. A config where an 'a' gate reads s AND a 'b' gate
 * reads h is cyclic and rejected with a ConfigError.
 *
 * ctx.below whose spatial size differs from x's is resized to it by
 * bilinear interpolation (resizeBilinear, half-pixel centers).
 *
 * The default config is the RGC itself (rgcAsSearchConfig()).
 */
import { Tensor, checkTensor } from '../../tensor/tensor.js';
import { zeros } from '../../tensor/create.js';
import { split } from '../../tensor/random.js';
import { ConfigError, ShapeError, ValueError, describe } from '../../tensor/errors.js';
import { add, mul } from '../../tensor/ops/binary.js';
import { concat } from '../../tensor/ops/layout.js';
import { resizeBilinear } from '../../tensor/ops/resize.js';
import { reciprocalGate } from '../../tensor/ops/gates.js';
import { elu, sigmoid, tanh } from '../../tensor/ops/unary.js';
import { ConfigReader } from '../../nn/config.js';
import type { InitSpec } from '../../nn/init.js';
import type { Cell, StepContext } from '../cell.js';
import { cellConv, cellConvInit, type CellConvParams, type CellConvSpec } from './conv.js';
import { GATE_INIT, HE_INIT, checkNoBuffers, readRgcConfig, type RgcConfig, type RgcParams, type RgcState } from './rgc.js';
import { checkFields, checkInputShape, checkKey, checkStep, sameShape } from './standard.js';

export type SearchInput = 'below' | 'x' | 'sPrev' | 'hPrev' | 's' | 'h';
export type SearchAffine = 'add' | 'conv1x1' | 'conv' | 'separable';
export type SearchActivation = 'elu' | 'tanh' | 'sigmoid';
export type SearchGate = 'gateA' | 'tauA' | 'gateB' | 'tauB';

/** The gates, in the order of their keys at init (the RGC's W_sh, W_hh, W_hs, W_ss). */
export const SEARCH_GATES: readonly SearchGate[] = ['gateA', 'tauA', 'gateB', 'tauB'];
/** Concatenation order of a gate's inputs. */
export const SEARCH_INPUTS: readonly SearchInput[] = ['below', 'x', 'sPrev', 'hPrev', 's', 'h'];
const INPUTS_A: readonly SearchInput[] = ['below', 'x', 'sPrev', 'hPrev', 's'];
const INPUTS_B: readonly SearchInput[] = ['below', 'x', 'sPrev', 'hPrev', 'h'];
const AFFINES: readonly SearchAffine[] = ['add', 'conv1x1', 'conv', 'separable'];
const ACTIVATIONS: readonly SearchActivation[] = ['elu', 'tanh', 'sigmoid'];

export interface SearchGateConfig {
  /** The gate's input set; default the RGC's (gateA: sPrev, tauA: hPrev, gateB: hPrev, tauB: sPrev). */
  inputs?: SearchInput[];
  /** Default 'conv'. */
  affine?: SearchAffine;
  /** K ∈ 3..7, for 'conv' and 'separable' only; default 3. */
  kernelSize?: number;
}

export interface RgcSearchConfig {
  gateA?: SearchGateConfig;
  tauA?: SearchGateConfig;
  gateB?: SearchGateConfig;
  tauB?: SearchGateConfig;
  /** v1^τ, v2^τ; default 1, −1 (τ = 1 − σ, the RGC). */
  tau?: { v1?: number; v2?: number };
  /** v1^g, v2^g; default 1, −1. */
  gate?: { v1?: number; v2?: number };
  /** f; default 'elu'. */
  activation?: SearchActivation;
  /** Gate conv weight init; default He normal, scale 1. */
  init?: InitSpec;
  /** Biases on the conv affines; default false. */
  gateBias?: boolean;
  /** Default 0; only with gateBias. */
  gateBiasInit?: number;
}

export interface SearchGateSpec {
  inputs: SearchInput[];
  affine: SearchAffine;
  /** Present for 'conv' and 'separable'. */
  kernelSize?: number;
}

export interface RgcSearchSpec {
  gateA: SearchGateSpec;
  tauA: SearchGateSpec;
  gateB: SearchGateSpec;
  tauB: SearchGateSpec;
  tau: { v1: number; v2: number };
  gate: { v1: number; v2: number };
  activation: SearchActivation;
  init: InitSpec;
  gateBias: boolean;
  gateBiasInit: number;
}

/** A conv per gate whose Affine is a conv and whose input set is not empty. */
export type RgcSearchParams = Partial<Record<SearchGate, CellConvParams>>;
export type RgcSearchState = RgcState;

const DEFAULT_INPUTS: Record<SearchGate, SearchInput[]> = { gateA: ['sPrev'], tauA: ['hPrev'], gateB: ['hPrev'], tauB: ['sPrev'] };

const isA = (g: SearchGate): boolean => g === 'gateA' || g === 'tauA';

function readGate(fn: string, root: ConfigReader, name: SearchGate): SearchGateSpec {
  const r = root.sub(name);
  const affine = r.oneOf('affine', AFFINES, 'conv');
  const sized = affine === 'conv' || affine === 'separable';
  r.only(sized ? ['inputs', 'affine', 'kernelSize'] : ['inputs', 'affine']);
  const allowed = isA(name) ? INPUTS_A : INPUTS_B;
  const given = r.array('inputs', DEFAULT_INPUTS[name]);
  given.forEach((v, i) => {
    if (!allowed.includes(v as SearchInput)) {
      const why = v === 'h' || v === 's' ? ` ('${v}' is the new ${v}_t, which only the ${v === 'h' ? "'b'" : "'a'"} gates may read)` : '';
      throw new ConfigError(`${fn}: ${r.path}.inputs[${i}] must be one of ${allowed.map((a) => `'${a}'`).join(', ')}${why}, got ${describe(v)}`);
    }
    if (given.indexOf(v) !== i) throw new ConfigError(`${fn}: ${r.path}.inputs lists ${describe(v)} twice; it is a set`);
  });
  const inputs = SEARCH_INPUTS.filter((n) => given.includes(n));
  return sized ? { inputs, affine, kernelSize: r.int('kernelSize', 3, 3, 7) } : { inputs, affine };
}

function readPair(r: ConfigReader, field: string): { v1: number; v2: number } {
  const p = r.sub(field).only(['v1', 'v2']);
  return { v1: p.num('v1', 1), v2: p.num('v2', -1) };
}

/** Read and validate a search config (defaults: the RGC); `fn` names the caller in errors. */
export function readRgcSearchConfig(fn: string, config: unknown): RgcSearchSpec {
  const r = ConfigReader.of(fn, config).only([...SEARCH_GATES, 'tau', 'gate', 'activation', 'init', 'gateBias', 'gateBiasInit']);
  const gates = Object.fromEntries(SEARCH_GATES.map((g) => [g, readGate(fn, r, g)])) as Record<SearchGate, SearchGateSpec>;
  const readsS = (['gateA', 'tauA'] as const).find((g) => gates[g].inputs.includes('s'));
  const readsH = (['gateB', 'tauB'] as const).find((g) => gates[g].inputs.includes('h'));
  if (readsS !== undefined && readsH !== undefined) {
    throw new ConfigError(
      `${fn}: ${r.path}.${readsH}.inputs must not contain 'h' (h_t) while ${r.path}.${readsS}.inputs contains 's' (s_t): ` +
        'h_t and s_t would each wait for the other',
    );
  }
  const gateBias = r.bool('gateBias', false);
  if (!gateBias && r.has('gateBiasInit')) r.fail('gateBiasInit', 'absent unless config.gateBias is true');
  return {
    ...gates,
    tau: readPair(r, 'tau'),
    gate: readPair(r, 'gate'),
    activation: r.oneOf('activation', ACTIVATIONS, 'elu'),
    init: r.init('init', GATE_INIT),
    gateBias,
    gateBiasInit: r.num('gateBiasInit', 0),
  };
}

/**
 * The original RGC (eqs. 10–11) with `rgcConfig` as a point of the search
 * space: gate_a ← s_{t-1} (W_sh), τ_a ← h_{t-1} (W_hh), gate_b ← h_{t-1}
 * (W_hs), τ_b ← s_{t-1} (W_ss), v1 = 1, v2 = −1 (1 − σ), f = elu.
 */
export function rgcAsSearchConfig(rgcConfig: RgcConfig = {}): RgcSearchConfig {
  const fn = 'rgcAsSearchConfig';
  const c = readRgcConfig(fn, rgcConfig);
  let affine: { affine: SearchAffine; kernelSize?: number };
  if (c.kernelSize === 1 && !c.separable) affine = { affine: 'conv1x1' };
  else if (c.kernelSize >= 3 && c.kernelSize <= 7) affine = { affine: c.separable ? 'separable' : 'conv', kernelSize: c.kernelSize };
  else throw new ConfigError(`${fn}: config.kernelSize must be 1 (not separable) or in [3, 7] to lie in the search space, got ${c.kernelSize}`);
  const gate = (inputs: SearchInput[]): SearchGateConfig => ({ inputs, ...affine });
  return {
    gateA: gate(['sPrev']),
    tauA: gate(['hPrev']),
    gateB: gate(['hPrev']),
    tauB: gate(['sPrev']),
    tau: { v1: 1, v2: -1 },
    gate: { v1: 1, v2: -1 },
    activation: 'elu',
    init: c.init,
    gateBias: c.gateBias,
    ...(c.gateBias ? { gateBiasInit: c.gateBiasInit } : {}),
  };
}

/** The RGC's params under the search cell's names (the same tensors). */
export function rgcAsSearchParams(params: RgcParams): RgcSearchParams {
  checkFields('rgcAsSearchParams', 'params', params, ['wsh', 'whh', 'whs', 'wss']);
  return { gateA: params.wsh, tauA: params.whh, gateB: params.whs, tauB: params.wss };
}

const hasConv = (g: SearchGateSpec): boolean => g.affine !== 'add' && g.inputs.length > 0;

/** A cell of the RGC search space (see the module comment). */
export function rgcSearch(config: RgcSearchConfig = {}): Cell<RgcSearchParams, RgcSearchState> {
  const cfg = readRgcSearchConfig('rgcSearch', config);
  const usesBelow = SEARCH_GATES.filter((g) => cfg[g].inputs.includes('below'));
  const sFirst = cfg.gateA.inputs.includes('s') || cfg.tauA.inputs.includes('s');
  // (1 − σ) for both τ and gate: the RGC's form, one fused kernel per update.
  const rgcForm = cfg.tau.v1 === 1 && cfg.tau.v2 === -1 && cfg.gate.v1 === 1 && cfg.gate.v2 === -1;
  const activation = { elu, tanh, sigmoid }[cfg.activation];

  const convSpec = (g: SearchGate, c: number, belowC: number): CellConvSpec => {
    const s = cfg[g];
    return {
      inChannels: s.inputs.reduce((n, i) => n + (i === 'below' ? belowC : c), 0),
      outChannels: c,
      kernelSize: s.affine === 'conv1x1' ? 1 : s.kernelSize!,
      separable: s.affine === 'separable',
      bias: cfg.gateBias,
      biasInit: cfg.gateBiasInit,
      init: cfg.init,
      depthwiseInit: HE_INIT,
    };
  };

  return {
    kind: 'rgcSearch',
    config: cfg as unknown as Readonly<Record<string, unknown>>,
    outputShape: (inputShape) => sameShape('rgcSearch.outputShape', inputShape),
    init(k, inputShape, belowShape) {
      const fn = 'rgcSearch.init';
      checkKey(fn, k);
      const c = checkInputShape(fn, inputShape)[3];
      let belowC = 0;
      if (usesBelow.length > 0) {
        if (belowShape === undefined) {
          throw new ValueError(`${fn}: config.${usesBelow[0]}.inputs contains 'below' (h^{ℓ-1}_{t-1}) but no belowShape was given (a first layer has no input below)`);
        }
        if (!Array.isArray(belowShape) || belowShape.length !== 4 || !belowShape.every((d) => Number.isInteger(d) && d >= 1)) {
          throw new ShapeError(`${fn}: belowShape must be [N, H, W, C] of positive integers, got ${describe(belowShape)}`);
        }
        belowC = belowShape[3];
        const adds = usesBelow.find((g) => cfg[g].affine === 'add');
        if (adds !== undefined && belowC !== c) {
          throw new ShapeError(`${fn}: config.${adds}.affine 'add' sums its inputs, so 'below' must have ${c} channels like x, got belowShape ${describe(belowShape)}`);
        }
      }
      const keys = split(k, SEARCH_GATES.length);
      const params: RgcSearchParams = {};
      SEARCH_GATES.forEach((g, i) => {
        if (hasConv(cfg[g])) params[g] = cellConvInit(keys[i], convSpec(g, c, belowC));
      });
      return params;
    },
    initialState(inputShape, buffers) {
      const shape = checkInputShape('rgcSearch.initialState', inputShape);
      checkNoBuffers('rgcSearch.initialState', buffers);
      return { h: zeros(shape), s: zeros(shape) };
    },
    step(params, state, x, ctx: StepContext) {
      const fn = 'rgcSearch.step';
      checkFields(fn, 'params', params, SEARCH_GATES.filter((g) => hasConv(cfg[g])));
      checkFields(fn, 'state', state, ['h', 's']);
      checkStep(fn, x, { h: state.h, s: state.s });
      const shape = x.shape;
      const [n, hgt, wid, c] = shape;
      const env: Partial<Record<SearchInput, Tensor>> = { x, sPrev: state.s, hPrev: state.h };
      if (usesBelow.length > 0) {
        const below = (ctx as StepContext | undefined)?.below;
        if (below === undefined) throw new ValueError(`${fn}: config.${usesBelow[0]}.inputs contains 'below' but ctx.below is absent`);
        checkTensor(fn, 'ctx.below', below);
        if (below.rank !== 4 || below.shape[0] !== n) {
          throw new ShapeError(`${fn}: ctx.below must be [${n}, H, W, C] like x's batch, got [${below.shape.join(', ')}]`);
        }
        env.below = below.shape[1] === hgt && below.shape[2] === wid ? below : resizeBilinear(below, [hgt, wid]);
        const adds = usesBelow.find((g) => cfg[g].affine === 'add');
        if (adds !== undefined && below.shape[3] !== c) {
          throw new ShapeError(`${fn}: config.${adds}.affine 'add' needs ctx.below with ${c} channels like x, got [${below.shape.join(', ')}]`);
        }
      }

      /** Affine(S) of gate g; null for Affine(∅) = 0. */
      const affine = (g: SearchGate): Tensor | null => {
        const s = cfg[g];
        if (s.inputs.length === 0) return null;
        const ins = s.inputs.map((i) => env[i]!);
        if (s.affine === 'add') return ins.reduce((p, q) => add(p, q));
        const belowC = env.below?.shape[3] ?? 0;
        return cellConv(params[g]!, ins.length === 1 ? ins[0] : concat(ins, 3), convSpec(g, c, belowC));
      };
      /** v1 + v2·σ(z), a constant when z is Affine(∅) = 0. */
      const gateValue = (z: Tensor | null, v: { v1: number; v2: number }): Tensor | number =>
        z === null ? v.v1 + v.v2 / 2 : add(mul(sigmoid(z), v.v2), v.v1);
      /** f(gate·x + τ·prev) from the pre-activations of gate and τ (reciprocalGate applies an elu itself). */
      const update = (zGate: Tensor | null, zTau: Tensor | null, prev: Tensor): Tensor => {
        if (!rgcForm) return activation(add(mul(x, gateValue(zGate, cfg.gate)), mul(prev, gateValue(zTau, cfg.tau))));
        const [a, c] = [zGate ?? zeros(shape), zTau ?? zeros(shape)];
        return cfg.activation === 'elu' ? reciprocalGate(a, x, c, prev, { activation: 'elu' }) : activation(reciprocalGate(a, x, c, prev));
      };

      // §A.4.2: a_t = gate_a·in_t + τ_a·h_{t-1}, h_t = f(a_t)
      const updateH = (): Tensor => update(affine('gateA'), affine('tauA'), state.h);
      // §A.4.2: b_t = gate_b·in_t + τ_b·s_{t-1}, s_t = f(b_t)
      const updateS = (): Tensor => update(affine('gateB'), affine('tauB'), state.s);
      if (sFirst) {
        env.s = updateS();
        env.h = updateH();
      } else {
        env.h = updateH();
        env.s = updateS();
      }
      return [{ h: env.h, s: env.s }, env.h];
    },
  };
}
