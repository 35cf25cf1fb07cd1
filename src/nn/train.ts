/**
 * The training loop: mini-batch gradient descent on a Model (model.ts) over
 * in-memory datasets, with checkpoints, exact resumption, typed progress
 * events and clean interruption. A library function: it prints nothing and
 * touches the file system only to write checkpoints under `outDir`.
 *
 * Numbering. Step n is the n-th update (1-based); after it n updates have
 * been applied, which is the `step` a checkpoint records. Epochs in events
 * are 1-based too. Each epoch has floor(N / batchSize) steps: a last batch
 * smaller than batchSize is dropped (a different one each epoch, since every
 * epoch is shuffled).
 *
 * Randomness, all from the run key k: [kInit, kShuffle, kEval] = split(k, 3);
 * params and buffers from model.init(kInit); epoch e (0-based) visits the
 * examples in permutation(epochKey(kShuffle, e)); step n gets the key
 * foldIn(k, n) (dropout); validation runs get kEval. Every random draw thus depends on the step alone,
 * never on how the run got there, which makes a resumed run exact: resuming
 * from the checkpoint of step k gives the bits (params, buffers, optimizer
 * state, losses, accuracies, epoch metrics) of the uninterrupted run at every
 * later step.
 *
 * The gradient of step n is that of
 *   loss + weightDecay · ½ Σ_w Σ w²
 * over the params that are weights: the tensors whose dotted name (tree.ts)
 * ends in `w` (conv, depthwise, pointwise and linear filters; not biases `b`,
 * norm scales `gamma` / offsets `beta`, or anything else). This is the papers'
 * L2 regularisation (nayebi2022 §A.1.3: 1e-4 for the shallow ConvRNNs) in
 * TensorFlow's l2_regularizer form, whose gradient is weightDecay · w. The
 * gradient is then clipped elementwise to [-clipValue, clipValue] (the papers
 * clip at 0.7, nayebi2018 supplement §6.4), then by global norm, then handed
 * to the optimizer with the step's index (n - 1) for its schedule.
 *
 * Buffers (batch-norm running statistics) go into model.loss and come back
 * updated; they are carried from step to step and saved in checkpoints.
 *
 * Checkpoints (checkpoint.ts) at outDir/checkpoint.safetensors: `params` the
 * model's params; the state tree `{ optimizer, buffers }`; `key` the run key;
 * `extra` { kind: 'convrnn-train', metrics } with the running sums of the
 * current epoch. Written every `checkpointEvery` steps, at the end, and when
 * `signal` aborts. A non-finite loss or gradient norm stops training with a
 * NonFiniteError naming the step; no checkpoint is written from that step on,
 * so the last one on disk is the last good state.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, dispose, scope } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { Key, foldIn, split } from '../tensor/random.js';
import { ConfigError, DataError, ValueError, describe } from '../tensor/errors.js';
import { leaves } from '../tensor/tree.js';
import { add, mul } from '../tensor/ops/binary.js';
import { valueAndGrad } from '../autodiff/index.js';
import { ConfigReader } from './config.js';
import type { Model } from './model.js';
import { accuracy, l2 } from './losses.js';
import { adam, clipByGlobalNorm, clipByValue, globalNorm, sgd, withGradTransforms, type GradTransform, type Optimizer } from './optim.js';
import { constant, cosine, stepDecay, type Schedule } from './schedule.js';
import { checkSameTree, countParams, flattenParams } from './tree.js';
import { load, save } from './checkpoint.js';
import { batches, epochKey, validateDataset, type Dataset } from './data/dataset.js';

// ---- optimizer and schedule specs ------------------------------------------------------

export type OptimizerSpec =
  | { kind: 'sgd'; lr: number; momentum: number; nesterov: boolean }
  | { kind: 'adam'; lr: number; beta1: number; beta2: number; eps: number };

export type ScheduleSpec =
  | { kind: 'constant' }
  /** lr · factor at each of `epochs` (the ResNet schedule: 0.1 at [30, 60, 80]). */
  | { kind: 'stepDecay'; factor: number; epochs: number[] }
  /** Linear warmup over warmupSteps, then cosine decay to finalLr at the last step. */
  | { kind: 'cosine'; warmupSteps: number; finalLr: number };

