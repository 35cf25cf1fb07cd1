import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { conv2d, conv2dBackpropInput, conv2dBackpropFilter, winogradPaths, filterGradBlocks, filterGradRuns, filterGrads, type Conv2dGeometry } from '../../src/tensor/ops/conv2d.js';
import { randn } from '../../src/tensor/create.js';
import { Tensor, scope } from '../../src/tensor/tensor.js';
import { alloc, free, heapF32 } from '../../src/tensor/heap.js';
import { K } from '../../src/tensor/kernels.js';
import { key, split } from '../../src/tensor/random.js';
import { checkGrad } from '../../src/autodiff/index.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { mul } from '../../src/tensor/ops/binary.js';

// The Winograd kernels compute the 3x3 stride-1 convolution
//   y[n, oh, ow, co] = Σ_{kh, kw, ci} x[n, oh - pt + kh, ow - pl + kw, ci] · w[kh, kw, ci, co]
// (zero outside x) for any pt, pl and output size, in t x t output tiles
// (t = 2: F(2x2, 3x3), t = 4: F(4x4, 3x3)), and its filter gradient from t x t
// tiles of dy (F(3x3, 2x2), F(3x3, 4x4)); the input gradient is the forward
// kernel on dy with the flipped, transposed filter and padding 2 - pt, 2 - pl.
// These tests hold them to a plain float64 evaluation of the sums.

interface Case {
  N: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  pt: number;
  pl: number;
  OH: number;
  OW: number;
  bias: boolean;
  seed: number;
}

type Tile = 2 | 4;

// ---- plain float64 reference ------------------------------------------------------------

interface Ref {
  y: Float64Array;
  dx: Float64Array;
  dw: Float64Array;
}

function reference(c: Case, x: Float32Array, w: Float32Array, b: Float32Array | null, dy: Float32Array): Ref {
  const r: Ref = { y: new Float64Array(dy.length), dx: new Float64Array(x.length), dw: new Float64Array(w.length) };
  for (let n = 0; n < c.N; n++)
    for (let oh = 0; oh < c.OH; oh++)
      for (let ow = 0; ow < c.OW; ow++)
        for (let kh = 0; kh < 3; kh++)
          for (let kw = 0; kw < 3; kw++) {
            const ih = oh - c.pt + kh;
            const iw = ow - c.pl + kw;
            if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
            for (let ci = 0; ci < c.Cin; ci++)
              for (let co = 0; co < c.Cout; co++) {
                const yi = ((n * c.OH + oh) * c.OW + ow) * c.Cout + co;
                const xi = ((n * c.H + ih) * c.W + iw) * c.Cin + ci;
                const wi = ((kh * 3 + kw) * c.Cin + ci) * c.Cout + co;
                r.y[yi] += x[xi] * w[wi];
                r.dx[xi] += dy[yi] * w[wi];
                r.dw[wi] += x[xi] * dy[yi];
              }
          }
  if (b !== null) for (let i = 0; i < r.y.length; i++) r.y[i] += b[i % c.Cout];
  return r;
}

// ---- error scale ------------------------------------------------------------------------

/**
 * Winograd's rounding error scales with the whole input tile, not with one
 * output's terms: the transforms add and subtract neighbouring inputs before
 * the products and take differences after, so an output whose own terms are
 * all zero (every tap in the padding) can still come out as a tiny nonzero.
 * Errors are measured against that scale: for an output of the tile at
 * (t·th, t·tw), Σ_a max_taps |f[., ., a, b]| · Σ_{(t+2)² tile} |in[., ., a]|;
 * for the filter gradient, Σ_tiles Σ_{(t+2)²} |x[ci]| · Σ_{t²} |dy[co]|.
 * The largest errors seen over 800 random cases: 1.7e-7 (t = 2) and 2.0e-6
 * (t = 4) of the scale; the tolerances leave 10x and 5x.
 */
const TOL: Record<Tile, number> = { 2: 2e-6, 4: 1e-5 };

/**
 * The scale of each output [N, OH, OW, B] of the conv of `inp` [N, Hi, Wi, A] with the
 * 3x3 filter whose largest |tap| for (a, b) is fmax[a * B + b], padding pt, pl, in t x t tiles.
 */
function tileScale(t: Tile, inp: Float32Array, fmax: Float64Array, N: number, Hi: number, Wi: number, A: number, OH: number, OW: number, B: number, pt: number, pl: number): Float64Array {
  const out = new Float64Array(N * OH * OW * B);
  const s = new Float64Array(A);
  for (let n = 0; n < N; n++)
    for (let th = 0; t * th < OH; th++)
      for (let tw = 0; t * tw < OW; tw++) {
        s.fill(0);
        for (let i = 0; i < t + 2; i++)
          for (let j = 0; j < t + 2; j++) {
            const ih = t * th - pt + i;
            const iw = t * tw - pl + j;
            if (ih < 0 || ih >= Hi || iw < 0 || iw >= Wi) continue;
            for (let a = 0; a < A; a++) s[a] += Math.abs(inp[((n * Hi + ih) * Wi + iw) * A + a]);
          }
        for (let b = 0; b < B; b++) {
          let v = 0;
          for (let a = 0; a < A; a++) v += fmax[a * B + b] * s[a];
          for (let oh = t * th; oh < Math.min(OH, t * th + t); oh++)
            for (let ow = t * tw; ow < Math.min(OW, t * tw + t); ow++) out[((n * OH + oh) * OW + ow) * B + b] = v;
        }
      }
  return out;
}

