/**
 * ConvRNN networks (nayebi2022 §A.1.2, eq. 1; zhang2021 Appendix B.2) built
 * from a JSON-able config, and their unrolling in time.
 *
 * A layer ℓ (numbered from 1, as in the papers) is
 *
 *   x_t^ℓ = F_ℓ( in_t^ℓ ⊕ resize(r^j_{t−1}) for the 'input' feedback sources j )
 *   x_t^ℓ += G^state_ℓ( ⊕ resize(r^j_{t−1}) for the 'state' sources )       (if any)
 *   h_t^ℓ, c_t^ℓ = C_ℓ(x_t^ℓ, c_{t−1}^ℓ)                                     (the cell; h = x without one)
 *   h_t^ℓ += G^output_ℓ( ⊕ resize(r^j_{t−1}) for the 'output' sources )      (if any)
 *   r_t^ℓ = A_ℓ(h_t^ℓ)
 *
 * F_ℓ is the layer's `ff` list of ops (convs, batch norms, nonlinearities,
 * pooling), A_ℓ its `post` list ("the activation function and any pooling
 * post-memory operations", eq. 1), C_ℓ its optional local cell (./cell.ts,
 * built by makeCell) and ⊕ concatenation on channels after resizing the
 * source bilinearly to the target's height and width (eq. 1: "spatially
 * resizing the feedback inputs (via bilinear interpolation) and
 * concatenating these with the feedforward input across the channel
 * dimension"). The three entry points of a feedback edge:
 *
 *   'input'   r^j is concatenated to the layer's input in^ℓ (resized to its
 *             size) before F_ℓ, so F_ℓ's first conv has extra input channels
 *             for it: eq. 1 as written, tnn's harbor.
 *   'state'   r^j enters the cell's input: the resized, concatenated sources
 *             go through the layer's feedback conv G^state_ℓ (K x K, stride
 *             1, 'same', no bias, to x's channels) and are added to x_t^ℓ,
 *             so they drive the cell's state update (tnn's RGC
 *             feedback_entry 'input'/'cell'). Concatenating [x ⊕ r^j] and
 *             applying [I | G] is the same map, so this is still eq. 1's
 *             concatenation, with the identity on x.
 *   'output'  the same with G^output_ℓ (to h's channels), added to the cell's
 *             output h_t^ℓ before A_ℓ: it reaches the layer's output at this
 *             step but never the cell's state (tnn's feedback_entry 'out').
 *   K is the layer's `feedbackKernelSize` (default 3).
 *
 * Wirings (one fold, two ways to pick what a layer reads):
 *   'delays'    conduction delays (nayebi2022 §A.1.1, tnn): every step moves
 *               the signal one layer. Layer ℓ > 1 reads r^{ℓ−1}_{t−1}; layer 1
 *               reads the stimulus at t; feedback reads r^j_{t−1}; the head is
 *               one more node and reads r^L_{t−1}.
 *   'standard'  (zhang2021 eqs. 2f–2g): every layer every step reads this
 *               step's output of the layer below, r^{ℓ−1}_t; layer 1 the
 *               stimulus at t; feedback r^j_{t−1} (it is computed later in
 *               the step); the head reads r^L_t.
 * Initial states are zeros (outputs and cells). Under 'delays' the stimulus
 * reaches layer ℓ at t = ℓ − 1, and the layer does not run before then: it
 * stays at rest (initial state, zero output). tnn instead runs it on the
 * zeros it reads; there every LN in a cell (nayebi2022 eqs. 3, 5, 6) sees a
 * constant input, where its gain is 1/sqrt(eps), and the gradient through
 * those steps grows by that factor per LN, step and layer. With zero biases
 * (the init) a layer's response to zeros is zero, so the forward pass at
 * init is the same either way.
 *
 * A network is itself a cell: its state holds every layer's output and cell
 * state, its step advances all layers by one step, and `unroll` is one fold
 * of that step, then the head and the decoder (./decoders.ts).
 *
 * A layer without a cell is a function of what it reads alone. When
 * everything it reads is the same tensor object as at its previous step (a
 * static stimulus, an input that has stopped changing), it returns its
 * previous output instead of computing it again: the same bits, at no cost.
 * Its batch norms (in training) thus see each distinct input once, as
 * zhang2021's CPB, which "uses the output at iteration T' for later
 * iterations" (Appendix B.2).
 */
import { Tensor, checkTensor, dispose } from '../tensor/tensor.js';
import { zeros } from '../tensor/create.js';
import { Key, split } from '../tensor/random.js';
import { ConfigError, ConvrnnError, ShapeError, ValueError, describe } from '../tensor/errors.js';
import { add } from '../tensor/ops/binary.js';
import { concat } from '../tensor/ops/layout.js';
import { conv2d } from '../tensor/ops/conv2d.js';
import { maxPool, avgPool } from '../tensor/ops/pool.js';
import { resizeBilinear } from '../tensor/ops/resize.js';
import { elu, relu, sigmoid, softplus, tanh } from '../tensor/ops/unary.js';
import { ConfigReader } from '../nn/config.js';
import { convLayer, globalAvgPool, linearLayer, type ConvParams, type LinearParams } from '../nn/layers.js';
import { batchNorm, batchNormInit, type BatchNormParams, type BatchNormState } from '../nn/norm.js';
import { readout, readoutInit, type ReadoutParams } from '../nn/readout.js';
import type { InitSpec } from '../nn/init.js';
import type { Cell, StepContext } from './cell.js';
import { makeCell } from './cells/index.js';
import { decode, decoderInit, readDecoderConfig, readsEveryStep, type DecoderConfig, type DecoderParams, type Decoded } from './decoders.js';

// ---- config -------------------------------------------------------------------------