/**
 * Read an optimizer spec, defaults filled in. SGD (default): lr 0.01,
 * Nesterov momentum 0.9 (nayebi2018 supplement §6.4). Adam: lr 1e-3,
 * beta1 0.9, beta2 0.999, eps 1e-8.
 */
export function readOptimizerSpec(r: ConfigReader): OptimizerSpec {
  const kind = r.oneOf('kind', ['sgd', 'adam'], 'sgd');
  if (kind === 'sgd') {
    r.only(['kind', 'lr', 'momentum', 'nesterov']);
    const lr = r.num('lr', 0.01, 0);
    const momentum = r.num('momentum', 0.9, 0, 1);
    if (momentum === 1) r.fail('momentum', 'a number in [0, 1)');
    const nesterov = r.bool('nesterov', momentum > 0);
    if (nesterov && momentum === 0) r.fail('nesterov', 'false when momentum is 0 (Nesterov needs momentum > 0)');
    return { kind, lr, momentum, nesterov };
  }
  r.only(['kind', 'lr', 'beta1', 'beta2', 'eps']);
  const lr = r.num('lr', 1e-3, 0);
  const beta1 = r.num('beta1', 0.9, 0, 1);
  const beta2 = r.num('beta2', 0.999, 0, 1);
  if (beta1 === 1) r.fail('beta1', 'a number in [0, 1)');
  if (beta2 === 1) r.fail('beta2', 'a number in [0, 1)');
  const eps = r.num('eps', 1e-8, 0);
  if (eps === 0) r.fail('eps', 'a positive number');
  return { kind, lr, beta1, beta2, eps };
}

/**
 * Read a schedule spec, defaults filled in: constant (default); stepDecay
 * (factor 0.1 at epochs [30, 60, 80], nayebi2022 §A.1.3); cosine (warmupSteps 0,
 * finalLr 0).
 */
export function readScheduleSpec(r: ConfigReader): ScheduleSpec {
  const kind = r.oneOf('kind', ['constant', 'stepDecay', 'cosine'], 'constant');
  if (kind === 'constant') {
    r.only(['kind']);
    return { kind };
  }
  if (kind === 'stepDecay') {
    r.only(['kind', 'factor', 'epochs']);
    const factor = r.num('factor', 0.1, 0, 1);
    if (factor === 0) r.fail('factor', 'a number in (0, 1]');
    const epochs = r.array('epochs', [30, 60, 80]);
    epochs.forEach((e, i) => {
      if (!Number.isInteger(e) || (e as number) < 1 || (i > 0 && (e as number) <= (epochs[i - 1] as number))) {
        r.fail('epochs', 'an array of strictly increasing positive integers');
      }
    });
    return { kind, factor, epochs: epochs as number[] };
  }
  r.only(['kind', 'warmupSteps', 'finalLr']);
  return { kind, warmupSteps: r.int('warmupSteps', 0, 0), finalLr: r.num('finalLr', 0, 0) };
}

/** The learning rate at each step index (0 for the first update). */
export function buildSchedule(lr: number, spec: ScheduleSpec, stepsPerEpoch: number, totalSteps: number): Schedule {
  switch (spec.kind) {
    case 'constant':
      return constant(lr);
    case 'stepDecay':
      return stepDecay({ lr, factor: spec.factor, epochs: spec.epochs, stepsPerEpoch });
    case 'cosine':
      if (spec.warmupSteps >= totalSteps) {
        throw new ConfigError(`train: schedule.warmupSteps (${spec.warmupSteps}) must be less than the run's ${totalSteps} steps`);
      }
      return cosine({ lr, totalSteps, warmup: spec.warmupSteps, final: spec.finalLr });
  }
}

