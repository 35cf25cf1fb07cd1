/**
 * The stimulus schedule and minimal unrolling.
 *
 * Schedule (nayebi2022 §A.3 table, §A.6.2): the image is shown for the first
 * `imageOff` steps, then replaced by a mean-gray image for the rest of the T
 * steps. The papers use T = 16, imageOff = 12 (shallow ConvRNNs) and T = 17,
 * imageOff = 12 (deeper ConvRNNs) in training, and 10 image steps of 25 to fit
 * neural responses (100 ms of image, then gray to 250 ms, 10 ms a step).
 * Mean gray is 0.5 by default: the images of the procedural dataset are in
 * [0, 1] with a 0.5 gray background (nn/data/procedural.ts meanGray); for
 * normalised images give the normalised gray, per channel if need be.
 *
 * Minimal unrolling (nayebi2022 §A.1.2, control 2): "the number [of steps]
 * that allows all model parameters to be used at least once", computed from
 * the network's wiring graph. A parameter is used when it multiplies a signal
 * that depends on the stimulus and its effect reaches the logits the decoder
 * reads by the last step; before the signal arrives a layer computes on zeros
 * (zero states, zero biases at init), which uses no weight. With edge delays
 * of 1 step (every edge under 'delays'; feedback only under 'standard', where
 * feedforward edges and the head take 0 steps):
 *
 *   a(ℓ)  the first step at which r^ℓ depends on the stimulus: a(1) = 0,
 *         a(ℓ) = min(a(ℓ−1) + d_ff, min over feedback j → ℓ of a(j) + 1);
 *   d(ℓ)  the fewest steps from r^ℓ to the logits: d(L) = d_head,
 *         d(ℓ) = min(d_ff + d(ℓ+1), min over feedback ℓ → k of 1 + d(k));
 *   k(C)  a cell's own depth: the fewest steps after its input turns nonzero
 *         at which every one of its params has reached its output (1 for a
 *         time-decay or GRU cell, whose recurrent weights act on the previous
 *         state; 2 for the RGC, whose memory s reaches h one step later; the
 *         last per-iteration batch norm for an RCPB). The Cell contract does
 *         not expose a cell's internal wiring, so k is measured: the cell runs
 *         alone on a constant random input from a zero state, and k is the
 *         first step whose output has a nonzero gradient for every param.
 *
 * and the last step each group of parameters needs (a cell passes its input
 * x to its output within the step, as all the cells of the papers do):
 *   F_ℓ's params (its first conv's blocks for the layer below and for each
 *     'input' source)           max(a(ℓ−1) + d_ff, a(j) + 1 for the sources) + d(ℓ)
 *   the 'state'/'output' feedback convs          max_j (a(j) + 1) + d(ℓ)
 *   the cell's params                            a(ℓ) + k(C_ℓ) + d(ℓ)
 *   A_ℓ's params (batch norms)                   a(ℓ) + d(ℓ)
 *   the head and decoder                         a(L) + d_head
 * minimalUnroll = 1 + the largest of these. It is 1 for a feedforward
 * network under 'standard' wiring (one pass) and L + 1 under 'delays' (L
 * layers, then the head). A cell whose params depend on the absolute step
 * (the RCPB's per-iteration norms) is counted from the signal's arrival, which
 * is step 0 under the 'standard' wiring it is made for.
 */
import { Tensor, checkTensor, scope } from '../tensor/tensor.js';
import { randn, full } from '../tensor/create.js';
import { foldIn, key } from '../tensor/random.js';
import { ShapeError, ValueError, describe } from '../tensor/errors.js';
import { mul } from '../tensor/ops/binary.js';
import { sum } from '../tensor/ops/reduce.js';
import { grad } from '../autodiff/index.js';
import { flattenParams, treeMap } from '../nn/tree.js';
import type { Cell } from './cell.js';
import type { Network } from './network.js';

export interface ScheduleConfig {
  /** Steps, ≥ 1. */
  T: number;
  /** The image is shown at steps t < imageOff, 0 ≤ imageOff ≤ T. */
  imageOff: number;
  /** The gray value, one number or one per channel; default 0.5. */
  gray?: number | readonly number[];
}

