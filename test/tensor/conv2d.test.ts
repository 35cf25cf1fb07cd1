import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  conv2d,
  conv2dBackpropInput,
  conv2dBackpropFilter,
  rules,
  winogradPaths,
  type Conv2dGeometry,
  type Conv2dOptions,
  type Conv2dPadding,
} from '../../src/tensor/ops/conv2d.js';
import { tensor, randn } from '../../src/tensor/create.js';
import { Tensor, scope } from '../../src/tensor/tensor.js';
import { alloc, free, heapF32 } from '../../src/tensor/heap.js';
import { K } from '../../src/tensor/kernels.js';
import { key, split } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, vjp } from '../../src/autodiff/index.js';
import { elu, relu } from '../../src/tensor/ops/unary.js';
import { sum, channelSums } from '../../src/tensor/ops/reduce.js';
import { mul } from '../../src/tensor/ops/binary.js';

// ---- plain float64 reference ---------------------------------------------------------

interface Case {
  N: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padding: Conv2dPadding;
  bias: boolean;
  seed: number;
}

interface Geo {
  pt: number;
  pl: number;
  OH: number;
  OW: number;
}

/** TensorFlow's rule, written out: [padding before, output size] along one axis. */
function refAxis(size: number, k: number, s: number, d: number, pad: Conv2dPadding, axis: 0 | 1): [number, number] {
  const span = (k - 1) * d + 1;
  if (pad === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + span - size, 0);
    return [Math.floor(total / 2), out];
  }
  const [lo, hi] = pad === 'valid' ? [0, 0] : typeof pad === 'number' ? [pad, pad] : pad[axis];
  return [lo, Math.floor((size + lo + hi - span) / s) + 1];
}

function refGeo(c: Case): Geo {
  const [pt, OH] = refAxis(c.H, c.KH, c.sh, c.dh, c.padding, 0);
  const [pl, OW] = refAxis(c.W, c.KW, c.sw, c.dw, c.padding, 1);
  return { pt, pl, OH, OW };
}

/** The op's geometry of a case, to ask which paths (direct or Winograd) it takes. */
const paths = (c: Case, g: Geo) => {
  const geo: Conv2dGeometry = { N: c.N, H: c.H, W: c.W, Cin: c.Cin, OH: g.OH, OW: g.OW, Cout: c.Cout, KH: c.KH, KW: c.KW, sh: c.sh, sw: c.sw, dh: c.dh, dw: c.dw, pt: g.pt, pl: g.pl };
  return winogradPaths(geo);
};

/** Every (output, input, filter) index triple of one multiply in the convolution. */
function eachTerm(c: Case, g: Geo, f: (yi: number, xi: number, wi: number) => void): void {
  for (let n = 0; n < c.N; n++)
    for (let oh = 0; oh < g.OH; oh++)
      for (let ow = 0; ow < g.OW; ow++)
        for (let kh = 0; kh < c.KH; kh++)
          for (let kw = 0; kw < c.KW; kw++) {
            const ih = oh * c.sh - g.pt + kh * c.dh;
            const iw = ow * c.sw - g.pl + kw * c.dw;
            if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
            for (let ci = 0; ci < c.Cin; ci++)
              for (let co = 0; co < c.Cout; co++) {
                f(((n * g.OH + oh) * g.OW + ow) * c.Cout + co, ((n * c.H + ih) * c.W + iw) * c.Cin + ci, ((kh * c.KW + kw) * c.Cin + ci) * c.Cout + co);
              }
          }
}

interface Ref {
  y: Float64Array;
  yMag: Float64Array;
  dx: Float64Array;
  dxMag: Float64Array;
  dw: Float64Array;
  dwMag: Float64Array;
}

function reference(c: Case, g: Geo, x: Float32Array, w: Float32Array, b: Float32Array | null, dy: Float32Array): Ref {
  const r: Ref = {
    y: new Float64Array(dy.length),
    yMag: new Float64Array(dy.length),
    dx: new Float64Array(x.length),
    dxMag: new Float64Array(x.length),
    dw: new Float64Array(w.length),
    dwMag: new Float64Array(w.length),
  };
  eachTerm(c, g, (yi, xi, wi) => {
    r.y[yi] += x[xi] * w[wi];
    r.yMag[yi] += Math.abs(x[xi] * w[wi]);
    r.dx[xi] += dy[yi] * w[wi];
    r.dxMag[xi] += Math.abs(dy[yi] * w[wi]);
    r.dw[wi] += x[xi] * dy[yi];
    r.dwMag[wi] += Math.abs(x[xi] * dy[yi]);
  });
  if (b !== null) {
    for (let i = 0; i < r.y.length; i++) {
      r.y[i] += b[i % c.Cout];
      r.yMag[i] += Math.abs(b[i % c.Cout]);
    }
  }
  return r;
}

