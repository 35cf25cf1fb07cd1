import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { transpose, concat, slice, pad, stack, unstack, rules } from '../../src/tensor/ops/layout.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { tensor, randn } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory, sizeOf } from '../../src/tensor/tensor.js';
import { heapF32 } from '../../src/tensor/heap.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad } from '../../src/autodiff/index.js';
import { setThreads, _testing } from '../../src/tensor/threads.js';

// ---- plain references ------------------------------------------------------------------

function stridesOf(shape: readonly number[]): number[] {
  const st: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

/** Call fn for every multi-index of `shape` in row-major order. */
function forEachIndex(shape: readonly number[], fn: (idx: number[]) => void): void {
  if (shape.some((d) => d === 0)) return;
  const idx = shape.map(() => 0);
  for (;;) {
    fn(idx);
    let k = shape.length - 1;
    while (k >= 0 && ++idx[k] === shape[k]) idx[k--] = 0;
    if (k < 0) return;
  }
}

function refTranspose(x: Float32Array, shape: number[], perm: number[]): Float32Array {
  const st = stridesOf(shape);
  const out: number[] = [];
  forEachIndex(perm.map((p) => shape[p]), (idx) => out.push(x[idx.reduce((o, i, k) => o + i * st[perm[k]], 0)]));
  return Float32Array.from(out);
}

function refSlice(x: Float32Array, shape: number[], begin: number[], size: number[]): Float32Array {
  const st = stridesOf(shape);
  const out: number[] = [];
  forEachIndex(size, (idx) => out.push(x[idx.reduce((o, i, k) => o + (i + begin[k]) * st[k], 0)]));
  return Float32Array.from(out);
}

function refPad(x: Float32Array, shape: number[], paddings: [number, number][], value: number): Float32Array {
  const st = stridesOf(shape);
  const out: number[] = [];
  forEachIndex(shape.map((d, k) => d + paddings[k][0] + paddings[k][1]), (idx) => {
    const inside = idx.every((i, k) => i >= paddings[k][0] && i < paddings[k][0] + shape[k]);
    out.push(inside ? x[idx.reduce((o, i, k) => o + (i - paddings[k][0]) * st[k], 0)] : value);
  });
  return Float32Array.from(out);
}

function refConcat(parts: { data: Float32Array; shape: number[] }[], axis: number): Float32Array {
  const out: number[] = [];
  const outer = sizeOf(parts[0].shape.slice(0, axis));
  for (let o = 0; o < outer; o++) {
    for (const { data, shape } of parts) {
      const row = sizeOf(shape.slice(axis));
      for (let k = 0; k < row; k++) out.push(data[o * row + k]);
    }
  }
  return Float32Array.from(out);
}

const rand = (seed: number, shape: number[]): Tensor => randn(key(seed), shape);
const same = (a: Float32Array, b: Float32Array): void => expect(Array.from(a)).toEqual(Array.from(b));
const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + v * b[i], 0);

// ---- arbitraries -------------------------------------------------------------------------

const shapeArb = (minRank = 1, maxRank = 6, maxDim = 7) => fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });
const permOf = (n: number) => fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n });
const seedArb = fc.integer({ min: 0, max: 1 << 30 });

// ---- transpose ---------------------------------------------------------------------------

