/**
 * Every public op gives the same bits on 1, 2 and 3 threads, forward and
 * backward (vjp with a random cotangent).
 *
 * fast-check draws the cases (random shapes and options, a fixed seed per op);
 * each case is large enough that its kernels really are split over threads
 * (dispatch.ts: PARALLEL_MIN_FLOPS), which the job counter confirms. Switching
 * the thread count restarts the worker pool (~0.1 s), so the cases run thread
 * count by thread count: all ops on 1 thread, then on 2, then on 3. Results
 * are kept as digests of their raw bits (two 32-bit multiplicative hashes over
 * the float32 words) rather than as copies: a single differing bit in any
 * output changes the digest, and the copies would not fit in memory.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as api from '../../src/tensor/index.js';
import {
  Tensor, tensor, scope, leaves, mapTree, setThreads, getThreads,
  exp, log, sigmoid, tanh, elu, relu, softplus, sqrt, neg, abs, square, reciprocal,
  add, sub, mul, div, maximum, minimum, pow, sum, max, min, mean, softmax, logSoftmax,
  reshape, broadcastTo, expandDims, squeeze, equal, greater, greaterEqual, less, where, argmax, oneHot,
  transpose, concat, slice, pad, stack, unstack,
  gateBlend, reciprocalGate, sigmoidGate, lstmState, lstmOutput, lstmCell, gruState,
  matmul, conv2d, conv2dBackpropInput, conv2dBackpropFilter, depthwiseConv2d, maxPool, avgPool, resizeBilinear,
  type Conv2dPadding,
} from '../../src/tensor/index.js';
import { vjp } from '../../src/autodiff/index.js';
import { runSharded, _testing } from '../../src/tensor/threads.js';
import { empty } from '../../src/tensor/tensor.js';

// ---- inputs ------------------------------------------------------------------------

/** Deterministic float32 data (mulberry32): the same case gives the same inputs on every thread count. */
class Rand {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /**
   * A tensor of `shape`: 'any' uniform in [-3, 3); 'pos' in [0.5, 2.5); 'nonzero' ±[0.5, 2.5);
   * 'ties' multiples of 0.5 in [-1, 1] (exact zeros and equal maxima); 'mask' 0 or 1.
   */
  t(shape: readonly number[], kind: 'any' | 'pos' | 'nonzero' | 'ties' | 'mask' = 'any'): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = this.next();
      d[i] =
        kind === 'any' ? 6 * u - 3
        : kind === 'pos' ? 0.5 + 2 * u
        : kind === 'nonzero' ? (u < 0.5 ? -1 : 1) * (0.5 + 4 * Math.abs(u - 0.5))
        : kind === 'ties' ? Math.floor(5 * u) / 2 - 1
        : u < 0.5 ? 0 : 1;
    }
    return tensor(d, shape);
  }
}

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** At least this many elements: cost-1 elementwise kernels shard from 1e6. */
const BIG = 1_050_000;
/** Shapes of rank 1-4 with about 1.05-1.3 M elements, odd sizes included. */
const bigShape = fc
  .tuple(fc.integer({ min: BIG, max: 1_300_000 }), fc.array(fc.integer({ min: 2, max: 40 }), { maxLength: 3 }))
  .map(([n, lead]) => [...lead, Math.ceil(n / prod(lead))]);
/** Shapes of rank 1-4 with `lo`-`hi` elements. */
const sizedShape = (lo: number, hi: number) =>
  fc
    .tuple(fc.integer({ min: lo, max: hi }), fc.array(fc.integer({ min: 2, max: 12 }), { maxLength: 3 }))
    .map(([n, lead]) => [...lead, Math.ceil(n / prod(lead))]);
const dims3 = (lo: number, hi: number) => fc.tuple(fc.integer({ min: lo, max: hi }), fc.integer({ min: lo, max: hi }), fc.integer({ min: lo, max: hi }));
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

// ---- the table of ops ------------------------------------------------------------------

interface Built {
  /** The tensor arguments (vjp differentiates with respect to all of them). */
  inputs: Tensor[];
  f: (...xs: Tensor[]) => unknown;
}
interface Spec {
  cases: fc.Arbitrary<{ seed: number }>;
  /** Cases always run, before the drawn ones. */
  fixed: { seed: number }[];
  build(c: unknown): Built;
  /** Run the vjp too (false: not differentiable, or not recorded). */
  grad: boolean;
  /** Its kernels are split over threads in this case (false: views and JS-only ops). */
  shards: (c: unknown) => boolean;
}