/** max over the 9 taps of |w[., ., ci, co]|, as [Cin][Cout] (transposed: [Cout][Cin]). */
function tapMax(w: Float32Array, Cin: number, Cout: number, transposed: boolean): Float64Array {
  const m = new Float64Array(Cin * Cout);
  for (let k = 0; k < 9; k++)
    for (let ci = 0; ci < Cin; ci++)
      for (let co = 0; co < Cout; co++) {
        const i = transposed ? co * Cin + ci : ci * Cout + co;
        m[i] = Math.max(m[i], Math.abs(w[(k * Cin + ci) * Cout + co]));
      }
  return m;
}

/** The filter gradient's scale: Σ_tiles Σ_{(t+2)²} |x[ci]| · Σ_{t²} |dy[co]|, the same for the 9 taps. */
function filterScale(t: Tile, c: Case, x: Float32Array, dy: Float32Array): Float64Array {
  const P = c.Cin * c.Cout;
  const out = new Float64Array(9 * P);
  const sx = new Float64Array(c.Cin);
  const sd = new Float64Array(c.Cout);
  for (let n = 0; n < c.N; n++)
    for (let th = 0; t * th < c.OH; th++)
      for (let tw = 0; t * tw < c.OW; tw++) {
        sx.fill(0);
        sd.fill(0);
        for (let i = 0; i < t + 2; i++)
          for (let j = 0; j < t + 2; j++) {
            const ih = t * th - c.pt + i;
            const iw = t * tw - c.pl + j;
            if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
            for (let ci = 0; ci < c.Cin; ci++) sx[ci] += Math.abs(x[((n * c.H + ih) * c.W + iw) * c.Cin + ci]);
          }
        for (let oh = t * th; oh < Math.min(c.OH, t * th + t); oh++)
          for (let ow = t * tw; ow < Math.min(c.OW, t * tw + t); ow++)
            for (let co = 0; co < c.Cout; co++) sd[co] += Math.abs(dy[((n * c.OH + oh) * c.OW + ow) * c.Cout + co]);
        for (let ci = 0; ci < c.Cin; ci++) for (let co = 0; co < c.Cout; co++) out[ci * c.Cout + co] += sx[ci] * sd[co];
      }
  for (let k = 1; k < 9; k++) out.copyWithin(k * P, 0, P);
  return out;
}

function expectClose(t: Tile, name: string, got: Float32Array, want: Float64Array, scale: Float64Array): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= TOL[t] * scale[i] + 1e-30)) {
      throw new Error(`${name}[${i}] (t = ${t}): got ${got[i]}, want ${want[i]} (scale ${scale[i]}, error ${err / scale[i]} of it)`);
    }
  }
}

interface Inputs {
  x: Tensor;
  w: Tensor;
  b: Tensor | null;
  dy: Tensor;
}

/** The three results against the reference, each against its Winograd scale (+ |bias| for y). */
function expectAll(t: Tile, c: Case, r: Ref, v: Inputs, y: Float32Array, dx: Float32Array, dw: Float32Array): void {
  const [xa, wa, dya] = [v.x.toArray(), v.w.toArray(), v.dy.toArray()];
  const ys = tileScale(t, xa, tapMax(wa, c.Cin, c.Cout, false), c.N, c.H, c.W, c.Cin, c.OH, c.OW, c.Cout, c.pt, c.pl);
  const ba = v.b?.toArray();
  if (ba) for (let i = 0; i < ys.length; i++) ys[i] += Math.abs(ba[i % c.Cout]);
  expectClose(t, 'y', y, r.y, ys);
  expectClose(t, 'dx', dx, r.dx, tileScale(t, dya, tapMax(wa, c.Cin, c.Cout, true), c.N, c.OH, c.OW, c.Cout, c.H, c.W, c.Cin, 2 - c.pt, 2 - c.pl));
  expectClose(t, 'dw', dw, r.dw, filterScale(t, c, xa, dya));
}

// ---- the kernels, called directly ------------------------------------------------------

type Runner = (out: number, begin: number, end: number, scratch: number) => void;

