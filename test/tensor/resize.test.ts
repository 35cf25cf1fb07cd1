import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { resizeBilinear, rules, type ResizeOptions } from '../../src/tensor/ops/resize.js';
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

// ---- reference: TensorFlow's source coordinates (float32 steps), float64 interpolation --------

type Mode = 'half' | 'align' | 'legacy';
const f = Math.fround;

function scaleOf(inSize: number, outSize: number, mode: Mode): number {
  return mode === 'align' && outSize > 1 ? f((inSize - 1) / (outSize - 1)) : f(inSize / outSize);
}

/** [lower, upper, lerp] of output index `o` along an axis. */
function taps(o: number, inSize: number, outSize: number, mode: Mode): [number, number, number] {
  const scale = scaleOf(inSize, outSize, mode);
  const src = mode === 'half' ? f(f(f(o + 0.5) * scale) - 0.5) : f(o * scale);
  const fl = Math.floor(src);
  return [Math.min(Math.max(fl, 0), inSize - 1), Math.min(Math.ceil(src), inSize - 1), src - fl];
}

interface Case {
  N: number;
  H: number;
  W: number;
  C: number;
  OH: number;
  OW: number;
  mode: Mode;
  seed: number;
}

const optsOf = (mode: Mode): ResizeOptions =>
  mode === 'half' ? {} : mode === 'align' ? { alignCorners: true } : { halfPixelCenters: false };

/** out = sum over the four corners of weight * x, and the transpose of that map. */
function reference(c: Case, x: Float32Array, gy: Float32Array) {
  const out = new Float64Array(c.N * c.OH * c.OW * c.C);
  const outMag = new Float64Array(out.length);
  const dx = new Float64Array(x.length);
  const dxMag = new Float64Array(x.length);
  for (let n = 0; n < c.N; n++)
    for (let oy = 0; oy < c.OH; oy++) {
      const [ly, uy, yl] = taps(oy, c.H, c.OH, c.mode);
      for (let ox = 0; ox < c.OW; ox++) {
        const [lx, ux, xl] = taps(ox, c.W, c.OW, c.mode);
        const corners: [number, number, number][] = [
          [ly, lx, (1 - yl) * (1 - xl)],
          [ly, ux, (1 - yl) * xl],
          [uy, lx, yl * (1 - xl)],
          [uy, ux, yl * xl],
        ];
        for (let ch = 0; ch < c.C; ch++) {
          const o = ((n * c.OH + oy) * c.OW + ox) * c.C + ch;
          for (const [iy, ix, wgt] of corners) {
            const i = ((n * c.H + iy) * c.W + ix) * c.C + ch;
            out[o] += wgt * x[i];
            outMag[o] += Math.abs(x[i]);
            dx[i] += wgt * gy[o];
            dxMag[i] += Math.abs(wgt * gy[o]);
          }
        }
      }
    }
  return { out, outMag, dx, dxMag };
}

function expectClose(what: string, got: Float32Array, want: Float64Array, mag: Float64Array, terms: number): void {
  expect(got.length).toBe(want.length);
  const tol = 8 * 2 ** -24 * Math.max(terms, 2);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * mag[i] + 1e-30)) {
      throw new Error(`${what}[${i}]: got ${got[i]}, reference ${want[i]} (magnitude ${mag[i]})`);
    }
  }
}

function captured(fn: () => Tensor): { rule: Rule<any>; inputs: readonly Tensor[]; params: any; out: Tensor } {
  let got: { rule: Rule<any>; inputs: readonly Tensor[]; params: any; out: Tensor } | null = null;
  const prev = observe((rule, inputs, params, out) => {
    got = { rule, inputs, params, out };
  });
  try {
    fn();
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
const absDot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] * b[i]);
  return s;
};

const sizeArb = fc.constantFrom(1, 2, 3, 5, 7, 8, 16, 33);
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    N: fc.integer({ min: 1, max: 2 }),
    H: sizeArb,
    W: sizeArb,
    C: fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 13),
    OH: sizeArb,
    OW: sizeArb,
    mode: fc.constantFrom('half' as const, 'align' as const, 'legacy' as const),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .filter((c) => c.N * Math.max(c.H * c.W, c.OH * c.OW) * c.C <= 30_000);

// ---- tests -----------------------------------------------------------------------------------

