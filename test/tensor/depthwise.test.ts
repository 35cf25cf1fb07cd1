import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { depthwiseConv2d, rules, type DepthwiseOptions } from '../../src/tensor/ops/depthwise.js';
import type { Conv2dPadding as Padding2d } from '../../src/tensor/ops/window.js';
import { tensor, randn } from '../../src/tensor/create.js';
import { Tensor, scope, empty } from '../../src/tensor/tensor.js';
import { observe, type Rule } from '../../src/tensor/primitive.js';
import { heapF32 } from '../../src/tensor/heap.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad } from '../../src/autodiff/index.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { mul } from '../../src/tensor/ops/binary.js';

// ---- plain float64 reference -------------------------------------------------------

interface Geo {
  pt: number;
  pl: number;
  OH: number;
  OW: number;
}

function refAxis(size: number, k: number, s: number, d: number, pad: Padding2d, axis: 0 | 1): [number, number] {
  const span = (k - 1) * d + 1;
  if (pad === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + span - size, 0);
    return [Math.floor(total / 2), out];
  }
  const [lo, hi] = pad === 'valid' ? [0, 0] : typeof pad === 'number' ? [pad, pad] : pad[axis];
  return [lo, Math.floor((size + lo + hi - span) / s) + 1];
}

interface Case {
  N: number;
  H: number;
  W: number;
  C: number;
  M: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padding: Padding2d;
  bias: boolean;
  seed: number;
}

function refGeo(c: Case): Geo {
  const [pt, OH] = refAxis(c.H, c.KH, c.sh, c.dh, c.padding, 0);
  const [pl, OW] = refAxis(c.W, c.KW, c.sw, c.dw, c.padding, 1);
  return { pt, pl, OH, OW };
}

/** Visit every (output element, tap) pair that reads an input pixel. */
function eachTerm(
  c: Case,
  g: Geo,
  f: (o: number, xi: number, wi: number, ch: number) => void,
): void {
  const CM = c.C * c.M;
  for (let n = 0; n < c.N; n++)
    for (let oh = 0; oh < g.OH; oh++)
      for (let ow = 0; ow < g.OW; ow++)
        for (let ch = 0; ch < c.C; ch++)
          for (let m = 0; m < c.M; m++)
            for (let kh = 0; kh < c.KH; kh++)
              for (let kw = 0; kw < c.KW; kw++) {
                const ih = oh * c.sh - g.pt + kh * c.dh;
                const iw = ow * c.sw - g.pl + kw * c.dw;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                const o = ((n * g.OH + oh) * g.OW + ow) * CM + ch * c.M + m;
                const xi = ((n * c.H + ih) * c.W + iw) * c.C + ch;
                const wi = ((kh * c.KW + kw) * c.C + ch) * c.M + m;
                f(o, xi, wi, ch * c.M + m);
              }
}

interface Ref {
  out: Float64Array;
  outMag: Float64Array;
  dx: Float64Array;
  dxMag: Float64Array;
  dw: Float64Array;
  dwMag: Float64Array;
  db: Float64Array;
  dbMag: Float64Array;
}

function reference(c: Case, g: Geo, x: Float32Array, w: Float32Array, b: Float32Array | null, gy: Float32Array): Ref {
  const CM = c.C * c.M;
  const r: Ref = {
    out: new Float64Array(c.N * g.OH * g.OW * CM),
    outMag: new Float64Array(c.N * g.OH * g.OW * CM),
    dx: new Float64Array(x.length),
    dxMag: new Float64Array(x.length),
    dw: new Float64Array(w.length),
    dwMag: new Float64Array(w.length),
    db: new Float64Array(CM),
    dbMag: new Float64Array(CM),
  };
  eachTerm(c, g, (o, xi, wi) => {
    r.out[o] += x[xi] * w[wi];
    r.outMag[o] += Math.abs(x[xi] * w[wi]);
    r.dx[xi] += gy[o] * w[wi];
    r.dxMag[xi] += Math.abs(gy[o] * w[wi]);
    r.dw[wi] += gy[o] * x[xi];
    r.dwMag[wi] += Math.abs(gy[o] * x[xi]);
  });
  for (let o = 0; o < r.out.length; o++) {
    const ch = o % CM;
    if (b !== null) {
      r.out[o] += b[ch];
      r.outMag[o] += Math.abs(b[ch]);
    }
    r.db[ch] += gy[o];
    r.dbMag[ch] += Math.abs(gy[o]);
  }
  return r;
}

