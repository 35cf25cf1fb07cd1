/**
 * The papers' models as configs: functions that return validated model
 * configs (./model.ts) for buildModel.
 *
 * nayebi2022 §A.2.1 (ELU after every conv, max pooling 2x2 stride 2):
 *   baseNet6   6-layer BaseNet: 7x7/64/s2, 3x3/128, 3x3/256, 3x3/256, 3x3/512,
 *              each + pool; layer 6 a 2x2 conv to the categories (the head),
 *              spatially averaged to logits. Cells go in layers 3–5 (§A.3).
 *   ffWider    the same with 128, 512, 512, 512, 1024 channels ("FF Wider").
 *   baseNet11  11-layer BaseNet after ResNet-18: 7x7/64/s2 + pool, then nine
 *              layers of two 3x3 convs each (ELU between; "Repeat x2"), 64, 64,
 *              128+pool, 128, 256+pool, 256+pool, 512, 512, 512+pool; layer 11
 *              average pool + FC (the head). Cells go in layers 4–10 (§A.3).
 *   ffDeeper   the same eleven layers with one conv each ("FF Deeper").
 * A layer is conv(s) → cell (if any) → ELU → pool; a cell's input is the
 * conv's output x and its output h goes through the same ELU and pool, so a
 * time-decay cell with τ = 0 gives the feedforward BaseNet exactly.
 *
 * Small inputs (e.g. 32x32 or 64x64 at width 1/8 on a CPU): every conv and
 * pool uses 'same' padding, so a size n becomes ceil(n / stride) and never
 * drops below 1x1. BaseNet-6 on 32x32: 16 (conv s2) → 8 → 4 → 2 → 1 → 1;
 * on 64x64: 32 → 16 → 8 → 4 → 2 → 1; the 2x2 head conv ('same') then sees
 * a 1x1 (or 2x2) map and its spatial mean is the logits. BaseNet-11 on
 * 64x64: 16 after layer 1, 8 after layer 4, 4 after 6, 2 after 7, 1 after 10.
 * `width` multiplies every channel count (rounded, at least 1); the
 * categories are not scaled.
 *
 * zhang2021 (Appendix B, C.2; Table 2):
 *   zhang      an input batch norm, one CPB with k = 9 (conv, BN, Act), then
 *              either CPBs with k = 3 (feedforward: `blocks` − 1 of them) or
 *              RCPBs with k = 3 (recurrent: every two CPBs become one RCPB,
 *              (`blocks` − 1)/2 of them; each iteration has its own BN), then
 *              average pooling 3x3 stride 3 and the factored readout
 *              (Klindt et al.) to the categories. Standard unrolling, the image
 *              at every iteration, a readout mode as the decoder.
 *
 * Defaults for T and imageOff (nayebi2022 §A.3 table): with cells or feedback,
 * T = 16, imageOff = 12 (BaseNet-6) and T = 17, imageOff = 12 (BaseNet-11);
 * a feedforward model gets T = its minimal unrolling and the image at every
 * step. A T given without imageOff shows the image at every step.
 */
import { ConfigError, ValueError, describe } from '../tensor/errors.js';
import { validateModelConfig, modelParamCount, type ModelConfig } from './model.js';
import { makeNetwork, type CellConfig, type FeedbackEdge, type OpConfig } from './network.js';
import { minimalUnroll } from './schedule.js';
import type { DecoderConfig, DecoderKind } from './decoders.js';

type RawOp = { kind: string; [field: string]: unknown };
type RawLayer = { ff: RawOp[]; cell?: CellConfig | null; post?: RawOp[] };

export interface ZooOptions {
  /** Channel multiplier; default 1. */
  width?: number;
  /** Image height and width the model is for; when given, recorded in the config and checked against the data. */
  inputSize?: number;
  /** Default 1000 (BaseNets), 10 (zhang). */
  classes?: number;
  /** Wiring; default 'delays' (nayebi2022), 'standard' for zhang. */
  wiring?: 'delays' | 'standard';
  T?: number;
  imageOff?: number;
  /** A decoder kind or config; default 'last'. */
  decoder?: DecoderKind | DecoderConfig;
  /** Mean-gray value; default 0.5. */
  gray?: number | number[];
}

