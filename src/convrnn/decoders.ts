/**
 * Decoders: from the head's input at every step of an unroll to one set of
 * logits per image, and the loss that trains it. A decoder is data in the
 * model config, `{ kind, threshold? }`; each kind is one row of DECODERS.
 *
 * Let y_t be the head's input at step t (the top layer's output the head
 * reads at t), head(·) the head (logits), z_t = head(y_t), t = 0 .. T−1.
 *
 * nayebi2022 §A.5 (logits at every step, "light-weight" decoders):
 *   'last'          z_{T−1} (their "default" decoder), β = 1.
 *   'threshold'     z_{t*}, t* the first step whose largest softmax probability
 *                   exceeds `threshold` (default 0.9), else T−1; β = 1.
 *   'maxConfidence' β·z_{t*}: p_t = softmax(β z_t) with a trainable scalar β
 *                   (init 1); the most confident category is the one whose
 *                   probability reaches the highest value over the steps, and
 *                   t* is the (first) step where it peaks, i.e.
 *                   t* = argmax_t max_k p_t[k]. The decoded logits are β·z_{t*},
 *                   whose softmax is softmax(z_{t*}; β), so the loss trains β.
 *   'timeAverage'   (1/T) Σ_t z_t.
 * zhang2021 readout modes (Appendix B.2, eqs. 2a–2e; Act is the head's own):
 *   'no-avg'        head(y_{T−1})                                         (2a; = 'last')
 *   'early-avg'     head(ȳ_{T−1}),  ȳ_t = (1/(t+1)) Σ_{t' ≤ t} y_{t'}       (2b, 2e)
 *   'late-avg'      (1/T) Σ_t head(y_t)                                   (2c)
 *   '2-avg'         (1/T) Σ_t head(ȳ_t)                                   (2d)
 *   and for late-avg and 2-avg the loss is the mean over steps of the
 *   per-step losses (zhang2021 C.3: "we computed the neural prediction loss
 *   by averaging the losses over individual iterations"); every other kind
 *   takes the loss of the decoded logits.
 *
 * The step selections (threshold, maxConfidence) are discrete: they read the
 * logits' values and pass the gradient to the selected step's logits only.
 * Ties pick the earliest step.
 */
import { Tensor, checkTensor } from '../tensor/tensor.js';
import { full, tensor } from '../tensor/create.js';
import { ConfigError, ShapeError, ValueError, describe } from '../tensor/errors.js';
import { add, mul } from '../tensor/ops/binary.js';
import { ConfigReader } from '../nn/config.js';
import { softmaxCrossEntropy } from '../nn/losses.js';

export type DecoderKind = 'last' | 'threshold' | 'maxConfidence' | 'timeAverage' | 'no-avg' | 'early-avg' | 'late-avg' | '2-avg';

export interface DecoderRule {
  /** What the head reads: each y_t, the mean of all y_t (once), or the running means ȳ_t. */
  readonly features: 'each' | 'mean' | 'cumulativeMean';
  /** How the per-step logits become one: the last, a selected step per image, or their mean. */
  readonly select: 'last' | 'threshold' | 'maxConfidence' | 'mean';
  /** The loss of the decoded logits, or the mean over steps of the per-step losses. */
  readonly loss: 'decoded' | 'perStep';
}

/** Every decoder kind as data (see the module comment for the formulas). */
export const DECODERS: Readonly<Record<DecoderKind, DecoderRule>> = {
  last: { features: 'each', select: 'last', loss: 'decoded' },
  threshold: { features: 'each', select: 'threshold', loss: 'decoded' },
  maxConfidence: { features: 'each', select: 'maxConfidence', loss: 'decoded' },
  timeAverage: { features: 'each', select: 'mean', loss: 'decoded' },
  'no-avg': { features: 'each', select: 'last', loss: 'decoded' },
  'early-avg': { features: 'mean', select: 'last', loss: 'decoded' },
  'late-avg': { features: 'each', select: 'mean', loss: 'perStep' },
  '2-avg': { features: 'cumulativeMean', select: 'mean', loss: 'perStep' },
};

export const DECODER_KINDS = Object.keys(DECODERS) as DecoderKind[];

export interface DecoderConfig {
  kind: DecoderKind;
  /** Only for 'threshold': the probability to exceed; default 0.9 (nayebi2022 §A.5). */
  threshold?: number;
}

/** { beta: [1] } for 'maxConfidence', else {}. */
export interface DecoderParams {
  beta?: Tensor;
}