export type Activation = 'elu' | 'relu' | 'tanh' | 'sigmoid' | 'softplus';
export type Pair = number | [number, number];

export const ACTIVATIONS: Readonly<Record<Activation, (x: Tensor) => Tensor>> = { elu, relu, tanh, sigmoid, softplus };
const ACTIVATION_KINDS = Object.keys(ACTIVATIONS) as Activation[];

/** One op of a layer's F_ℓ (`ff`) or A_ℓ (`post`). */
export type OpConfig =
  | {
      kind: 'conv';
      channels: number;
      kernelSize: Pair;
      /** Default 1. */
      stride: Pair;
      /** Default 'same'. */
      padding: 'same' | 'valid';
      /** Default true. */
      bias: boolean;
      /** Default He normal, scale 1. */
      init: InitSpec;
      /** Default 0. */
      biasInit: number;
    }
  | { kind: 'batchNorm'; /** Default 0.9. */ momentum: number; /** Default 1e-5. */ eps: number }
  | { kind: 'maxPool' | 'avgPool'; size: Pair; /** Default: size. */ stride: Pair; /** Default 'same': nothing shrinks below 1x1. */ padding: 'same' | 'valid' }
  | { kind: Activation };

export type FeedbackEntry = 'input' | 'state' | 'output';

/** A long-range feedback edge from layer `from` to a lower layer `to` (1-based). */
export interface FeedbackEdge {
  from: number;
  to: number;
  /** Default 'input'. */
  at: FeedbackEntry;
}

export type CellConfig = { kind: string; [field: string]: unknown };

export interface LayerConfig {
  /** F_ℓ, applied to the layer's input (with its 'input' feedback concatenated). */
  ff: OpConfig[];
  /** The local recurrent cell C_ℓ, or null (default). */
  cell: CellConfig | null;
  /** A_ℓ: nonlinearity and pooling after the cell; default []. */
  post: OpConfig[];
  /** Kernel size of the 'state' and 'output' feedback convs; default 3. */
  feedbackKernelSize: number;
}

/**
 * The head maps the top layer's output to logits:
 *   'conv'      a K x K 'same' conv to `classes` channels, then the spatial
 *               mean (nayebi2022 BaseNet-6's layer 6, a 2x2 conv to the
 *               categories);
 *   'linear'    the spatial mean, then a linear map (BaseNet-11's "Avg. Pool FC");
 *   'factored'  average pooling (default 3x3, stride 3, 'same'), the factored
 *               "what x where" readout of Klindt et al. (../nn/readout.ts),
 *               then `activation` (zhang2021 eq. 1a: Act(FC(Pool(y)))).
 */
export type HeadConfig =
  | { kind: 'conv'; classes: number; kernelSize: Pair; bias: boolean; init: InitSpec }
  | { kind: 'linear'; classes: number; bias: boolean; init: InitSpec }
  | { kind: 'factored'; classes: number; pool: { size: Pair; stride: Pair } | null; activation: Activation | 'identity' };

export interface NetworkConfig {
  layers: LayerConfig[];
  /** Default []. */
  feedback: FeedbackEdge[];
  /** Default 'delays'. */
  wiring: 'delays' | 'standard';
  head: HeadConfig;
  /** Default { kind: 'last' }. */
  decoder: DecoderConfig;
}

const HE: InitSpec = { kind: 'he', scale: 1 };
const FN = 'network';

function pairOf(r: ConfigReader, field: string, dflt?: Pair): Pair {
  const v = r.obj[field] ?? dflt;
  const ok = (d: unknown): boolean => Number.isInteger(d) && (d as number) >= 1;
  if (ok(v)) return v as number;
  if (Array.isArray(v) && v.length === 2 && v.every(ok)) return [v[0], v[1]];
  return r.fail(field, 'a positive integer or [h, w] of positive integers');
}

const pairHW = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : p);

function readOp(value: unknown, path: string): OpConfig {
  const r = ConfigReader.of(FN, value, path);
  const kind = r.oneOf('kind', ['conv', 'batchNorm', 'maxPool', 'avgPool', ...ACTIVATION_KINDS] as const);
  switch (kind) {
    case 'conv':
      r.only(['kind', 'channels', 'kernelSize', 'stride', 'padding', 'bias', 'init', 'biasInit']);
      return {
        kind,
        channels: r.posInt('channels'),
        kernelSize: pairOf(r, 'kernelSize'),
        stride: pairOf(r, 'stride', 1),
        padding: r.oneOf('padding', ['same', 'valid'], 'same'),
        bias: r.bool('bias', true),
        init: r.init('init', HE),
        biasInit: r.num('biasInit', 0),
      };
    case 'batchNorm': {
      r.only(['kind', 'momentum', 'eps']);
      const eps = r.num('eps', 1e-5);
      if (!(eps > 0)) r.fail('eps', 'a positive number');
      return { kind, momentum: r.num('momentum', 0.9, 0, 1), eps };
    }
    case 'maxPool':
    case 'avgPool': {
      r.only(['kind', 'size', 'stride', 'padding']);
      const size = pairOf(r, 'size');
      return { kind, size, stride: pairOf(r, 'stride', size), padding: r.oneOf('padding', ['same', 'valid'], 'same') };
    }
    default:
      r.only(['kind']);
      return { kind };
  }
}

function readOps(r: ConfigReader, field: string): OpConfig[] {
  return r.array(field, []).map((op, i) => readOp(op, `${r.path}.${field}[${i}]`));
}

/** A ConfigError from a cell factory, re-thrown with the cell's path in the network config. */
function buildCell(config: CellConfig, path: string): Cell {
  try {
    return makeCell(config);
  } catch (e) {
    if (e instanceof ConvrnnError) throw new ConfigError(`${FN}: ${path}: ${e.message}`);
    throw e;
  }
}