function spec<C extends { seed: number }>(
  cases: fc.Arbitrary<C>,
  build: (c: C, r: Rand) => Built,
  opts: { grad?: boolean; shards?: boolean | ((c: C) => boolean); fixed?: C[] } = {},
): Spec {
  const shards = opts.shards ?? true;
  return {
    cases,
    fixed: opts.fixed ?? [],
    build: (c) => build(c as C, new Rand((c as C).seed)),
    grad: opts.grad ?? true,
    shards: (c) => (typeof shards === 'boolean' ? shards : shards(c as C)),
  };
}

type Kind = 'any' | 'pos' | 'nonzero' | 'ties';
const unary = (op: (x: Tensor) => Tensor, kind: Kind = 'any'): Spec =>
  spec(fc.record({ shape: bigShape, seed }), ({ shape }, r) => ({ inputs: [r.t(shape, kind)], f: op }));

/** Binary ops with every broadcasting pattern: equal shapes, a row, a column, a row as `a`, a number. */
const binaryCases = fc.record({ shape: bigShape, mode: fc.constantFrom('same', 'row', 'col', 'rowA', 'number'), num: fc.constantFrom(-1.5, 0.5, 2, 3), seed });
function binary(op: (a: Tensor | number, b: Tensor | number) => Tensor, ka: Kind, kb: Kind, opts: { grad?: boolean } = {}): Spec {
  return spec(
    binaryCases,
    ({ shape, mode, num }, r) => {
      const row = [shape[shape.length - 1]];
      const col = [...shape.slice(0, -1), 1];
      if (mode === 'number') return { inputs: [r.t(shape, ka)], f: (a) => op(a, num) };
      if (mode === 'rowA') return { inputs: [r.t(row, ka), r.t(shape, kb)], f: op };
      return { inputs: [r.t(shape, ka), r.t(mode === 'row' ? row : mode === 'col' ? col : shape, kb)], f: op };
    },
    opts,
  );
}

const reduceCases = fc.record({
  dims: dims3(100, 128),
  axes: fc.constantFrom([0], [1], [2], [0, 1], [1, 2], [0, 2], [-1]),
  keepDims: fc.boolean(),
  seed,
});
const reduction = (op: typeof sum, kind: Kind): Spec =>
  spec(reduceCases, ({ dims, axes, keepDims }, r) => ({ inputs: [r.t(dims, kind)], f: (x) => op(x, axes, keepDims) }));

const softmaxCases = fc.record({ dims: dims3(70, 90), axis: fc.integer({ min: -3, max: 2 }), seed });

/** Gate operands: one shape, 70-140 k elements (their kernels cost 20-80 per element). */
const gate = (arity: number, op: (...xs: Tensor[]) => unknown): Spec =>
  spec(fc.record({ shape: sizedShape(70_000, 140_000), seed }), ({ shape }, r) => ({
    inputs: Array.from({ length: arity }, () => r.t(shape)),
    f: op,
  }));

/** gateBlend or reciprocalGate, with a fused activation in two cases of three. */
const blend = (op: typeof gateBlend): Spec =>
  spec(fc.record({ shape: sizedShape(70_000, 140_000), seed }), ({ shape, seed }, r) => ({
    inputs: Array.from({ length: 4 }, () => r.t(shape)),
    f: (a, b, c, d) => op(a, b, c, d, { activation: ([undefined, 'elu', 'relu'] as const)[seed % 3] }),
  }));