describe('transpose', () => {
  it('matches the reference for any permutation of rank 1..6, sizes 1..7', () => {
    fc.assert(
      fc.property(shapeArb().chain((s) => fc.tuple(fc.constant(s), permOf(s.length), seedArb)), ([shape, perm, seed]) => {
        scope(() => {
          const x = rand(seed, shape);
          const y = transpose(x, perm);
          expect(y.shape).toEqual(perm.map((p) => shape[p]));
          same(y.toArray(), refTranspose(x.toArray(), shape, perm));
        });
      }),
      { numRuns: 150 },
    );
  });

  it('the last-two-axes swap (blocked 4x4 path) matches the reference on sizes around the 4- and 16-blocks', () => {
    const sizes = fc.constantFrom(1, 2, 3, 4, 5, 7, 15, 16, 17, 33);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), sizes, sizes, seedArb, (b, r, c, seed) => {
        scope(() => {
          const x = rand(seed, [b, r, c]);
          same(transpose(x, [0, 2, 1]).toArray(), refTranspose(x.toArray(), [b, r, c], [0, 2, 1]));
        });
      }),
      { numRuns: 80 },
    );
  });

  it('NHWC <-> NCHW and a matrix transpose match the reference', () => {
    scope(() => {
      const x = rand(1, [2, 5, 6, 9]);
      same(transpose(x, [0, 3, 1, 2]).toArray(), refTranspose(x.toArray(), [2, 5, 6, 9], [0, 3, 1, 2]));
      same(transpose(x, [0, 2, 3, 1]).toArray(), refTranspose(x.toArray(), [2, 5, 6, 9], [0, 2, 3, 1]));
      const m = rand(2, [37, 21]);
      same(transpose(m).toArray(), refTranspose(m.toArray(), [37, 21], [1, 0]));
      expect(transpose(m).shape).toEqual([21, 37]);
    });
  });

  it('default perm reverses the axes', () => {
    scope(() => {
      const x = rand(3, [2, 3, 4]);
      same(transpose(x).toArray(), refTranspose(x.toArray(), [2, 3, 4], [2, 1, 0]));
    });
  });

  it('transpose by perm then by its inverse is the identity, bit for bit', () => {
    fc.assert(
      fc.property(shapeArb().chain((s) => fc.tuple(fc.constant(s), permOf(s.length), seedArb)), ([shape, perm, seed]) => {
        scope(() => {
          const data = new Float32Array(sizeOf(shape)).map((_, i) => Math.fround(Math.sin(seed + i) * 1e30) * (i % 3 === 0 ? -1 : 1));
          data[0] = -0;
          const x = tensor(data, shape);
          const inv: number[] = [];
          perm.forEach((p, k) => (inv[p] = k));
          const back = transpose(transpose(x, perm), inv).toArray();
          expect(new Uint32Array(back.buffer)).toEqual(new Uint32Array(data.buffer));
        });
      }),
      { numRuns: 60 },
    );
  });

  it('is its own adjoint with the inverse permutation: <T x, y> = <x, T^-1 y>', () => {
    fc.assert(
      fc.property(shapeArb(1, 5, 5).chain((s) => fc.tuple(fc.constant(s), permOf(s.length), seedArb)), ([shape, perm, seed]) => {
        scope(() => {
          const x = rand(seed, shape);
          const y = rand(seed + 1, perm.map((p) => shape[p]));
          const inv: number[] = [];
          perm.forEach((p, k) => (inv[p] = k));
          const lhs = dot(transpose(x, perm).toArray(), y.toArray());
          const rhs = dot(x.toArray(), transpose(y, inv).toArray());
          expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(lhs)));
        });
      }),
      { numRuns: 40 },
    );
  });

  it('handles empty tensors', () => {
    scope(() => {
      const x = empty([2, 0, 3]);
      const y = transpose(x, [2, 0, 1]);
      expect(y.shape).toEqual([3, 2, 0]);
      expect(y.size).toBe(0);
    });
  });
});

// ---- slice / pad ------------------------------------------------------------------------

const sliceArb = shapeArb().chain((shape) =>
  fc.tuple(
    fc.constant(shape),
    fc.tuple(...shape.map((d) => fc.integer({ min: 0, max: d }).chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: b === d ? 0 : -1, max: d - b }))))),
    seedArb,
  ),
);

describe('slice', () => {
  it('matches the reference (sizes -1 and 0 included)', () => {
    fc.assert(
      fc.property(sliceArb, ([shape, bs, seed]) => {
        scope(() => {
          const begin = bs.map(([b]) => b);
          const size = bs.map(([, s]) => s);
          const x = rand(seed, shape);
          const y = slice(x, begin, size);
          const resolved = size.map((s, k) => (s === -1 ? shape[k] - begin[k] : s));
          expect(y.shape).toEqual(resolved);
          same(y.toArray(), refSlice(x.toArray(), shape, begin, resolved));
        });
      }),
      { numRuns: 150 },
    );
  });

  it('a slice of a slice is the slice at the summed offset', () => {
    scope(() => {
      const x = rand(5, [6, 7, 5]);
      const a = slice(slice(x, [1, 2, 0], [4, 5, 5]), [1, 1, 2], [2, 3, 2]);
      same(a.toArray(), slice(x, [2, 3, 2], [2, 3, 2]).toArray());
    });
  });
});