function buildOptimizer(spec: OptimizerSpec, lr: Schedule, transforms: GradTransform[]): Optimizer<unknown> {
  const opt: Optimizer<unknown> =
    spec.kind === 'sgd'
      ? (sgd({ lr, momentum: spec.momentum, nesterov: spec.nesterov }) as Optimizer<unknown>)
      : (adam({ lr, beta1: spec.beta1, beta2: spec.beta2, eps: spec.eps }) as Optimizer<unknown>);
  return transforms.length > 0 ? withGradTransforms(opt, ...transforms) : opt;
}

// ---- state, events, options -----------------------------------------------------------

/** Running sums over the steps of the current epoch so far. */
export interface EpochMetrics {
  /** Σ batch loss · batch size. */
  lossSum: number;
  /** Correctly classified training examples. */
  hits: number;
  /** Training examples seen. */
  seen: number;
}

/** Everything a run carries from step to step; a checkpoint holds exactly this. */
export interface TrainState<P = unknown, B = unknown> {
  params: P;
  buffers: B;
  /** The optimizer's state tree. */
  optState: unknown;
  /** Updates applied so far. */
  step: number;
  /** The run key. */
  key: Key;
  metrics: EpochMetrics;
}

export interface StartEvent {
  type: 'start';
  /** The step training starts after (0, or the resumed checkpoint's). */
  step: number;
  totalSteps: number;
  stepsPerEpoch: number;
  epochs: number;
  /** Scalars in the params. */
  params: number;
  resumed: boolean;
}

export interface StepEvent {
  type: 'step';
  epoch: number;
  step: number;
  /** The model's loss on this batch (without the weight-decay term). */
  loss: number;
  /** The fraction of this batch classified correctly. */
  accuracy: number;
  /** The learning rate this update used. */
  lr: number;
  /** Global norm of the gradient before clipping. */
  gradNorm: number;
  /** Training examples per second since this call of train began. */
  examplesPerSec: number;
}

export interface EpochEvent {
  type: 'epoch';
  epoch: number;
  /** The epoch's last step. */
  step: number;
  /** Mean loss and accuracy over the epoch's training batches (as the params moved). */
  trainLoss: number;
  trainAccuracy: number;
  /** On the validation set in evaluation mode after the epoch; null without one. */
  validationLoss: number | null;
  validationAccuracy: number | null;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  path: string;
}

export interface StoppedEvent {
  type: 'stopped';
  step: number;
  /** 'aborted': the signal fired (a checkpoint of `step` was saved). 'nonfinite': `step` gave a NaN/Inf loss or gradient. */
  reason: 'aborted' | 'nonfinite';
  message: string;
}

export interface DoneEvent {
  type: 'done';
  step: number;
}

export type TrainEvent = StartEvent | StepEvent | EpochEvent | CheckpointEvent | StoppedEvent | DoneEvent;

export interface TrainOptions<P, B> {
  model: Model<P, B>;
  train: Dataset;
  /** Evaluated (training: false) at the end of every epoch. */
  validation?: Dataset;
  optimizer: OptimizerSpec;
  /** Default constant. */
  schedule?: ScheduleSpec;
  epochs: number;
  batchSize: number;
  /** The run key (see the module comment). */
  key: Key;
  /** L2 coefficient on the weights (see the module comment); default 0 (none). */
  weightDecay?: number;
  /** Clip each gradient element to [-clipValue, clipValue]; default 0 (none). */
  clipValue?: number;
  /** Rescale the gradient to global norm <= clipNorm; default 0 (none). */
  clipNorm?: number;
  /** Save a checkpoint every this many steps; default 0 (only at the end and on abort). Needs outDir. */
  checkpointEvery?: number;
  /** Where checkpoints go; without it none are written. */
  outDir?: string;
  /** JSON saved in checkpoints; default { model: model.config }. */
  config?: unknown;
  /**
   * Continue from this state (loadTrainState). Once the arguments are
   * accepted, train owns its tensors (it disposes them as it steps, or when
   * training fails); a rejection for a bad argument leaves them with the caller.
   */
  resume?: TrainState<P, B>;
  onEvent?: (event: TrainEvent) => void;
  /** When it fires, the current step finishes, a checkpoint is saved and train returns { status: 'aborted' }. */
  signal?: AbortSignal;
}

