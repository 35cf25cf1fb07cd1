import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  exp, log, sigmoid, tanh, elu, relu, softplus, sqrt, neg, abs, square, reciprocal,
  unaryGrad, rules, UNARY_OPS, type UnaryOpName,
} from '../../src/tensor/ops/unary.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { tensor, uniform } from '../../src/tensor/create.js';
import { Tensor, scope, empty, memory } from '../../src/tensor/tensor.js';
import { heapF32 } from '../../src/tensor/heap.js';
import { K } from '../../src/tensor/kernels.js';
import { key } from '../../src/tensor/random.js';
import { ValueError } from '../../src/tensor/errors.js';
import { checkGrad, grad } from '../../src/autodiff/index.js';

// ---- plain float64 references ----------------------------------------------------

const ref: Record<UnaryOpName, (x: number) => number> = {
  exp: Math.exp,
  log: Math.log,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  elu: (x) => (x > 0 ? x : Math.expm1(x)),
  relu: (x) => Math.max(x, 0),
  softplus: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
  sqrt: Math.sqrt,
  neg: (x) => -x,
  abs: Math.abs,
  square: (x) => x * x,
  reciprocal: (x) => 1 / x,
};

const dref: Record<UnaryOpName, (x: number) => number> = {
  exp: Math.exp,
  log: (x) => 1 / x,
  sigmoid: (x) => {
    const s = 1 / (1 + Math.exp(-x));
    return s * (1 - s);
  },
  tanh: (x) => 1 - Math.tanh(x) ** 2,
  elu: (x) => (x > 0 ? 1 : Math.exp(x)),
  relu: (x) => (x > 0 ? 1 : 0),
  softplus: (x) => 1 / (1 + Math.exp(-x)),
  sqrt: (x) => 0.5 / Math.sqrt(x),
  neg: () => -1,
  abs: (x) => Math.sign(x),
  square: (x) => 2 * x,
  reciprocal: (x) => -1 / (x * x),
};

const fns: Record<UnaryOpName, (x: Tensor) => Tensor> = { exp, log, sigmoid, tanh, elu, relu, softplus, sqrt, neg, abs, square, reciprocal };
const names = Object.keys(fns) as UnaryOpName[];

/** Allowed error in float32 ulps of the reference (0 = bit-exact with Math.fround of the float64 result). */
const ULPS: Record<UnaryOpName, number> = {
  exp: 2, log: 2, sigmoid: 3, tanh: 2, elu: 2, relu: 0, softplus: 3,
  sqrt: 0, neg: 0, abs: 0, square: 0, reciprocal: 0,
};