export interface ConvRnnOptions extends ZooOptions {
  /** A cell kind ('rgc', 'lstm', ...) or config; default none (feedforward). */
  cell?: string | CellConfig | null;
  /** The 1-based layers holding a cell; default 3–5 (BaseNet-6), 4–10 (BaseNet-11). */
  cellLayers?: number[];
  /** Long-range feedback edges; default none. */
  feedback?: Partial<FeedbackEdge>[];
}

/** [kernel, channels, stride, pool, convs] of one BaseNet layer. */
type Row = [number, number, number, boolean, number];

const BASENET6: Row[] = [[7, 64, 2, true, 1], [3, 128, 1, true, 1], [3, 256, 1, true, 1], [3, 256, 1, true, 1], [3, 512, 1, true, 1]];
const FF_WIDER: Row[] = [[7, 128, 2, true, 1], [3, 512, 1, true, 1], [3, 512, 1, true, 1], [3, 512, 1, true, 1], [3, 1024, 1, true, 1]];
const BASENET11_BLOCKS: [number, number, number, boolean][] = [
  [7, 64, 2, true], [3, 64, 1, false], [3, 64, 1, false], [3, 128, 1, true], [3, 128, 1, false],
  [3, 256, 1, true], [3, 256, 1, true], [3, 512, 1, false], [3, 512, 1, false], [3, 512, 1, true],
];
const BASENET11: Row[] = BASENET11_BLOCKS.map(([k, c, s, p], i) => [k, c, s, p, i === 0 ? 1 : 2]);
const FF_DEEPER: Row[] = BASENET11_BLOCKS.map(([k, c, s, p]) => [k, c, s, p, 1]);

function checkOpts(fn: string, opts: unknown): void {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new ConfigError(`${fn}: options must be an object, got ${describe(opts)}`);
}

function channelsOf(fn: string, c: number, width: number): number {
  if (typeof width !== 'number' || !(width > 0) || !Number.isFinite(width)) throw new ConfigError(`${fn}: options.width must be a positive number, got ${describe(width)}`);
  return Math.max(1, Math.round(c * width));
}

function cellOf(fn: string, cell: string | CellConfig | null | undefined, T: number): CellConfig | null {
  if (cell === undefined || cell === null) return null;
  const c: CellConfig = typeof cell === 'string' ? { kind: cell } : { ...cell };
  if (typeof c !== 'object' || typeof c.kind !== 'string') throw new ConfigError(`${fn}: options.cell must be a cell kind or { kind, ... }, got ${describe(cell)}`);
  // An RCPB has one batch norm per iteration: one per step unless told otherwise.
  if (c.kind === 'rcpb' && c.iterations === undefined) c.iterations = T;
  return c;
}

function decoderOf(d: DecoderKind | DecoderConfig | undefined): DecoderConfig {
  return d === undefined ? { kind: 'last' } : typeof d === 'string' ? { kind: d } : d;
}

const conv = (channels: number, kernelSize: number, stride = 1, bias = true): RawOp => ({ kind: 'conv', channels, kernelSize, stride, bias });