describe('resizeBilinear against a reference', () => {
  it('forward and its transpose agree in every mode, up and down, any sizes', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        scope(() => {
          const x = randn(key(c.seed), [c.N, c.H, c.W, c.C]);
          const { rule, inputs, params, out } = captured(() => resizeBilinear(x, [c.OH, c.OW], optsOf(c.mode)));
          expect(rule.name).toBe('resizeBilinear');
          expect(out.shape).toEqual([c.N, c.OH, c.OW, c.C]);
          const gy = randn(key(c.seed + 1), out.shape);
          const ref = reference(c, x.toArray(), gy.toArray());
          expectClose('out', out.toArray(), ref.out, ref.outMag, 4);
          const [dx] = rule.vjp(gy, inputs, out, params) as Tensor[];
          const terms = 4 * (Math.ceil(c.OH / c.H) + 1) * (Math.ceil(c.OW / c.W) + 1);
          expectClose('dx', dx.toArray(), ref.dx, ref.dxMag, terms);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('adjoint identity <resize(x), g> = <x, resizeᵀ(g)>', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        scope(() => {
          const x = randn(key(c.seed), [c.N, c.H, c.W, c.C]);
          const { rule, inputs, params, out } = captured(() => resizeBilinear(x, [c.OH, c.OW], optsOf(c.mode)));
          const gy = randn(key(c.seed + 1), out.shape);
          const [dx] = rule.vjp(gy, inputs, out, params) as Tensor[];
          const lhs = dot(out.toArray(), gy.toArray());
          const rhs = dot(x.toArray(), dx.toArray());
          expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-5 * (absDot(out.toArray(), gy.toArray()) + absDot(x.toArray(), dx.toArray())) + 1e-6);
        });
      }),
      { numRuns: 80 },
    );
  });
});

