import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  gateBlend, reciprocalGate, sigmoidGate, lstmState, lstmOutput, lstmCell, gruState, rules,
} from '../../src/tensor/ops/gates.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { neg, elu, relu } from '../../src/tensor/ops/unary.js';
import { tensor, randn, uniform } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory } from '../../src/tensor/tensor.js';
import { heapF32 } from '../../src/tensor/heap.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, valueAndGrad } from '../../src/autodiff/index.js';
import { setThreads, _testing } from '../../src/tensor/threads.js';

// ---- float64 references ----------------------------------------------------------------

const sig = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const dsig = (x: number): number => sig(x) * sig(-x);
/** 1 - tanh(x)^2 without cancellation: 4e / (1 + e)^2, e = exp(-2|x|). */
const dtanh = (x: number): number => {
  const e = Math.exp(-2 * Math.abs(x));
  return (4 * e) / ((1 + e) * (1 + e));
};

interface Ref {
  /** Value and the sum of |terms| (the scale a float32 evaluation's error is relative to). */
  f: (...v: number[]) => [number, number];
  /** Cotangents of every input for output cotangent G. */
  df: (G: number, ...v: number[]) => number[];
}

const REF: Record<string, Ref> = {
  gateBlend: {
    f: (a, b, c, d) => [sig(a) * b + sig(-c) * d, Math.abs(sig(a) * b) + Math.abs(sig(-c) * d)],
    df: (G, a, b, c, d) => [G * b * dsig(a), G * sig(a), -G * d * dsig(c), G * sig(-c)],
  },
  reciprocalGate: {
    f: (a, x, c, h) => [sig(-a) * x + sig(-c) * h, Math.abs(sig(-a) * x) + Math.abs(sig(-c) * h)],
    df: (G, a, x, c, h) => [-G * x * dsig(a), G * sig(-a), -G * h * dsig(c), G * sig(-c)],
  },
  sigmoidGate: {
    f: (a, x) => [sig(-a) * x, Math.abs(sig(-a) * x)],
    df: (G, a, x) => [-G * x * dsig(a), G * sig(-a)],
  },
  lstmState: {
    f: (i, f, g, c) => [sig(f) * c + sig(i) * Math.tanh(g), Math.abs(sig(f) * c) + Math.abs(sig(i) * Math.tanh(g))],
    df: (G, i, f, g, c) => [G * Math.tanh(g) * dsig(i), G * c * dsig(f), G * sig(i) * dtanh(g), G * sig(f)],
  },
  lstmOutput: {
    f: (o, c) => [sig(o) * Math.tanh(c), Math.abs(sig(o) * Math.tanh(c))],
    df: (G, o, c) => [G * Math.tanh(c) * dsig(o), G * sig(o) * dtanh(c)],
  },
  gruState: {
    f: (u, c, s) => [sig(u) * s + sig(-u) * c, Math.abs(sig(u) * s) + Math.abs(sig(-u) * c)],
    df: (G, u, c, s) => [G * (s - c) * dsig(u), G * sig(-u), G * sig(u)],
  },
};

const OPS: Record<string, (...xs: Tensor[]) => Tensor> = {
  gateBlend: (a, b, c, d) => gateBlend(a, b, c, d),
  reciprocalGate: (a, x, c, h) => reciprocalGate(a, x, c, h),
  sigmoidGate: (a, x) => sigmoidGate(a, x),
  lstmState: (i, f, g, c) => lstmState(i, f, g, c),
  lstmOutput: (o, c) => lstmOutput(o, c),
  gruState: (u, c, s) => gruState(u, c, s),
};
/** The rules' parameters (the blends take an optional fused activation). */
const PARAMS: Record<string, unknown> = { gateBlend: { activation: null }, reciprocalGate: { activation: null } };
const ARITY: Record<string, number> = { gateBlend: 4, reciprocalGate: 4, sigmoidGate: 2, lstmState: 4, lstmOutput: 2, gruState: 3 };
/**
 * Forward error bounds in units of 2^-24 of the reference's scale: the kernels'
 * sigmoid is within 3.3 units relative, their tanh within 3, and each product or
 * sum adds at most half a unit of the scale.
 */
const FORWARD_ULPS: Record<string, number> = { gateBlend: 5, reciprocalGate: 5, sigmoidGate: 4.5, lstmState: 8, lstmOutput: 7.5, gruState: 5 };
const NAMES = Object.keys(OPS);