/** Validate a decoder config (`path` names it in messages); defaults filled in. */
export function readDecoderConfig(fn: string, value: unknown, path: string): DecoderConfig {
  const r = ConfigReader.of(fn, value ?? { kind: 'last' }, path);
  const kind = r.oneOf('kind', DECODER_KINDS);
  if (kind !== 'threshold') {
    r.only(['kind']);
    return { kind };
  }
  r.only(['kind', 'threshold']);
  const threshold = r.num('threshold', 0.9, 0, 1);
  return { kind, threshold };
}

/** The decoder's params: maxConfidence's β = 1 (nayebi2022 §A.5), nothing for the others. */
export function decoderInit(config: DecoderConfig): DecoderParams {
  return config.kind === 'maxConfidence' ? { beta: full([1], 1) } : {};
}

/** True when the decoder reads the head's input at every step (everything but 'last'/'no-avg'). */
export function readsEveryStep(config: DecoderConfig): boolean {
  const rule = DECODERS[config.kind];
  return rule.features !== 'each' || rule.select !== 'last';
}

export interface Decoded {
  /**
   * The per-step logits the decoder computed: T of them, z_t (or head(ȳ_t)
   * for '2-avg'), when it reads every step's logits; one, the final logits,
   * for 'last', 'no-avg' and 'early-avg'.
   */
  stepLogits: Tensor[];
  /** [N, classes]: the decoded logits. */
  logits: Tensor;
  /** For 'threshold' and 'maxConfidence': the step chosen for each image. */
  steps?: Int32Array;
}

function checkLogitsList(fn: string, logits: readonly Tensor[]): [number, number] {
  if (!Array.isArray(logits) || logits.length === 0) throw new ValueError(`${fn}: logits must be a non-empty array of [N, K] tensors, got ${describe(logits)}`);
  logits.forEach((z, t) => checkTensor(fn, `logits[${t}]`, z));
  const [n, k] = logits[0].shape;
  logits.forEach((z, t) => {
    if (z.rank !== 2 || z.shape[0] !== n || z.shape[1] !== k) {
      throw new ShapeError(`${fn}: logits[${t}] must be [${n}, ${k}] like logits[0], got [${z.shape.join(', ')}]`);
    }
  });
  return [n, k];
}

/** Per image, the largest softmax(β·z) probability of row n of z (values [N·K], row-major). */
function maxProbabilities(z: Float32Array, n: number, k: number, beta: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, beta * z[i * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(beta * z[i * k + j] - m);
    out[i] = 1 / s; // the largest probability: exp(m − m) / Σ exp(βz − m)
  }
  return out;
}

/**
 * nayebi2022 §A.5 threshold decoder: per image, the first step t whose
 * largest softmax probability of logits[t] exceeds `threshold`, else the last.
 */
export function thresholdSteps(logits: readonly Tensor[], threshold: number): Int32Array {
  const fn = 'thresholdSteps';
  const [n, k] = checkLogitsList(fn, logits);
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) throw new ValueError(`${fn}: threshold must be a number in [0, 1], got ${describe(threshold)}`);
  const steps = new Int32Array(n).fill(-1);
  logits.forEach((z, t) => {
    const p = maxProbabilities(z.toArray(), n, k, 1);
    for (let i = 0; i < n; i++) if (steps[i] < 0 && p[i] > threshold) steps[i] = t;
  });
  return steps.map((s) => (s < 0 ? logits.length - 1 : s));
}

/**
 * nayebi2022 §A.5 max-confidence decoder: per image, the (first) step at
 * which the largest softmax(β·z_t) probability over categories and steps is
 * reached.
 */
export function maxConfidenceSteps(logits: readonly Tensor[], beta: number): Int32Array {
  const fn = 'maxConfidenceSteps';
  const [n, k] = checkLogitsList(fn, logits);
  if (typeof beta !== 'number' || !Number.isFinite(beta)) throw new ValueError(`${fn}: beta must be a finite number, got ${describe(beta)}`);
  const steps = new Int32Array(n);
  const best = new Float64Array(n).fill(-Infinity);
  logits.forEach((z, t) => {
    const p = maxProbabilities(z.toArray(), n, k, beta);
    for (let i = 0; i < n; i++) {
      if (p[i] > best[i]) {
        best[i] = p[i];
        steps[i] = t;
      }
    }
  });
  return steps;
}