/**
 * float32 against the float64 reference, relative to the magnitude of the
 * summed terms. Winograd (3x3 stride-1 layers with enough channels; `tile` 2
 * or 4, 0 for the direct kernels) rounds relative to whole tiles, so an element
 * with tiny or no terms of its own may be off by a few ulps of its
 * neighbours': on that path the bound also allows 1e-6 (2x2 tiles) or 1e-5
 * (4x4 tiles) of the largest magnitude (test/tensor/winograd.test.ts holds the
 * Winograd kernels to a tile-wise bound).
 */
function expectClose(name: string, got: Float32Array, want: Float64Array, mag: Float64Array, tile = 0): void {
  expect(got.length).toBe(want.length);
  const floor = (tile === 4 ? 1e-5 : tile === 2 ? 1e-6 : 0) * mag.reduce((m, v) => Math.max(m, v), 0);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 2e-5 * mag[i] + floor + 1e-30)) {
      throw new Error(`${name}[${i}]: got ${got[i]}, want ${want[i]} (|terms| ${mag[i]})`);
    }
  }
}

const opts = (c: Case): Conv2dOptions => ({ stride: [c.sh, c.sw], dilation: [c.dh, c.dw], padding: c.padding });

function valid(c: Case): boolean {
  const ok = (size: number, k: number, d: number, axis: 0 | 1): boolean => {
    const span = (k - 1) * d + 1;
    const p = c.padding;
    const padded = p === 'same' ? Infinity : p === 'valid' ? size : typeof p === 'number' ? size + 2 * p : size + p[axis][0] + p[axis][1];
    return padded >= span;
  };
  return ok(c.H, c.KH, c.dh, 0) && ok(c.W, c.KW, c.dw, 1);
}

const paddingArb: fc.Arbitrary<Conv2dPadding> = fc.oneof(
  fc.constant<Conv2dPadding>('same'),
  fc.constant<Conv2dPadding>('valid'),
  fc.integer({ min: 0, max: 2 }),
  fc.tuple(fc.tuple(fc.nat(2), fc.nat(2)), fc.tuple(fc.nat(2), fc.nat(2))),
);

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    H: fc.constantFrom(1, 2, 3, 5, 7, 8, 9),
    W: fc.constantFrom(1, 2, 3, 4, 6, 7, 9, 11),
    Cin: fc.constantFrom(1, 3, 4, 5, 8, 9, 12),
    Cout: fc.constantFrom(1, 3, 7, 8, 11, 16, 19),
    KH: fc.integer({ min: 1, max: 4 }),
    KW: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 3 }),
    dh: fc.integer({ min: 1, max: 2 }),
    dw: fc.integer({ min: 1, max: 2 }),
    padding: paddingArb,
    bias: fc.boolean(),
    seed: fc.nat(1 << 30),
  })
  .filter(valid);

function inputs(c: Case, g: Geo): { x: Tensor; w: Tensor; b: Tensor | null; dy: Tensor } {
  const [kx, kw, kb, ky] = split(key(c.seed), 4);
  return {
    x: randn(kx, [c.N, c.H, c.W, c.Cin]),
    w: randn(kw, [c.KH, c.KW, c.Cin, c.Cout]),
    b: c.bias ? randn(kb, [c.Cout]) : null,
    dy: randn(ky, [c.N, g.OH, g.OW, c.Cout]),
  };
}

const dot = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const absDot = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] * b[i]);
  return s;
};

// ---- tests -----------------------------------------------------------------------------