/** Run over the given ranges into a fresh block (NaN-filled); return its floats. */
function runRanges(floats: number, scratchBytes: number, parts: [number, number][], call: Runner): Float32Array {
  const out = alloc(floats * 4);
  const s = alloc(Math.max(16, scratchBytes));
  try {
    heapF32().fill(NaN, out >>> 2, (out >>> 2) + floats);
    for (const [b, e] of parts) {
      heapF32().fill(-7, s >>> 2, (s + scratchBytes) >>> 2); // scratch contents must not matter
      call(out, b, e, s);
    }
    return heapF32().slice(out >>> 2, (out >>> 2) + floats);
  } finally {
    free(out);
    free(s);
  }
}

/** The kernels of one tile size. */
const kernels = (t: Tile) =>
  t === 4
    ? { filter: K.winograd4_filter, forward: K.winograd4_forward, forwardScratch: K.winograd4_forward_scratch }
    : { filter: K.winograd_filter, forward: K.winograd_forward, forwardScratch: K.winograd_forward_scratch };

/** The transformed filter's floats (flip 0: forward, A = Cin; flip 1: input gradient, A = Cout). */
const filterFloats = (t: Tile, c: Case, flip: 0 | 1): number => {
  const [A, B] = flip ? [c.Cout, c.Cin] : [c.Cin, c.Cout];
  return (t + 2) ** 2 * Math.ceil(B / 8) * 8 * A;
};

function filterParts(t: Tile, w: Tensor, c: Case, flip: 0 | 1, parts: [number, number][]): Float32Array {
  return runRanges(filterFloats(t, c, flip), K.winograd_filter_scratch(), parts, (o, b, e, s) => kernels(t).filter(w.ptr, c.Cin, c.Cout, flip, o, b, e, s));
}

/** The transformed filter in a fresh block the caller frees. */
function transformedFilter(t: Tile, w: Tensor, c: Case, flip: 0 | 1): number {
  const u = filterParts(t, w, c, flip, [[0, flip ? c.Cout : c.Cin]]);
  const up = alloc(u.length * 4);
  heapF32().set(u, up >>> 2);
  return up;
}

const tileRows = (t: Tile, N: number, OH: number): number => N * Math.ceil(OH / t);

function forwardParts(t: Tile, c: Case, x: Tensor, up: number, bias: number, parts: [number, number][]): Float32Array {
  return runRanges(c.N * c.OH * c.OW * c.Cout, kernels(t).forwardScratch(c.Cin, c.Cout), parts, (o, b, e, s) =>
    kernels(t).forward(x.ptr, up, bias, o, c.N, c.H, c.W, c.Cin, c.OH, c.OW, c.Cout, c.pt, c.pl, b, e, s),
  );
}

/** The input gradient: the forward kernel on dy with the flipped filter and padding 2 - pt, 2 - pl. */
function inputParts(t: Tile, c: Case, dy: Tensor, upT: number, parts: [number, number][]): Float32Array {
  return runRanges(c.N * c.H * c.W * c.Cin, kernels(t).forwardScratch(c.Cout, c.Cin), parts, (o, b, e, s) =>
    kernels(t).forward(dy.ptr, upT, 0, o, c.N, c.OH, c.OW, c.Cout, c.H, c.W, c.Cin, 2 - c.pt, 2 - c.pl, b, e, s),
  );
}

/**
 * The filter gradient in blocks of cg input x og output channels (default one
 * block), over ranges of units; 4x4 tiles in runs of runTiles tiles (default
 * one run), whose sums are then added in order (reduce_sum) and transformed
 * over ranges of input channels (default one).
 */
function gradParts(
  t: Tile, c: Case, x: Tensor, dy: Tensor, parts: [number, number][], cg = c.Cin, og = c.Cout, runs = ONE_RUN, outParts: [number, number][] = [[0, c.Cin]],
): Float32Array {
  const floats = 9 * c.Cin * c.Cout;
  if (t === 2) {
    return runRanges(floats, K.winograd_filter_grad_scratch(c.Cin, c.Cout), parts, (o, b, e, s) =>
      K.winograd_filter_grad(x.ptr, dy.ptr, o, c.N, c.H, c.W, c.Cin, c.OH, c.OW, c.Cout, c.pt, c.pl, cg, og, b, e, s),
    );
  }
  const { R, runTiles } = runs;
  const scratchBytes = K.winograd4_filter_grad_scratch(c.Cin, c.Cout);
  const grad = (dw: number, m: number, b: number, e: number, s: number) =>
    K.winograd4_filter_grad(x.ptr, dy.ptr, dw, m, 0, c.N, c.H, c.W, c.Cin, c.OH, c.OW, c.Cout, c.pt, c.pl, cg, og, R, R === 1 ? tiles4(c) : runTiles, b, e, s);
  if (R === 1) return runRanges(floats, scratchBytes, parts, (o, b, e, s) => grad(o, 0, b, e, s));
  const runFloats = (36 * K.winograd4_filter_grad_plane(c.Cin, c.Cout)) / 4;
  const m = alloc((R + 1) * runFloats * 4);
  const total = m + R * runFloats * 4;
  try {
    // The runs' sums, NaN where no unit writes; dw is untouched (NaN stays NaN).
    const none = runRanges(floats, scratchBytes, parts, (o, b, e, s) => {
      if (b === parts[0][0]) heapF32().fill(NaN, m >>> 2, (m >>> 2) + R * runFloats);
      grad(o, m, b, e, s);
    });
    expect(none.every(Number.isNaN)).toBe(true);
    K.reduce_sum(m, total, 1, R, runFloats, 0, runFloats, 0);
    return runRanges(floats, 384, outParts, (o, b, e, s) => K.winograd4_filter_grad_out(total, o, c.Cin, c.Cout, b, e, s));
  } finally {
    free(m);
  }
}