/** |got - want| <= 4 * eps32 * terms * magnitude (the float32 summation bound), per element. */
function expectClose(what: string, got: Float32Array, want: Float64Array, mag: Float64Array, terms: number): void {
  expect(got.length).toBe(want.length);
  const tol = 4 * 2 ** -24 * Math.max(terms, 2);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol * mag[i] + 1e-30)) {
      throw new Error(`${what}[${i}]: got ${got[i]}, reference ${want[i]} (magnitude ${mag[i]})`);
    }
  }
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const absDot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] * b[i]);
  return s;
};

/** Apply a primitive and hand back what the tape would see. */
function captured(f: () => Tensor): { rule: Rule<any>; inputs: readonly Tensor[]; params: any; out: Tensor } {
  let got: { rule: Rule<any>; inputs: readonly Tensor[]; params: any; out: Tensor } | null = null;
  const prev = observe((rule, inputs, params, out) => {
    got = { rule, inputs, params, out };
  });
  try {
    f();
  } finally {
    observe(prev);
  }
  return got!;
}

// ---- generators ------------------------------------------------------------------------

const paddingArb: fc.Arbitrary<Padding2d> = fc.oneof(
  fc.constant('same' as const),
  fc.constant('valid' as const),
  fc.integer({ min: 0, max: 2 }),
  fc.tuple(
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
  ),
);

const sizeArb = fc.constantFrom(1, 2, 3, 5, 7, 9, 12, 33);

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    H: sizeArb,
    W: sizeArb,
    C: fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 9, 13),
    M: fc.integer({ min: 1, max: 3 }),
    KH: fc.integer({ min: 1, max: 4 }),
    KW: fc.integer({ min: 1, max: 5 }),
    sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 3 }),
    dh: fc.integer({ min: 1, max: 2 }),
    dw: fc.integer({ min: 1, max: 3 }),
    padding: paddingArb,
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .filter((c) => {
    const g = refGeo(c);
    return g.OH >= 1 && g.OW >= 1 && c.N * c.H * c.W * c.C * c.M * c.KH * c.KW <= 150_000;
  });

function opts(c: Case, b?: Tensor): DepthwiseOptions {
  return { stride: [c.sh, c.sw], dilation: [c.dh, c.dw], padding: c.padding, bias: b };
}

function checkCase(c: Case): void {
  scope(() => {
    const g = refGeo(c);
    const [k1, k2, k3, k4] = [0, 1, 2, 3].map((i) => key(c.seed * 4 + i));
    const x = randn(k1, [c.N, c.H, c.W, c.C]);
    const w = randn(k2, [c.KH, c.KW, c.C, c.M]);
    const b = c.bias ? randn(k3, [c.C * c.M]) : undefined;
    const { rule, inputs, params, out } = captured(() => depthwiseConv2d(x, w, opts(c, b)));
    expect(rule.name).toBe('depthwiseConv2d');
    expect(out.shape).toEqual([c.N, g.OH, g.OW, c.C * c.M]);
    const gy = randn(k4, out.shape);
    const ref = reference(c, g, x.toArray(), w.toArray(), b ? b.toArray() : null, gy.toArray());
    const taps = c.KH * c.KW;
    expectClose('out', out.toArray(), ref.out, ref.outMag, taps + 1);
    const grads = rule.vjp(gy, inputs, out, params, inputs.map(() => true));
    expect(grads.length).toBe(b ? 3 : 2);
    const [dx, dw, db] = grads as Tensor[];
    expect(dx.shape).toEqual(x.shape);
    expect(dw.shape).toEqual(w.shape);
    expectClose('dx', dx.toArray(), ref.dx, ref.dxMag, taps * c.M);
    expectClose('dw', dw.toArray(), ref.dw, ref.dwMag, c.N * g.OH * g.OW);
    if (b) {
      expect(db.shape).toEqual(b.shape);
      expectClose('db', db.toArray(), ref.db, ref.dbMag, c.N * g.OH * g.OW);
    }
  });
}

