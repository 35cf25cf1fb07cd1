import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { maxPool, avgPool, rules, type PoolOptions } from '../../src/tensor/ops/pool.js';
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

// ---- plain float64 reference -----------------------------------------------------------

interface Case {
  N: number;
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  padding: 'same' | 'valid';
  seed: number;
}

interface Geo {
  pt: number;
  pl: number;
  OH: number;
  OW: number;
}

function refGeo(c: Case): Geo {
  if (c.padding === 'valid') return { pt: 0, pl: 0, OH: Math.floor((c.H - c.KH) / c.sh) + 1, OW: Math.floor((c.W - c.KW) / c.sw) + 1 };
  const OH = Math.ceil(c.H / c.sh);
  const OW = Math.ceil(c.W / c.sw);
  return {
    pt: Math.floor(Math.max((OH - 1) * c.sh + c.KH - c.H, 0) / 2),
    pl: Math.floor(Math.max((OW - 1) * c.sw + c.KW - c.W, 0) / 2),
    OH,
    OW,
  };
}

/** Indices into x of the window of output (n, oh, ow, ch) that lie inside the input, in row-major window order. */
function windowOf(c: Case, g: Geo, n: number, oh: number, ow: number, ch: number): number[] {
  const idx: number[] = [];
  for (let kh = 0; kh < c.KH; kh++)
    for (let kw = 0; kw < c.KW; kw++) {
      const ih = oh * c.sh - g.pt + kh;
      const iw = ow * c.sw - g.pl + kw;
      if (ih >= 0 && ih < c.H && iw >= 0 && iw < c.W) idx.push(((n * c.H + ih) * c.W + iw) * c.C + ch);
    }
  return idx;
}

function eachOutput(c: Case, g: Geo, f: (o: number, win: number[]) => void): void {
  for (let n = 0; n < c.N; n++)
    for (let oh = 0; oh < g.OH; oh++)
      for (let ow = 0; ow < g.OW; ow++)
        for (let ch = 0; ch < c.C; ch++) f(((n * g.OH + oh) * g.OW + ow) * c.C + ch, windowOf(c, g, n, oh, ow, ch));
}

/** Max pooling: value and the FIRST maximal position of each window (row-major); its transpose routes g there. */
function refMax(c: Case, g: Geo, x: Float32Array, gy: Float32Array): { out: Float32Array; dx: Float64Array; dxMag: Float64Array } {
  const out = new Float32Array(c.N * g.OH * g.OW * c.C);
  const dx = new Float64Array(x.length);
  const dxMag = new Float64Array(x.length);
  eachOutput(c, g, (o, win) => {
    let best = win[0];
    for (const i of win) if (x[i] > x[best]) best = i;
    out[o] = x[best];
    dx[best] += gy[o];
    dxMag[best] += Math.abs(gy[o]);
  });
  return { out, dx, dxMag };
}

function refAvg(c: Case, g: Geo, x: Float32Array, gy: Float32Array) {
  const size = c.N * g.OH * g.OW * c.C;
  const out = new Float64Array(size);
  const outMag = new Float64Array(size);
  const dx = new Float64Array(x.length);
  const dxMag = new Float64Array(x.length);
  eachOutput(c, g, (o, win) => {
    for (const i of win) {
      out[o] += x[i] / win.length;
      outMag[o] += Math.abs(x[i]) / win.length;
      dx[i] += gy[o] / win.length;
      dxMag[i] += Math.abs(gy[o]) / win.length;
    }
  });
  return { out, outMag, dx, dxMag };
}

function expectClose(what: string, got: Float32Array, want: Float64Array, mag: Float64Array, terms: number): void {
  expect(got.length).toBe(want.length);
  const tol = 4 * 2 ** -24 * Math.max(terms, 2);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * mag[i] + 1e-30)) {
      throw new Error(`${what}[${i}]: got ${got[i]}, reference ${want[i]} (magnitude ${mag[i]})`);
    }
  }
}

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

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

// ---- generators ---------------------------------------------------------------------------

const sizeArb = fc.constantFrom(1, 2, 3, 4, 7, 9, 33);
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    H: sizeArb,
    W: sizeArb,
    C: fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 13),
    KH: fc.integer({ min: 1, max: 4 }),
    KW: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 4 }),
    sw: fc.integer({ min: 1, max: 4 }),
    padding: fc.constantFrom('same' as const, 'valid' as const),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .filter((c) => (c.padding === 'same' || (c.KH <= c.H && c.KW <= c.W)) && c.N * c.H * c.W * c.C <= 40_000);