function readLayer(value: unknown, path: string): { layer: LayerConfig; cell: Cell | null } {
  const r = ConfigReader.of(FN, value, path).only(['ff', 'cell', 'post', 'feedbackKernelSize']);
  const ff = readOps(r, 'ff');
  const post = readOps(r, 'post');
  const raw = r.obj.cell;
  let cell: Cell | null = null;
  let cellConfig: CellConfig | null = null;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'object' || Array.isArray(raw)) r.fail('cell', 'null or a cell config { kind, ... }');
    cell = buildCell(raw as CellConfig, `${path}.cell`);
    cellConfig = { ...(raw as CellConfig) }; // as given, so that a normalised config reads back the same
  }
  return { layer: { ff, cell: cellConfig, post, feedbackKernelSize: r.posInt('feedbackKernelSize', 3) }, cell };
}

function readHead(value: unknown, path: string): HeadConfig {
  const r = ConfigReader.of(FN, value, path);
  const kind = r.oneOf('kind', ['conv', 'linear', 'factored'] as const);
  const classes = (): number => r.posInt('classes');
  switch (kind) {
    case 'conv':
      r.only(['kind', 'classes', 'kernelSize', 'bias', 'init']);
      return { kind, classes: classes(), kernelSize: pairOf(r, 'kernelSize', 1), bias: r.bool('bias', true), init: r.init('init', HE) };
    case 'linear':
      r.only(['kind', 'classes', 'bias', 'init']);
      return { kind, classes: classes(), bias: r.bool('bias', true), init: r.init('init', HE) };
    case 'factored': {
      r.only(['kind', 'classes', 'pool', 'activation']);
      let pool: { size: Pair; stride: Pair } | null = { size: 3, stride: 3 };
      if (r.obj.pool === null) pool = null;
      else if (r.has('pool')) {
        const p = r.sub('pool').only(['size', 'stride']);
        const size = pairOf(p, 'size');
        pool = { size, stride: pairOf(p, 'stride', size) };
      }
      return { kind, classes: classes(), pool, activation: r.oneOf('activation', [...ACTIVATION_KINDS, 'identity'] as const, 'identity') };
    }
  }
}

function readFeedback(value: unknown, path: string, layers: readonly LayerConfig[]): FeedbackEdge {
  const r = ConfigReader.of(FN, value, path).only(['from', 'to', 'at']);
  const L = layers.length;
  const from = r.int('from', undefined, 1, L);
  const to = r.int('to', undefined, 1, L);
  if (from <= to) r.fail('from', `a layer above config.to = ${to} (feedback goes from layer ℓ+k to ℓ, k ≥ 1)`);
  const at = r.oneOf('at', ['input', 'state', 'output'] as const, 'input');
  if (at === 'input' && !layers[to - 1].ff.some((op) => op.kind === 'conv')) {
    r.fail('at', `'state' or 'output': layer ${to} has no conv in its ff to take 'input' feedback`);
  }
  return { from, to, at };
}

interface Parsed {
  config: NetworkConfig;
  cells: (Cell | null)[];
}

function readNetwork(value: unknown, path: string): Parsed {
  const r = ConfigReader.of(FN, value, path).only(['layers', 'feedback', 'wiring', 'head', 'decoder']);
  const rawLayers = r.array('layers');
  if (rawLayers.length === 0) r.fail('layers', 'a non-empty array of layer configs');
  const read = rawLayers.map((l, i) => readLayer(l, `${path}.layers[${i}]`));
  const layers = read.map((x) => x.layer);
  const feedback = r.array('feedback', []).map((e, i) => readFeedback(e, `${path}.feedback[${i}]`, layers));
  feedback.forEach((e, i) => {
    const j = feedback.findIndex((f) => f.from === e.from && f.to === e.to && f.at === e.at);
    if (j < i) throw new ConfigError(`${FN}: ${path}.feedback[${i}] repeats ${path}.feedback[${j}] (${e.from} -> ${e.to} at '${e.at}')`);
  });
  return {
    config: {
      layers,
      feedback,
      wiring: r.oneOf('wiring', ['delays', 'standard'] as const, 'delays'),
      head: readHead(r.obj.head, `${path}.head`),
      decoder: readDecoderConfig(FN, r.obj.decoder, `${path}.decoder`),
    },
    cells: read.map((x) => x.cell),
  };
}

// ---- params, buffers, state ------------------------------------------------------------

/** An op's params: conv { w, b? }, batch norm { gamma, beta }, {} for the rest. */
export type OpParams = ConvParams | BatchNormParams | Record<string, never>;
/** An op's buffers: batch norm's running statistics, {} for the rest. */
export type OpBuffers = BatchNormState | Record<string, never>;

export interface LayerParams {
  ff: OpParams[];
  cell?: unknown;
  /** G^state_ℓ, w [K, K, Σ C_j, C_x]. */
  fbState?: ConvParams;
  /** G^output_ℓ, w [K, K, Σ C_j, C_h]. */
  fbOutput?: ConvParams;
  post: OpParams[];
}

export type HeadParams = ConvParams | LinearParams | ReadoutParams;

export interface NetworkParams {
  layers: LayerParams[];
  head: HeadParams;
  decoder: DecoderParams;
}

export interface LayerBuffers {
  ff: OpBuffers[];
  /** The cell's state.buffers (absent for cells without buffers). */
  cell?: unknown;
  post: OpBuffers[];
}

/** Everything that outlives one sequence: batch-norm running statistics. */
export interface NetworkBuffers {
  layers: LayerBuffers[];
}

export interface LayerState {
  /** r^ℓ at the last step the layer ran (zeros before the first). */
  output: Tensor;
  /** The cell's state. */
  cell?: unknown;
  /** For a layer without a cell: what it read at that step (see the module comment). */
  reads?: Tensor[];
}