// ---- tests -------------------------------------------------------------------------------

describe('depthwiseConv2d against a float64 reference', () => {
  it('forward, input, filter and bias gradients agree on random shapes, strides, paddings, dilations and multipliers', () => {
    fc.assert(fc.property(caseArb, checkCase), { numRuns: 120 });
  });

  it('W3-like 3x3 stride 1 same (interior SIMD blocks, channels not a multiple of 4)', () => {
    const base = { N: 1, KH: 3, KW: 3, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'same' as const, bias: true };
    checkCase({ ...base, H: 33, W: 33, C: 13, M: 1, seed: 1 });
    checkCase({ ...base, H: 7, W: 33, C: 6, M: 2, seed: 2 });
    checkCase({ ...base, H: 1, W: 1, C: 3, M: 3, seed: 3 });
    checkCase({ ...base, N: 2, H: 16, W: 16, C: 32, M: 1, sh: 2, sw: 2, seed: 4 });
  });

  it('3x3 stride 1 same at every width 1..12 (border pixels, 4-pixel blocks, the overlapping last block) and channel counts around 4 and 16', () => {
    const base = { N: 1, H: 3, KH: 3, KW: 3, sh: 1, sw: 1, dh: 1, dw: 1, padding: 'same' as const, M: 1 };
    for (let W = 1; W <= 12; W++) {
      for (const C of [1, 4, 15, 16, 17]) checkCase({ ...base, W, C, bias: C % 2 === 1, seed: 100 * W + C });
    }
    // Two images: the last row of the first one reads nothing of the second.
    checkCase({ ...base, N: 2, H: 5, W: 9, C: 20, bias: false, seed: 7 });
  });

  it('explicit padding larger than the filter (rows with no valid tap give the bias)', () => {
    const c: Case = {
      N: 1, H: 2, W: 3, C: 5, M: 2, KH: 2, KW: 2, sh: 1, sw: 2, dh: 1, dw: 1,
      padding: [[3, 3], [2, 4]], bias: true, seed: 9,
    };
    checkCase(c);
  });
});

describe('depthwiseConv2d adjoint identities', () => {
  it('<conv(x, w), g> = <x, dx(g)> = <w, dw(g)>', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        scope(() => {
          const [k1, k2, k3] = [0, 1, 2].map((i) => key(c.seed * 3 + i));
          const x = randn(k1, [c.N, c.H, c.W, c.C]);
          const w = randn(k2, [c.KH, c.KW, c.C, c.M]);
          const { rule, inputs, params, out } = captured(() => depthwiseConv2d(x, w, opts(c)));
          const g = randn(k3, out.shape);
          const [dx, dw] = rule.vjp(g, inputs, out, params, inputs.map(() => true)) as Tensor[];
          const [xa, wa, ya, ga] = [x.toArray(), w.toArray(), out.toArray(), g.toArray()];
          const lhs = dot(ya, ga);
          const scale = absDot(ya, ga) + 1;
          expect(Math.abs(lhs - dot(xa, dx.toArray()))).toBeLessThan(1e-4 * scale);
          expect(Math.abs(lhs - dot(wa, dw.toArray()))).toBeLessThan(1e-4 * scale);
        });
      }),
      { numRuns: 40 },
    );
  });
});