const EPS = 2 ** -24;
/**
 * |got - ref| within `ulps` float32 units of `scale`, plus a few subnormal
 * steps (products that pass through the subnormals lose relative precision).
 */
function within(got: number, ref: number, scale: number, ulps: number, abs = 8 * 2 ** -149): boolean {
  if (Number.isNaN(ref)) return Number.isNaN(got);
  if (!Number.isFinite(ref)) return got === ref;
  return Math.abs(got - ref) <= ulps * EPS * Math.abs(scale) + abs;
}

/**
 * The forward kernels' sigmoid flushes results under about 4e-39 to 0
 * (see assembly/gates.ts), an absolute error of at most 2^-126 per sigmoid
 * times what it multiplies.
 */
const flushSlack = (values: number[]): number => 2 ** -126 * (1 + values.reduce((s, v) => s + Math.abs(v), 0));

// ---- inputs ------------------------------------------------------------------------------

const gateArg = fc.oneof(
  { weight: 6, arbitrary: fc.float({ min: -12, max: 12, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 100, -100, 30, -30, 88, -88, 1e-30, -1e-30, 1e30, -1e30) },
);
const valueArg = fc.float({ min: -4, max: 4, noNaN: true });

/** Which inputs go through sigmoid or tanh (the others are multiplied). */
const GATED: Record<string, boolean[]> = {
  gateBlend: [true, false, true, false],
  reciprocalGate: [true, false, true, false],
  sigmoidGate: [true, false],
  lstmState: [true, true, true, false],
  lstmOutput: [true, true],
  gruState: [true, false, false],
};

/** n-ary columns of equal length: gate arguments where the op applies sigmoid/tanh, values elsewhere. */
function columns(name: string): fc.Arbitrary<number[][]> {
  return fc.integer({ min: 1, max: 45 }).chain((n) =>
    fc.tuple(...GATED[name].map((g) => fc.array(g ? gateArg : valueArg, { minLength: n, maxLength: n }))),
  );
}

const t = (v: number[]): Tensor => tensor(v);
const bits = (y: Tensor): Uint32Array => new Uint32Array(y.toArray().buffer);

// ---- the kernels' own sigmoid and tanh -----------------------------------------------------

function ulpError(got: number, ref: number): number {
  if (Object.is(got, Math.fround(ref))) return 0;
  const m = Math.max(Math.abs(ref), 2 ** -126);
  return Math.abs(got - ref) / 2 ** (Math.floor(Math.log2(m)) - 23);
}

function runUnary(kernel: 'gateSigmoidTest' | 'gateTanhTest', xs: Float32Array): Float32Array {
  return scope(() => {
    const x = tensor(xs);
    const y = empty([xs.length]);
    K[kernel](x.ptr, y.ptr, 0, xs.length, 0);
    return y.toArray();
  });
}

describe('vectorised sigmoid and tanh', () => {
  const grid = (lo: number, hi: number, n: number) => Float32Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));

  it('sigmoid is within 3 ulp of float64 on [-87, 90] and near 0', () => {
    for (const xs of [grid(-87, 90, 40001), grid(-1e-3, 1e-3, 4001), grid(-20, 20, 40001)]) {
      const ys = runUnary('gateSigmoidTest', xs);
      let worst = 0;
      xs.forEach((x, i) => (worst = Math.max(worst, ulpError(ys[i], sig(x)))));
      expect(worst).toBeLessThanOrEqual(3);
    }
  });

  it('sigmoid of very negative inputs is accurate down to 2^-126 and flushes to 0 below about 4e-39, never NaN', () => {
    const xs = grid(-110, -80, 5001);
    const ys = runUnary('gateSigmoidTest', xs);
    xs.forEach((x, i) => {
      expect(ys[i]).toBeGreaterThanOrEqual(0);
      expect(Math.abs(ys[i] - sig(x))).toBeLessThanOrEqual(3 * EPS * sig(x) + 2 ** -126);
      if (sig(x) < 2e-39) expect(ys[i]).toBe(0);
    });
  });

  it('sigmoid, forward and backward, over a sample of all float32 values: bounded error, clean limits, no NaN', () => {
    // Every 4099th bit pattern (about a million values, every exponent, both signs).
    const xs = new Float32Array(1 << 20);
    const bits = new Uint32Array(xs.buffer);
    for (let i = 0; i < xs.length; i++) bits[i] = (i * 4099 + 17) >>> 0;
    const fwd = runUnary('gateSigmoidTest', xs);
    // gateSigmoidBackward with g = x = 1: ga = -sigmoid'(a), gx = sigmoid(-a).
    const [ga, gx] = scope(() => {
      const a = tensor(xs);
      const one = tensor(new Float32Array(xs.length).fill(1));
      const outs = [empty([xs.length]), empty([xs.length])];
      K.gateSigmoidBackward(one.ptr, a.ptr, one.ptr, outs[0].ptr, outs[1].ptr, 0, xs.length, 0);
      return outs.map((o) => o.toArray());
    });
    let worstFwd = 0;
    let worstRel = 0;
    let worstNeg = 0;
    let worstSlope = 0;
    const bad: string[] = [];
    xs.forEach((x, i) => {
      if (Number.isNaN(x)) {
        if (!(Number.isNaN(fwd[i]) && Number.isNaN(gx[i]) && Number.isNaN(ga[i]))) bad.push(`NaN in, not out`);
        return;
      }
      if (Number.isNaN(fwd[i]) || Number.isNaN(gx[i]) || Number.isNaN(ga[i])) bad.push(`NaN at ${x}`);
      const s = sig(x);
      if (x >= 17.33 && fwd[i] !== 1) bad.push(`sigmoid(${x}) = ${fwd[i]}, not 1`);
      if (x <= -88.4 && fwd[i] !== 0) bad.push(`sigmoid(${x}) = ${fwd[i]}, not 0`);
      if (s >= 2 ** -126) {
        worstFwd = Math.max(worstFwd, ulpError(fwd[i], s));
        worstRel = Math.max(worstRel, Math.abs(fwd[i] - s) / s / EPS);
      } else if (Math.abs(fwd[i] - s) > 2 ** -126) {
        bad.push(`sigmoid(${x}) = ${fwd[i]}, reference ${s}`);
      }
      // The backward sigmoid runs into the subnormals: ulp errors there count in units of 2^-149.
      worstNeg = Math.max(worstNeg, ulpError(gx[i], sig(-x)));
      worstSlope = Math.max(worstSlope, ulpError(-ga[i], dsig(x)));
    });
    expect(bad.slice(0, 5)).toEqual([]);
    expect(worstFwd).toBeLessThanOrEqual(3);
    expect(worstRel).toBeLessThanOrEqual(3.5);
    expect(worstNeg).toBeLessThanOrEqual(3);
    expect(worstSlope).toBeLessThanOrEqual(4);
  });

  it('tanh is within 3 ulp of float64, including tiny arguments', () => {
    for (const xs of [grid(-12, 12, 40001), grid(-1e-3, 1e-3, 4001), grid(-1e-6, 1e-6, 2001)]) {
      const ys = runUnary('gateTanhTest', xs);
      let worst = 0;
      xs.forEach((x, i) => (worst = Math.max(worst, ulpError(ys[i], Math.tanh(x)))));
      expect(worst).toBeLessThanOrEqual(3);
    }
  });

  it('gives the limits at infinities and extremes, keeps the sign of zero, propagates NaN', () => {
    const xs = Float32Array.from([Infinity, -Infinity, 3e38, -3e38, 100, -100, 0, -0, NaN, 1e-40, -1e-40]);
    const s = runUnary('gateSigmoidTest', xs);
    expect(Array.from(s.slice(0, 8))).toEqual([1, 0, 1, 0, 1, 0, 0.5, 0.5]);
    expect(s[8]).toBeNaN();
    const th = runUnary('gateTanhTest', xs);
    expect(Array.from(th.slice(0, 6))).toEqual([1, -1, 1, -1, 1, -1]);
    expect(Object.is(th[6], 0)).toBe(true);
    expect(Object.is(th[7], -0)).toBe(true);
    expect(th[8]).toBeNaN();
    expect(th[9]).toBe(xs[9]);
    expect(th[10]).toBe(xs[10]);
  });
});