export interface TrainResult<P, B> {
  status: 'completed' | 'aborted';
  /** The final state; the caller owns its tensors. */
  state: TrainState<P, B>;
}

/** Training stopped because step `step` gave a NaN or infinite loss or gradient. */
export class NonFiniteError extends DataError {
  constructor(
    message: string,
    readonly step: number,
  ) {
    super(message);
  }
}

const CHECKPOINT_FILE = 'checkpoint.safetensors';
const EXTRA_KIND = 'convrnn-train';

/** The checkpoint file a run writes under `dir` (its sidecar is this path + '.json'). */
export function checkpointPath(dir: string): string {
  if (typeof dir !== 'string' || dir.length === 0) throw new ValueError(`checkpointPath: dir must be a non-empty string, got ${describe(dir)}`);
  return join(dir, CHECKPOINT_FILE);
}

/** A weight is a tensor whose dotted name ends in `w`: these get weight decay. */
export function isWeight(name: string): boolean {
  return name === 'w' || name.endsWith('.w');
}

// ---- checkpoints ----------------------------------------------------------------------

/** Write `state` (and the JSON `config`) as a checkpoint at `path`, atomically. */
export function saveTrainState(path: string, state: TrainState, config: unknown): void {
  save(path, {
    params: state.params,
    optState: { optimizer: state.optState, buffers: state.buffers },
    key: state.key,
    step: state.step,
    config,
    extra: { kind: EXTRA_KIND, metrics: state.metrics },
  });
}

/** Read a checkpoint written by train: its state (new tensors, owned by the caller) and config. */
export function loadTrainState<P = unknown, B = unknown>(path: string): TrainState<P, B> & { config: unknown } {
  const ck = load<P, { optimizer?: unknown; buffers?: B }>(path);
  const extra = ck.extra as { kind?: unknown; metrics?: Record<string, unknown> } | null;
  const m = extra?.metrics;
  const st = ck.optState;
  const ok =
    extra?.kind === EXTRA_KIND &&
    typeof m === 'object' && m !== null &&
    ['lossSum', 'hits', 'seen'].every((f) => typeof m[f] === 'number') &&
    typeof st === 'object' && st !== null && st.optimizer !== undefined && st.buffers !== undefined;
  if (!ok) {
    dispose([ck.params, ck.optState]);
    throw new DataError(`loadTrainState: ${path} is not a training checkpoint (its sidecar lacks extra.kind '${EXTRA_KIND}', the metrics or the { optimizer, buffers } state)`);
  }
  return {
    params: ck.params,
    buffers: st.buffers as B,
    optState: st.optimizer,
    step: ck.step,
    key: ck.key,
    metrics: { lossSum: m.lossSum as number, hits: m.hits as number, seen: m.seen as number },
    config: ck.config,
  };
}

// ---- evaluation -----------------------------------------------------------------------

/** Mean loss and accuracy of the model over `data` in evaluation mode, in batches of batchSize (the last may be smaller). */
export function evaluate<P, B>(model: Model<P, B>, params: P, buffers: B, data: Dataset, batchSize: number, k: Key): { loss: number; accuracy: number } {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ValueError(`evaluate: batchSize must be a positive integer, got ${describe(batchSize)}`);
  validateDataset(data, 'evaluate: data', model.classes);
  if (data.shape[0] === 0) throw new ValueError('evaluate: data holds no examples');
  let lossSum = 0;
  let hits = 0;
  for (const b of batches(data, { batchSize })) {
    scope(() => {
      const n = b.labels.length;
      const r = model.loss(params, buffers, tensor(b.images, b.shape), b.labels, { training: false, key: k });
      lossSum += scalarOf('evaluate', r.loss) * n;
      hits += Math.round(accuracy(r.logits, b.labels) * n);
    });
  }
  return { loss: lossSum / data.shape[0], accuracy: hits / data.shape[0] };
}