export interface NetworkState {
  layers: LayerState[];
  buffers: NetworkBuffers;
}

/** NHWC shapes of one layer: what F_ℓ's first op sees, the cell's input x, the layer's output r. */
export interface LayerShapes {
  input: number[];
  x: number[];
  output: number[];
}

export interface Network extends Cell<NetworkParams, NetworkState> {
  readonly kind: 'network';
  readonly config: NetworkConfig & Readonly<Record<string, unknown>>;
  /** The built cell of each layer (null where none). */
  readonly cells: readonly (Cell | null)[];
  /** Per layer (0-based here), the 1-based layers feeding it back, by entry point. */
  readonly feedbackInto: readonly Readonly<Record<FeedbackEntry, readonly number[]>>[];
  /** Every layer's shapes for a stimulus of `inputShape` [N, H, W, C]. */
  shapes(inputShape: readonly number[]): LayerShapes[];
  /** [N, classes]. */
  logitsShape(inputShape: readonly number[]): number[];
  /** Fresh buffers (running means 0, variances 1). */
  initBuffers(inputShape: readonly number[]): NetworkBuffers;
  /** The head's logits for its input y (the top layer's output). */
  head(params: NetworkParams, y: Tensor): Tensor;
}

// ---- shapes -----------------------------------------------------------------------------

function poolOut(n: number, size: number, stride: number, padding: 'same' | 'valid'): number {
  return padding === 'same' ? Math.ceil(n / stride) : Math.floor((n - size) / stride) + 1;
}

function opShape(op: OpConfig, s: readonly number[], where: string): number[] {
  const [n, h, w, c] = s;
  let out: number[];
  if (op.kind === 'conv') {
    const [kh, kw] = pairHW(op.kernelSize);
    const [sh, sw] = pairHW(op.stride);
    out = [n, poolOut(h, kh, sh, op.padding), poolOut(w, kw, sw, op.padding), op.channels];
  } else if (op.kind === 'maxPool' || op.kind === 'avgPool') {
    const [kh, kw] = pairHW(op.size);
    const [sh, sw] = pairHW(op.stride);
    out = [n, poolOut(h, kh, sh, op.padding), poolOut(w, kw, sw, op.padding), c];
  } else out = s.slice();
  if (!(out[1] >= 1 && out[2] >= 1)) {
    throw new ShapeError(`${FN}: ${where} ('${op.kind}', 'valid' padding) has no output for an input of [${s.join(', ')}]`);
  }
  return out;
}

function opsShape(ops: readonly OpConfig[], s: readonly number[], where: string): number[] {
  return ops.reduce<number[]>((acc, op, i) => opShape(op, acc, `${where}[${i}]`), s.slice());
}

function checkInputShape(fn: string, inputShape: unknown): number[] {
  if (!Array.isArray(inputShape) || inputShape.length !== 4 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ShapeError(`${fn}: inputShape must be [N, H, W, C] of positive integers, got ${describe(inputShape)}`);
  }
  return inputShape.slice();
}

// ---- ops --------------------------------------------------------------------------------

function opInit(k: Key, op: OpConfig, inShape: readonly number[]): { params: OpParams; buffers: OpBuffers } {
  if (op.kind === 'conv') {
    const { channels, kernelSize, stride, padding, bias, init, biasInit } = op;
    return { params: convLayer.init(k, { inChannels: inShape[3], outChannels: channels, kernelSize, stride, padding, bias, init, biasInit }), buffers: {} };
  }
  if (op.kind === 'batchNorm') {
    const bn = batchNormInit(inShape[3]);
    return { params: bn.params, buffers: bn.state };
  }
  return { params: {}, buffers: {} };
}

function opBuffers(op: OpConfig, inShape: readonly number[]): OpBuffers {
  return op.kind === 'batchNorm' ? batchNormInit(inShape[3]).state : {};
}

function applyOp(op: OpConfig, params: OpParams, buffers: OpBuffers, x: Tensor, training: boolean): [Tensor, OpBuffers] {
  switch (op.kind) {
    case 'conv': {
      const p = params as ConvParams;
      return [conv2d(x, p.w, { stride: op.stride, padding: op.padding, bias: p.b }), buffers];
    }
    case 'batchNorm':
      return batchNorm(params as BatchNormParams, buffers as BatchNormState, x, { training, momentum: op.momentum, eps: op.eps });
    case 'maxPool':
      return [maxPool(x, { size: op.size, stride: op.stride, padding: op.padding }), buffers];
    case 'avgPool':
      return [avgPool(x, { size: op.size, stride: op.stride, padding: op.padding }), buffers];
    default:
      return [ACTIVATIONS[op.kind](x), buffers];
  }
}

function applyOps(ops: readonly OpConfig[], params: readonly OpParams[], buffers: readonly OpBuffers[], x: Tensor, training: boolean): [Tensor, OpBuffers[]] {
  let y = x;
  let out: OpBuffers[] | null = null;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const next = ops[i + 1];
    // A conv and the elu or relu after it run as one conv2d with the activation
    // fused: the same bits, and the pre-activation is never kept for the backward pass.
    if (op.kind === 'conv' && (next?.kind === 'elu' || next?.kind === 'relu')) {
      const p = params[i] as ConvParams;
      y = conv2d(y, p.w, { stride: op.stride, padding: op.padding, bias: p.b, activation: next.kind });
      i++;
      continue;
    }
    const [z, b] = applyOp(op, params[i], buffers[i], y, training);
    y = z;
    if (b !== buffers[i]) {
      out ??= buffers.slice();
      out[i] = b;
    }
  }
  return [y, out ?? (buffers as OpBuffers[])];
}

/** r resized (bilinear, half-pixel centers) to [h, w]; r itself when it has that size. */
function fit(r: Tensor, h: number, w: number): Tensor {
  return r.shape[1] === h && r.shape[2] === w ? r : resizeBilinear(r, [h, w]);
}