const optsOf = (c: Case): PoolOptions => ({ size: [c.KH, c.KW], stride: [c.sh, c.sw], padding: c.padding });

/** Inputs with many ties: small integers. */
function tiedInput(c: Case): Tensor {
  let s = c.seed | 1;
  const data = new Float32Array(c.N * c.H * c.W * c.C);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = (s >>> 16) % 3;
  }
  return tensor(data, [c.N, c.H, c.W, c.C]);
}

// ---- tests -----------------------------------------------------------------------------------

describe('maxPool against a reference', () => {
  it('forward is exact and the gradient goes to the first maximal position (random and heavily tied inputs)', () => {
    fc.assert(
      fc.property(caseArb, fc.boolean(), (c, tied) => {
        scope(() => {
          const g = refGeo(c);
          const x = tied ? tiedInput(c) : randn(key(c.seed), [c.N, c.H, c.W, c.C]);
          const { rule, inputs, params, out } = captured(() => maxPool(x, optsOf(c)));
          expect(out.shape).toEqual([c.N, g.OH, g.OW, c.C]);
          const gy = randn(key(c.seed + 1), out.shape);
          const ref = refMax(c, g, x.toArray(), gy.toArray());
          expect(out.toArray()).toEqual(ref.out);
          const [dx] = rule.vjp(gy, inputs, out, params) as Tensor[];
          expectClose('dx', dx.toArray(), ref.dx, ref.dxMag, Math.ceil(c.KH / c.sh) * Math.ceil(c.KW / c.sw));
        });
      }),
      { numRuns: 150 },
    );
  });

  it('tie rule: the earliest position in row-major window order takes the whole gradient', () => {
    scope(() => {
      // One 2x2 window per case, one channel.
      const cases: [number[], number[]][] = [
        [[5, 5, 5, 5], [1, 0, 0, 0]],
        [[1, 3, 3, 2], [0, 1, 0, 0]],
        [[0, 2, 1, 2], [0, 1, 0, 0]],
        [[-1, -4, -1, -1], [1, 0, 0, 0]],
        [[1, 2, 3, 3], [0, 0, 1, 0]],
      ];
      for (const [xs, want] of cases) {
        const x = tensor(xs, [1, 2, 2, 1]);
        const { rule, inputs, params, out } = captured(() => maxPool(x, { size: 2 }));
        expect(out.item()).toBe(Math.max(...xs));
        const [dx] = rule.vjp(tensor([1], [1, 1, 1, 1]), inputs, out, params) as Tensor[];
        expect(Array.from(dx.toArray())).toEqual(want);
      }
      // Overlapping windows (stride 1): a position that is the first maximum of several windows gets their sum.
      const x = tensor([1, 9, 9, 9, 1, 1], [1, 1, 6, 1]);
      const { rule, inputs, params, out } = captured(() => maxPool(x, { size: [1, 3], stride: 1 }));
      expect(Array.from(out.toArray())).toEqual([9, 9, 9, 9]);
      const [dx] = rule.vjp(tensor([1, 10, 100, 1000], [1, 1, 4, 1]), inputs, out, params) as Tensor[];
      expect(Array.from(dx.toArray())).toEqual([0, 11, 100, 1000, 0, 0]);
    });
  });

  it("'same' padding ignores padded positions even when every value is negative", () => {
    scope(() => {
      const x = tensor([-5, -6, -7, -8], [1, 2, 2, 1]);
      expect(Array.from(maxPool(x, { size: 3, stride: 1, padding: 'same' }).toArray())).toEqual([-5, -5, -5, -5]);
    });
  });
});