describe('depthwiseConv2d gradients by finite differences', () => {
  it('checkGrad on x, w and bias (stride 2, same padding, multiplier 2)', () => {
    scope(() => {
      const x = randn(key(11), [1, 5, 4, 3]);
      const w = randn(key(12), [3, 2, 3, 2]);
      const b = randn(key(13), [6]);
      const R = randn(key(14), [1, 3, 2, 6]);
      const loss = (xx: Tensor, ww: Tensor, bb: Tensor): Tensor =>
        sum(mul(depthwiseConv2d(xx, ww, { stride: 2, padding: 'same', bias: bb }), R));
      checkGrad(loss, [x, w, b], { maxElements: 64 });
    });
  });
  it('checkGrad on x and w (dilation 2, explicit padding)', () => {
    scope(() => {
      const x = randn(key(21), [2, 6, 5, 2]);
      const w = randn(key(22), [2, 3, 2, 1]);
      const R = randn(key(23), [2, 5, 3, 2]);
      const loss = (xx: Tensor, ww: Tensor): Tensor =>
        sum(mul(depthwiseConv2d(xx, ww, { dilation: 2, padding: [[1, 0], [2, 0]] }), R));
      checkGrad(loss, [x, w], { maxElements: 64 });
    });
  });
});

describe('depthwise kernels are deterministic under any range split', () => {
  function partition(total: number, rnd: () => number): [number, number][] {
    const cuts = new Set<number>([0, total]);
    const k = Math.floor(rnd() * 5);
    for (let i = 0; i < k; i++) cuts.add(Math.floor(rnd() * (total + 1)));
    const s = [...cuts].sort((a, b) => a - b);
    return s.slice(1).map((e, i) => [s[i], e]);
  }
  const GUARD = 16;
  const SENTINEL = 0x7fc0beef;
  /** An output buffer of `size` floats between two guard bands, every word set to a NaN sentinel. */
  function guarded(size: number): { ptr: number; words: () => Uint32Array } {
    const block = empty([size + 2 * GUARD]);
    const at = block.ptr >>> 2;
    new Uint32Array(heapF32().buffer).fill(SENTINEL, at, at + block.size);
    return { ptr: block.ptr + 4 * GUARD, words: () => new Uint32Array(block.toArray().buffer) };
  }
  /** The output words; the guards must be untouched (no write outside the output). */
  function written(buf: { words: () => Uint32Array }): Uint32Array {
    const w = buf.words();
    const inner = w.slice(GUARD, w.length - GUARD);
    for (const i of [...Array(GUARD).keys()]) {
      expect(w[i]).toBe(SENTINEL);
      expect(w[w.length - 1 - i]).toBe(SENTINEL);
    }
    return inner;
  }

  it('forward, backward-input, backward-filter, bias-grad, expand and fold', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 1, max: 1 << 30 }), (c, seed) => {
        scope(() => {
          let s = seed;
          const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
          const g = refGeo(c);
          const CM = c.C * c.M;
          const xr = randn(key(c.seed), [c.N, c.H, c.W, CM]);
          const x = randn(key(c.seed + 7), [c.N, c.H, c.W, c.C]);
          const w = randn(key(c.seed + 1), [c.KH, c.KW, CM]);
          const b = randn(key(c.seed + 2), [CM]);
          const gy = randn(key(c.seed + 3), [c.N, g.OH, g.OW, CM]);
          const geo = [c.N, c.H, c.W, CM, c.KH, c.KW, c.sh, c.sw, c.dh, c.dw, g.pt, g.pl, g.OH, g.OW] as const;
          const runs: [(b0: number, e0: number, out: number) => void, number[], number][] = [
            [(b0, e0, o) => K.depthwise_forward(xr.ptr, w.ptr, b.ptr, o, ...geo, b0, e0, 0), gy.shape as number[], c.N * g.OH],
            [(b0, e0, o) => K.depthwise_backward_input(gy.ptr, w.ptr, o, ...geo, b0, e0, 0), xr.shape as number[], c.N * c.H],
            [(b0, e0, o) => K.depthwise_backward_filter(xr.ptr, gy.ptr, o, ...geo, b0, e0, 0), w.shape as number[], Math.ceil(CM / 4)],
            [(b0, e0, o) => K.depthwise_expand(x.ptr, c.C, c.M, o, b0, e0, 0), xr.shape as number[], c.N * c.H * c.W],
            [(b0, e0, o) => K.depthwise_fold(xr.ptr, c.C, c.M, o, b0, e0, 0), x.shape as number[], c.N * c.H * c.W],
          ];
          for (const [run, shape, total] of runs) {
            const size = shape.reduce((a, d) => a * d, 1);
            const one = guarded(size);
            run(0, total, one.ptr);
            const split = guarded(size);
            for (const [b0, e0] of partition(total, rnd)) run(b0, e0, split.ptr);
            const ref = written(one);
            expect(ref.includes(SENTINEL)).toBe(false); // every element written
            expect(written(split)).toEqual(ref);
          }
        });
      }),
      { numRuns: 40 },
    );
  });
});