function scalarOf(fn: string, t: unknown): number {
  if (!(t instanceof Tensor) || t.size !== 1) throw new ValueError(`${fn}: model.loss must return { loss: a one-element tensor, ... }, got loss ${describe(t)}`);
  return t.item();
}

// ---- the loop -------------------------------------------------------------------------

const OPTION_KEYS = [
  'model', 'train', 'validation', 'optimizer', 'schedule', 'epochs', 'batchSize', 'key', 'weightDecay', 'clipValue',
  'clipNorm', 'checkpointEvery', 'outDir', 'config', 'resume', 'onEvent', 'signal',
];

function checkModel(model: unknown): asserts model is Model<unknown, unknown> {
  const m = model as Partial<Model> | null;
  if (typeof m !== 'object' || m === null || typeof m.init !== 'function' || typeof m.loss !== 'function' || !Array.isArray(m.inputShape) || !Number.isInteger(m.classes)) {
    throw new ConfigError(`train: options.model must be a Model { config, inputShape, classes, init, loss }, got ${describe(model)}`);
  }
}

function checkDataset(fn: string, what: string, d: Dataset, model: Model<unknown, unknown>): void {
  validateDataset(d, `${fn}: ${what}`, model.classes);
  const [, h, w, c] = d.shape;
  const [mh, mw, mc] = model.inputShape;
  if (h !== mh || w !== mw || c !== mc) {
    throw new ConfigError(`${fn}: ${what} holds ${h}x${w}x${c} images but the model takes [${mh}, ${mw}, ${mc}]`);
  }
}

function checkTree(what: string, tree: unknown): void {
  if (typeof tree !== 'object' || tree === null) {
    throw new ValueError(`train: ${what} must be a tree of tensors ({} for none), got ${describe(tree)}`);
  }
  flattenParams(tree);
}

/** Dispose the tensors of `old` that are not also in `kept`. */
function disposeReplaced(old: unknown, kept: unknown): void {
  const keep = new Set(leaves(kept));
  for (const t of leaves(old)) if (!keep.has(t)) t.dispose();
}