// ---- forward and backward against float64 ----------------------------------------------

describe.each(NAMES)('%s', (name) => {
  const ref = REF[name];
  const rule = (rules as Record<string, (typeof rules)['gateBlend']>)[name];

  it('forward matches the float64 reference within its error bound, and no NaN from finite inputs', () => {
    fc.assert(
      fc.property(columns(name), (cols) => {
        scope(() => {
          const got = OPS[name](...cols.map(t)).toArray();
          for (let k = 0; k < got.length; k++) {
            const [v, scale] = ref.f(...cols.map((c) => c[k]));
            expect(Number.isNaN(got[k])).toBe(false);
            if (!within(got[k], v, scale, FORWARD_ULPS[name], flushSlack(cols.map((c) => c[k])))) {
              throw new Error(`${name}(${cols.map((c) => c[k]).join(', ')}) = ${got[k]}, reference ${v}`);
            }
          }
        });
      }),
      { numRuns: 60 },
    );
  });

  it('fused backward matches the float64 reference cotangents (all inputs, one pass)', () => {
    fc.assert(
      fc.property(columns(name), fc.integer({ min: 0, max: 1 << 30 }), (cols, seed) => {
        scope(() => {
          const inputs = cols.map(t);
          const G = uniform(key(seed), [cols[0].length], -2, 2);
          const out = OPS[name](...inputs);
          const gs = rule.vjp(G, inputs, out, PARAMS[name] as never, inputs.map(() => true)).map((g) => g!.toArray());
          expect(gs.length).toBe(ARITY[name]);
          const Gv = G.toArray();
          for (let k = 0; k < Gv.length; k++) {
            const want = ref.df(Gv[k], ...cols.map((c) => c[k]));
            want.forEach((w, j) => {
              expect(Number.isNaN(gs[j][k])).toBe(false);
              // Relative to the cotangent's own size (its terms are products).
              const scale = name === 'gruState' && j === 0 ? Math.abs(Gv[k] * dsig(cols[0][k])) * (Math.abs(cols[2][k]) + Math.abs(cols[1][k])) : Math.abs(w);
              if (!within(gs[j][k], w, scale, 12)) {
                throw new Error(`${name} cotangent ${j} at (${cols.map((c) => c[k]).join(', ')}), G=${Gv[k]}: ${gs[j][k]} vs ${w}`);
              }
            });
          }
        });
      }),
      { numRuns: 40 },
    );
  });

  it('checkGrad passes for every input', () => {
    scope(() => {
      const n = ARITY[name];
      const xs = Array.from({ length: n }, (_, i) => randn(key(100 + i), [2, 3, 5]));
      const r = randn(key(99), [2, 3, 5]);
      checkGrad((...a: Tensor[]) => sum(mul(OPS[name](...a), r)), xs, { eps: 1e-3 });
    });
  });

  it('keeps the shape; extreme and infinite gate arguments give the limits without NaN', () => {
    scope(() => {
      const shape = [2, 1, 3];
      const big = [100, -100, Infinity, -Infinity, 1e30, -1e30];
      for (const v of big) {
        const xs = GATED[name].map((g) => tensor(new Array(6).fill(g ? v : 1.5), shape));
        const y = OPS[name](...xs);
        expect(y.shape).toEqual(shape);
        const vals = xs.map((x) => x.toArray()[0]);
        const [want] = ref.f(...vals);
        for (const got of y.toArray()) {
          expect(Number.isNaN(got)).toBe(false);
          expect(within(got, want, Math.abs(want) + 1, 4)).toBe(true);
        }
      }
    });
  });

  it('rejects mismatched shapes and non-tensors', () => {
    scope(() => {
      const n = ARITY[name];
      const xs = Array.from({ length: n }, () => randn(key(1), [2, 3]));
      xs[n - 1] = randn(key(2), [3, 2]);
      expect(() => OPS[name](...xs)).toThrow(ShapeError);
      expect(() => OPS[name](...xs)).toThrow(new RegExp(`^${name}: \\w+ has shape \\[3, 2\\], \\w+ has \\[2, 3\\]; the gate needs equal shapes$`));
      xs[n - 1] = randn(key(2), [2, 3, 1]);
      expect(() => OPS[name](...xs)).toThrow(ShapeError);
      xs[n - 1] = 'x' as never;
      expect(() => OPS[name](...xs)).toThrow(ValueError);
      expect(() => OPS[name](...xs)).toThrow(new RegExp(`^${name}: \\w+ must be a Tensor`));
    });
  });
});