/** The papers' schedules: training (nayebi2022 §A.3 table) and neural fits (§A.6.2). */
export const SCHEDULES = {
  shallowTraining: { T: 16, imageOff: 12 },
  deeperTraining: { T: 17, imageOff: 12 },
  neuralFit: { T: 25, imageOff: 10 },
} as const;

/**
 * The stimulus at every step: `images` [N, H, W, C] at steps t < imageOff,
 * then one mean-gray tensor of the same shape (the same tensor object at
 * every gray step, so unchanged inputs are recognised as such).
 */
export function stimulusSchedule(images: Tensor, schedule: ScheduleConfig): Tensor[] {
  const fn = 'stimulusSchedule';
  checkTensor(fn, 'images', images);
  if (images.rank !== 4) throw new ShapeError(`${fn}: images must be [N, H, W, C], got [${images.shape.join(', ')}]`);
  if (typeof schedule !== 'object' || schedule === null) throw new ValueError(`${fn}: schedule must be { T, imageOff, gray? }, got ${describe(schedule)}`);
  const { T, imageOff, gray = 0.5 } = schedule;
  if (!Number.isInteger(T) || T < 1) throw new ValueError(`${fn}: schedule.T must be a positive integer, got ${describe(T)}`);
  if (!Number.isInteger(imageOff) || imageOff < 0 || imageOff > T) {
    throw new ValueError(`${fn}: schedule.imageOff must be an integer in [0, T = ${T}], got ${describe(imageOff)}`);
  }
  const c = images.shape[3];
  const perChannel = typeof gray === 'number' ? new Array<number>(c).fill(gray) : gray;
  if (!Array.isArray(perChannel) || perChannel.length !== c || !perChannel.every((g) => typeof g === 'number' && Number.isFinite(g))) {
    throw new ValueError(`${fn}: schedule.gray must be a finite number or ${c} of them (one per channel), got ${describe(gray)}`);
  }
  if (imageOff === T) return new Array<Tensor>(T).fill(images);
  const grayImage = full(images.shape, perChannel);
  return Array.from({ length: T }, (_, t) => (t < imageOff ? images : grayImage));
}

export interface Arrival {
  /** a(ℓ), 0-based layers: the first step at which layer ℓ+1's output depends on the stimulus. */
  arrival: number[];
  /** d(ℓ), 0-based layers: the fewest steps from layer ℓ+1's output to the logits. */
  toLogits: number[];
}

/** a(ℓ) and d(ℓ) of the module comment. */
export function arrivalTimes(network: Network): Arrival {
  const { layers, feedback, wiring } = network.config;
  const L = layers.length;
  const dff = wiring === 'delays' ? 1 : 0;
  const dHead = dff;
  const arrival = new Array<number>(L).fill(Infinity);
  const toLogits = new Array<number>(L).fill(Infinity);
  // Bellman–Ford on a graph of L nodes: L rounds settle every shortest path.
  for (let round = 0; round <= L; round++) {
    for (let i = 0; i < L; i++) {
      let a = i === 0 ? 0 : arrival[i - 1] + dff;
      let d = i === L - 1 ? dHead : dff + toLogits[i + 1];
      for (const e of feedback) {
        if (e.to === i + 1) a = Math.min(a, arrival[e.from - 1] + 1);
        if (e.from === i + 1) d = Math.min(d, 1 + toLogits[e.to - 1]);
      }
      arrival[i] = Math.min(arrival[i], a);
      toLogits[i] = Math.min(toLogits[i], d);
    }
  }
  return { arrival, toLogits };
}