/** ⊕_j resize(r^j): the sources resized to [h, w] and concatenated on channels. */
function gather(sources: readonly Tensor[], h: number, w: number): Tensor {
  const parts = sources.map((r) => fit(r, h, w));
  return parts.length === 1 ? parts[0] : concat(parts, 3);
}

// ---- the network ------------------------------------------------------------------------

function checkObj(fn: string, what: string, v: unknown): asserts v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new ValueError(`${fn}: ${what} must be an object, got ${describe(v)}`);
}

/**
 * Build a network from its config (ConfigError naming the field on any
 * invalid config; `path` is the config's own name in those messages).
 */
export function makeNetwork(config: unknown, path = 'config'): Network {
  const { config: cfg, cells } = readNetwork(config, path);
  const L = cfg.layers.length;
  const feedbackInto = cfg.layers.map((_, i) => {
    const at = (e: FeedbackEntry): number[] => cfg.feedback.filter((f) => f.to === i + 1 && f.at === e).map((f) => f.from);
    return { input: at('input'), state: at('state'), output: at('output') };
  });
  const delays = cfg.wiring === 'delays';

  const shapes = (inputShape: readonly number[]): LayerShapes[] => {
    const s = checkInputShape(`${FN}.shapes`, inputShape);
    // Output shapes do not depend on 'input' feedback channels (a conv in F_ℓ fixes them), so one pass without them first.
    const outs: number[][] = [];
    const xs: number[][] = [];
    cfg.layers.forEach((layer, i) => {
      const below = i === 0 ? s : outs[i - 1];
      xs.push(opsShape(layer.ff, below, `${path}.layers[${i}].ff`));
      const h = cells[i] === null ? xs[i] : cells[i]!.outputShape(xs[i]);
      outs.push(opsShape(layer.post, h, `${path}.layers[${i}].post`));
    });
    return cfg.layers.map((_, i) => {
      const below = i === 0 ? s : outs[i - 1];
      const extra = feedbackInto[i].input.reduce((c, j) => c + outs[j - 1][3], 0);
      return { input: [...below.slice(0, 3), below[3] + extra], x: xs[i], output: outs[i] };
    });
  };

  const headOf = (params: NetworkParams, y: Tensor): Tensor => {
    const head = cfg.head;
    if (head.kind === 'conv') {
      const p = params.head as ConvParams;
      return globalAvgPool(conv2d(y, p.w, { padding: 'same', bias: p.b }));
    }
    if (head.kind === 'linear') {
      const p = params.head as LinearParams;
      return linearLayer.apply(p, globalAvgPool(y), { inFeatures: y.shape[3], outFeatures: head.classes, bias: p.b !== undefined });
    }
    const pooled = head.pool === null ? y : avgPool(y, { size: head.pool.size, stride: head.pool.stride, padding: 'same' });
    const z = readout(params.head as ReadoutParams, pooled);
    return head.activation === 'identity' ? z : ACTIVATIONS[head.activation](z);
  };

  const headInit = (k: Key, top: readonly number[]): HeadParams => {
    const head = cfg.head;
    const c = top[3];
    if (head.kind === 'conv') {
      return convLayer.init(k, { inChannels: c, outChannels: head.classes, kernelSize: head.kernelSize, bias: head.bias, init: head.init });
    }
    if (head.kind === 'linear') return linearLayer.init(k, { inFeatures: c, outFeatures: head.classes, bias: head.bias, init: head.init });
    const [h, w] = head.pool === null ? [top[1], top[2]] : [poolOut(top[1], 0, pairHW(head.pool.stride)[0], 'same'), poolOut(top[2], 0, pairHW(head.pool.stride)[1], 'same')];
    return readoutInit(k, { height: h, width: w, channels: c, units: head.classes });
  };

  const initBuffers = (inputShape: readonly number[]): NetworkBuffers => {
    const sh = shapes(inputShape);
    return {
      layers: cfg.layers.map((layer, i) => {
        const ffIn = [sh[i].input];
        layer.ff.forEach((op, j) => ffIn.push(opShape(op, ffIn[j], '')));
        const postIn = [cells[i] === null ? sh[i].x : cells[i]!.outputShape(sh[i].x)];
        layer.post.forEach((op, j) => postIn.push(opShape(op, postIn[j], '')));
        const out: LayerBuffers = { ff: layer.ff.map((op, j) => opBuffers(op, ffIn[j])), post: layer.post.map((op, j) => opBuffers(op, postIn[j])) };
        const cell = cells[i];
        if (cell !== null) {
          // A cell's fresh buffers are those of its fresh state (one image is enough).
          const st = cell.initialState([1, ...sh[i].x.slice(1)]) as Record<string, unknown>;
          for (const [name, v] of Object.entries(st)) if (name !== 'buffers') dispose(v);
          if (st.buffers !== undefined) out.cell = st.buffers;
        }
        return out;
      }),
    };
  };

  const init = (k: Key, inputShape: readonly number[]): NetworkParams => {
    const fn = `${FN}.init`;
    if (!(k instanceof Key)) throw new ValueError(`${fn}: key must be a Key, got ${describe(k)}`);
    const sh = shapes(inputShape);
    const keys = split(k, L + 2);
    const layers = cfg.layers.map((layer, i): LayerParams => {
      const [kff, kcell, kstate, kout, kpost] = split(keys[i], 5);
      const ffKeys = split(kff, Math.max(1, layer.ff.length));
      const postKeys = split(kpost, Math.max(1, layer.post.length));
      let s = sh[i].input;
      const ff = layer.ff.map((op, j) => {
        const p = opInit(ffKeys[j], op, s).params;
        s = opShape(op, s, '');
        return p;
      });
      const out: LayerParams = { ff, post: [] };
      const cell = cells[i];
      if (cell !== null) out.cell = cell.init(kcell, sh[i].x, i > 0 ? sh[i - 1].output : undefined);
      const fbConv = (kk: Key, sources: readonly number[], outC: number): ConvParams =>
        convLayer.init(kk, { inChannels: sources.reduce((c, j) => c + sh[j - 1].output[3], 0), outChannels: outC, kernelSize: layer.feedbackKernelSize, bias: false });
      if (feedbackInto[i].state.length > 0) out.fbState = fbConv(kstate, feedbackInto[i].state, sh[i].x[3]);
      let h = cell === null ? sh[i].x : cell.outputShape(sh[i].x);
      if (feedbackInto[i].output.length > 0) out.fbOutput = fbConv(kout, feedbackInto[i].output, h[3]);
      out.post = layer.post.map((op, j) => {
        const p = opInit(postKeys[j], op, h).params;
        h = opShape(op, h, '');
        return p;
      });
      return out;
    });
    return { layers, head: headInit(keys[L], sh[L - 1].output), decoder: decoderInit(cfg.decoder) };
  };

  const initialState = (inputShape: readonly number[], buffers?: unknown): NetworkState => {
    const fn = `${FN}.initialState`;
    const sh = shapes(inputShape);
    const bufs = buffers === undefined ? initBuffers(inputShape) : checkBuffers(fn, buffers);
    return {
      layers: cfg.layers.map((_, i) => {
        const cell = cells[i];
        const st: LayerState = { output: zeros(sh[i].output) };
        if (cell !== null) st.cell = cell.initialState(sh[i].x, bufs.layers[i].cell);
        return st;
      }),
      buffers: bufs,
    };
  };

  const checkBuffers = (fn: string, buffers: unknown): NetworkBuffers => {
    checkObj(fn, 'buffers', buffers);
    const ls = buffers.layers;
    if (!Array.isArray(ls) || ls.length !== L) throw new ValueError(`${fn}: buffers.layers must be an array of ${L} layer buffers, got ${describe(ls)}`);
    ls.forEach((b, i) => {
      checkObj(fn, `buffers.layers[${i}]`, b);
      for (const part of ['ff', 'post'] as const) {
        const arr = b[part];
        if (!Array.isArray(arr) || arr.length !== cfg.layers[i][part].length) {
          throw new ValueError(`${fn}: buffers.layers[${i}].${part} must be an array of ${cfg.layers[i][part].length} op buffers, got ${describe(arr)}`);
        }
      }
    });
    return buffers as unknown as NetworkBuffers;
  };

  const checkParams = (fn: string, params: unknown): NetworkParams => {
    checkObj(fn, 'params', params);
    const ls = params.layers;
    if (!Array.isArray(ls) || ls.length !== L) throw new ValueError(`${fn}: params.layers must be an array of ${L} layer params, got ${describe(ls)}`);
    ls.forEach((p, i) => {
      checkObj(fn, `params.layers[${i}]`, p);
      for (const part of ['ff', 'post'] as const) {
        const arr = p[part];
        if (!Array.isArray(arr) || arr.length !== cfg.layers[i][part].length) {
          throw new ValueError(`${fn}: params.layers[${i}].${part} must be an array of ${cfg.layers[i][part].length} op params, got ${describe(arr)}`);
        }
      }
      if (cells[i] !== null && p.cell === undefined) throw new ValueError(`${fn}: params.layers[${i}].cell is missing (layer ${i + 1} has a '${cells[i]!.kind}' cell)`);
    });
    checkObj(fn, 'params.head', params.head);
    checkObj(fn, 'params.decoder', params.decoder);
    return params as unknown as NetworkParams;
  };

  const checkState = (fn: string, state: unknown, batch: number): NetworkState => {
    checkObj(fn, 'state', state);
    const ls = state.layers;
    if (!Array.isArray(ls) || ls.length !== L) throw new ValueError(`${fn}: state.layers must be an array of ${L} layer states, got ${describe(ls)}`);
    ls.forEach((s, i) => {
      checkObj(fn, `state.layers[${i}]`, s);
      checkTensor(fn, `state.layers[${i}].output`, s.output);
      if (s.output.rank !== 4 || s.output.shape[0] !== batch) {
        throw new ShapeError(`${fn}: state.layers[${i}].output must be [${batch}, H, W, C] like the stimulus' batch, got [${s.output.shape.join(', ')}]`);
      }
      if (cells[i] !== null && s.cell === undefined) throw new ValueError(`${fn}: state.layers[${i}].cell is missing`);
    });
    checkBuffers(fn, state.buffers);
    return state as unknown as NetworkState;
  };

  /**
   * One step of every layer whose `need` flag is set (all when absent); a
   * layer left out keeps its state, which no layer that ran reads.
   */
  const advance = (params: NetworkParams, state: NetworkState, x: Tensor, t: number, training: boolean, need?: readonly boolean[]): NetworkState => {
    const prev = state.layers;
    const next = prev.slice();
    const bufs = state.buffers.layers.slice();
    cfg.layers.forEach((layer, i) => {
      if (need !== undefined && !need[i]) return;
      if (delays && t < i) return; // the stimulus has not reached layer i + 1 yet: it stays at rest
      const p = params.layers[i];
      const cell = cells[i];
      const fb = feedbackInto[i];
      // What layer ℓ reads: under conduction delays (nayebi2022 §A.1.1, eq. 1 with tnn's unrolling) the layer
      // below at t−1; under the standard wiring (zhang2021 eqs. 2f, 2g) the layer below at t. Feedback: r^j_{t−1}.
      const below = i === 0 ? x : delays ? prev[i - 1].output : next[i - 1].output;
      const src = (js: readonly number[]): Tensor[] => js.map((j) => prev[j - 1].output);
      const fbIn = src(fb.input);
      const fbState = src(fb.state);
      const fbOut = src(fb.output);
      let reads: Tensor[] | undefined;
      if (cell === null) {
        reads = [below, ...fbIn, ...fbState, ...fbOut];
        const last = prev[i].reads;
        if (last !== undefined && last.length === reads.length && last.every((r, k) => r === reads![k])) return;
      }
      // eq. 1: x = F_ℓ(in ⊕ resized feedback); then the 'state' entry into the cell's input, the cell C_ℓ, the
      // 'output' entry into its output, and A_ℓ.
      const input = fbIn.length === 0 ? below : concat([below, gather(fbIn, below.shape[1], below.shape[2])], 3);
      let [h, ffBufs] = applyOps(layer.ff, p.ff, bufs[i].ff, input, training);
      if (fbState.length > 0) h = add(h, conv2d(gather(fbState, h.shape[1], h.shape[2]), p.fbState!.w, { padding: 'same' }));
      let cellState: unknown;
      if (cell !== null) {
        const ctx: StepContext = i === 0 ? { t, training } : { t, training, below };
        [cellState, h] = cell.step(p.cell, prev[i].cell, h, ctx);
      }
      if (fbOut.length > 0) h = add(h, conv2d(gather(fbOut, h.shape[1], h.shape[2]), p.fbOutput!.w, { padding: 'same' }));
      const [r, postBufs] = applyOps(layer.post, p.post, bufs[i].post, h, training);
      next[i] = cell === null ? { output: r, reads } : { output: r, cell: cellState };
      const lb: LayerBuffers = { ff: ffBufs, post: postBufs };
      const cb = (cellState as { buffers?: unknown } | undefined)?.buffers;
      if (cb !== undefined) lb.cell = cb;
      bufs[i] = lb;
    });
    return { layers: next, buffers: { layers: bufs } };
  };

  const network: Network & { advance: typeof advance; checkParams: typeof checkParams; checkState: typeof checkState } = {
    kind: 'network',
    config: cfg as NetworkConfig & Readonly<Record<string, unknown>>,
    cells,
    feedbackInto,
    shapes,
    logitsShape: (inputShape) => [checkInputShape(`${FN}.logitsShape`, inputShape)[0], cfg.head.classes],
    outputShape: (inputShape) => shapes(inputShape)[L - 1].output,
    initBuffers,
    init,
    initialState,
    head: headOf,
    step(params, state, x, ctx) {
      const fn = `${FN}.step`;
      checkTensor(fn, 'x', x);
      if (x.rank !== 4) throw new ShapeError(`${fn}: x must be the stimulus [N, H, W, C], got [${x.shape.join(', ')}]`);
      checkObj(fn, 'ctx', ctx);
      if (!Number.isInteger(ctx.t) || ctx.t < 0) throw new ValueError(`${fn}: ctx.t must be a non-negative integer, got ${describe(ctx.t)}`);
      if (typeof ctx.training !== 'boolean') throw new ValueError(`${fn}: ctx.training must be a boolean, got ${describe(ctx.training)}`);
      const st = advance(checkParams(fn, params), checkState(fn, state, x.shape[0]), x, ctx.t, ctx.training);
      return [st, st.layers[L - 1].output];
    },
    advance,
    checkParams,
    checkState,
  };
  return network;
}