describe('identities between the gates', () => {
  it('reciprocalGate(a, x, c, h) = gateBlend(-a, x, c, h) bit for bit; gruState(u, c, s) = gateBlend(u, s, u, c) to rounding', () => {
    fc.assert(
      fc.property(columns('gateBlend'), (cols) => {
        scope(() => {
          const [a, x, c, h] = cols.map(t);
          expect(bits(reciprocalGate(a, x, c, h))).toEqual(bits(gateBlend(neg(a), x, c, h)));
          const gru = gruState(a, x, c).toArray();
          const blend = gateBlend(a, c, a, x).toArray();
          gru.forEach((v, k) => {
            const [, scale] = REF.gruState.f(cols[0][k], cols[1][k], cols[2][k]);
            expect(within(v, blend[k], scale, 8, flushSlack([cols[1][k], cols[2][k]]))).toBe(true);
          });
        });
      }),
      { numRuns: 40 },
    );
  });

  it.each(['elu', 'relu'] as const)('gateBlend and reciprocalGate with activation %s: the activation of the blend to the bit, forward and backward', (act) => {
    const f = { elu, relu }[act];
    fc.assert(
      fc.property(columns('gateBlend'), fc.integer({ min: 0, max: 1 << 30 }), (cols, seed) => {
        scope(() => {
          const xs = cols.map(t);
          const r = uniform(key(seed), [cols[0].length], -2, 2);
          for (const op of [gateBlend, reciprocalGate]) {
            const loss = (fused: boolean) => (...a: Tensor[]) =>
              sum(mul(fused ? op(a[0], a[1], a[2], a[3], { activation: act }) : f(op(a[0], a[1], a[2], a[3])), r));
            const [vFused, gFused] = valueAndGrad(loss(true), [0, 1, 2, 3])(...xs);
            const [vPlain, gPlain] = valueAndGrad(loss(false), [0, 1, 2, 3])(...xs);
            expect(bits(vFused)).toEqual(bits(vPlain));
            gFused.forEach((g, j) => expect(bits(g)).toEqual(bits(gPlain[j])));
            expect(bits(op(xs[0], xs[1], xs[2], xs[3], { activation: act }))).toEqual(bits(f(op(xs[0], xs[1], xs[2], xs[3]))));
          }
        });
      }),
      { numRuns: 30 },
    );
    scope(() => {
      const xs = Array.from({ length: 4 }, (_, i) => randn(key(200 + i), [2, 3, 5]));
      const r = randn(key(99), [2, 3, 5]);
      checkGrad((a, x, c, h) => sum(mul(reciprocalGate(a, x, c, h, { activation: act }), r)), xs, { eps: 1e-3 });
    });
  });

  it('rejects an unknown activation and options that are not an object', () => {
    scope(() => {
      const [a, x, c, h] = Array.from({ length: 4 }, (_, i) => randn(key(i), [2, 3]));
      expect(() => reciprocalGate(a, x, c, h, { activation: 'tanh' as never })).toThrow(ValueError);
      expect(() => reciprocalGate(a, x, c, h, { activation: 'tanh' as never })).toThrow(
        /^reciprocalGate: activation must be one of 'elu', 'relu' or undefined, got "tanh"$/,
      );
      expect(() => gateBlend(a, x, c, h, 3 as never)).toThrow(/^gateBlend: options must be an object, got 3$/);
    });
  });

  it('lstmCell is lstmState then lstmOutput', () => {
    scope(() => {
      const [i, f, g, o, c] = Array.from({ length: 5 }, (_, k) => randn(key(k), [3, 4]));
      const cell = lstmCell(i, f, g, o, c);
      const cNew = lstmState(i, f, g, c);
      expect(Array.from(cell.c.toArray())).toEqual(Array.from(cNew.toArray()));
      expect(Array.from(cell.h.toArray())).toEqual(Array.from(lstmOutput(o, cNew).toArray()));
      checkGrad((i, f, g, o, c) => {
        const { c: c2, h } = lstmCell(i, f, g, o, c);
        return sum(mul(h, c2));
      }, [i, f, g, o, c], { eps: 1e-3 });
      expect(() => lstmCell(i, f, g, o, randn(key(9), [4, 3]))).toThrow(/lstmCell: c has shape \[4, 3\], i has \[3, 4\]/);
    });
  });
});