const tiles4 = (c: Case): number => c.N * Math.ceil(c.OH / 4) * Math.ceil(c.OW / 4);

/**
 * The 4x4 filter gradient with its sums of dy (the bias gradient), in blocks
 * of cg x og channels over ranges of units, in the given runs; R > 1: the
 * runs' sums of dy added in order (reduce_sum) and dw as gradParts makes it.
 */
function withBiasParts(c: Case, x: Tensor, dy: Tensor, parts: [number, number][], cg: number, og: number, runs: { R: number; runTiles: number }): { dw: Float32Array; db: Float32Array } {
  const { R, runTiles } = runs;
  const runBytes = 36 * K.winograd4_filter_grad_plane(c.Cin, c.Cout);
  const dw = alloc(9 * c.Cin * c.Cout * 4);
  const m = alloc((R + 1) * runBytes);
  const out = alloc(c.Cout * 4);
  try {
    // The sums of dy (each run's when R > 1), NaN where no unit writes.
    const sums = runRanges(R * c.Cout, K.winograd4_filter_grad_scratch(c.Cin, c.Cout), parts, (o, b, e, s) =>
      K.winograd4_filter_grad(x.ptr, dy.ptr, dw, m, o, c.N, c.H, c.W, c.Cin, c.OH, c.OW, c.Cout, c.pt, c.pl, cg, og, R, R === 1 ? tiles4(c) : runTiles, b, e, s),
    );
    if (R === 1) return { dw: heapF32().slice(dw >>> 2, (dw >>> 2) + 9 * c.Cin * c.Cout), db: sums };
    const total = m + R * runBytes;
    K.reduce_sum(m, total, 1, R, runBytes / 4, 0, runBytes / 4, 0);
    K.winograd4_filter_grad_out(total, dw, c.Cin, c.Cout, 0, c.Cin, m); // the runs' sums are spent: their block is scratch now
    heapF32().set(sums, m >>> 2);
    K.reduce_sum(m, out, 1, R, c.Cout, 0, c.Cout, 0);
    return { dw: heapF32().slice(dw >>> 2, (dw >>> 2) + 9 * c.Cin * c.Cout), db: heapF32().slice(out >>> 2, (out >>> 2) + c.Cout) };
  } finally {
    free(dw);
    free(m);
    free(out);
  }
}

/** dy summed over its pixels per channel, in float64. */
function channelSums64(c: Case, dy: Float32Array): Float64Array {
  const out = new Float64Array(c.Cout);
  for (let i = 0; i < dy.length; i++) out[i % c.Cout] += dy[i];
  return out;
}

/** `runs` runs of a case's 4x4 tiles (fewer where there are fewer tiles), of floor(T / R), the last one longer. */
const runsOf = (c: Case, runs: number): { R: number; runTiles: number } => {
  const R = Math.min(runs, tiles4(c));
  return { R, runTiles: Math.floor(tiles4(c) / R) };
};
const ONE_RUN = { R: 1, runTiles: 0 };

/** y, dx and dw of a case by the kernels of tile size t, each over one range (dw of 4x4 tiles in the given runs). */
function allThree(t: Tile, c: Case, v: Inputs, runs = ONE_RUN): { y: Float32Array; dx: Float32Array; dw: Float32Array } {
  const up = transformedFilter(t, v.w, c, 0);
  const upT = transformedFilter(t, v.w, c, 1);
  try {
    return {
      y: forwardParts(t, c, v.x, up, v.b?.ptr ?? 0, [[0, tileRows(t, c.N, c.OH)]]),
      dx: inputParts(t, c, v.dy, upT, [[0, tileRows(t, c.N, c.H)]]),
      dw: gradParts(t, c, v.x, v.dy, [[0, t === 4 ? runs.R : 1]], c.Cin, c.Cout, runs),
    };
  } finally {
    free(up);
    free(upT);
  }
}

function inputs(c: Case): Inputs {
  const [kx, kw, kb, ky] = split(key(c.seed), 4);
  return {
    x: randn(kx, [c.N, c.H, c.W, c.Cin]),
    w: randn(kw, [3, 3, c.Cin, c.Cout]),
    b: c.bias ? randn(kb, [c.Cout]) : null,
    dy: randn(ky, [c.N, c.OH, c.OW, c.Cout]),
  };
}