describe('depthwiseConv2d argument checks', () => {
  const x = randn(key(1), [2, 5, 5, 3]);
  const w = randn(key(2), [3, 3, 3, 2]);
  it('rejects wrong ranks and channel mismatches', () => {
    expect(() => depthwiseConv2d(randn(key(1), [5, 5, 3]), w)).toThrow(ShapeError);
    expect(() => depthwiseConv2d(randn(key(1), [5, 5, 3]), w)).toThrow(/depthwiseConv2d: x must be rank 4 \[N, H, W, C\], got shape \[5, 5, 3\]/);
    expect(() => depthwiseConv2d(x, randn(key(2), [3, 3, 3]))).toThrow(/w must be rank 4 \[KH, KW, C, M\]/);
    expect(() => depthwiseConv2d(x, randn(key(2), [3, 3, 4, 1]))).toThrow(
      /depthwiseConv2d: w has 4 input channels, x has 3 \(x: \[2, 5, 5, 3\], w: \[3, 3, 4, 1\]\)/,
    );
    expect(() => depthwiseConv2d(x, w, { bias: randn(key(3), [3]) })).toThrow(/bias must have shape \[6\] \(C\*M\), got \[3\]/);
  });
  it('rejects zero sizes, bad strides, dilations and paddings', () => {
    expect(() => depthwiseConv2d(tensor([], [0, 5, 5, 3]), w)).toThrow(/x must have no zero-sized dimension/);
    expect(() => depthwiseConv2d(x, tensor([], [3, 3, 3, 0]))).toThrow(/w must have no zero-sized dimension/);
    expect(() => depthwiseConv2d(x, w, { stride: 0 })).toThrow(ValueError);
    expect(() => depthwiseConv2d(x, w, { stride: [1, 1.5] as [number, number] })).toThrow(/stride must be a positive integer or \[h, w\]/);
    expect(() => depthwiseConv2d(x, w, { dilation: -1 })).toThrow(/dilation must be a positive integer/);
    expect(() => depthwiseConv2d(x, w, { padding: 'full' as never })).toThrow(/padding must be 'same', 'valid', a non-negative integer or \[\[top, bottom\], \[left, right\]\], got "full"/);
    expect(() => depthwiseConv2d(x, w, { padding: -1 })).toThrow(/padding must be 'same', 'valid', a non-negative integer .*, got -1/);
    expect(() => depthwiseConv2d(x, w, { padding: [[1, 1]] as never })).toThrow(ValueError);
  });
  it('rejects a filter larger than the (padded) input', () => {
    expect(() => depthwiseConv2d(x, w, { dilation: 3 })).toThrow(/the filter spans 7 rows \(size 3, dilation 3\) but the input has 5/);
    expect(() => depthwiseConv2d(x, randn(key(4), [1, 8, 3, 1]), { padding: 1 })).toThrow(/spans 8 columns .* padded input has 7/);
    expect(depthwiseConv2d(x, randn(key(4), [1, 8, 3, 1]), { padding: 'same' }).shape).toEqual([2, 5, 5, 3]);
  });
  it('rejects non-tensors and disposed tensors', () => {
    expect(() => depthwiseConv2d([1, 2] as never, w)).toThrow(/x must be a Tensor/);
    const d = randn(key(5), [1, 3, 3, 3]);
    d.dispose();
    expect(() => depthwiseConv2d(d, w)).toThrow(/x was disposed/);
  });
  it('exports its rule', () => {
    expect(Object.keys(rules)).toEqual(['depthwiseConv2d']);
  });
});