// Convolution geometry, as conv2d defines it, to size cases and shape dy.
interface ConvCase {
  N: number; H: number; W: number; Cin: number; Cout: number; KH: number; KW: number;
  stride: number; dilation: number; padding: Conv2dPadding; bias: boolean; seed: number;
}
function outSize(size: number, k: number, s: number, d: number, pad: Conv2dPadding, axis: 0 | 1): number {
  const span = (k - 1) * d + 1;
  if (pad === 'same') return Math.ceil(size / s);
  const [lo, hi] = pad === 'valid' ? [0, 0] : typeof pad === 'number' ? [pad, pad] : pad[axis];
  return Math.floor((size + lo + hi - span) / s) + 1;
}
const convOut = (c: ConvCase): [number, number] => [
  outSize(c.H, c.KH, c.stride, c.dilation, c.padding, 0),
  outSize(c.W, c.KW, c.stride, c.dilation, c.padding, 1),
];
const convOpts = (c: ConvCase) => ({ stride: c.stride, dilation: c.dilation, padding: c.padding });
const padding = fc.oneof(
  fc.constantFrom<Conv2dPadding>('same', 'valid'),
  fc.tuple(fc.nat(2), fc.nat(2), fc.nat(2), fc.nat(2)).map(([t, b, l, rr]): Conv2dPadding => [[t, b], [l, rr]]),
);
/** Mostly `usual`, sometimes anything in [lo, hi]: 3x3 stride-1 filters take their own (Winograd) kernels. */
const mostly = (usual: number, lo: number, hi: number) =>
  fc.oneof({ weight: 2, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: fc.integer({ min: lo, max: hi }) });
/** Conv cases of 1.3-8 MFLOP: every conv kernel (forward, both gradients) is above the threshold. */
const convCases = (channels: { Cout: fc.Arbitrary<number> }) =>
  fc
    .record({
      N: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 6, max: 36 }), W: fc.integer({ min: 6, max: 36 }),
      Cin: fc.integer({ min: 1, max: 24 }), Cout: channels.Cout, KH: mostly(3, 1, 5), KW: mostly(3, 1, 5),
      stride: mostly(1, 1, 2), dilation: mostly(1, 1, 2), padding, bias: fc.boolean(), seed,
    })
    .filter((c) => {
      const [OH, OW] = convOut(c);
      const flops = 2 * c.N * OH * OW * c.Cout * c.KH * c.KW * c.Cin;
      return OH >= 1 && OW >= 1 && flops >= 1.3e6 && flops <= 8e6;
    });
const convs = convCases({ Cout: fc.integer({ min: 1, max: 24 }) });
/** The filter gradient is split over (filter taps x) input channels in groups of 4 or more: few input channels make one shard. */
const convsWithTaps = convs.filter((c) => c.KH * c.KW > 1 && c.Cin >= 5);
/** Depthwise: Cout stands for the channel multiplier M (1-3); channels up to 40. */
const depthwiseCases = fc
  .record({
    N: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 6, max: 40 }), W: fc.integer({ min: 6, max: 40 }),
    Cin: fc.integer({ min: 1, max: 40 }), Cout: fc.integer({ min: 1, max: 3 }), KH: mostly(3, 1, 5), KW: mostly(3, 1, 5),
    stride: mostly(1, 1, 2), dilation: mostly(1, 1, 2), padding, bias: fc.boolean(), seed,
  })
  .filter((c) => {
    const [OH, OW] = convOut(c);
    const flops = 2 * c.N * OH * OW * c.Cin * c.Cout * c.KH * c.KW;
    return OH >= 1 && OW >= 1 && flops >= 1.3e6 && flops <= 8e6;
  });

/** A W7-like conv (3x3 'same', stride 1), always among the cases: batch 2, 16x16, 16 -> 16 channels. */
const CONV_W7: ConvCase = { N: 2, H: 16, W: 16, Cin: 16, Cout: 16, KH: 3, KW: 3, stride: 1, dilation: 1, padding: 'same', bias: true, seed: 1 };
/** W7's second conv: its filter gradient sums 295 KB per run of tiles, in 2 runs (filterGradRuns). */
const CONV_LONG_RUNS: ConvCase = { ...CONV_W7, N: 32, Cin: 32, Cout: 64, bias: false };
/** The same for depthwise: 32 channels at 40x40, multiplier 1. */
const DEPTHWISE_3X3: ConvCase = { ...CONV_W7, H: 40, W: 40, Cin: 32, Cout: 1 };

const poolCases = fc
  .record({
    N: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 8, max: 64 }), W: fc.integer({ min: 8, max: 64 }), C: fc.integer({ min: 1, max: 64 }),
    size: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    stride: fc.option(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })), { nil: undefined }),
    padding: fc.constantFrom<'same' | 'valid'>('same', 'valid'), seed,
  })
  .filter((c) => {
    const [sh, sw] = c.stride ?? c.size;
    const [OH, OW] = c.padding === 'same' ? [Math.ceil(c.H / sh), Math.ceil(c.W / sw)] : [Math.floor((c.H - c.size[0]) / sh) + 1, Math.floor((c.W - c.size[1]) / sw) + 1];
    const work = c.N * OH * OW * c.C * c.size[0] * c.size[1];
    return work >= 1.5e6 && work <= 8e6 && c.N * c.H * c.W * c.C >= 1.5e6 / (c.size[0] * c.size[1]);
  });