// ---- shapes -----------------------------------------------------------------------------

const SIZES = [1, 2, 3, 4, 5, 7, 8, 33];
const CHANNELS = [1, 3, 4, 5, 8, 9, 12, 17];

/** 'same' (pad 1 each side), 'valid' (none) or explicit [before, after] per axis (0..3, output at least 1). */
const padArb = fc.oneof(
  fc.constant<[number, number]>([1, 1]),
  fc.constant<[number, number]>([0, 0]),
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
);

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    H: fc.constantFrom(...SIZES),
    W: fc.constantFrom(...SIZES),
    Cin: fc.constantFrom(...CHANNELS),
    Cout: fc.constantFrom(...CHANNELS),
    ph: padArb,
    pw: padArb,
    bias: fc.boolean(),
    seed: fc.nat(1 << 30),
  })
  .map(({ N, H, W, Cin, Cout, ph, pw, bias, seed }) => ({
    N, H, W, Cin, Cout, bias, seed,
    pt: ph[0],
    pl: pw[0],
    OH: H + ph[0] + ph[1] - 2,
    OW: W + pw[0] + pw[1] - 2,
  }))
  .filter((c) => c.OH >= 1 && c.OW >= 1 && c.N * c.OH * c.OW * c.Cin * c.Cout <= 150_000);

const tileArb = fc.constantFrom<Tile>(2, 4);

/** Random cut points splitting [0, total) into 1..6 ranges. */
const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 0, maxLength: 5 });

function ranges(total: number, cuts: number[]): [number, number][] {
  const pts = [...new Set(cuts.map((u) => Math.floor(u * total)).filter((p) => p > 0 && p < total))].sort((a, b) => a - b);
  const bounds = [0, ...pts, total];
  return bounds.slice(1).map((e, i) => [bounds[i], e]);
}

const bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// ---- tests ------------------------------------------------------------------------------