function allFinite(tree: unknown): boolean {
  for (const t of flattenParams(tree).values()) {
    const a = t.toArray();
    for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return false;
  }
  return true;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Train `options.model` (see the module comment). Resolves with the final
 * state when every epoch is done or when `signal` aborts; rejects with
 * NonFiniteError on a NaN/Inf loss or gradient (after a 'stopped' event).
 * Yields to the event loop between steps, so a signal can fire.
 */
export async function train<P, B>(options: TrainOptions<P, B>): Promise<TrainResult<P, B>> {
  const fn = 'train';
  const r = ConfigReader.of(fn, options, 'options').only(OPTION_KEYS);
  const model = options.model;
  checkModel(model);
  checkDataset(fn, 'options.train', options.train, model);
  if (options.validation !== undefined) checkDataset(fn, 'options.validation', options.validation, model);
  const epochs = r.posInt('epochs');
  const batchSize = r.posInt('batchSize');
  const weightDecay = r.num('weightDecay', 0, 0);
  const clipValue = r.num('clipValue', 0, 0);
  const clipNorm = r.num('clipNorm', 0, 0);
  const checkpointEvery = r.int('checkpointEvery', 0, 0);
  const outDir = options.outDir === undefined ? undefined : r.str('outDir');
  if (outDir === '') r.fail('outDir', 'a non-empty path');
  const runKey = options.key;
  if (!(runKey instanceof Key)) r.fail('key', 'a Key');
  const optSpec = readOptimizerSpec(r.sub('optimizer'));
  const schedSpec = readScheduleSpec(r.sub('schedule'));
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') r.fail('onEvent', 'a function');
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) r.fail('signal', 'an AbortSignal');

  const n = options.train.shape[0];
  const stepsPerEpoch = Math.floor(n / batchSize);
  if (stepsPerEpoch === 0) throw new ConfigError(`${fn}: options.train has ${n} examples, fewer than one batch of ${batchSize}`);
  const totalSteps = epochs * stepsPerEpoch;
  const lrAt = buildSchedule(optSpec.lr, schedSpec, stepsPerEpoch, totalSteps);
  const transforms: GradTransform[] = [];
  if (clipValue > 0) transforms.push(clipByValue(clipValue));
  if (clipNorm > 0) transforms.push(clipByGlobalNorm(clipNorm));
  const opt = buildOptimizer(optSpec, lrAt, transforms);
  const config = options.config === undefined ? { model: model.config } : options.config;
  const emit = (e: TrainEvent): void => options.onEvent?.(e);
  const ckPath = outDir === undefined ? undefined : checkpointPath(outDir);
  const [initKey, shuffleKey, evalKey] = split(runKey, 3);

  // The state this call owns from here on (disposed if it throws).
  let state: TrainState<P, B>;
  const resume = options.resume;
  if (resume !== undefined) {
    if (!(resume.key instanceof Key) || resume.key.k0 !== runKey.k0 || resume.key.k1 !== runKey.k1) {
      throw new ConfigError(`${fn}: options.resume was written by a run with key ${String(resume.key)}, but options.key is ${String(runKey)}`);
    }
    if (!Number.isInteger(resume.step) || resume.step < 0 || resume.step > totalSteps) {
      throw new ConfigError(`${fn}: options.resume.step must be an integer in [0, ${totalSteps}] (this run's steps), got ${describe(resume.step)}`);
    }
    scope(() => {
      const fresh = model.init(initKey);
      const fo = opt.init(fresh.params);
      checkSameTree(fn, [fresh.params, resume.params], ['the model\'s params', 'options.resume.params']);
      checkSameTree(fn, [fresh.buffers, resume.buffers], ['the model\'s buffers', 'options.resume.buffers']);
      checkSameTree(fn, [fo, resume.optState], ['the optimizer\'s state', 'options.resume.optState']);
    });
    const { params, buffers, optState, step, metrics } = resume;
    state = { params, buffers, optState, step, key: runKey, metrics: { ...metrics } };
  } else {
    const init = model.init(initKey);
    try {
      checkTree('model.init().params', init?.params);
      checkTree('model.init().buffers', init?.buffers);
    } catch (err) {
      dispose(init);
      throw err;
    }
    state = { params: init.params, buffers: init.buffers, optState: opt.init(init.params), step: 0, key: runKey, metrics: { lossSum: 0, hits: 0, seen: 0 } };
  }

  let saved = -1;
  const checkpoint = (): void => {
    if (ckPath === undefined || saved === state.step) return;
    if (!allFinite([state.params, state.buffers, state.optState])) {
      const message = `${fn}: the parameters after step ${state.step} are not all finite; no checkpoint was written`;
      emit({ type: 'stopped', step: state.step, reason: 'nonfinite', message });
      throw new NonFiniteError(message, state.step);
    }
    if (saved < 0) mkdirSync(outDir!, { recursive: true });
    saveTrainState(ckPath, state, config);
    saved = state.step;
    emit({ type: 'checkpoint', step: state.step, path: ckPath });
  };

  const stop = (s: AbortSignal): TrainResult<P, B> => {
    checkpoint();
    const why = s.reason instanceof Error ? s.reason.message : String(s.reason);
    emit({ type: 'stopped', step: state.step, reason: 'aborted', message: `${fn}: stopped after step ${state.step} (${why})` });
    return { status: 'aborted', state };
  };

  const weightTerm = (p: P): Tensor => {
    const weights: Tensor[] = [];
    for (const [name, t] of flattenParams(p)) if (isWeight(name)) weights.push(t);
    return mul(l2(weights), weightDecay / 2);
  };

  /** Step `step` on one batch: the new state's tensors and the step's numbers. */
  const runStep = (step: number, images: Float32Array, labels: Int32Array, shape: [number, number, number, number]) =>
    scope(() => {
      const x = tensor(images, shape);
      const ctx = { training: true, key: foldIn(runKey, step) };
      const objective = (p: P) => {
        const out = model.loss(p, state.buffers, x, labels, ctx);
        if (!(out.loss instanceof Tensor)) throw new ValueError(`${fn}: model.loss must return { loss: Tensor, logits, buffers }, got loss ${describe(out.loss)}`);
        return [weightDecay > 0 ? add(out.loss, weightTerm(p)) : out.loss, out];
      };
      const [[, out], grads] = valueAndGrad(objective, 0, { hasAux: true })(state.params);
      const loss = scalarOf(fn, out.loss);
      const gradNorm = globalNorm(grads).item();
      for (const [what, v] of [['loss', loss], ['gradient norm', gradNorm]] as const) {
        if (!Number.isFinite(v)) throw new NonFiniteError(`${fn}: the ${what} is ${v} at step ${step}; training stopped`, step);
      }
      const acc = accuracy(out.logits, labels);
      const [params, optState] = opt.update(state.params, grads, state.optState, step - 1);
      return { params, optState, buffers: out.buffers as B, loss, acc, gradNorm };
    });

  try {
    emit({ type: 'start', step: state.step, totalSteps, stepsPerEpoch, epochs, params: countParams(state.params), resumed: resume !== undefined });
    const t0 = performance.now();
    let examples = 0;
    for (let epoch = Math.floor(state.step / stepsPerEpoch); epoch < epochs; epoch++) {
      const skip = state.step - epoch * stepsPerEpoch;
      let index = 0;
      for (const b of batches(options.train, { batchSize, key: epochKey(shuffleKey, epoch), dropLast: true })) {
        if (index++ < skip) continue;
        if (signal?.aborted) return stop(signal);
        const step = state.step + 1;
        let res: ReturnType<typeof runStep>;
        try {
          res = runStep(step, b.images, b.labels, b.shape);
        } catch (err) {
          if (err instanceof NonFiniteError) emit({ type: 'stopped', step, reason: 'nonfinite', message: err.message });
          throw err;
        }
        const old = state;
        const bs = b.labels.length;
        state = {
          params: res.params,
          optState: res.optState,
          buffers: res.buffers,
          step,
          key: runKey,
          metrics: { lossSum: old.metrics.lossSum + res.loss * bs, hits: old.metrics.hits + Math.round(res.acc * bs), seen: old.metrics.seen + bs },
        };
        disposeReplaced([old.params, old.optState, old.buffers], [state.params, state.optState, state.buffers]);
        examples += bs;
        const seconds = (performance.now() - t0) / 1000;
        emit({
          type: 'step', epoch: epoch + 1, step, loss: res.loss, accuracy: res.acc, lr: lrAt(step - 1), gradNorm: res.gradNorm,
          examplesPerSec: seconds > 0 ? examples / seconds : 0,
        });
        if (step === (epoch + 1) * stepsPerEpoch) {
          const m = state.metrics;
          const v = options.validation !== undefined && options.validation.shape[0] > 0
            ? evaluate(model, state.params, state.buffers, options.validation, batchSize, evalKey)
            : null;
          emit({ type: 'epoch', epoch: epoch + 1, step, trainLoss: m.lossSum / m.seen, trainAccuracy: m.hits / m.seen, validationLoss: v?.loss ?? null, validationAccuracy: v?.accuracy ?? null });
          state.metrics = { lossSum: 0, hits: 0, seen: 0 };
        }
        if (checkpointEvery > 0 && step % checkpointEvery === 0) checkpoint();
        await nextTurn();
      }
    }
    checkpoint();
    emit({ type: 'done', step: state.step });
    return { status: 'completed', state };
  } catch (err) {
    dispose([state.params, state.optState, state.buffers]);
    throw err;
  }
}