type Internal = Network & {
  advance(params: NetworkParams, state: NetworkState, x: Tensor, t: number, training: boolean, need?: readonly boolean[]): NetworkState;
  checkParams(fn: string, params: unknown): NetworkParams;
  checkState(fn: string, state: unknown, batch: number): NetworkState;
};

function internal(fn: string, network: unknown): Internal {
  if (typeof network !== 'object' || network === null || (network as Network).kind !== 'network' || typeof (network as Internal).advance !== 'function') {
    throw new ValueError(`${fn}: network must be a network from makeNetwork, got ${describe(network)}`);
  }
  return network as Internal;
}

// ---- unrolling ----------------------------------------------------------------------------

export interface UnrollOptions {
  /** Batch statistics and their running averages (training) or the running averages; default false. */
  training?: boolean;
  /** The state to continue from; default the zero state (with `buffers`). */
  state?: NetworkState;
  /** Buffers to start from when no state is given; default fresh. */
  buffers?: NetworkBuffers;
  /** Index of the first step (ctx.t), for a continuation; default 0. */
  t0?: number;
}

export interface UnrollResult {
  /** outputs[t][ℓ−1] = r^ℓ_t, every layer at every step. */
  outputs: Tensor[][];
  /** The decoder's result: per-step logits it read and the decoded logits [N, classes]. */
  decoded: Decoded;
  /** The state after the last step (a valid `state` to continue from). */
  state: NetworkState;
}