describe('resizeBilinear hand-computed cases', () => {
  const img = (rows: number[][]): Tensor => tensor(rows.flat(), [1, rows.length, rows[0].length, 1]);
  const rowsOf = (t: Tensor): number[][] => {
    const [, h, w] = t.shape;
    const a = Array.from(t.toArray());
    return [...Array(h).keys()].map((r) => a.slice(r * w, (r + 1) * w));
  };
  it('2x2 -> 4x4 with half-pixel centers (tf.image.resize): edges clamp, interior at 1/4 and 3/4', () => {
    // src = (dst + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25: rows/cols 0, 0.75*a + 0.25*b, 0.25*a + 0.75*b, 1.
    const y = resizeBilinear(img([[1, 2], [3, 4]]), [4, 4]);
    expect(rowsOf(y)).toEqual([
      [1, 1.25, 1.75, 2],
      [1.5, 1.75, 2.25, 2.5],
      [2.5, 2.75, 3.25, 3.5],
      [3, 3.25, 3.75, 4],
    ]);
  });
  it('3x3 -> 2x2 with align corners picks the four corners; 2x2 -> 3x3 puts midpoints between them', () => {
    expect(rowsOf(resizeBilinear(img([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), [2, 2], { alignCorners: true }))).toEqual([
      [1, 3],
      [7, 9],
    ]);
    expect(rowsOf(resizeBilinear(img([[1, 2], [3, 4]]), [3, 3], { alignCorners: true }))).toEqual([
      [1, 1.5, 2],
      [2, 2.5, 3],
      [3, 3.5, 4],
    ]);
  });
  it('legacy mode (TF1 default) samples at dst * in/out from the top-left corner', () => {
    expect(rowsOf(resizeBilinear(img([[1, 2], [3, 4]]), [4, 4], { halfPixelCenters: false }))).toEqual([
      [1, 1.5, 2, 2],
      [2, 2.5, 3, 3],
      [3, 3.5, 4, 4],
      [3, 3.5, 4, 4],
    ]);
  });
  it('4 -> 2 with half-pixel centers averages pairs; 1 -> n broadcasts; identity size is the identity', () => {
    expect(rowsOf(resizeBilinear(img([[1, 2, 3, 4]]), [1, 2]))).toEqual([[1.5, 3.5]]);
    expect(rowsOf(resizeBilinear(img([[7]]), [2, 3]))).toEqual([
      [7, 7, 7],
      [7, 7, 7],
    ]);
    const x = randn(key(5), [2, 5, 3, 6]);
    for (const o of [{}, { alignCorners: true }, { halfPixelCenters: false }]) {
      expect(resizeBilinear(x, [5, 3], o).toArray()).toEqual(x.toArray());
    }
  });
  it('the gradient of a 2x2 -> 4x4 upsampling sums the bilinear weights', () => {
    scope(() => {
      const x = img([[1, 2], [3, 4]]);
      const { rule, inputs, params, out } = captured(() => resizeBilinear(x, [4, 4]));
      const [dx] = rule.vjp(tensor(new Array(16).fill(1), [1, 4, 4, 1]), inputs, out, params) as Tensor[];
      // Row weights onto input row 0: 1 + 0.75 + 0.25 + 0 = 2; same for columns: each input pixel gets 2 * 2.
      expect(Array.from(dx.toArray())).toEqual([4, 4, 4, 4]);
    });
  });
});

describe('resizeBilinear gradient by finite differences', () => {
  it('checkGrad in each mode, up and down', () => {
    scope(() => {
      const x = randn(key(51), [2, 4, 3, 3]);
      for (const [size, o] of [
        [[7, 5], {}],
        [[3, 2], { alignCorners: true }],
        [[5, 6], { halfPixelCenters: false }],
      ] as [[number, number], ResizeOptions][]) {
        const R = randn(key(52), [2, size[0], size[1], 3]);
        checkGrad((xx: Tensor) => sum(mul(resizeBilinear(xx, size, o), R)), [x], { maxElements: 72 });
      }
    });
  });
});

describe('resize kernels are deterministic under any range split', () => {
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
  it('forward and backward', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 1, max: 1 << 30 }), (c, seed) => {
        scope(() => {
          let s = seed;
          const rnd = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
          const mode = c.mode === 'legacy' ? 0 : c.mode === 'half' ? 1 : 2;
          const x = randn(key(c.seed), [c.N, c.H, c.W, c.C]);
          const gy = randn(key(c.seed + 1), [c.N, c.OH, c.OW, c.C]);
          const dims = [c.N, c.H, c.W, c.C, c.OH, c.OW, mode] as const;
          const rows = empty([2 * c.OW * c.C]); // the forward kernel's scratch
          const runs: [(b: number, e: number, o: number) => void, number, number][] = [
            [(b, e, o) => K.resize_bilinear_forward(x.ptr, o, ...dims, b, e, rows.ptr), gy.size, c.N * c.OH],
            [(b, e, o) => K.resize_bilinear_backward(gy.ptr, o, ...dims, b, e, 0), x.size, c.N * c.H],
          ];
          for (const [run, size, total] of runs) {
            const one = guarded(size);
            run(0, total, one.ptr);
            const split = guarded(size);
            const cuts = [...new Set([0, total, ...[0, 1, 2].map(() => Math.floor(rnd() * (total + 1)))])].sort((a, b) => a - b);
            for (let i = 1; i < cuts.length; i++) run(cuts[i - 1], cuts[i], split.ptr);
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

describe('resizeBilinear argument checks', () => {
  const x = randn(key(1), [1, 4, 4, 2]);
  it('rejects wrong ranks, zero sizes and bad output sizes', () => {
    expect(() => resizeBilinear(randn(key(1), [4, 4, 2]), [2, 2])).toThrow(ShapeError);
    expect(() => resizeBilinear(randn(key(1), [4, 4, 2]), [2, 2])).toThrow(/resizeBilinear: x must be rank 4 \[N, H, W, C\], got shape \[4, 4, 2\]/);
    expect(() => resizeBilinear(tensor([], [1, 0, 4, 2]), [2, 2])).toThrow(/x must have no zero-sized dimension/);
    expect(() => resizeBilinear(x, [0, 2])).toThrow(ValueError);
    expect(() => resizeBilinear(x, [0, 2])).toThrow(/resizeBilinear: size must be \[outH, outW\] of positive integers, got \[0, 2\]/);
    expect(() => resizeBilinear(x, [2, 2.5])).toThrow(/size must be \[outH, outW\]/);
    expect(() => resizeBilinear(x, [2] as never)).toThrow(/size must be \[outH, outW\]/);
    expect(() => resizeBilinear([1] as never, [2, 2])).toThrow(/x must be a Tensor/);
  });
  it('rejects both alignCorners and halfPixelCenters, and non-boolean flags', () => {
    expect(() => resizeBilinear(x, [2, 2], { alignCorners: true, halfPixelCenters: true })).toThrow(
      /resizeBilinear: alignCorners and halfPixelCenters cannot both be true/,
    );
    expect(() => resizeBilinear(x, [2, 2], { alignCorners: 1 as never })).toThrow(/alignCorners must be a boolean, got 1/);
    expect(() => resizeBilinear(x, [2, 2], { halfPixelCenters: 'yes' as never })).toThrow(/halfPixelCenters must be a boolean/);
  });
  it('exports its rule', () => {
    expect(Object.keys(rules)).toEqual(['resizeBilinear']);
  });
});