describe('conv2d against a float64 reference', () => {
  it('forward, input gradient and filter gradient agree on random geometries (all padding forms, strides, dilations, odd sizes)', () => {
    fc.assert(
      fc.property(caseArb, (c) =>
        scope(() => {
          const g = refGeo(c);
          const { x, w, b, dy } = inputs(c, g);
          const r = reference(c, g, x.toArray(), w.toArray(), b?.toArray() ?? null, dy.toArray());
          const p = paths(c, g);
          const y = conv2d(x, w, { ...opts(c), ...(b ? { bias: b } : {}) });
          expect(y.shape).toEqual([c.N, g.OH, g.OW, c.Cout]);
          expectClose('y', y.toArray(), r.y, r.yMag, p.forward);
          const dx = conv2dBackpropInput(dy, w, x.shape, opts(c));
          expect(dx.shape).toEqual(x.shape);
          expectClose('dx', dx.toArray(), r.dx, r.dxMag, p.input);
          const dw = conv2dBackpropFilter(x, dy, w.shape, opts(c));
          expect(dw.shape).toEqual(w.shape);
          expectClose('dw', dw.toArray(), r.dw, r.dwMag, p.filter);
        }),
      ),
      { numRuns: 120 },
    );
  });

  it('agrees on larger layers that fill whole tiles, panels and pixel blocks (3x3 same, 1x1, 5x5 stride 2, Cin 3)', () => {
    const cases: Case[] = [
      { N: 2, H: 12, W: 13, Cin: 16, Cout: 24, KH: 3, KW: 3, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'same', bias: true, seed: 1 },
      { N: 2, H: 9, W: 10, Cin: 20, Cout: 17, KH: 1, KW: 1, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'valid', bias: true, seed: 2 },
      { N: 1, H: 15, W: 16, Cin: 8, Cout: 16, KH: 5, KW: 5, sh: 2, sw: 2, dh: 1, dw: 1, padding: 'same', bias: false, seed: 3 },
      { N: 3, H: 11, W: 12, Cin: 3, Cout: 32, KH: 3, KW: 3, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'same', bias: true, seed: 4 },
      { N: 1, H: 10, W: 300, Cin: 4, Cout: 8, KH: 3, KW: 2, sh: 1, sw: 1, dh: 2, dw: 1, padding: [[2, 1], [0, 3]], bias: false, seed: 5 },
      { N: 1, H: 6, W: 7, Cin: 8, Cout: 8, KH: 1, KW: 1, sh: 2, sw: 1, dh: 1, dw: 1, padding: 1, bias: false, seed: 6 },
    ];
    for (const c of cases) {
      scope(() => {
        const g = refGeo(c);
        const { x, w, b, dy } = inputs(c, g);
        const r = reference(c, g, x.toArray(), w.toArray(), b?.toArray() ?? null, dy.toArray());
        const p = paths(c, g);
        expectClose('y', conv2d(x, w, { ...opts(c), ...(b ? { bias: b } : {}) }).toArray(), r.y, r.yMag, p.forward);
        expectClose('dx', conv2dBackpropInput(dy, w, x.shape, opts(c)).toArray(), r.dx, r.dxMag, p.input);
        expectClose('dw', conv2dBackpropFilter(x, dy, w.shape, opts(c)).toArray(), r.dw, r.dwMag, p.filter);
        // The direct kernels too, where the op takes Winograd instead.
        const d = direct(c, g, x, w, b, dy);
        expectClose('y (direct)', d.y, r.y, r.yMag);
        expectClose('dx (direct)', d.dx, r.dx, r.dxMag);
        expectClose('dw (direct)', d.dw, r.dw, r.dwMag);
      });
    }
  });
});

/** The direct (implicit GEMM) kernels called on their own, whatever path the op would take. */
function direct(c: Case, g: Geo, x: Tensor, w: Tensor, b: Tensor | null, dy: Tensor): { y: Float32Array; dx: Float32Array; dw: Float32Array } {
  const geo = [c.N, c.H, c.W, c.Cin, g.OH, g.OW, c.Cout, c.KH, c.KW, c.sh, c.sw, c.dh, c.dw, g.pt, g.pl] as const;
  const Kf = c.KH * c.KW * c.Cin;
  const Kt = c.KH * c.KW * c.Cout;
  const [pf, pt] = [Math.ceil(c.Cout / 8), Math.ceil(c.Cin / 8)];
  const blocks = [alloc(pf * Kf * 32), alloc(pt * Kt * 32), alloc(dy.size * 4), alloc(x.size * 4), alloc(w.size * 4)];
  const [bp, bt, yo, dxo, dwo] = blocks;
  const s = alloc(
    Math.max(
      K.conv2d_forward_scratch(c.Cin, c.KH, c.KW, c.sw),
      K.conv2d_backprop_input_scratch(c.Cout, c.KH, c.KW),
      K.conv2d_backprop_filter_scratch(g.OW, c.Cin, c.Cout),
    ),
  );
  try {
    K.gemm_pack_b(w.ptr, Kf, c.Cout, 0, bp, 0, pf, 0);
    K.conv2d_forward(x.ptr, bp, b?.ptr ?? 0, yo, ...geo, 0, c.N * g.OH, s);
    K.conv2d_pack_filter_t(w.ptr, c.KH, c.KW, c.Cin, c.Cout, bt, 0, pt, 0);
    K.conv2d_backprop_input(dy.ptr, bt, dxo, ...geo, 0, c.N * c.H, s);
    K.conv2d_backprop_filter(x.ptr, dy.ptr, dwo, ...geo, 0, Kf, s);
    const h = heapF32();
    return { y: h.slice(yo >>> 2, (yo >>> 2) + dy.size), dx: h.slice(dxo >>> 2, (dxo >>> 2) + x.size), dw: h.slice(dwo >>> 2, (dwo >>> 2) + w.size) };
  } finally {
    blocks.forEach(free);
    free(s);
  }
}