/** The stimulus at step t: one tensor for every step, or one per step. */
function stimulusAt(fn: string, stimulus: Tensor | readonly Tensor[], T: number): (t: number) => Tensor {
  if (!Array.isArray(stimulus)) {
    checkTensor(fn, 'stimulus', stimulus);
    const x = stimulus as Tensor;
    if (x.rank !== 4) throw new ShapeError(`${fn}: stimulus must be [N, H, W, C], got [${x.shape.join(', ')}]`);
    return () => x;
  }
  const steps = stimulus as readonly Tensor[];
  if (steps.length !== T) throw new ValueError(`${fn}: stimulus must hold T = ${T} tensors (one per step), got ${steps.length}`);
  steps.forEach((s, t) => checkTensor(fn, `stimulus[${t}]`, s));
  const shape = steps[0].shape;
  steps.forEach((s, t) => {
    if (s.rank !== 4 || s.shape.some((d, k) => d !== shape[k])) {
      throw new ShapeError(`${fn}: stimulus[${t}] must be [N, H, W, C] like stimulus[0] [${shape.join(', ')}], got [${s.shape.join(', ')}]`);
    }
  });
  return (t) => steps[t];
}

function checkT(fn: string, T: unknown): number {
  if (!Number.isInteger(T) || (T as number) < 1) throw new ValueError(`${fn}: T (the number of steps) must be a positive integer, got ${describe(T)}`);
  return T as number;
}