const padArb = shapeArb(1, 5, 5).chain((shape) =>
  fc.tuple(
    fc.constant(shape),
    fc.tuple(...shape.map(() => fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })))),
    fc.constantFrom(0, 1.5, -Infinity),
    seedArb,
  ),
);

describe('pad', () => {
  it('matches the reference for any paddings and fill value', () => {
    fc.assert(
      fc.property(padArb, ([shape, paddings, value, seed]) => {
        scope(() => {
          const x = rand(seed, shape);
          const y = pad(x, paddings, value);
          expect(y.shape).toEqual(shape.map((d, k) => d + paddings[k][0] + paddings[k][1]));
          same(y.toArray(), refPad(x.toArray(), shape, paddings, value));
        });
      }),
      { numRuns: 120 },
    );
  });

  it('slice undoes pad exactly', () => {
    fc.assert(
      fc.property(padArb, ([shape, paddings, value, seed]) => {
        scope(() => {
          const x = rand(seed, shape);
          same(slice(pad(x, paddings, value), paddings.map(([b]) => b), shape).toArray(), x.toArray());
        });
      }),
      { numRuns: 60 },
    );
  });

  it('zero padding and slicing are adjoint: <pad(x), y> = <x, slice(y)>', () => {
    fc.assert(
      fc.property(padArb, ([shape, paddings, , seed]) => {
        scope(() => {
          const x = rand(seed, shape);
          const y = rand(seed + 7, shape.map((d, k) => d + paddings[k][0] + paddings[k][1]));
          const lhs = dot(pad(x, paddings).toArray(), y.toArray());
          const rhs = dot(x.toArray(), slice(y, paddings.map(([b]) => b), shape).toArray());
          expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-9 * (1 + Math.abs(lhs)));
        });
      }),
      { numRuns: 40 },
    );
  });

  it('pads empty tensors with the fill value', () => {
    scope(() => {
      const x = empty([0, 2]);
      expect(pad(x, [[0, 0], [1, 1]], 3).size).toBe(0);
      same(pad(x, [[1, 1], [0, 1]], 3).toArray(), new Float32Array(6).fill(3));
      same(pad(empty([2, 0]), [[0, 0], [1, 0]], 3).toArray(), Float32Array.from([3, 3]));
    });
  });
});

// ---- concat / stack / unstack -----------------------------------------------------------

const concatArb = shapeArb(1, 5, 6).chain((shape) =>
  fc.tuple(
    fc.constant(shape),
    fc.integer({ min: 0, max: shape.length - 1 }),
    fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }),
    seedArb,
  ),
);

describe('concat', () => {
  it('matches the reference (parts of extent 0 included)', () => {
    fc.assert(
      fc.property(concatArb, ([shape, axis, lens, seed]) => {
        scope(() => {
          const xs = lens.map((n, i) => rand(seed + i, shape.map((d, k) => (k === axis ? n : d))));
          const y = concat(xs, axis);
          expect(y.shape).toEqual(shape.map((d, k) => (k === axis ? lens.reduce((a, b) => a + b, 0) : d)));
          same(y.toArray(), refConcat(xs.map((x) => ({ data: x.toArray(), shape: x.shape.slice() })), axis));
        });
      }),
      { numRuns: 120 },
    );
  });

  it('slicing concat(a, b) back gives a and b exactly', () => {
    fc.assert(
      fc.property(concatArb, ([shape, axis, lens, seed]) => {
        scope(() => {
          const [na, nb] = [lens[0], lens[1] ?? 2];
          const a = rand(seed, shape.map((d, k) => (k === axis ? na : d)));
          const b = rand(seed + 1, shape.map((d, k) => (k === axis ? nb : d)));
          const c = concat([a, b], axis);
          same(slice(c, shape.map(() => 0), a.shape).toArray(), a.toArray());
          same(slice(c, shape.map((_, k) => (k === axis ? na : 0)), shape.map(() => -1)).toArray(), b.toArray());
        });
      }),
      { numRuns: 60 },
    );
  });

  it('long contiguous runs (the bulk-copy path) and short ones agree with the reference', () => {
    scope(() => {
      const a = rand(1, [3, 1500]);
      const b = rand(2, [2, 1500]);
      const parts = [a, b].map((x) => ({ data: x.toArray(), shape: x.shape.slice() }));
      same(concat([a, b], 0).toArray(), refConcat(parts, 0));
      same(concat([a, a], 1).toArray(), refConcat([parts[0], parts[0]], 1));
      same(slice(a, [1, 3], [2, 1497]).toArray(), refSlice(a.toArray(), [3, 1500], [1, 3], [2, 1497]));
    });
  });

  it('accepts a negative axis and a single part', () => {
    scope(() => {
      const a = rand(1, [2, 3]);
      const b = rand(2, [2, 4]);
      expect(concat([a, b], -1).shape).toEqual([2, 7]);
      same(concat([a], 0).toArray(), a.toArray());
    });
  });
});