/** A BaseNet-style stack from `rows`, validated; `training` is the paper's (T, imageOff) for its ConvRNNs. */
function baseNet(fn: string, rows: Row[], head: RawOp, opts: ConvRnnOptions, training: { T: number; imageOff: number }, defaultCellLayers: number[]): ModelConfig {
  checkOpts(fn, opts);
  const width = opts.width ?? 1;
  const cellLayers = opts.cellLayers ?? defaultCellLayers;
  if (!Array.isArray(cellLayers) || !cellLayers.every((l) => Number.isInteger(l) && l >= 1 && l <= rows.length)) {
    throw new ConfigError(`${fn}: options.cellLayers must be layer numbers in [1, ${rows.length}], got ${describe(cellLayers)}`);
  }
  const recurrent = (opts.cell !== undefined && opts.cell !== null) || (opts.feedback ?? []).length > 0;
  const layersFor = (T: number): RawLayer[] => {
    const cell = cellOf(fn, opts.cell, T);
    return rows.map(([k, c, s, pool, convs], i) => {
      const ch = channelsOf(fn, c, width);
      const ff: RawOp[] = [conv(ch, k, s)];
      for (let j = 1; j < convs; j++) ff.push({ kind: 'elu' }, conv(ch, k));
      const post: RawOp[] = [{ kind: 'elu' }];
      if (pool) post.push({ kind: 'maxPool', size: 2, stride: 2, padding: 'same' });
      return { ff, cell: cell !== null && cellLayers.includes(i + 1) ? cell : null, post };
    });
  };
  const network = (T: number) => ({
    layers: layersFor(T),
    feedback: opts.feedback ?? [],
    wiring: opts.wiring ?? 'delays',
    head: { ...head, classes: opts.classes ?? 1000 },
    decoder: decoderOf(opts.decoder),
  });
  let T = opts.T;
  let imageOff = opts.imageOff;
  if (T === undefined) {
    if (recurrent) {
      T = training.T;
      imageOff ??= training.imageOff;
    } else T = minimalUnroll(makeNetwork(network(1)));
  }
  return validateModelConfig({ network: network(T), T, imageOff: imageOff ?? T, gray: opts.gray ?? 0.5, inputSize: opts.inputSize });
}

const BASENET6_HEAD: RawOp = { kind: 'conv', kernelSize: 2 };
const BASENET11_HEAD: RawOp = { kind: 'linear' };

/** nayebi2022 §A.2.1 6-layer BaseNet, with `cell` in layers 3–5 when given. */
export function baseNet6(opts: ConvRnnOptions = {}): ModelConfig {
  return baseNet('baseNet6', BASENET6, BASENET6_HEAD, opts, { T: 16, imageOff: 12 }, [3, 4, 5]);
}

/** nayebi2022 §A.2.1 11-layer BaseNet, with `cell` in layers 4–10 when given. */
export function baseNet11(opts: ConvRnnOptions = {}): ModelConfig {
  return baseNet('baseNet11', BASENET11, BASENET11_HEAD, opts, { T: 17, imageOff: 12 }, [4, 5, 6, 7, 8, 9, 10]);
}

/** nayebi2022 §A.2.1 "FF Wider": BaseNet-6 with more channels, feedforward. */
export function ffWider(opts: ZooOptions = {}): ModelConfig {
  checkOpts('ffWider', opts);
  return baseNet('ffWider', FF_WIDER, BASENET6_HEAD, { ...opts, cell: null, feedback: [] }, { T: 16, imageOff: 12 }, []);
}

/** nayebi2022 §A.2.1 "FF Deeper": eleven layers of one conv each, feedforward. */
export function ffDeeper(opts: ZooOptions = {}): ModelConfig {
  checkOpts('ffDeeper', opts);
  return baseNet('ffDeeper', FF_DEEPER, BASENET11_HEAD, { ...opts, cell: null, feedback: [] }, { T: 17, imageOff: 12 }, []);
}

export interface ZhangOptions extends ZooOptions {
  /** RCPBs after the first CPB (default), or CPBs only. */
  recurrent?: boolean;
  /** Feedforward size in conv blocks, 3 or 5 (Table 2); default 3. */
  blocks?: 3 | 5;
  /** Channels per block before `width`; default 16 (Table 2: 8–64). */
  channels?: number;
  /** Act; default 'relu' (Table 2: ReLU or softplus). */
  activation?: 'relu' | 'softplus';
}