/** The smallest T that uses every parameter at least once (nayebi2022 §A.1.2; see the module comment). */
export function minimalUnroll(network: Network): number {
  if (typeof network !== 'object' || network === null || network.kind !== 'network') {
    throw new ValueError(`minimalUnroll: network must be a network from makeNetwork, got ${describe(network)}`);
  }
  const { layers, wiring } = network.config;
  const L = layers.length;
  const dff = wiring === 'delays' ? 1 : 0;
  const { arrival: a, toLogits: d } = arrivalTimes(network);
  // Channel counts, for the cells' depth probes (a depth does not depend on them; a first layer without a
  // conv sees the stimulus' channels, taken as 3).
  const lastConv = (ops: readonly { kind: string; channels?: number }[], c: number): number => ops.reduce((n, op) => op.channels ?? n, c);
  const xChannels: number[] = [];
  const outChannels: number[] = [];
  layers.forEach((layer, i) => {
    xChannels.push(lastConv(layer.ff, i === 0 ? 3 : outChannels[i - 1]));
    outChannels.push(lastConv(layer.post, xChannels[i]));
  });
  const hasParams = (ops: readonly { kind: string }[]): boolean => ops.some((op) => op.kind === 'conv' || op.kind === 'batchNorm');
  let last = a[L - 1] + dff; // the head
  layers.forEach((layer, i) => {
    const fb = network.feedbackInto[i];
    const srcArrival = (js: readonly number[]): number => Math.max(-Infinity, ...js.map((j) => a[j - 1] + 1));
    const fromBelow = i === 0 ? 0 : a[i - 1] + dff;
    if (hasParams(layer.ff)) last = Math.max(last, Math.max(fromBelow, srcArrival(fb.input)) + d[i]);
    if (fb.state.length > 0) last = Math.max(last, srcArrival(fb.state) + d[i]);
    if (fb.output.length > 0) last = Math.max(last, srcArrival(fb.output) + d[i]);
    const cell = network.cells[i];
    if (cell !== null) {
      last = Math.max(last, a[i] + cellDepth(cell, xChannels[i], i === 0 ? undefined : outChannels[i - 1]) + d[i]);
    }
    if (hasParams(layer.post)) last = Math.max(last, a[i] + d[i]);
  });
  return last + 1;
}

const depths = new WeakMap<Cell, Map<string, number>>();

/**
 * k(C) of the module comment for a cell whose input has `channels` channels
 * (and whose layer below has `belowChannels`): measured on a 3x3 image, with
 * params (in the init's structure) and input drawn from fixed keys. ValueError when some param never
 * reaches the output within `maxSteps` steps.
 */
export function cellDepth(cell: Cell, channels: number, belowChannels?: number, maxSteps = 16): number {
  const fn = 'cellDepth';
  if (typeof cell !== 'object' || cell === null || typeof cell.step !== 'function') throw new ValueError(`${fn}: cell must be a Cell, got ${describe(cell)}`);
  if (!Number.isInteger(channels) || channels < 1) throw new ValueError(`${fn}: channels must be a positive integer, got ${describe(channels)}`);
  const id = `${channels}/${belowChannels}`;
  const known = depths.get(cell)?.get(id);
  if (known !== undefined) return known;
  const shape = [1, 3, 3, channels];
  const belowShape = belowChannels === undefined ? undefined : [1, 3, 3, belowChannels];
  const depth = scope(() => {
    // Random values in the init's structure: a zero-initialised weight (the RGC's gates) must not hide a path.
    let i = 0;
    const params = treeMap(cell.init(key(0), shape, belowShape), (t) => randn(foldIn(key(4), i++), t.shape));
    const x = randn(key(1), shape);
    const below = belowShape === undefined ? undefined : randn(key(2), belowShape);
    const weights = randn(key(3), cell.outputShape(shape));
    for (let k = 0; k < maxSteps; k++) {
      const g = grad((p: unknown) => {
        let state = cell.initialState(shape);
        let out: Tensor = x;
        for (let t = 0; t <= k; t++) [state, out] = cell.step(p, state, x, below === undefined ? { t, training: false } : { t, training: false, below });
        return sum(mul(out, weights));
      })(params);
      if ([...flattenParams(g).values()].every((t) => t.toArray().some((v) => v !== 0))) return k;
    }
    throw new ValueError(`${fn}: some params of the '${cell.kind}' cell do not reach its output within ${maxSteps} steps`);
  });
  if (!depths.has(cell)) depths.set(cell, new Map());
  depths.get(cell)!.set(id, depth);
  return depth;
}