describe('stack and unstack', () => {
  it('stack joins along a new axis; unstack gives the parts back exactly', () => {
    fc.assert(
      fc.property(shapeArb(0, 4, 5).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length }), fc.integer({ min: 1, max: 4 }), seedArb)), ([shape, axis, n, seed]) => {
        scope(() => {
          const xs = Array.from({ length: n }, (_, i) => rand(seed + i, shape));
          const y = stack(xs, axis);
          const expanded = [...shape.slice(0, axis), 1, ...shape.slice(axis)];
          expect(y.shape).toEqual([...shape.slice(0, axis), n, ...shape.slice(axis)]);
          same(y.toArray(), refConcat(xs.map((x) => ({ data: x.toArray(), shape: expanded })), axis));
          const parts = unstack(y, axis);
          expect(parts.length).toBe(n);
          parts.forEach((p, i) => {
            expect(p.shape).toEqual(shape);
            same(p.toArray(), xs[i].toArray());
          });
        });
      }),
      { numRuns: 80 },
    );
  });

  it('stack takes negative axes counted from the new rank', () => {
    scope(() => {
      expect(stack([rand(1, [2, 3]), rand(2, [2, 3])], -1).shape).toEqual([2, 3, 2]);
    });
  });
});

// ---- gradients -------------------------------------------------------------------------

describe('gradients (checkGrad)', () => {
  const loss = (f: (...xs: Tensor[]) => Tensor, r: Tensor) => (...xs: Tensor[]) => sum(mul(f(...xs), r));

  it('transpose (general and last-two-axes paths)', () => {
    scope(() => {
      const x = rand(1, [2, 3, 4]);
      checkGrad(loss((x) => transpose(x, [1, 2, 0]), rand(2, [3, 4, 2])), [x]);
      checkGrad(loss((x) => transpose(x, [0, 2, 1]), rand(3, [2, 4, 3])), [x]);
    });
  });

  it('concat, every input', () => {
    scope(() => {
      const a = rand(1, [2, 3, 2]);
      const b = rand(2, [2, 1, 2]);
      const c = rand(3, [2, 2, 2]);
      checkGrad(loss((a, b, c) => concat([a, b, c], 1), rand(4, [2, 6, 2])), [a, b, c]);
    });
  });

  it('slice and pad', () => {
    scope(() => {
      const x = rand(1, [3, 4, 3]);
      checkGrad(loss((x) => slice(x, [1, 0, 1], [2, -1, 2]), rand(2, [2, 4, 2])), [x]);
      checkGrad(loss((x) => pad(x, [[1, 0], [0, 2], [1, 1]], 0.5), rand(3, [4, 6, 5])), [x]);
    });
  });

  it('stack and unstack', () => {
    scope(() => {
      const a = rand(1, [2, 3]);
      const b = rand(2, [2, 3]);
      checkGrad(loss((a, b) => stack([a, b], 1), rand(3, [2, 2, 3])), [a, b]);
      const x = rand(4, [2, 3, 2]);
      const r = rand(5, [2, 2]);
      checkGrad((x) => sum(mul(unstack(x, 1)[2], r)), [x]);
    });
  });

  it('exports a rule for each primitive', () => {
    expect(Object.keys(rules).sort()).toEqual(['concat', 'pad', 'slice', 'transpose']);
  });
});

// ---- determinism of the kernels under random range splits -----------------------------