describe('avgPool against a reference', () => {
  it('forward and gradient agree; same padding divides by the number of valid positions', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        scope(() => {
          const g = refGeo(c);
          const x = randn(key(c.seed), [c.N, c.H, c.W, c.C]);
          const { rule, inputs, params, out } = captured(() => avgPool(x, optsOf(c)));
          expect(out.shape).toEqual([c.N, g.OH, g.OW, c.C]);
          const gy = randn(key(c.seed + 1), out.shape);
          const ref = refAvg(c, g, x.toArray(), gy.toArray());
          expectClose('out', out.toArray(), ref.out, ref.outMag, c.KH * c.KW + 1);
          const [dx] = rule.vjp(gy, inputs, out, params) as Tensor[];
          expectClose('dx', dx.toArray(), ref.dx, ref.dxMag, 2 * Math.ceil(c.KH / c.sh) * Math.ceil(c.KW / c.sw));
        });
      }),
      { numRuns: 120 },
    );
  });

  it('hand case: 3x3 same pooling of a 3x3 image averages 4, 6 and 9 values', () => {
    scope(() => {
      const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
      const y = avgPool(x, { size: 3, stride: 1, padding: 'same' }).toArray();
      expect(Array.from(y)).toEqual([3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7]);
    });
  });

  it('adjoint identity <avg(x), g> = <x, avgᵀ(g)>', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        scope(() => {
          const x = randn(key(c.seed), [c.N, c.H, c.W, c.C]);
          const { rule, inputs, params, out } = captured(() => avgPool(x, optsOf(c)));
          const gy = randn(key(c.seed + 1), out.shape);
          const [dx] = rule.vjp(gy, inputs, out, params) as Tensor[];
          const lhs = dot(out.toArray(), gy.toArray());
          const rhs = dot(x.toArray(), dx.toArray());
          expect(Math.abs(lhs - rhs)).toBeLessThan(1e-5 * (Math.sqrt(x.size) + 1) * 4);
        });
      }),
      { numRuns: 60 },
    );
  });
});

describe('pooling gradients by finite differences', () => {
  /** Well-separated distinct values, so no perturbation changes a window's maximum. */
  function distinct(shape: number[], seed: number): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const perm = [...Array(n).keys()];
    let s = seed;
    for (let i = n - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const j = s % (i + 1);
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    return tensor(perm.map((v) => (v - n / 2) * 0.25), shape);
  }
  it('checkGrad maxPool (2x2 stride 2, 3x3 stride 1 same)', () => {
    scope(() => {
      const x = distinct([1, 5, 4, 2], 3);
      const R1 = randn(key(31), [1, 2, 2, 2]);
      checkGrad((xx: Tensor) => sum(mul(maxPool(xx, { size: 2 }), R1)), [x], { maxElements: 40 });
      const R2 = randn(key(32), [1, 5, 4, 2]);
      checkGrad((xx: Tensor) => sum(mul(maxPool(xx, { size: 3, stride: 1, padding: 'same' }), R2)), [x], { maxElements: 40 });
    });
  });
  it('checkGrad avgPool (3x2 stride [2, 1] same)', () => {
    scope(() => {
      const x = randn(key(41), [2, 5, 4, 3]);
      const R = randn(key(42), [2, 3, 4, 3]);
      checkGrad((xx: Tensor) => sum(mul(avgPool(xx, { size: [3, 2], stride: [2, 1], padding: 'same' }), R)), [x], {
        maxElements: 64,
      });
    });
  });
});