/** The float32 ulp at |v| (subnormal spacing below 2^-126). */
function ulp(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (a < 2 ** -126) return 2 ** -149;
  if (!Number.isFinite(a)) return Infinity;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

/** Error of a float32 result `got` against the exact `want`, in ulps (0 when both NaN or equal). */
function ulpError(got: number, want: number): number {
  if (Number.isNaN(want) || Number.isNaN(got)) return Number.isNaN(want) && Number.isNaN(got) ? 0 : Infinity;
  const w = Math.fround(want);
  if (!Number.isFinite(w) || !Number.isFinite(got)) return got === w ? 0 : Infinity;
  return Math.abs(got - want) / ulp(want);
}

function checkOp(name: UnaryOpName, xs: Float32Array): void {
  const y = fns[name](tensor(xs)).toArray();
  let worst = 0;
  let at = 0;
  for (let i = 0; i < xs.length; i++) {
    const want = ref[name](xs[i]);
    // sigmoid below -87 lands in the subnormals through 1/(1 + e^-x): allow one FLT_MIN of absolute error there
    if (name === 'sigmoid' && xs[i] < -87) {
      expect(Math.abs(y[i] - want)).toBeLessThanOrEqual(2 ** -126);
      continue;
    }
    const e = ULPS[name] === 0 ? (Object.is(y[i], Math.fround(want)) || (Number.isNaN(y[i]) && Number.isNaN(want)) ? 0 : Infinity) : ulpError(y[i], want);
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  if (worst > Math.max(ULPS[name], 0)) {
    throw new Error(`${name}(${xs[at]}) = ${y[at]}, want ${ref[name](xs[at])} (${worst.toFixed(2)} ulp)`);
  }
}

/** Float32 values spread over the whole float range by their bit patterns (both signs, subnormals, Inf, NaN). */
function bitPatterns(n: number, seed: number): Float32Array {
  const u = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const hi = s;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    u[i] = (hi & 0xffff0000) | (s >>> 16);
  }
  return new Float32Array(u.buffer);
}

function linspace(lo: number, hi: number, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + ((hi - lo) * i) / (n - 1);
  return a;
}


describe('unary ops against float64 references', () => {
  it('every op is within its ulp bound over the whole float range (random bit patterns)', () => {
    const xs = bitPatterns(1 << 16, 7);
    for (const name of names) checkOp(name, xs);
  });

  it('every op is within its ulp bound on dense sweeps of the ranges that matter', () => {
    const n = 1 << 15;
    const ranges: Record<UnaryOpName, [number, number][]> = {
      exp: [[-104, 89], [-1, 1], [-88, -80], [80, 88.8]],
      log: [[0, 4], [1e-40, 1e-36], [0.5, 2], [1e30, 3e38]],
      sigmoid: [[-20, 20], [-87, -10], [-1, 1], [10, 100]],
      tanh: [[-1, 1], [-10, 10], [-0.7, 0.7], [-1e-3, 1e-3]],
      elu: [[-1, 1], [-30, 0], [-1e-3, 1e-3], [-0.4, -0.3]],
      relu: [[-3, 3]],
      softplus: [[-100, 30], [-5, 5], [-1e-3, 1e-3], [15, 100]],
      sqrt: [[0, 100], [1e-40, 1e-30]],
      neg: [[-5, 5]],
      abs: [[-5, 5]],
      square: [[-1e20, 1e20], [-1e-20, 1e-20]],
      reciprocal: [[-10, 10], [1e37, 3e38]],
    };
    for (const name of names) for (const [lo, hi] of ranges[name]) checkOp(name, linspace(lo, hi, n));
  });

  it('special values: +-0, +-Inf, NaN, huge and tiny inputs', () => {
    const xs = [0, -0, Infinity, -Infinity, NaN, 100, -100, 1e-45, -1e-45, 3.4e38, -3.4e38, 88.72, 88.73, -103.9, -104, 1e-30, -1e-30];
    const got = (name: UnaryOpName): number[] => Array.from(fns[name](tensor(xs)).toArray());
    const same = (a: number[], b: number[]): void => {
      expect(a.length).toBe(b.length);
      a.forEach((v, i) => expect(Object.is(v, b[i]) || (Number.isNaN(v) && Number.isNaN(b[i])), `${i}: ${v} vs ${b[i]} (x = ${xs[i]})`).toBe(true));
    };
    const e = got('exp');
    expect(e.slice(0, 6)).toEqual([1, 1, Infinity, 0, NaN, Infinity]);
    expect(e[6]).toBe(Math.fround(Math.exp(-100))); // a subnormal, correctly rounded; not 0, not NaN
    expect(e[11]).toBeCloseTo(3.393e38, -35);
    expect(e[12]).toBe(Infinity);
    expect(e[13]).toBe(2 ** -149); // e^-103.9 rounds to the smallest subnormal
    expect(e[14]).toBe(0);
    const l = got('log');
    expect(l.slice(0, 5)).toEqual([-Infinity, -Infinity, Infinity, NaN, NaN]);
    expect(l[6]).toBeNaN();
    expect(l[7]).toBeCloseTo(-103.279, 3);
    expect(l[8]).toBeNaN();
    const s = got('sigmoid');
    expect(s.slice(0, 7)).toEqual([0.5, 0.5, 1, 0, NaN, 1, 0]);
    same(got('tanh').slice(0, 9), [0, -0, 1, -1, NaN, 1, -1, 2 ** -149, -(2 ** -149)]);
    same(got('elu').slice(0, 9), [0, -0, Infinity, -1, NaN, 100, -1, 2 ** -149, -(2 ** -149)]);
    same(got('relu').slice(0, 9), [0, 0, Infinity, 0, NaN, 100, 0, 2 ** -149, 0]);
    const sp = got('softplus');
    expect(sp.slice(2, 6)).toEqual([Infinity, 0, NaN, 100]);
    expect(sp[0]).toBe(Math.fround(Math.LN2));
    expect(sp[6]).toBeGreaterThan(0); // e^-100, a subnormal, not 0 or NaN
    expect(sp[6]).toBeLessThan(1e-43);
    same(got('sqrt').slice(0, 7), [0, -0, Infinity, NaN, NaN, 10, NaN]);
    same(got('neg').slice(0, 5), [-0, 0, -Infinity, Infinity, NaN]);
    same(got('abs').slice(0, 5), [0, 0, Infinity, Infinity, NaN]);
    same(got('square').slice(0, 5), [0, 0, Infinity, Infinity, NaN]);
    expect(got('square')[9]).toBe(Infinity);
    same(got('reciprocal').slice(0, 5), [Infinity, -Infinity, 0, -0, NaN]);
  });

  it('random shapes (rank <= 5, dims 1..7) give the reference elementwise, whatever the length mod 4', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 7 }), { maxLength: 5 }),
        fc.constantFrom(...names),
        fc.nat(1000),
        (shape, name, seed) =>
          scope(() => {
            const lo = name === 'log' || name === 'sqrt' || name === 'reciprocal' ? 0.01 : -6;
            const x = uniform(key(seed), shape, lo, 6);
            const y = fns[name](x);
            expect(y.shape).toEqual(shape);
            checkOp(name, x.toArray());
          }),
      ),
      { numRuns: 120 },
    );
  });
});