describe("'same' padding follows TensorFlow's formula", () => {
  // x holds 1 + its pixel index; the filter is 1 at its last tap only, so
  // y[oh, ow] = x[oh*s - pt + (k-1), ow*s - pl + (k-1)], or 0 in the padding.
  const probe = (H: number, k: number, s: number): number[][] =>
    scope(() => {
      const x = tensor(Array.from({ length: H * H }, (_, i) => 1 + i), [1, H, H, 1]);
      const wv = new Float32Array(k * k);
      wv[k * k - 1] = 1;
      const y = conv2d(x, tensor(wv, [k, k, 1, 1]), { stride: s, padding: 'same' });
      const OH = y.shape[1];
      const a = y.toArray();
      return Array.from({ length: OH }, (_, i) => Array.from(a.subarray(i * OH, i * OH + OH)));
    });
  const at = (H: number, h: number, w: number): number => (h < H && w < H ? 1 + h * H + w : 0);

  it('stride 2, even size 8, k 3: out 4, total pad 1 -> top/left 0, bottom/right 1', () => {
    // out = ceil(8/2) = 4; total = max(3*2 + 3 - 8, 0) = 1; pt = 0
    const y = probe(8, 3, 2);
    expect(y.length).toBe(4);
    expect(y[0][0]).toBe(at(8, 2, 2));
    expect(y[1][2]).toBe(at(8, 4, 6));
    expect(y[3][3]).toBe(0); // reads (8, 8): the bottom/right padding
    expect(y[3][2]).toBe(0);
    expect(y[2][2]).toBe(at(8, 6, 6));
  });
  it('stride 2, odd size 7, k 3: out 4, total pad 2 -> 1 on each side', () => {
    // out = 4; total = max(6 + 3 - 7, 0) = 2; pt = 1
    const y = probe(7, 3, 2);
    expect(y.length).toBe(4);
    expect(y[0][0]).toBe(at(7, 1, 1));
    expect(y[3][3]).toBe(at(7, 7, 7)); // 0: padding
    expect(y[2][1]).toBe(at(7, 5, 3));
  });
  it('stride 2, odd size 7, k 4: total pad 3 -> top/left 1, bottom/right 2', () => {
    // out = 4; total = 6 + 4 - 7 = 3; pt = 1
    const y = probe(7, 4, 2);
    expect(y.length).toBe(4);
    expect(y[0][0]).toBe(at(7, 2, 2));
    expect(y[2][2]).toBe(at(7, 6, 6));
    expect(y[3][0]).toBe(0); // row 8
  });
  it('stride 2, even size 6, k 2: total pad 0', () => {
    // out = 3; total = max(4 + 2 - 6, 0) = 0
    const y = probe(6, 2, 2);
    expect(y.length).toBe(3);
    expect(y[0][0]).toBe(at(6, 1, 1));
    expect(y[2][2]).toBe(at(6, 5, 5));
  });
  it('stride 3, size 5, k 1: out 2 and no padding', () => {
    const y = probe(5, 1, 3);
    expect(y).toEqual([
      [at(5, 0, 0), at(5, 0, 3)],
      [at(5, 3, 0), at(5, 3, 3)],
    ]);
  });
});

describe('conv2d adjoint identities', () => {
  it('<conv(x, w), y> = <x, backpropInput(y, w)> = <w, backpropFilter(x, y)>', () => {
    fc.assert(
      fc.property(caseArb, (c) =>
        scope(() => {
          const g = refGeo(c);
          const { x, w, dy } = inputs(c, g);
          const [xa, wa, ya] = [x.toArray(), w.toArray(), dy.toArray()];
          const y = conv2d(x, w, opts(c)).toArray();
          const dx = conv2dBackpropInput(dy, w, x.shape, opts(c)).toArray();
          const dw = conv2dBackpropFilter(x, dy, w.shape, opts(c)).toArray();
          const lhs = dot(y, ya);
          const scale = 1e-5 * (absDot(y, ya) + absDot(xa, dx) + absDot(wa, dw)) + 1e-30;
          expect(Math.abs(lhs - dot(xa, dx))).toBeLessThanOrEqual(scale);
          expect(Math.abs(lhs - dot(wa, dw))).toBeLessThanOrEqual(scale);
        }),
      ),
      { numRuns: 60 },
    );
  });
});