describe('Winograd kernels against a float64 reference', () => {
  it('forward, input gradient (flipped filter, padding 2 - p) and filter gradient (4x4: in 1 to 4 runs), 2x2 and 4x4 tiles, agree on random shapes and paddings', () => {
    fc.assert(
      fc.property(tileArb, caseArb, fc.integer({ min: 1, max: 4 }), (t, c, runs) =>
        scope(() => {
          const v = inputs(c);
          const r = reference(c, v.x.toArray(), v.w.toArray(), v.b?.toArray() ?? null, v.dy.toArray());
          const { y, dx, dw } = allThree(t, c, v, runsOf(c, runs));
          expectAll(t, c, r, v, y, dx, dw);
          if (t === 4) {
            // The bias gradient the 4x4 filter gradient sums on the way: float32 sums in order, within n·ε of Σ|dy|.
            const dya = v.dy.toArray();
            const { db } = withBiasParts(c, v.x, v.dy, [[0, runsOf(c, runs).R]], c.Cin, c.Cout, runsOf(c, runs));
            const want = channelSums64(c, dya);
            const mag = channelSums64(c, dya.map(Math.abs));
            const n = dya.length / c.Cout;
            for (let j = 0; j < c.Cout; j++) expect(Math.abs(db[j] - want[j])).toBeLessThanOrEqual(n * 2 ** -23 * mag[j] + 1e-30);
          }
        }),
      ),
      { numRuns: 100 },
    );
  });

  it('agree on wide layers that fill whole blocks and panels (64 -> 48 at 33x17, 40 -> 64 at 16x16, a W1-like slice)', () => {
    const cases: Case[] = [
      { N: 2, H: 33, W: 17, Cin: 64, Cout: 48, pt: 1, pl: 1, OH: 33, OW: 17, bias: true, seed: 1 }, // 4x4 filter gradient: a block of 72 tiles and 18
      { N: 2, H: 16, W: 16, Cin: 40, Cout: 64, pt: 0, pl: 2, OH: 14, OW: 18, bias: false, seed: 2 },
      { N: 1, H: 12, W: 12, Cin: 64, Cout: 64, pt: 1, pl: 1, OH: 12, OW: 12, bias: true, seed: 3 },
    ];
    for (const c of cases) {
      scope(() => {
        const v = inputs(c);
        const r = reference(c, v.x.toArray(), v.w.toArray(), v.b?.toArray() ?? null, v.dy.toArray());
        for (const t of [2, 4] as const) {
          const { y, dx, dw } = allThree(t, c, v);
          expectAll(t, c, r, v, y, dx, dw);
        }
      });
    }
  });

  it('a wrong transform is caught: perturbing one transformed filter element moves the output past the tolerance', () => {
    for (const t of [2, 4] as const) {
      scope(() => {
        const c: Case = { N: 1, H: 4, W: 4, Cin: 4, Cout: 4, pt: 1, pl: 1, OH: 4, OW: 4, bias: false, seed: 7 };
        const v = inputs(c);
        const r = reference(c, v.x.toArray(), v.w.toArray(), null, v.dy.toArray());
        const up = transformedFilter(t, v.w, c, 0);
        try {
          heapF32()[(up >>> 2) + 5 * 32 + 3] += 0.25; // plane ξ = 5 (each 4 x 8), a = 0, column 3
          const y = forwardParts(t, c, v.x, up, 0, [[0, tileRows(t, c.N, c.OH)]]);
          const scale = tileScale(t, v.x.toArray(), tapMax(v.w.toArray(), c.Cin, c.Cout, false), c.N, c.H, c.W, c.Cin, c.OH, c.OW, c.Cout, c.pt, c.pl);
          expect(() => expectClose(t, 'y', y, r.y, scale)).toThrow(/y\[/);
        } finally {
          free(up);
        }
      });
    }
  });
});

describe('Winograd kernels are deterministic under any range split', () => {
  it('filter transforms, forward, input gradient and filter gradient (in blocks of channels; 4x4 in 1 to 4 runs) give the same bytes for one range and random ranges (the output transform after runs too)', () => {
    fc.assert(
      fc.property(tileArb, caseArb, cutsArb, fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 })), fc.integer({ min: 1, max: 4 }), (t, c, cuts, blocks, runs) =>
        scope(() => {
          const { x, w, b, dy } = inputs(c);
          for (const flip of [0, 1] as const) {
            const A = flip ? c.Cout : c.Cin;
            expect(bytes(filterParts(t, w, c, flip, ranges(A, cuts)))).toEqual(bytes(filterParts(t, w, c, flip, [[0, A]])));
          }
          const up = transformedFilter(t, w, c, 0);
          const upT = transformedFilter(t, w, c, 1);
          try {
            const rows = tileRows(t, c.N, c.OH);
            const y1 = forwardParts(t, c, x, up, b?.ptr ?? 0, [[0, rows]]);
            expect(bytes(forwardParts(t, c, x, up, b?.ptr ?? 0, ranges(rows, cuts)))).toEqual(bytes(y1));
            const rowsT = tileRows(t, c.N, c.H);
            const dx1 = inputParts(t, c, dy, upT, [[0, rowsT]]);
            expect(bytes(inputParts(t, c, dy, upT, ranges(rowsT, cuts)))).toEqual(bytes(dx1));
            const cut = t === 4 ? runsOf(c, runs) : ONE_RUN;
            const dw1 = gradParts(t, c, x, dy, [[0, cut.R]], c.Cin, c.Cout, cut);
            const [cg, og] = [4 * blocks[0], 8 * blocks[1]];
            const units = Math.ceil(c.Cin / cg) * Math.ceil(c.Cout / og) * cut.R;
            expect(bytes(gradParts(t, c, x, dy, ranges(units, cuts), cg, og, cut, ranges(c.Cin, cuts)))).toEqual(bytes(dw1));
            if (t === 4) {
              // Summing dy on the way changes no bit of dw, and its own bits no more depend on the split.
              const one = withBiasParts(c, x, dy, [[0, cut.R]], c.Cin, c.Cout, cut);
              expect(bytes(one.dw)).toEqual(bytes(dw1));
              expect(bytes(withBiasParts(c, x, dy, ranges(units, cuts), cg, og, cut).db)).toEqual(bytes(one.db));
            }
          } finally {
            free(up);
            free(upT);
          }
        }),
      ),
      { numRuns: 40 },
    );
  });
});