/** Row n of the result is row n of logits[steps[n]]; the gradient reaches only the chosen rows. */
export function pickSteps(logits: readonly Tensor[], steps: Int32Array): Tensor {
  const fn = 'pickSteps';
  const [n] = checkLogitsList(fn, logits);
  if (!(steps instanceof Int32Array) || steps.length !== n || steps.some((s) => s < 0 || s >= logits.length)) {
    throw new ValueError(`${fn}: steps must be an Int32Array of ${n} step indices in [0, ${logits.length - 1}], got ${describe(steps)}`);
  }
  const first = steps[0];
  if (steps.every((s) => s === first)) return logits[first];
  // Σ_t mask_t ∘ z_t with mask_t[n] = [steps[n] = t]: one multiply-add per step that some image chose.
  let out: Tensor | null = null;
  logits.forEach((z, t) => {
    if (!steps.includes(t)) return;
    const mask = tensor(Float32Array.from(steps, (s) => (s === t ? 1 : 0)), [n, 1]);
    const term = mul(z, mask);
    out = out === null ? term : add(out, term);
  });
  return out!;
}

/** (1/n) Σ ts. */
function meanOf(ts: readonly Tensor[]): Tensor {
  if (ts.length === 1) return ts[0];
  return mul(ts.reduce((a, b) => add(a, b)), 1 / ts.length);
}

/**
 * Decode: `features[t]` is the head's input y_t at step t (entries the
 * decoder does not read may be undefined: all but the last for 'last' and
 * 'no-avg'); `head` maps features to logits. The head runs only where the
 * decoder reads its logits, and once for features it saw at the previous
 * step (the same tensor object gives the same logits).
 */
export function decode(config: DecoderConfig, params: DecoderParams, head: (y: Tensor) => Tensor, features: readonly (Tensor | undefined)[]): Decoded {
  const fn = 'decode';
  const rule = DECODERS[config.kind];
  if (rule === undefined) throw new ConfigError(`${fn}: config.kind must be one of ${DECODER_KINDS.join(', ')}, got ${describe(config.kind)}`);
  const T = features.length;
  if (T === 0) throw new ValueError(`${fn}: features must hold at least one step`);
  const need = (t: number): Tensor => {
    const y = features[t];
    if (!(y instanceof Tensor)) throw new ValueError(`${fn}: decoder '${config.kind}' reads the head's input at step ${t}, got ${describe(y)}`);
    return y;
  };

  if (rule.features === 'mean' || rule.features === 'cumulativeMean') {
    // zhang2021 eq. 2e: running means of the features.
    const means: Tensor[] = [];
    let sum: Tensor | null = null;
    for (let t = 0; t < T; t++) {
      sum = sum === null ? need(t) : add(sum, need(t));
      if (rule.features === 'cumulativeMean' || t === T - 1) means.push(t === 0 ? sum : mul(sum, 1 / (t + 1)));
    }
    const stepLogits = means.map(head);
    return { stepLogits, logits: meanOf(rule.select === 'mean' ? stepLogits : stepLogits.slice(-1)) };
  }

  if (rule.select === 'last') {
    const z = head(need(T - 1));
    return { stepLogits: [z], logits: z };
  }
  const stepLogits: Tensor[] = [];
  for (let t = 0; t < T; t++) {
    const y = need(t);
    stepLogits.push(t > 0 && y === features[t - 1] ? stepLogits[t - 1] : head(y));
  }
  if (rule.select === 'mean') return { stepLogits, logits: meanOf(stepLogits) };
  if (rule.select === 'threshold') {
    const steps = thresholdSteps(stepLogits, config.threshold ?? 0.9);
    return { stepLogits, logits: pickSteps(stepLogits, steps), steps };
  }
  const beta = params.beta;
  checkTensor(fn, 'params.beta', beta);
  if (beta.size !== 1) throw new ShapeError(`${fn}: params.beta must hold one number, got shape [${beta.shape.join(', ')}]`);
  const steps = maxConfidenceSteps(stepLogits, beta.item());
  return { stepLogits, logits: mul(pickSteps(stepLogits, steps), beta), steps };
}

/**
 * The classification loss of a decoded result: softmax cross-entropy of the
 * decoded logits, or for 'late-avg' and '2-avg' the mean over steps of the
 * per-step cross-entropies (zhang2021 C.3).
 */
export function decoderLoss(config: DecoderConfig, decoded: Decoded, labels: Int32Array | readonly number[]): Tensor {
  if (DECODERS[config.kind].loss === 'decoded') return softmaxCrossEntropy(decoded.logits, labels);
  return meanOf(decoded.stepLogits.map((z) => softmaxCrossEntropy(z, labels)));
}