describe('conv2d gradients by finite differences', () => {
  const geometries: Case[] = [
    { N: 2, H: 5, W: 4, Cin: 3, Cout: 5, KH: 3, KW: 2, sh: 1, sw: 2, dh: 1, dw: 1, padding: 'same', bias: true, seed: 11 },
    { N: 1, H: 6, W: 5, Cin: 2, Cout: 3, KH: 2, KW: 3, sh: 2, sw: 1, dh: 2, dw: 1, padding: [[1, 0], [2, 1]], bias: true, seed: 12 },
    { N: 1, H: 3, W: 3, Cin: 4, Cout: 9, KH: 1, KW: 1, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'valid', bias: true, seed: 13 },
  ];
  for (const c of geometries) {
    it(`checkGrad w.r.t. x, w and bias (${c.KH}x${c.KW}, stride ${c.sh}x${c.sw}, padding ${JSON.stringify(c.padding)})`, () => {
      scope(() => {
        const g = refGeo(c);
        const { x, w, b, dy: R } = inputs(c, g);
        const f = (xt: Tensor, wt: Tensor, bt: Tensor): Tensor => sum(mul(conv2d(xt, wt, { ...opts(c), bias: bt }), R));
        checkGrad(f, [x, w, b!], { maxElements: 24 });
      });
    });
  }
  it('the vjp returns dx, dw and db of the right shapes, no db without a bias, and null where a cotangent is not needed', () => {
    scope(() => {
      const x = randn(key(1), [1, 4, 4, 2]);
      const w = randn(key(2), [3, 3, 2, 3]);
      const b = randn(key(3), [3]);
      const geo = { N: 1, H: 4, W: 4, Cin: 2, OH: 4, OW: 4, Cout: 3, KH: 3, KW: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, activation: null };
      const y = rules.conv2d.forward([x, w, b], geo);
      const withBias = rules.conv2d.vjp(y, [x, w, b], y, geo, [true, true, true]);
      expect(withBias.map((t) => t?.shape)).toEqual([[1, 4, 4, 2], [3, 3, 2, 3], [3]]);
      const db = withBias[2]!.toArray();
      const ya = y.toArray();
      for (let co = 0; co < 3; co++) {
        let s = 0;
        for (let i = co; i < ya.length; i += 3) s += ya[i];
        expect(db[co]).toBeCloseTo(s, 4);
      }
      expect(rules.conv2d.vjp(y, [x, w], y, geo, [true, true])).toHaveLength(2);
      expect(rules.conv2d.vjp(y, [x, w, b], y, geo, [false, true, false]).map((t) => t?.shape ?? null)).toEqual([null, [3, 3, 2, 3], null]);
      expect(rules.conv2d.vjp(y, [x, w], y, geo, [true, false]).map((t) => t?.shape ?? null)).toEqual([[1, 4, 4, 2], null]);
    });
  });
});