describe('unary vjps', () => {
  const domain = (name: UnaryOpName): [number, number] =>
    name === 'log' || name === 'sqrt' || name === 'reciprocal' ? [0.3, 3] : [-3, 3];

  it('checkGrad passes for every primitive (away from the kinks of relu and abs)', () => {
    for (const name of names) {
      scope(() => {
        const [lo, hi] = domain(name);
        let x = uniform(key(11), [3, 5], lo, hi);
        if (name === 'relu' || name === 'abs') {
          // keep |x| >= 0.2 so the finite differences never straddle 0
          const a = x.toArray().map((v) => (v >= 0 ? v + 0.2 : v - 0.2));
          x = tensor(a, [3, 5]);
        }
        const r = uniform(key(12), [3, 5], -1, 1);
        checkGrad((t) => sum(mul(fns[name](t), r)), [x], { eps: 1e-3 });
      });
    }
  });

  it('the fused backward kernel gives f\'(x) g on many elements, every length mod 4', () => {
    for (const name of names) {
      for (const n of [1, 3, 7, 33, 1000]) {
        scope(() => {
          const [lo, hi] = domain(name);
          const x = uniform(key(n), [n], lo, hi);
          const g = uniform(key(n + 1), [n], -2, 2);
          const y = fns[name](x);
          const dx = unaryGrad(name, x, y, g).toArray();
          const xa = x.toArray();
          const ga = g.toArray();
          for (let i = 0; i < n; i++) {
            const want = dref[name](xa[i]) * ga[i];
            expect(Math.abs(dx[i] - want)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));
          }
        });
      }
    }
  });

  it('relu and abs take derivative 0 at 0; elu is smooth at 0', () => {
    scope(() => {
      const x = tensor([0, -0, 1, -1]);
      expect(Array.from(grad((t: Tensor) => sum(relu(t)))(x).toArray())).toEqual([0, 0, 1, 0]);
      expect(Array.from(grad((t: Tensor) => sum(abs(t)))(x).toArray())).toEqual([0, 0, 1, -1]);
      expect(Array.from(grad((t: Tensor) => sum(elu(t)))(x).toArray())).toEqual([1, 1, 1, Math.fround(Math.exp(-1))]);
    });
  });

  it('sigmoid and tanh gradients stay finite (0, not NaN) when saturated', () => {
    scope(() => {
      const x = tensor([-100, 100, -1e30, 1e30]);
      for (const f of [sigmoid, tanh]) {
        const g = grad((t: Tensor) => sum(f(t)))(x).toArray();
        expect(Array.from(g)).toEqual([0, 0, 0, 0]);
      }
    });
  });
});