/** zhang2021's feedforward or recurrent model (see the module comment); readout mode = options.decoder, default 'late-avg'. */
export function zhang(opts: ZhangOptions = {}): ModelConfig {
  const fn = 'zhang';
  checkOpts(fn, opts);
  const recurrent = opts.recurrent ?? true;
  const blocks = opts.blocks ?? 3;
  if (blocks !== 3 && blocks !== 5) throw new ConfigError(`${fn}: options.blocks must be 3 or 5, got ${describe(blocks)}`);
  const base = opts.channels ?? 16;
  if (!Number.isInteger(base) || base < 1) throw new ConfigError(`${fn}: options.channels must be a positive integer, got ${describe(base)}`);
  const ch = channelsOf(fn, base, opts.width ?? 1);
  const act = opts.activation ?? 'relu';
  if (act !== 'relu' && act !== 'softplus') throw new ConfigError(`${fn}: options.activation must be 'relu' or 'softplus', got ${describe(act)}`);
  const T = opts.T ?? (recurrent ? 4 : 1);
  const bn: RawOp = { kind: 'batchNorm' };
  // zhang2021 eqs. 1c, 1d: CPB^(1)(BatchNorm(x)) = Act(BN(Conv(BN(x)))); the BN makes the conv bias redundant.
  const layers: RawLayer[] = [{ ff: [bn, conv(ch, 9, 1, false), bn], post: [{ kind: act }] }];
  if (recurrent) {
    // eq. 2i: Act(BN^(t)(Conv_ff(y) + Conv_lat(y'))): the layer's conv is Conv_ff, the RCPB cell the rest.
    for (let i = 0; i < (blocks - 1) / 2; i++) {
      layers.push({ ff: [conv(ch, 3, 1, false)], cell: { kind: 'rcpb', iterations: T, kernelSize: 3, activation: act }, post: [] });
    }
  } else {
    for (let i = 0; i < blocks - 1; i++) layers.push({ ff: [conv(ch, 3, 1, false), bn], post: [{ kind: act }] });
  }
  const network = {
    layers,
    wiring: opts.wiring ?? 'standard',
    head: { kind: 'factored', classes: opts.classes ?? 10, pool: { size: 3, stride: 3 } },
    decoder: decoderOf(opts.decoder ?? (recurrent ? 'late-avg' : 'last')),
  };
  return validateModelConfig({ network, T, imageOff: opts.imageOff ?? T, gray: opts.gray ?? 0.5, inputSize: opts.inputSize });
}

export interface MatchedControl {
  /** The feedforward control's config. */
  config: ModelConfig;
  /** Its width multiplier. */
  width: number;
  /** Its parameter count, and the ConvRNN's. */
  params: number;
  target: number;
}

/**
 * The parameter-matched feedforward control of a ConvRNN (nayebi2022
 * §A.1.2, control 1): the FF Wider (or FF Deeper) model, on the same data,
 * whose countParams is closest to the ConvRNN's; its width is n / (its first
 * layer's channels), so the first layer has n channels, n ≥ 1. Ties go to
 * the smaller model.
 */
export function matchFeedforward(
  config: unknown,
  data: { inputShape: readonly [number, number, number]; classes: number },
  family: 'wider' | 'deeper' = 'wider',
): MatchedControl {
  const fn = 'matchFeedforward';
  if (family !== 'wider' && family !== 'deeper') throw new ValueError(`${fn}: family must be 'wider' or 'deeper', got ${describe(family)}`);
  const target = modelParamCount(config, data);
  const [h, w] = data.inputShape;
  const base = family === 'wider' ? FF_WIDER[0][1] : FF_DEEPER[0][1];
  const make = family === 'wider' ? ffWider : ffDeeper;
  const controlFor = (n: number): ModelConfig => make({ width: n / base, classes: data.classes, ...(h === w ? { inputSize: h } : {}) });
  const counts = new Map<number, number>();
  const count = (n: number): number => {
    if (!counts.has(n)) {
      counts.set(n, modelParamCount(controlFor(n), data));
    }
    return counts.get(n)!;
  };
  // Parameters grow with n: double to bracket the target, then bisect for the first n at or above it.
  let hi = 1;
  while (count(hi) < target && hi < 1 << 16) hi *= 2;
  let lo = Math.max(1, hi >> 1);
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (count(mid) < target) lo = mid + 1;
    else hi = mid;
  }
  const n = lo > 1 && target - count(lo - 1) <= count(lo) - target ? lo - 1 : lo;
  const controlConfig = controlFor(n);
  return { config: controlConfig, width: n / base, params: count(n), target };
}

export type { OpConfig };