describe('conv2d with a fused activation', () => {
  const bytes = (t: Tensor): string => Buffer.from(t.toArray().buffer).toString('hex');
  for (const [act, f] of [['elu', elu], ['relu', relu]] as const) {
    it(`activation '${act}' gives ${act}(conv2d(...))'s bytes, forward and vjp, on every kernel path (direct, 1x1, Winograd)`, () => {
      fc.assert(
        fc.property(fc.constantFrom(1, 3), fc.constantFrom<'same' | 'valid'>('same', 'valid'), fc.integer({ min: 1, max: 12 }), fc.nat(1000), (k, padding, Cin, seed) =>
          scope(() => {
            const [k1, k2, k3, k4] = split(key(seed), 4);
            const x = randn(k1, [2, 9, 8, Cin]);
            const w = randn(k2, [k, k, Cin, 8]);
            const b = randn(k3, [8]);
            const o = { padding, bias: b };
            const fused = conv2d(x, w, { ...o, activation: act });
            const plain = f(conv2d(x, w, o));
            expect(bytes(fused)).toBe(bytes(plain));
            const g = randn(k4, fused.shape);
            const [, pullFused] = vjp((xt: Tensor, wt: Tensor, bt: Tensor) => conv2d(xt, wt, { padding, bias: bt, activation: act }), x, w, b);
            const [, pullPlain] = vjp((xt: Tensor, wt: Tensor, bt: Tensor) => f(conv2d(xt, wt, { padding, bias: bt })), x, w, b);
            const gf = pullFused(g);
            const gp = pullPlain(g);
            gf.forEach((t, i) => expect(bytes(t), `gradient ${i}`).toBe(bytes(gp[i])));
          }),
        ),
        { numRuns: 12 },
      );
    });
  }
  it('checkGrad through conv2d with activation elu w.r.t. x, w and bias', () =>
    scope(() => {
      const [k1, k2, k3, k4] = split(key(21), 4);
      const x = randn(k1, [1, 5, 4, 3]);
      const w = randn(k2, [3, 3, 3, 4]);
      const b = randn(k3, [4]);
      const R = randn(k4, [1, 5, 4, 4]);
      checkGrad((xt: Tensor, wt: Tensor, bt: Tensor) => sum(mul(conv2d(xt, wt, { padding: 'same', bias: bt, activation: 'elu' }), R)), [x, w, b], { maxElements: 24 });
    }));
  it('rejects an unknown activation', () =>
    scope(() => {
      const x = randn(key(1), [1, 5, 5, 2]);
      const w = randn(key(2), [3, 3, 2, 2]);
      expect(() => conv2d(x, w, { activation: 'tanh' as never })).toThrow(ValueError);
      expect(() => conv2d(x, w, { activation: 'tanh' as never })).toThrow(/conv2d: activation must be one of 'elu', 'relu' or undefined, got "tanh"/);
    }));
});

// ---- determinism: the kernels under random range splits --------------------------------

type Geo15 = [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];

/** Random cut points splitting [0, total) into 1..6 ranges. */
const splitArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 0, maxLength: 5 });

function ranges(total: number, cuts: number[]): [number, number][] {
  const pts = [...new Set(cuts.map((u) => Math.floor(u * total)).filter((p) => p > 0 && p < total))].sort((a, b) => a - b);
  const bounds = [0, ...pts, total];
  return bounds.slice(1).map((e, i) => [bounds[i], e]);
}

/** Run `call(out, begin, end, scratch)` over [0, total) in one range and in the given ranges; return both outputs' bytes. */
function splitRuns(bytes: number, scratchBytes: number, total: number, cuts: number[], call: (out: number, b: number, e: number, s: number) => void): [Uint8Array, Uint8Array] {
  const outs = [alloc(bytes), alloc(bytes)];
  const s = alloc(scratchBytes);
  const heap = heapF32();
  try {
    for (const o of outs) heap.fill(NaN, o >>> 2, (o + bytes) >>> 2);
    heap.fill(NaN, s >>> 2, (s + scratchBytes) >>> 2);
    call(outs[0], 0, total, s);
    for (const [b, e] of ranges(total, cuts)) {
      heap.fill(-7, s >>> 2, (s + scratchBytes) >>> 2); // scratch contents must not matter
      call(outs[1], b, e, s);
    }
    const mem = new Uint8Array(heapF32().buffer);
    return [mem.slice(outs[0], outs[0] + bytes), mem.slice(outs[1], outs[1] + bytes)];
  } finally {
    outs.forEach(free);
    free(s);
  }
}