const pooling = (op: typeof maxPool, kind: Kind): Spec =>
  spec(poolCases, (c, r) => ({ inputs: [r.t([c.N, c.H, c.W, c.C], kind)], f: (x) => op(x, { size: c.size, stride: c.stride, padding: c.padding }) }));

const resizeCases = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }), H: fc.integer({ min: 3, max: 40 }), W: fc.integer({ min: 3, max: 40 }), C: fc.integer({ min: 1, max: 32 }),
    OH: fc.integer({ min: 3, max: 64 }), OW: fc.integer({ min: 3, max: 64 }),
    mode: fc.constantFrom({}, { alignCorners: true }, { halfPixelCenters: false }), seed,
  })
  .filter((c) => {
    const forward = 6 * c.N * c.OH * c.OW * c.C;
    const backward = 4 * c.N * c.H * c.C * c.OW * Math.max(1, Math.ceil((2 * c.OH) / c.H));
    return Math.min(forward, backward) >= 1.5e6 && forward <= 1e7;
  });

/** Non-identity permutations of 2 and 3 axes (an identity transpose is one contiguous copy). */
const transposeCases = fc.oneof(
  fc.record({ dims: fc.tuple(fc.integer({ min: 1000, max: 1100 }), fc.integer({ min: 1000, max: 1100 })).map((d): number[] => d), perm: fc.constant([1, 0]), seed }),
  fc.record({ dims: dims3(100, 128).map((d): number[] => d), perm: fc.constantFrom([0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]), seed }),
);
const side = fc.integer({ min: 1000, max: 1100 });

/**
 * Every op exported from src/tensor/index.ts, with cases big enough to shard.
 * A new op must be added here (the completeness test below fails otherwise).
 */