function partition(total: number, rnd: () => number): [number, number][] {
  const cuts = new Set<number>([0, total]);
  const n = Math.floor(rnd() * 6);
  for (let i = 0; i < n; i++) cuts.add(Math.floor(rnd() * (total + 1)));
  const c = [...cuts].sort((a, b) => a - b);
  return c.slice(1).map((e, i) => [c[i], e]);
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('layout kernels are deterministic under any range split', () => {
  it('copyStrided and transposeLast2 give the same bytes for one range and for random ranges', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        scope(() => {
          const rnd = mulberry(seed);
          // copyStrided: a general transpose [3, 5, 2, 7] -> perm [2, 0, 3, 1] (strided inner loop)
          const shape = [3, 5, 2, 7];
          const perm = [2, 0, 3, 1];
          const x = rand(seed, shape);
          const st = stridesOf(shape);
          const outShape = perm.map((p) => shape[p]);
          const D = [1, 1, ...outShape];
          const S = [0, 0, ...perm.map((p) => st[p])];
          const T = [0, 0, ...stridesOf(outShape)];
          const rows = D[0] * D[1] * D[2] * D[3] * D[4];
          const one = empty(outShape);
          const split = empty(outShape);
          K.copyStrided(x.ptr, one.ptr, ...(D as [number, number, number, number, number, number]), ...(S as [number, number, number, number, number, number]), ...(T as [number, number, number, number, number, number]), 0, rows, 0);
          for (const [b, e] of partition(rows, rnd)) {
            K.copyStrided(x.ptr, split.ptr, ...(D as [number, number, number, number, number, number]), ...(S as [number, number, number, number, number, number]), ...(T as [number, number, number, number, number, number]), b, e, 0);
          }
          expect(new Uint32Array(split.toArray().buffer)).toEqual(new Uint32Array(one.toArray().buffer));
          same(one.toArray(), refTranspose(x.toArray(), shape, perm));

          // transposeLast2: [2, 19, 37] -> [2, 37, 19]
          const y = rand(seed + 1, [2, 19, 37]);
          const a = empty([2, 37, 19]);
          const b2 = empty([2, 37, 19]);
          K.transposeLast2(y.ptr, a.ptr, 19, 37, 0, 74, 0);
          for (const [b, e] of partition(74, rnd)) K.transposeLast2(y.ptr, b2.ptr, 19, 37, b, e, 0);
          expect(new Uint32Array(b2.toArray().buffer)).toEqual(new Uint32Array(a.toArray().buffer));
        });
      }),
      { numRuns: 30 },
    );
  });
});

describe('threads', () => {
  it('1 thread and 3 threads give the same bits (transpose both paths, concat, slice, pad)', async () => {
    const x = rand(11, [8, 64, 64, 32]);
    const run = () =>
      scope(() =>
        [
          transpose(x, [0, 3, 1, 2]),
          transpose(x, [2, 0, 3, 1]),
          concat([x, x], 3),
          slice(x, [1, 2, 3, 4], [6, 60, 60, 27]),
          pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]),
        ].map((t) => Buffer.from(t.toArray().buffer)),
      );
    setThreads(1);
    const one = run();
    setThreads(3);
    run(); // starts the workers
    for (let i = 0; i < 500 && _testing.readyWorkers() < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(_testing.readyWorkers()).toBeGreaterThanOrEqual(2);
    const many = run();
    setThreads(1);
    many.forEach((bits, k) => expect(bits.equals(one[k])).toBe(true));
    x.dispose();
  });
});

// ---- bad inputs -------------------------------------------------------------------------