describe('conv2d kernels are deterministic under any range split', () => {
  it('filter packing, forward, input gradient and filter gradient give the same bytes for one range and random ranges', () => {
    fc.assert(
      fc.property(caseArb, splitArb, (c, cuts) =>
        scope(() => {
          const g = refGeo(c);
          const { x, w, b, dy } = inputs(c, g);
          const geo = [c.N, c.H, c.W, c.Cin, g.OH, g.OW, c.Cout, c.KH, c.KW, c.sh, c.sw, c.dh, c.dw, g.pt, g.pl];
          const Kf = c.KH * c.KW * c.Cin;
          const pf = Math.ceil(c.Cout / 8);
          const bp = alloc(pf * Kf * 32);
          const Kt = c.KH * c.KW * c.Cout;
          const pt = Math.ceil(c.Cin / 8);
          const bt = alloc(pt * Kt * 32);
          try {
            K.gemm_pack_b(w.ptr, Kf, c.Cout, 0, bp, 0, pf, 0);
            K.conv2d_pack_filter_t(w.ptr, c.KH, c.KW, c.Cin, c.Cout, bt, 0, pt, 0);
            const [p1, p2] = splitRuns(pt * Kt * 32, 0, pt, cuts, (o, bg, e, s) => K.conv2d_pack_filter_t(w.ptr, c.KH, c.KW, c.Cin, c.Cout, o, bg, e, s));
            expect(p2).toEqual(p1);
            const [g1, g2] = splitRuns(pf * Kf * 32, 0, pf, cuts, (o, bg, e, s) => K.gemm_pack_b(w.ptr, Kf, c.Cout, 0, o, bg, e, s));
            expect(g2).toEqual(g1);
            const [y1, y2] = splitRuns(dy.size * 4, K.conv2d_forward_scratch(c.Cin, c.KH, c.KW, c.sw), c.N * g.OH, cuts, (o, bg, e, s) =>
              K.conv2d_forward(x.ptr, bp, b?.ptr ?? 0, o, ...(geo as Geo15), bg, e, s),
            );
            expect(y2).toEqual(y1);
            // The op runs this kernel unless the shape takes Winograd (whose bytes winograd.test.ts pins).
            const yop = conv2d(x, w, { ...opts(c), ...(b ? { bias: b } : {}) }).toArray();
            if (!paths(c, g).forward) expect(new Uint8Array(yop.buffer)).toEqual(y1);
            const [dx1, dx2] = splitRuns(x.size * 4, K.conv2d_backprop_input_scratch(c.Cout, c.KH, c.KW), c.N * c.H, cuts, (o, bg, e, s) =>
              K.conv2d_backprop_input(dy.ptr, bt, o, ...(geo as Geo15), bg, e, s),
            );
            expect(dx2).toEqual(dx1);
            const [dw1, dw2] = splitRuns(w.size * 4, K.conv2d_backprop_filter_scratch(g.OW, c.Cin, c.Cout), Kf, cuts, (o, bg, e, s) =>
              K.conv2d_backprop_filter(x.ptr, dy.ptr, o, ...(geo as Geo15), bg, e, s),
            );
            expect(dw2).toEqual(dw1);
          } finally {
            free(bp);
            free(bt);
          }
        }),
      ),
      { numRuns: 60 },
    );
  });
});

describe('conv2d bias gradient', () => {
  it('is dy summed over batch and pixels per channel: channelSums (reduce_sum), whose splits reduce.test.ts pins', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 5, 32, 37, 70), fc.integer({ min: 1, max: 40 }), fc.nat(1 << 30), (C, P, seed) =>
        scope(() => {
          const [kx, kw, kb, kd] = split(key(seed), 4);
          const x = randn(kx, [1, P, 1, 3]);
          const w = randn(kw, [1, 1, 3, C]);
          const b = randn(kb, [C]);
          const dy = randn(kd, [1, P, 1, C]);
          const [, back] = vjp((b: Tensor) => conv2d(x, w, { bias: b }), b);
          const [db] = back(dy);
          const a = dy.toArray();
          const want = new Float64Array(C);
          const mag = new Float64Array(C);
          for (let i = 0; i < a.length; i++) {
            want[i % C] += a[i];
            mag[i % C] += Math.abs(a[i]);
          }
          expectClose('db', db.toArray(), want, mag);
          expect(new Uint8Array(db.toArray().buffer)).toEqual(new Uint8Array(channelSums(dy).toArray().buffer));
        }),
      ),
      { numRuns: 40 },
    );
  });
});

// ---- bad inputs -------------------------------------------------------------------------