describe('pooling kernels are deterministic under any range split', () => {
  const GUARD = 16;
  const SENTINEL = 0x7fc0beef;
  function guarded(size: number): { ptr: number; words: () => Uint32Array } {
    const block = empty([size + 2 * GUARD]);
    const at = block.ptr >>> 2;
    new Uint32Array(heapF32().buffer).fill(SENTINEL, at, at + block.size);
    return { ptr: block.ptr + 4 * GUARD, words: () => new Uint32Array(block.toArray().buffer) };
  }
  function written(buf: { words: () => Uint32Array }): Uint32Array {
    const w = buf.words();
    for (let i = 0; i < GUARD; i++) {
      expect(w[i]).toBe(SENTINEL);
      expect(w[w.length - 1 - i]).toBe(SENTINEL);
    }
    return w.slice(GUARD, w.length - GUARD);
  }
  function partition(total: number, rnd: () => number): [number, number][] {
    const cuts = new Set<number>([0, total]);
    const k = Math.floor(rnd() * 5);
    for (let i = 0; i < k; i++) cuts.add(Math.floor(rnd() * (total + 1)));
    const s = [...cuts].sort((a, b) => a - b);
    return s.slice(1).map((e, i) => [s[i], e]);
  }

  it('max and average, forward and backward', () => {
    fc.assert(
      fc.property(caseArb, fc.boolean(), fc.integer({ min: 1, max: 1 << 30 }), (c, tied, seed) => {
        scope(() => {
          let s = seed;
          const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
          const g = refGeo(c);
          const x = tied ? tiedInput(c) : randn(key(c.seed), [c.N, c.H, c.W, c.C]);
          const gy = randn(key(c.seed + 1), [c.N, g.OH, g.OW, c.C]);
          const geo = [c.N, c.H, c.W, c.C, c.KH, c.KW, c.sh, c.sw, g.pt, g.pl, g.OH, g.OW] as const;
          const R = Math.ceil(c.KH / c.sh);
          const argmaxRows = empty([Math.ceil(R / 4) * 4 + R * g.OW * c.C]); // maxpool_backward's scratch
          const runs: [(b: number, e: number, o: number) => void, number, number][] = [
            [(b, e, o) => K.maxpool_forward(x.ptr, o, ...geo, b, e, 0), gy.size, c.N * g.OH],
            [(b, e, o) => K.maxpool_backward(x.ptr, gy.ptr, o, ...geo, b, e, argmaxRows.ptr), x.size, c.N * c.H],
            [(b, e, o) => K.avgpool_forward(x.ptr, o, ...geo, b, e, 0), gy.size, c.N * g.OH],
            [(b, e, o) => K.avgpool_backward(gy.ptr, o, ...geo, b, e, 0), x.size, c.N * c.H],
          ];
          for (const [run, size, total] of runs) {
            const one = guarded(size);
            run(0, total, one.ptr);
            const split = guarded(size);
            for (const [b, e] of partition(total, rnd)) run(b, e, split.ptr);
            const ref = written(one);
            expect(ref.includes(SENTINEL)).toBe(false);
            expect(written(split)).toEqual(ref);
          }
        });
      }),
      { numRuns: 60 },
    );
  });
});

describe('pooling argument checks', () => {
  const x = randn(key(1), [2, 5, 6, 3]);
  it('rejects wrong ranks, zero sizes and bad options', () => {
    expect(() => maxPool(randn(key(1), [5, 6, 3]), { size: 2 })).toThrow(ShapeError);
    expect(() => maxPool(randn(key(1), [5, 6, 3]), { size: 2 })).toThrow(/maxPool: x must be rank 4 \[N, H, W, C\], got shape \[5, 6, 3\]/);
    expect(() => avgPool(tensor([], [2, 0, 6, 3]), { size: 2 })).toThrow(/avgPool: x must have no zero-sized dimension/);
    expect(() => maxPool(x, { size: 0 })).toThrow(ValueError);
    expect(() => maxPool(x, { size: 0 })).toThrow(/maxPool: size must be a positive integer or \[h, w\] of positive integers, got 0/);
    expect(() => avgPool(x, { size: [2, -1] as [number, number] })).toThrow(/avgPool: size must be a positive integer/);
    expect(() => avgPool(x, { size: 2, stride: 0 })).toThrow(/avgPool: stride must be a positive integer/);
    expect(() => avgPool(x, { size: 2, padding: 'full' as never })).toThrow(/padding must be 'same' or 'valid', got "full"/);
    expect(() => maxPool(x, undefined as never)).toThrow(/maxPool: options \{ size, stride\?, padding\? \} required/);
    expect(() => maxPool([1] as never, { size: 2 })).toThrow(/maxPool: x must be a Tensor/);
  });
  it("rejects a window larger than the input with 'valid' padding, accepts it with 'same'", () => {
    expect(() => maxPool(x, { size: [6, 2] })).toThrow(/maxPool: window 6x2 is larger than the input 5x6 with 'valid' padding \(x: \[2, 5, 6, 3\]\)/);
    expect(() => avgPool(x, { size: 7 })).toThrow(ShapeError);
    expect(maxPool(x, { size: 7, padding: 'same' }).shape).toEqual([2, 1, 1, 3]);
    expect(avgPool(x, { size: 7, stride: 1, padding: 'same' }).shape).toEqual([2, 5, 6, 3]);
  });
  it('stride defaults to the window size', () => {
    expect(maxPool(x, { size: 2 }).shape).toEqual([2, 2, 3, 3]);
    expect(avgPool(x, { size: [2, 3] }).shape).toEqual([2, 2, 2, 3]);
  });
  it('exports its rules', () => {
    expect(Object.keys(rules).sort()).toEqual(['avgPool', 'maxPool']);
  });
});