describe('bad inputs', () => {
  it('transpose: bad perms and ranks', () => {
    scope(() => {
      const x = rand(1, [2, 3, 4]);
      expect(() => transpose(x, [0, 1])).toThrow(ShapeError);
      expect(() => transpose(x, [0, 1])).toThrow(/transpose: perm must list each of the 3 axes of x \[2, 3, 4\] once/);
      expect(() => transpose(x, [0, 1, 1])).toThrow(ValueError);
      expect(() => transpose(x, [0, 1, 1])).toThrow(/lists axis 1 twice/);
      expect(() => transpose(x, [0, 1, 3])).toThrow(/has axis 3, expected integers in \[0, 2\]/);
      expect(() => transpose(x, [0, -1, 1])).toThrow(ValueError);
      expect(() => transpose(empty([1, 1, 1, 1, 1, 1, 2]))).toThrow(/transpose: x has rank 7/);
      expect(() => transpose('x' as never)).toThrow(/transpose: x must be a Tensor/);
    });
  });

  it('slice: out of bounds, wrong lengths, bad sizes', () => {
    scope(() => {
      const x = rand(1, [4, 5]);
      expect(() => slice(x, [3, 0], [2, 5])).toThrow(ShapeError);
      expect(() => slice(x, [3, 0], [2, 5])).toThrow(/slice: on axis 0, begin 3 \+ size 2 exceeds the extent 4 of x \[4, 5\]/);
      expect(() => slice(x, [5, 0], [-1, 1])).toThrow(/on axis 0, begin 5/);
      expect(() => slice(x, [0], [1])).toThrow(/slice: begin must be 2 non-negative integers/);
      expect(() => slice(x, [-1, 0], [1, 1])).toThrow(/begin must be 2 non-negative integers/);
      expect(() => slice(x, [0, 0], [1, -2])).toThrow(/size must be 2 integers >= -1/);
    });
  });

  it('pad: bad paddings and value', () => {
    scope(() => {
      const x = rand(1, [2, 2]);
      expect(() => pad(x, [[1, 1]])).toThrow(/pad: paddings must be 2 pairs \[before, after\] of non-negative integers/);
      expect(() => pad(x, [[1, 1], [0, -1]])).toThrow(ShapeError);
      expect(() => pad(x, [[1, 1], [0, 1]], 'a' as never)).toThrow(/pad: value must be a number/);
    });
  });

  it('concat: empty list, mismatched dims, bad axis', () => {
    scope(() => {
      const a = rand(1, [2, 3]);
      const b = rand(2, [3, 3]);
      expect(() => concat([], 0)).toThrow(ValueError);
      expect(() => concat([], 0)).toThrow(/concat: xs must be a non-empty array of tensors, got \[\]/);
      expect(() => concat([a, b], 1)).toThrow(ShapeError);
      expect(() => concat([a, b], 1)).toThrow(/concat: xs\[1\] has shape \[3, 3\], xs\[0\] has \[2, 3\]; all must agree except on axis 1/);
      expect(() => concat([a, rand(3, [2, 3, 1])], 0)).toThrow(ShapeError);
      expect(() => concat([a, a], 2)).toThrow(/concat: axis must be an integer in \[-2, 1\] for rank 2, got 2/);
      expect(() => concat([a, 'b' as never], 0)).toThrow(/concat: xs\[1\] must be a Tensor/);
      expect(() => concat([tensor([1], []), tensor([2], [])], 0)).toThrow(/0-d/);
    });
  });

  it('stack and unstack: empty list, unequal shapes, bad axis', () => {
    scope(() => {
      const a = rand(1, [2, 3]);
      expect(() => stack([], 0)).toThrow(/stack: xs must be a non-empty array/);
      expect(() => stack([a, rand(2, [3, 2])], 0)).toThrow(/stack: xs\[1\] has shape \[3, 2\], xs\[0\] has \[2, 3\]/);
      expect(() => stack([a, a], 3)).toThrow(/stack: axis must be an integer in \[-3, 2\]/);
      expect(() => unstack(a, 2)).toThrow(/unstack: axis must be an integer in \[-2, 1\]/);
      expect(() => unstack(tensor([1], []))).toThrow(/unstack: x is 0-d/);
    });
  });

  it('leaks nothing', () => {
    const before = memory();
    scope(() => {
      const x = rand(1, [3, 4]);
      transpose(x);
      pad(slice(x, [1, 1], [2, 2]), [[1, 1], [1, 1]]);
      unstack(stack([x, x], 0), 0);
      concat([x, x], 1);
    });
    expect(memory()).toEqual(before);
  });
});

// ---- heap use sanity: results never alias inputs ----------------------------------------

describe('purity', () => {
  it('never writes into an input and never returns it', () => {
    scope(() => {
      const x = rand(9, [3, 4]);
      const copy = x.toArray();
      const outs = [transpose(x, [0, 1]), slice(x, [0, 0], [-1, -1]), pad(x, [[0, 0], [0, 0]]), concat([x], 0)];
      for (const y of outs) {
        expect(y).not.toBe(x);
        expect(y.ptr).not.toBe(x.ptr);
        same(y.toArray(), copy);
      }
      same(x.toArray(), copy);
      expect(heapF32().length).toBeGreaterThan(0);
    });
  });
});