describe('unary kernels', () => {
  it('give the same bits for any split of the range into shards', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.constantFrom(...names), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), (n, name, cuts) =>
        scope(() => {
          const x = tensor(bitPatterns(n, n * 31 + 1));
          const g = uniform(key(n), [n], -1, 1);
          const whole = empty([n]);
          const parts = empty([n]);
          const op = UNARY_OPS[name];
          K.unary(op, x.ptr, whole.ptr, 0, n, 0);
          const bounds = [0, ...cuts.map((c) => Math.floor(c * n)).sort((a, b) => a - b), n];
          for (let i = 0; i + 1 < bounds.length; i++) K.unary(op, x.ptr, parts.ptr, bounds[i], bounds[i + 1], 0);
          expect(new Uint32Array(parts.toArray().buffer)).toEqual(new Uint32Array(whole.toArray().buffer));
          const dw = empty([n]);
          const dp = empty([n]);
          K.unary_grad(op, x.ptr, whole.ptr, g.ptr, dw.ptr, 0, n, 0);
          for (let i = 0; i + 1 < bounds.length; i++) K.unary_grad(op, x.ptr, whole.ptr, g.ptr, dp.ptr, bounds[i], bounds[i + 1], 0);
          expect(new Uint32Array(dp.toArray().buffer)).toEqual(new Uint32Array(dw.toArray().buffer));
        }),
      ),
      { numRuns: 100 },
    );
  });

  it('never write outside their range', () => {
    scope(() => {
      const x = uniform(key(3), [40], -1, 1);
      const y = tensor(new Float32Array(40).fill(7));
      K.unary(UNARY_OPS.sigmoid, x.ptr, y.ptr, 5, 30, 0);
      const a = y.toArray();
      for (let i = 0; i < 40; i++) if (i < 5 || i >= 30) expect(a[i]).toBe(7);
      expect(heapF32()[(y.ptr >>> 2) + 5]).not.toBe(7);
    });
  });
});

describe('unary ops: arguments and memory', () => {
  it('reject non-tensors and disposed tensors with a typed error naming the op', () => {
    expect(() => exp(3 as never)).toThrow(ValueError);
    expect(() => sigmoid([1, 2] as never)).toThrow(/sigmoid: x must be a Tensor/);
    const t = tensor([1]);
    t.dispose();
    expect(() => tanh(t)).toThrow(/tanh: x was disposed/);
  });

  it('handle empty and 0-d tensors, and never write into their input', () => {
    scope(() => {
      expect(exp(tensor([], [0, 3])).shape).toEqual([0, 3]);
      expect(exp(tensor([0], [])).item()).toBe(1);
      const x = tensor([1, 2, 3]);
      neg(x);
      expect(Array.from(x.toArray())).toEqual([1, 2, 3]);
    });
  });

  it('leak nothing under a scope, forward and backward', () => {
    const before = memory();
    scope(() => {
      const x = uniform(key(1), [4, 4], 0.5, 2);
      for (const name of names) grad((t: Tensor) => sum(fns[name](t)))(x);
    });
    expect(memory()).toEqual(before);
  });

  it('export one rule per primitive', () => {
    expect(Object.keys(rules).sort()).toEqual([...names].sort());
    for (const [k, r] of Object.entries(rules)) expect(r.name).toBe(k);
  });
});