// ---- determinism under random range splits ---------------------------------------------------

function partition(total: number, rnd: () => number): [number, number][] {
  const cuts = new Set<number>([0, total]);
  const n = 1 + Math.floor(rnd() * 6);
  for (let i = 0; i < n; i++) cuts.add(Math.floor(rnd() * (total + 1)));
  const c = [...cuts].sort((a, b) => a - b);
  return c.slice(1).map((e, i) => [c[i], e]);
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let s = a;
    s = Math.imul(s ^ (s >>> 15), s | 1);
    s ^= s + Math.imul(s ^ (s >>> 7), s | 61);
    return ((s ^ (s >>> 14)) >>> 0) / 4294967296;
  };
}

// kernel name, number of inputs, number of outputs, extra trailing args before the range
const KERNELS: [keyof typeof K, number, number, number[]][] = [
  ['gateBlend', 4, 1, [0]],
  ['gateBlend', 4, 1, [1]],
  ['gateBlendBackward', 5, 4, [0]],
  ['gateBlendBackward', 5, 4, [1]],
  ['gateSigmoid', 2, 1, []],
  ['gateSigmoidBackward', 3, 2, []],
  ['lstmState', 4, 1, []],
  ['lstmStateBackward', 5, 4, []],
  ['lstmOutput', 2, 1, []],
  ['lstmOutputBackward', 3, 2, []],
  ['gruState', 3, 1, []],
  ['gruStateBackward', 4, 3, []],
];