describe('conv2d takes the Winograd path where it pays', () => {
  const geo = (N: number, H: number, W: number, Cin: number, Cout: number, pad: number, KH = 3, s = 1, d = 1): Conv2dGeometry => {
    const OH = Math.floor((H + 2 * pad - (KH - 1) * d - 1) / s) + 1;
    const OW = Math.floor((W + 2 * pad - (KH - 1) * d - 1) / s) + 1;
    return { N, H, W, Cin, OH, OW, Cout, KH, KW: KH, sh: s, sw: s, dh: d, dw: d, pt: pad, pl: pad };
  };

  it('chooses by shape only: 4x4 tiles for large outputs, 2x2 for small ones, direct for Cin 3 forward, strides, dilations, other sizes, 1- or 3-pixel outputs, > 2^17 channel pairs', () => {
    expect(winogradPaths(geo(16, 32, 32, 64, 64, 1))).toEqual({ forward: 4, input: 4, filter: 4 });
    expect(winogradPaths(geo(32, 8, 8, 64, 64, 1))).toEqual({ forward: 4, input: 4, filter: 4 });
    expect(winogradPaths(geo(32, 32, 32, 3, 32, 1))).toEqual({ forward: 0, input: 4, filter: 4 });
    expect(winogradPaths(geo(32, 4, 4, 64, 64, 1))).toEqual({ forward: 2, input: 2, filter: 2 });
    expect(winogradPaths(geo(64, 6, 6, 32, 32, 1))).toEqual({ forward: 2, input: 2, filter: 2 });
    expect(winogradPaths(geo(1, 16, 16, 64, 64, 1))).toEqual({ forward: 2, input: 2, filter: 2 });
    expect(winogradPaths(geo(8, 16, 16, 64, 64, 1, 3, 2))).toEqual({ forward: 0, input: 0, filter: 0 });
    expect(winogradPaths(geo(8, 16, 16, 64, 64, 2, 3, 1, 2))).toEqual({ forward: 0, input: 0, filter: 0 });
    expect(winogradPaths(geo(8, 16, 16, 64, 64, 2, 5))).toEqual({ forward: 0, input: 0, filter: 0 });
    expect(winogradPaths(geo(8, 1, 1, 64, 64, 1))).toEqual({ forward: 0, input: 0, filter: 0 });
    expect(winogradPaths(geo(8, 3, 3, 64, 64, 1))).toEqual({ forward: 0, input: 0, filter: 0 });
    expect(winogradPaths(geo(8, 16, 16, 512, 512, 1))).toEqual({ forward: 0, input: 0, filter: 0 });
    expect(winogradPaths(geo(8, 16, 16, 256, 512, 1))).toEqual({ forward: 4, input: 4, filter: 4 });
  });

  it('cuts the filter gradient into at most one block of channels per thread, whole on one thread, on the side whose repeated transform costs less', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 16 }), (Cin, Cout, threads) => {
        const { cg, og, units } = filterGradBlocks(Cin, Cout, threads);
        expect(units).toBe(Math.ceil(Cin / cg) * Math.ceil(Cout / og));
        expect(units).toBeLessThanOrEqual(threads);
        if (units > 1) {
          expect(cg % 4 === 0 && og % 8 === 0).toBe(true);
          // No empty block: the last block of each side holds channels.
          expect(Cin - (Math.ceil(Cin / cg) - 1) * cg).toBeGreaterThan(0);
          expect(Cout - (Math.ceil(Cout / og) - 1) * og).toBeGreaterThan(0);
        }
        if (threads === 1) expect(units).toBe(1);
      }),
    );
    expect(filterGradBlocks(3, 32, 2)).toEqual({ cg: 4, og: 16, units: 2 }); // x has one group of 4: cut dy
    expect(filterGradBlocks(64, 8, 2)).toEqual({ cg: 32, og: 8, units: 2 }); // dy has one panel: cut x
    expect(filterGradBlocks(32, 32, 2)).toEqual({ cg: 16, og: 32, units: 2 }); // x's transform costs more: repeat dy's
    expect(filterGradBlocks(64, 64, 4).units).toBe(4);
  });

  it('cuts the 4x4 filter gradient into 1, 2 or 4 runs, fixed by the shape: of at least 64 tiles where its sums are small, 256 where larger, none where large', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 4, max: 40 }), fc.integer({ min: 1, max: 96 }), fc.integer({ min: 1, max: 96 }), (N, H, Cin, Cout) => {
        const g = geo(N, H, H, Cin, Cout, 1);
        const { T, R, runTiles } = filterGradRuns(g);
        expect(T).toBe(N * Math.ceil(H / 4) ** 2);
        expect([1, 2, 4]).toContain(R);
        if (R === 1) expect(runTiles).toBe(T);
        else {
          expect(R * runTiles).toBeLessThanOrEqual(T); // the last run takes at least its share,
          expect(T - (R - 1) * runTiles).toBeLessThan(runTiles + R); // and fewer than R tiles more
        }
        const sums = 36 * K.winograd4_filter_grad_plane(Cin, Cout);
        const least = sums <= 192 << 10 ? 64 : 256;
        if (R > 1) expect(runTiles).toBeGreaterThanOrEqual(least);
        if (R < 4 && sums <= 640 << 10) expect(T).toBeLessThan(2 * R * least); // as many runs as fit
        if (sums > 640 << 10 || T < 2 * least) expect(R).toBe(1);
      }),
    );
    expect(filterGradRuns(geo(32, 16, 16, 32, 32, 1))).toEqual({ T: 512, R: 4, runTiles: 128 }); // W7's first cell: 4 blocks of 128
    expect(filterGradRuns(geo(32, 32, 32, 3, 32, 1)).R).toBe(4);
    expect(filterGradRuns(geo(8, 16, 13, 12, 8, 1))).toEqual({ T: 128, R: 2, runTiles: 64 });
    expect(filterGradRuns(geo(8, 16, 12, 12, 8, 1))).toEqual({ T: 96, R: 1, runTiles: 96 });
    expect(filterGradRuns(geo(32, 16, 16, 32, 64, 1))).toEqual({ T: 512, R: 2, runTiles: 256 }); // sums of 295 KB: W7's second conv
    expect(filterGradRuns(geo(16, 16, 16, 32, 64, 1)).R).toBe(1); // 256 tiles
    expect(filterGradRuns(geo(16, 32, 32, 64, 64, 1))).toEqual({ T: 1024, R: 4, runTiles: 256 }); // W5b, sums of 590 KB
    expect(filterGradRuns(geo(32, 8, 8, 64, 64, 1)).R).toBe(1); // W7's second cell: 128 tiles
    expect(filterGradRuns(geo(8, 32, 32, 128, 128, 1)).R).toBe(1); // sums of 2.4 MB
  });

  it("conv2d, conv2dBackpropInput and conv2dBackpropFilter return the Winograd kernels' bytes (2x2 and 4x4 tiles; 4x4 in 2 runs)", () => {
    const cases: [Case, Tile][] = [
      [{ N: 2, H: 9, W: 6, Cin: 12, Cout: 8, pt: 1, pl: 1, OH: 9, OW: 6, bias: true, seed: 21 }, 2],
      [{ N: 8, H: 16, W: 13, Cin: 12, Cout: 8, pt: 1, pl: 1, OH: 16, OW: 13, bias: true, seed: 22 }, 4],
    ];
    for (const [c, t] of cases) {
      scope(() => {
        const g = geo(c.N, c.H, c.W, c.Cin, c.Cout, 1);
        expect(winogradPaths(g)).toEqual({ forward: t, input: t, filter: t });
        const v = inputs(c);
        const want = allThree(t, c, v, t === 4 ? filterGradRuns(g) : ONE_RUN);
        expect(bytes(conv2d(v.x, v.w, { padding: 'same', bias: v.b! }).toArray())).toEqual(bytes(want.y));
        expect(bytes(conv2dBackpropInput(v.dy, v.w, v.x.shape, { padding: 'same' }).toArray())).toEqual(bytes(want.dx));
        expect(bytes(conv2dBackpropFilter(v.x, v.dy, v.w.shape, { padding: 'same' }).toArray())).toEqual(bytes(want.dw));
        if (t === 4) {
          // conv2d's vjp takes dw and the bias gradient from one call of the kernel.
          const [dw, db] = filterGrads(v.x, v.dy, g, true);
          const runs = filterGradRuns(g);
          const kernel = withBiasParts(c, v.x, v.dy, [[0, runs.R]], c.Cin, c.Cout, runs);
          expect(bytes(dw.toArray())).toEqual(bytes(want.dw));
          expect(bytes(db!.toArray())).toEqual(bytes(kernel.db));
        }
        // Again in the same scope and an inner one: the transformed filters (one per direction) are reused.
        for (const run of [(f: () => void) => f(), (f: () => void) => scope(f)]) {
          run(() => {
            expect(bytes(conv2dBackpropInput(v.dy, v.w, v.x.shape, { padding: 'same' }).toArray())).toEqual(bytes(want.dx));
            expect(bytes(conv2d(v.x, v.w, { padding: 'same', bias: v.b! }).toArray())).toEqual(bytes(want.y));
          });
        }
      });
    }
  });

  const gradCases: { shape: [number, number, number, number]; padding: 'same' | 'valid' | [[number, number], [number, number]]; tile: Tile }[] = [
    { shape: [1, 5, 4, 8], padding: 'same', tile: 2 },
    { shape: [1, 5, 4, 8], padding: 'valid', tile: 2 },
    { shape: [1, 5, 4, 8], padding: [[2, 0], [1, 3]], tile: 2 },
    { shape: [16, 8, 8, 8], padding: 'same', tile: 4 },
  ];
  for (const { shape, padding, tile } of gradCases) {
    it(`checkGrad through conv2d on the Winograd path (${tile}x${tile} tiles) w.r.t. x, w and bias (x ${JSON.stringify(shape)}, padding ${JSON.stringify(padding)})`, () => {
      scope(() => {
        const [kx, kw, kb, kr] = split(key(31), 4);
        const x = randn(kx, shape);
        const w = randn(kw, [3, 3, 8, 4]);
        const b = randn(kb, [4]);
        const y0 = conv2d(x, w, { padding });
        const pt = padding === 'same' ? 1 : padding === 'valid' ? 0 : padding[0][0];
        const pl = padding === 'same' ? 1 : padding === 'valid' ? 0 : padding[1][0];
        const g: Conv2dGeometry = { ...geo(shape[0], shape[1], shape[2], 8, 4, 0), OH: y0.shape[1], OW: y0.shape[2], pt, pl };
        expect(winogradPaths(g)).toEqual({ forward: tile, input: tile, filter: tile });
        const R = randn(kr, y0.shape);
        const f = (xt: Tensor, wt: Tensor, bt: Tensor): Tensor => sum(mul(conv2d(xt, wt, { padding, bias: bt }), R));
        checkGrad(f, [x, w, b], { maxElements: 24 });
      });
    });
  }
});