const OPS: Record<string, Spec> = {
  exp: unary(exp), log: unary(log, 'pos'), sigmoid: unary(sigmoid), tanh: unary(tanh), elu: unary(elu), relu: unary(relu, 'ties'),
  softplus: unary(softplus), sqrt: unary(sqrt, 'pos'), neg: unary(neg), abs: unary(abs, 'ties'), square: unary(square),
  reciprocal: unary(reciprocal, 'nonzero'),

  add: binary(add, 'any', 'any'), sub: binary(sub, 'any', 'any'), mul: binary(mul, 'any', 'any'), div: binary(div, 'any', 'nonzero'),
  maximum: binary(maximum, 'ties', 'ties'), minimum: binary(minimum, 'ties', 'ties'), pow: binary(pow, 'pos', 'any'),

  sum: reduction(sum, 'any'), max: reduction(max, 'ties'), min: reduction(min, 'ties'), mean: reduction(mean, 'any'),
  softmax: spec(softmaxCases, ({ dims, axis }, r) => ({ inputs: [r.t(dims)], f: (x) => softmax(x, axis) })),
  logSoftmax: spec(softmaxCases, ({ dims, axis }, r) => ({ inputs: [r.t(dims)], f: (x) => logSoftmax(x, axis) })),

  // Views: no kernel runs, forward or backward.
  reshape: spec(fc.record({ shape: bigShape, to: fc.constantFrom('flat', 'column', 'reversed'), seed }), ({ shape, to }, r) => ({
    inputs: [r.t(shape)],
    f: (x) => reshape(x, to === 'flat' ? [-1] : to === 'column' ? [-1, 1] : [...shape].reverse()),
  }), { shards: false }),
  expandDims: spec(fc.record({ shape: bigShape, at: fc.nat(4), seed }), ({ shape, at }, r) => ({
    inputs: [r.t(shape)],
    f: (x) => expandDims(x, at % (shape.length + 1)),
  }), { shards: false }),
  squeeze: spec(fc.record({ shape: bigShape, at: fc.nat(4), all: fc.boolean(), seed }), ({ shape, at, all }, r) => {
    const a = at % (shape.length + 1);
    return { inputs: [r.t([...shape.slice(0, a), 1, ...shape.slice(a)])], f: (x) => squeeze(x, all ? undefined : a) };
  }, { shards: false }),
  broadcastTo: spec(fc.record({ shape: bigShape.filter((s) => s.length >= 2), ones: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), drop: fc.nat(1), seed }),
    ({ shape, ones, drop }, r) => {
      const from = shape.map((d, i) => (ones[i] && i < shape.length - 1 ? 1 : d)).slice(drop);
      if (drop === 0 && from.every((d, i) => d === shape[i])) from[0] = 1; // something must be broadcast
      return { inputs: [r.t(from)], f: (x) => broadcastTo(x, shape) };
    }),

  // Comparisons: no gradient; values with ties so equal/greaterEqual are not trivial.
  equal: binary(equal, 'ties', 'ties', { grad: false }), greater: binary(greater, 'ties', 'ties', { grad: false }),
  greaterEqual: binary(greaterEqual, 'ties', 'ties', { grad: false }), less: binary(less, 'ties', 'ties', { grad: false }),
  // Its kernel is split over the rows of the operands' common view; operands of one shape make a single row.
  where: spec(fc.record({ shape: bigShape, b: fc.constantFrom('same', 'row', 'number'), seed }), ({ shape, b }, r) => {
    if (b === 'number') return { inputs: [r.t(shape, 'mask'), r.t(shape)], f: (c, a) => where(c, a, -2) };
    return { inputs: [r.t(shape, 'mask'), r.t(shape), r.t(b === 'row' ? shape.slice(-1) : shape)], f: where };
  }, { shards: ({ shape, b }) => b === 'row' && shape.length >= 2 }),
  argmax: spec(fc.record({ dims: dims3(100, 128), axis: fc.integer({ min: -3, max: 2 }), seed }), ({ dims, axis }, r) => ({
    inputs: [r.t(dims, 'ties')],
    f: (x) => argmax(x, axis),
  }), { grad: false }),
  // Written in TypeScript (no kernel); it takes labels, not tensors.
  oneHot: spec(fc.record({ n: fc.integer({ min: 1, max: 300 }), depth: fc.integer({ min: 1, max: 50 }), seed }), ({ n, depth }, r) => {
    const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * depth));
    return { inputs: [], f: () => oneHot(labels, depth) };
  }, { grad: false, shards: false }),

  transpose: spec(transposeCases, ({ dims, perm }, r) => ({ inputs: [r.t(dims)], f: (x) => transpose(x, perm) })),
  // Along a non-leading axis: joining whole rows is one contiguous copy, which never shards.
  concat: spec(fc.record({ rows: side, cols: fc.array(side, { minLength: 2, maxLength: 3 }), axis: fc.constantFrom(1, -1), seed }), ({ rows, cols, axis }, r) => ({
    inputs: cols.map((c) => r.t([rows, c])),
    f: (...xs) => concat(xs, axis),
  })),
  slice: spec(fc.record({ dims: fc.tuple(fc.integer({ min: 1080, max: 1200 }), fc.integer({ min: 1080, max: 1200 })), begin: fc.tuple(fc.nat(20), fc.integer({ min: 1, max: 20 })), trim: fc.tuple(fc.nat(20), fc.nat(20)), toEnd: fc.boolean(), seed }),
    ({ dims, begin, trim, toEnd }, r) => ({
      inputs: [r.t(dims)],
      f: (x) => slice(x, begin, [toEnd ? -1 : dims[0] - begin[0] - trim[0], dims[1] - begin[1] - trim[1]]),
    })),
  pad: spec(fc.record({ dims: fc.tuple(side, side), p: fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.integer({ min: 1, max: 3 })), value: fc.constantFrom(0, -1, 2.5), seed }),
    ({ dims, p, value }, r) => ({ inputs: [r.t(dims)], f: (x) => pad(x, [[p[0], p[1]], [p[2], p[3]]], value) })),
  stack: spec(fc.record({ dims: fc.tuple(side, side), k: fc.integer({ min: 2, max: 3 }), axis: fc.constantFrom(1, -2), seed }), ({ dims, k, axis }, r) => ({
    inputs: Array.from({ length: k }, () => r.t(dims)),
    f: (...xs) => stack(xs, axis),
  })),
  unstack: spec(fc.record({ dims: fc.tuple(side, fc.integer({ min: 2, max: 3 }), side), axis: fc.constantFrom(1, -2), seed }), ({ dims, axis }, r) => ({
    inputs: [r.t(dims)],
    f: (x) => unstack(x, axis),
  })),

  gateBlend: blend(gateBlend), reciprocalGate: blend(reciprocalGate), sigmoidGate: gate(2, sigmoidGate),
  lstmState: gate(4, lstmState), lstmOutput: gate(2, lstmOutput), lstmCell: gate(5, lstmCell), gruState: gate(3, gruState),

  matmul: spec(fc.record({ M: fc.integer({ min: 80, max: 120 }), N: fc.integer({ min: 80, max: 120 }), K: fc.integer({ min: 80, max: 120 }), transA: fc.boolean(), transB: fc.boolean(), seed }),
    ({ M, N, K, transA, transB }, r) => ({
      inputs: [r.t(transA ? [K, M] : [M, K]), r.t(transB ? [N, K] : [K, N])],
      f: (a, b) => matmul(a, b, { transA, transB }),
    })),
  conv2d: spec(convs, (c, r) => {
    const inputs = [r.t([c.N, c.H, c.W, c.Cin]), r.t([c.KH, c.KW, c.Cin, c.Cout], 'any'), ...(c.bias ? [r.t([c.Cout])] : [])];
    const activation = ([undefined, 'elu', 'relu'] as const)[c.seed % 3]; // a fused activation in two cases of three
    return { inputs, f: (x, w, b) => conv2d(x, w, { ...convOpts(c), bias: b, activation }) };
  }, { fixed: [CONV_W7] }),
  // The two gradients of conv2d as ops of their own: linear, not recorded (conv2d's vjp calls them).
  conv2dBackpropInput: spec(convs, (c, r) => ({
    inputs: [r.t([c.N, ...convOut(c), c.Cout]), r.t([c.KH, c.KW, c.Cin, c.Cout])],
    f: (dy, w) => conv2dBackpropInput(dy, w, [c.N, c.H, c.W, c.Cin], convOpts(c)),
  }), { grad: false, fixed: [CONV_W7] }),
  conv2dBackpropFilter: spec(convsWithTaps, (c, r) => ({
    inputs: [r.t([c.N, c.H, c.W, c.Cin]), r.t([c.N, ...convOut(c), c.Cout])],
    f: (x, dy) => conv2dBackpropFilter(x, dy, [c.KH, c.KW, c.Cin, c.Cout], convOpts(c)),
  }), { grad: false, fixed: [CONV_W7, CONV_LONG_RUNS] }),
  depthwiseConv2d: spec(depthwiseCases, (c, r) => {
    const inputs = [r.t([c.N, c.H, c.W, c.Cin]), r.t([c.KH, c.KW, c.Cin, c.Cout]), ...(c.bias ? [r.t([c.Cin * c.Cout])] : [])];
    return { inputs, f: (x, w, b) => depthwiseConv2d(x, w, { ...convOpts(c), bias: b }) };
  }, { fixed: [DEPTHWISE_3X3] }),
  maxPool: pooling(maxPool, 'ties'),
  avgPool: pooling(avgPool, 'any'),
  resizeBilinear: spec(resizeCases, (c, r) => ({ inputs: [r.t([c.N, c.H, c.W, c.C])], f: (x) => resizeBilinear(x, [c.OH, c.OW], c.mode) })),
};