describe('gate kernels are deterministic under any range split', () => {
  it.each(KERNELS.map((k) => [k[0], k[3].join(','), k] as const))('%s %s', (_n, _f, [kernel, nIn, nOut, extra]) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 1 << 30 }), (n, seed) => {
        scope(() => {
          const rnd = mulberry(seed);
          const ins = Array.from({ length: nIn }, (_, i) => randn(key(seed + i), [n], 4));
          const one = Array.from({ length: nOut }, () => empty([n]));
          const split = Array.from({ length: nOut }, () => empty([n]));
          const fn = K[kernel] as unknown as (...a: number[]) => void;
          fn(...ins.map((x) => x.ptr), ...one.map((x) => x.ptr), ...extra, 0, n, 0);
          for (const [b, e] of partition(n, rnd)) fn(...ins.map((x) => x.ptr), ...split.map((x) => x.ptr), ...extra, b, e, 0);
          one.forEach((o, j) => expect(new Uint32Array(split[j].toArray().buffer)).toEqual(new Uint32Array(o.toArray().buffer)));
        });
      }),
      { numRuns: 25 },
    );
  });
});

describe('threads', () => {
  it('1 thread and 3 threads give the same bits, forward and backward', async () => {
    const n = 200_003; // large enough to be sharded; not a multiple of 16
    const xs = Array.from({ length: 5 }, (_, i) => randn(key(40 + i), [n], 5));
    const run = () =>
      scope(() => {
        const [a, b, c, d, G] = xs;
        const elu = { activation: 'elu' } as const;
        const outs = [gateBlend(a, b, c, d), reciprocalGate(a, b, c, d, elu), lstmState(a, b, c, d), gruState(a, b, c)];
        const grads = [
          ...rules.gateBlend.vjp(G, [a, b, c, d], outs[0], { activation: null }, [true, true, true, true]),
          ...rules.reciprocalGate.vjp(G, [a, b, c, d], outs[1], { activation: 'elu' }, [true, true, true, true]),
          ...rules.lstmState.vjp(G, [a, b, c, d], outs[2], undefined, [true, true, true, true]),
          ...rules.gruState.vjp(G, [a, b, c], outs[3], undefined, [true, true, true]),
        ];
        return [...outs, ...grads].map((t) => Buffer.from(t!.toArray().buffer));
      });
    setThreads(1);
    const one = run();
    setThreads(3);
    run(); // starts the workers
    for (let i = 0; i < 500 && _testing.readyWorkers() < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(_testing.readyWorkers()).toBeGreaterThanOrEqual(2);
    const many = run();
    setThreads(1);
    many.forEach((bits, k) => expect(bits.equals(one[k])).toBe(true));
    xs.forEach((x) => x.dispose());
  });
});

describe('memory', () => {
  it('forward and backward leak nothing', () => {
    const before = memory();
    scope(() => {
      const xs = Array.from({ length: 4 }, (_, i) => randn(key(i), [5, 7]));
      const out = gateBlend(xs[0], xs[1], xs[2], xs[3]);
      rules.gateBlend.vjp(out, xs, out, { activation: 'elu' }, xs.map(() => true));
      lstmCell(xs[0], xs[1], xs[2], xs[3], xs[0]);
    });
    expect(memory()).toEqual(before);
    expect(heapF32().length).toBeGreaterThan(0);
  });
});