describe('conv2d rejects bad inputs with typed errors', () => {
  it('shapes', () =>
    scope(() => {
      const x = randn(key(1), [2, 8, 8, 4]);
      const w = randn(key(2), [3, 3, 4, 6]);
      expect(() => conv2d(randn(key(1), [8, 8, 4]), w)).toThrow(ShapeError);
      expect(() => conv2d(randn(key(1), [8, 8, 4]), w)).toThrow(/conv2d: x must be rank 4 \[N, H, W, Cin\], got shape \[8, 8, 4\]/);
      expect(() => conv2d(x, randn(key(2), [3, 3, 4]))).toThrow(/conv2d: w must be rank 4/);
      expect(() => conv2d(x, randn(key(2), [3, 3, 5, 6]))).toThrow(
        /conv2d: w has 5 input channels, x has 4 \(x: \[2, 8, 8, 4\], w: \[3, 3, 5, 6\]\)/,
      );
      expect(() => conv2d(x, w, { bias: randn(key(3), [5]) })).toThrow(ShapeError);
      expect(() => conv2d(x, w, { bias: randn(key(3), [5]) })).toThrow(/conv2d: bias must have shape \[6\] \(Cout\), got \[5\]/);
      expect(() => conv2d(x, w, { bias: randn(key(3), [1, 6]) })).toThrow(/bias must have shape \[6\]/);
      expect(() => conv2d(x, randn(key(2), [9, 3, 4, 6]))).toThrow(ShapeError);
      expect(() => conv2d(x, randn(key(2), [9, 3, 4, 6]), { padding: 'valid' })).toThrow(
        /conv2d: the filter spans 9 rows \(size 9, dilation 1\) but the input has 8/,
      );
      expect(() => conv2d(x, w, { dilation: 4 })).toThrow(/the filter spans 9 rows \(size 3, dilation 4\)/);
      expect(() => conv2d(x, randn(key(2), [9, 3, 4, 6]), { padding: [[0, 0], [1, 1]] })).toThrow(/the padded input has 8/);
      expect(conv2d(x, randn(key(2), [9, 3, 4, 6]), { padding: 'same' }).shape).toEqual([2, 8, 8, 6]);
      expect(() => conv2d(randn(key(1), [0, 8, 8, 4]), w)).toThrow(/zero-sized/);
    }));
  it('options', () =>
    scope(() => {
      const x = randn(key(1), [1, 5, 5, 2]);
      const w = randn(key(2), [3, 3, 2, 2]);
      expect(() => conv2d(x, w, { stride: 0 })).toThrow(ValueError);
      expect(() => conv2d(x, w, { stride: 0 })).toThrow(/conv2d: stride must be a positive integer or \[h, w\] of positive integers, got 0/);
      expect(() => conv2d(x, w, { stride: -1 })).toThrow(/stride/);
      expect(() => conv2d(x, w, { stride: 1.5 })).toThrow(/stride must be a positive integer/);
      expect(() => conv2d(x, w, { stride: [1, 2, 3] as never })).toThrow(/stride/);
      expect(() => conv2d(x, w, { dilation: 0 })).toThrow(/conv2d: dilation must be a positive integer/);
      expect(() => conv2d(x, w, { dilation: [1, 0] })).toThrow(ValueError);
      expect(() => conv2d(x, w, { padding: 'full' as never })).toThrow(/conv2d: padding must be 'same', 'valid'/);
      expect(() => conv2d(x, w, { padding: -1 })).toThrow(ValueError);
      expect(() => conv2d(x, w, { padding: [[1, 1]] as never })).toThrow(/padding/);
      expect(() => conv2d(x, w, { padding: [[1, 1], [0, -2]] })).toThrow(ValueError);
      expect(() => conv2d(x, w, null as never)).toThrow(/options must be an object/);
      expect(() => conv2d([1, 2] as never, w)).toThrow(/conv2d: x must be a Tensor/);
      expect(() => conv2d(x, w, { bias: 3 as never })).toThrow(/conv2d: bias must be a Tensor/);
    }));
  it('the plain gradient functions check dy and the shapes they are given', () =>
    scope(() => {
      const x = randn(key(1), [1, 6, 6, 2]);
      const w = randn(key(2), [3, 3, 2, 4]);
      const dy = randn(key(3), [1, 4, 4, 4]);
      expect(conv2dBackpropInput(dy, w, [1, 6, 6, 2]).shape).toEqual([1, 6, 6, 2]);
      expect(() => conv2dBackpropInput(dy, w, [1, 6, 6, 2], { padding: 'same' })).toThrow(
        /conv2dBackpropInput: dy must have the convolution's output shape \[1, 6, 6, 4\], got \[1, 4, 4, 4\]/,
      );
      expect(() => conv2dBackpropInput(dy, w, [1, 6, 6, 3])).toThrow(/conv2dBackpropInput: w has 2 input channels, x has 3/);
      expect(() => conv2dBackpropInput(dy, w, [1, 6, 6] as never)).toThrow(/x must be rank 4/);
      expect(() => conv2dBackpropInput(dy, w, 'abc' as never)).toThrow(/xShape must be an array/);
      expect(conv2dBackpropFilter(x, dy, [3, 3, 2, 4]).shape).toEqual([3, 3, 2, 4]);
      expect(() => conv2dBackpropFilter(x, dy, [3, 3, 2, 5])).toThrow(/conv2dBackpropFilter: dy must have the convolution's output shape \[1, 4, 4, 5\]/);
      expect(() => conv2dBackpropFilter(x, dy, [3, 3, 2, 4], { stride: 0 })).toThrow(/conv2dBackpropFilter: stride/);
    }));
});