/** Exports of src/tensor/index.ts that are functions but not ops: classes, tensor creation, keys, threads, pytrees. */
const NOT_OPS = [
  'Tensor', 'scope', 'dispose', 'memory', 'tensor', 'scalar', 'zeros', 'ones', 'full', 'randn', 'uniform',
  'Key', 'key', 'split', 'foldIn', 'ConvrnnError', 'ShapeError', 'ValueError', 'ConfigError', 'DataError',
  'setThreads', 'getThreads', 'startThreads', 'WorkerError', 'leaves', 'mapTree',
];

// ---- running the cases ---------------------------------------------------------------

const THREADS = [1, 2, 3];
const RUNS = 3;

/** The raw float32 bits of a tensor, as its shape and two independent 32-bit hashes of its words. */
function digest(t: Tensor): string {
  const words = new Uint32Array(t.toArray().buffer);
  let h1 = 0x811c9dc5;
  let h2 = 0x9e3779b9 ^ words.length;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    h1 = Math.imul(h1 ^ w, 0x01000193);
    h2 = Math.imul(h2 ^ ((w << 13) | (w >>> 19)), 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return `[${t.shape.join(', ')}] ${(h1 >>> 0).toString(16).padStart(8, '0')}${(h2 >>> 0).toString(16).padStart(8, '0')}`;
}

interface Outcome {
  /** Digest of each output leaf, then of each input's cotangent. */
  digests: string[];
  /** Jobs split over threads while the case ran. */
  jobs: number;
  error?: string;
}

function runCase(s: Spec, c: unknown): Outcome {
  const before = _testing.jobs();
  try {
    return scope(() => {
      const { inputs, f } = s.build(c);
      let named: [string, Tensor][];
      if (s.grad) {
        const [out, pullback] = vjp(f, ...inputs);
        const r = new Rand(0x5eed ^ (c as { seed: number }).seed);
        const cotangent = mapTree(out, (t) => r.t(t.shape));
        const grads = pullback(cotangent);
        named = [
          ...leaves(out).map((t, i): [string, Tensor] => [`output ${i}`, t]),
          ...leaves(grads).map((t, i): [string, Tensor] => [`cotangent of input ${i}`, t]),
        ];
      } else {
        named = leaves(f(...inputs)).map((t, i) => [`output ${i}`, t]);
      }
      return { digests: named.map(([what, t]) => `${what}: ${digest(t)}`), jobs: _testing.jobs() - before };
    });
  } catch (e) {
    return { digests: [], jobs: _testing.jobs() - before, error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

/** A fixed seed per op (from its name), so adding an op does not change the cases of the others. */
function seedOf(name: string): number {
  let h = 7;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

const CASES = new Map(Object.entries(OPS).map(([name, s]) => [name, [...s.fixed, ...fc.sample(s.cases, { numRuns: RUNS, seed: seedOf(name) })]]));
const results = new Map<string, Map<number, Outcome[]>>(); // op -> threads -> one outcome per case

async function workersReady(n: number): Promise<void> {
  const t = empty([1 << 16]);
  runSharded('fill', [t.ptr, 0], t.size, 16, 0); // starts the pool
  t.dispose();
  for (let i = 0; i < 1000 && _testing.readyWorkers() < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(_testing.readyWorkers()).toBeGreaterThanOrEqual(n);
}

beforeAll(async () => {
  const saved = getThreads();
  try {
    for (const threads of THREADS) {
      setThreads(threads);
      if (threads > 1) await workersReady(threads - 1);
      for (const [name, s] of Object.entries(OPS)) {
        if (!results.has(name)) results.set(name, new Map());
        results.get(name)!.set(threads, CASES.get(name)!.map((c) => runCase(s, c)));
      }
    }
  } finally {
    setThreads(saved);
  }
}, 240_000);

describe('every public op gives bit-identical results on 1, 2 and 3 threads (forward and vjp)', () => {
  it('the table lists exactly the ops that src/tensor/index.ts exports', () => {
    const exported = Object.entries(api)
      .filter(([name, v]) => typeof v === 'function' && !NOT_OPS.includes(name))
      .map(([name]) => name);
    expect(exported.filter((name) => !(name in OPS)), 'exported ops missing from the table').toEqual([]);
    expect(Object.keys(OPS).filter((name) => !exported.includes(name)), 'table entries that are not exported ops').toEqual([]);
  });

  for (const [name, s] of Object.entries(OPS)) {
    it(name, () => {
      const byThreads = results.get(name)!;
      const one = byThreads.get(1)!;
      CASES.get(name)!.forEach((c, i) => {
        const where = `${name}, case ${JSON.stringify(c)}`;
        for (const threads of THREADS) {
          const o = byThreads.get(threads)![i];
          expect(o.error, `${where} on ${threads} threads`).toBeUndefined();
          expect(o.digests, `${where}: outputs on ${threads} threads vs 1`).toEqual(one[i].digests);
          if (threads === 1) expect(o.jobs, `${where}: nothing is split on 1 thread`).toBe(0);
          else if (s.shards(c)) expect(o.jobs, `${where}: kernels really were split on ${threads} threads`).toBeGreaterThan(0);
        }
        expect(one[i].digests.length, where).toBeGreaterThan(0);
      });
    });
  }
});