function readOpts(fn: string, opts: UnrollOptions): { training: boolean; t0: number } {
  if (typeof opts !== 'object' || opts === null) throw new ValueError(`${fn}: opts must be an object, got ${describe(opts)}`);
  const training = opts.training ?? false;
  const t0 = opts.t0 ?? 0;
  if (typeof training !== 'boolean') throw new ValueError(`${fn}: opts.training must be a boolean, got ${describe(opts.training)}`);
  if (!Number.isInteger(t0) || t0 < 0) throw new ValueError(`${fn}: opts.t0 must be a non-negative integer, got ${describe(opts.t0)}`);
  if (opts.state !== undefined && opts.buffers !== undefined) throw new ValueError(`${fn}: give opts.state or opts.buffers, not both (a state carries its buffers)`);
  return { training, t0 };
}

/**
 * Which layers must run at which step for the decoder's logits (need[t][ℓ−1]):
 * what the decoder reads, then backwards in time everything that is read by
 * something that runs (the layer below, feedback sources, a cell's own
 * previous state).
 */
export function neededSteps(network: Network, T: number): boolean[][] {
  const net = internal('neededSteps', network);
  checkT('neededSteps', T);
  const { layers, wiring, decoder } = net.config;
  const L = layers.length;
  const delays = wiring === 'delays';
  const need = Array.from({ length: T }, () => new Array<boolean>(L).fill(false));
  const every = readsEveryStep(decoder);
  for (let t = T - 1; t >= 0; t--) {
    if (every || t === T - 1) {
      if (!delays) need[t][L - 1] = true;
      else if (t > 0) need[t - 1][L - 1] = true;
    }
    for (let i = L - 1; i >= 0; i--) {
      if (!need[t][i]) continue;
      if (delays && t < i) {
        need[t][i] = false; // not reached yet: at rest, nothing to compute (see advance)
        continue;
      }
      if (i > 0) {
        if (!delays) need[t][i - 1] = true;
        else if (t > 0) need[t - 1][i - 1] = true;
      }
      if (t === 0) continue;
      const fb = net.feedbackInto[i];
      for (const j of [...fb.input, ...fb.state, ...fb.output]) need[t - 1][j - 1] = true;
      if (net.cells[i] !== null) need[t - 1][i] = true;
    }
  }
  return need;
}

function fold(
  fn: string,
  net: Internal,
  params: NetworkParams,
  stimulus: Tensor | readonly Tensor[],
  T: number,
  opts: UnrollOptions,
  need?: boolean[][],
): { outputs: Tensor[][]; features: (Tensor | undefined)[]; state: NetworkState } {
  const { training, t0 } = readOpts(fn, opts);
  const at = stimulusAt(fn, stimulus, T);
  const x0 = at(0);
  let state = opts.state === undefined ? net.initialState(x0.shape, opts.buffers) : net.checkState(fn, opts.state, x0.shape[0]);
  const L = net.config.layers.length;
  const delays = net.config.wiring === 'delays';
  const every = readsEveryStep(net.config.decoder);
  const outputs: Tensor[][] = [];
  const features: (Tensor | undefined)[] = new Array(T).fill(undefined);
  for (let t = 0; t < T; t++) {
    // Under conduction delays the head is one more node: it reads the top layer's previous output.
    const top = state.layers[L - 1].output;
    state = net.advance(params, state, at(t), t0 + t, training, need?.[t]);
    if (every || t === T - 1) features[t] = delays ? top : state.layers[L - 1].output;
    outputs.push(state.layers.map((l) => l.output));
  }
  return { outputs, features, state };
}

/**
 * Unroll `network` for T ≥ 1 steps on `stimulus` (one [N, H, W, C] tensor for
 * every step, or an array of T of them, e.g. from stimulusSchedule): every
 * layer's output at every step, the decoder's result, and the final state.
 */
export function unroll(network: Network, params: NetworkParams, stimulus: Tensor | readonly Tensor[], T: number, opts: UnrollOptions = {}): UnrollResult {
  const fn = 'unroll';
  const net = internal(fn, network);
  checkT(fn, T);
  const p = net.checkParams(fn, params);
  const { outputs, features, state } = fold(fn, net, p, stimulus, T, opts);
  const decoded = decode(net.config.decoder, p.decoder, (y) => net.head(p, y), features);
  return { outputs, decoded, state };
}

export interface DecodedUnroll {
  decoded: Decoded;
  /** The buffers after the last step. */
  buffers: NetworkBuffers;
}

/**
 * The decoder's result alone, computing only the layer steps it needs
 * (neededSteps): what a loss wants. Layer outputs the decoder never reads
 * (under 'delays', the top layers at the last steps) are not computed, so
 * the final state is not a continuation; only its buffers are returned.
 */
export function unrollDecoded(network: Network, params: NetworkParams, stimulus: Tensor | readonly Tensor[], T: number, opts: UnrollOptions = {}): DecodedUnroll {
  const fn = 'unrollDecoded';
  const net = internal(fn, network);
  checkT(fn, T);
  const p = net.checkParams(fn, params);
  const { features, state } = fold(fn, net, p, stimulus, T, opts, neededSteps(net, T));
  const decoded = decode(net.config.decoder, p.decoder, (y) => net.head(p, y), features);
  return { decoded, buffers: state.buffers };
}
