// Elementwise kernels: unary maps and their fused backward, binary maps with
// broadcasting, the broadcasting three-way select and the broadcasting copy.
//
// Every kernel computes an element the same way whichever path reaches it: the
// scalar tails splat the element into a vector, run the vector code and keep
// lane 0, so any split of the range gives the same bits. No FMA anywhere.

// ---- vectorised math ------------------------------------------------------
// exp and log after Cephes (S. L. Moshier): Cody-Waite range reduction and a
// minimax polynomial; about 1-2 float32 ulp over the whole range, with IEEE
// behaviour at the edges (exp overflows to +Inf and underflows through the
// subnormals to 0; log(0) = -Inf, log(x < 0) = NaN, log(+Inf) = +Inf; NaN in,
// NaN out). Other kernel files import these through `vmath`.

export namespace vmath {
  /** e^r - 1 for |r| <= ln2/2 (Cephes expf polynomial). */
  @inline export function expm1Poly(r: v128): v128 {
    let p = f32x4.splat(1.9875691500e-4);
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
    p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
    return f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r);
  }

  /** e^x. */
  @inline export function exp(x: v128): v128 {
    // Clamping keeps 2^n representable as two factors; e^-110 underflows and
    // e^100 overflows exactly as they should. pmax/pmin with x first pass NaN through.
    const xc = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-110.0)), f32x4.splat(100.0));
    // n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer (ties to even)
    // and leaves it in the low mantissa bits.
    const t = f32x4.add(f32x4.mul(xc, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
    const fn = f32x4.sub(t, f32x4.splat(12582912.0));
    // x - n ln2 in two steps: n * 0.693359375 is exact for |n| < 2^15.
    const r = f32x4.sub(
      f32x4.sub(xc, f32x4.mul(fn, f32x4.splat(0.693359375))),
      f32x4.mul(fn, f32x4.splat(-2.12194440e-4)),
    );
    const e = f32x4.add(expm1Poly(r), f32x4.splat(1.0));
    // 2^n as 2^n1 * 2^n2 (both normal): the first product is exact, the second
    // rounds once, also into the subnormals.
    const n = i32x4.sub(t, i32x4.splat(0x4b400000));
    const n1 = i32x4.shr_s(n, 1);
    const n2 = i32x4.sub(n, n1);
    const s1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
    const s2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
    return f32x4.mul(f32x4.mul(e, s1), s2);
  }

  /** e^x - 1 for x <= 0 (larger x are clamped to 0), without cancellation near 0. */
  @inline export function expm1Neg(x: v128): v128 {
    const xc = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-30.0)), f32x4.splat(0.0));
    const t = f32x4.add(f32x4.mul(xc, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
    const fn = f32x4.sub(t, f32x4.splat(12582912.0));
    const r = f32x4.sub(
      f32x4.sub(xc, f32x4.mul(fn, f32x4.splat(0.693359375))),
      f32x4.mul(fn, f32x4.splat(-2.12194440e-4)),
    );
    const q = expm1Poly(r);
    // 2^n (e^r - 1) + (2^n - 1); n = 0 gives q itself.
    const p = i32x4.shl(i32x4.add(i32x4.sub(t, i32x4.splat(0x4b400000)), i32x4.splat(127)), 23);
    return f32x4.add(f32x4.mul(p, q), f32x4.sub(p, f32x4.splat(1.0)));
  }

  /** Natural logarithm. */
  @inline export function log(x: v128): v128 {
    // Subnormals: scale by 2^23 and take 23 off the exponent.
    const small = f32x4.lt(x, f32x4.splat(1.17549435e-38));
    const xs = v128.bitselect(f32x4.mul(x, f32x4.splat(8388608.0)), x, small);
    const bits = xs;
    let e = i32x4.sub(i32x4.shr_u(v128.and(bits, i32x4.splat(0x7f800000)), 23), i32x4.splat(126));
    e = i32x4.sub(e, v128.and(small, i32x4.splat(23)));
    // mantissa in [0.5, 1); below sqrt(1/2) use 2m and e - 1 so f = m - 1 is in [-0.29, 0.41].
    const m = v128.or(v128.and(bits, i32x4.splat(0x007fffff)), i32x4.splat(0x3f000000));
    const lo = f32x4.lt(m, f32x4.splat(0.707106781186547524));
    e = i32x4.add(e, lo);
    const f = f32x4.add(f32x4.sub(m, f32x4.splat(1.0)), v128.and(m, lo));
    const ef = f32x4.convert_i32x4_s(e);
    const z = f32x4.mul(f, f);
    let p = f32x4.splat(7.0376836292e-2);
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(-1.1514610310e-1));
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(1.1676998740e-1));
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(-1.2420140846e-1));
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(1.4249322787e-1));
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(-1.6668057665e-1));
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(2.0000714765e-1));
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(-2.4999993993e-1));
    p = f32x4.add(f32x4.mul(p, f), f32x4.splat(3.3333331174e-1));
    let y = f32x4.mul(f32x4.mul(p, f), z);
    y = f32x4.add(y, f32x4.mul(ef, f32x4.splat(-2.12194440e-4)));
    y = f32x4.add(y, f32x4.mul(z, f32x4.splat(-0.5)));
    let r = f32x4.add(f, y);
    r = f32x4.add(r, f32x4.mul(ef, f32x4.splat(0.693359375)));
    // +Inf and NaN give themselves, 0 gives -Inf, negatives NaN.
    r = v128.bitselect(r, x, f32x4.lt(x, f32x4.splat(Infinity)));
    r = v128.bitselect(f32x4.splat(-Infinity), r, f32x4.eq(x, f32x4.splat(0.0)));
    r = v128.bitselect(f32x4.splat(NaN), r, f32x4.lt(x, f32x4.splat(0.0)));
    return r;
  }

  /** log(1 + u) for u >= 0, accurate also where 1 + u rounds to 1. */
  @inline export function log1pPos(u: v128): v128 {
    const w = f32x4.add(u, f32x4.splat(1.0));
    // log(w) + (u - (w - 1)) / w: the correction restores what rounding 1 + u lost.
    const c = f32x4.div(f32x4.sub(u, f32x4.sub(w, f32x4.splat(1.0))), w);
    return f32x4.add(log(w), c);
  }

  /** 1 / (1 + e^-x): exactly 0 and 1 far out, never NaN for non-NaN x. */
  @inline export function sigmoid(x: v128): v128 {
    const one = f32x4.splat(1.0);
    return f32x4.div(one, f32x4.add(one, exp(f32x4.neg(x))));
  }

  /** Hyperbolic tangent: an odd polynomial below |x| = 0.625 (Cephes tanhf), 1 - 2/(e^2|x| + 1) above. */
  @inline export function tanh(x: v128): v128 {
    const ax = f32x4.abs(x);
    const z = f32x4.mul(ax, ax);
    let p = f32x4.splat(-5.70498872745e-3);
    p = f32x4.add(f32x4.mul(p, z), f32x4.splat(2.06390887954e-2));
    p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-5.37397155531e-2));
    p = f32x4.add(f32x4.mul(p, z), f32x4.splat(1.33314422036e-1));
    p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-3.33332819422e-1));
    const small = f32x4.add(f32x4.mul(f32x4.mul(p, z), ax), ax);
    const one = f32x4.splat(1.0);
    const e = exp(f32x4.add(ax, ax));
    const large = f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(e, one)));
    const r = v128.bitselect(small, large, f32x4.lt(ax, f32x4.splat(0.625)));
    return v128.or(r, v128.and(x, i32x4.splat(0x80000000)));
  }

  /** log(1 + e^x) = max(x, 0) + log1p(e^-|x|). */
  @inline export function softplus(x: v128): v128 {
    const u = exp(f32x4.neg(f32x4.abs(x)));
    return f32x4.add(f32x4.max(x, f32x4.splat(0.0)), log1pPos(u));
  }

  /** ELU with alpha 1: x for x > 0, e^x - 1 otherwise. */
  @inline export function elu(x: v128): v128 {
    return v128.bitselect(x, expm1Neg(x), f32x4.ge(x, f32x4.splat(0.0)));
  }
}

// ---- unary ----------------------------------------------------------------
// One class per op: f is the map, d its fused backward (dx from x, y = f(x)
// and the cotangent g). Loops are generic over the class so every op gets its
// own loop with the math inlined (never a branch on the op inside a loop).
// op codes (src/tensor/ops/unary.ts mirrors them)
const EXP = 0;
const LOG = 1;
const SIGMOID = 2;
const TANH = 3;
const ELU = 4;
const RELU = 5;
const SOFTPLUS = 6;
const SQRT = 7;
const NEG = 8;
const ABS = 9;
const SQUARE = 10;
const RECIPROCAL = 11;

class Exp {
  @inline f(x: v128): v128 { return vmath.exp(x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.mul(g, y); }
}
class Log {
  @inline f(x: v128): v128 { return vmath.log(x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.div(g, x); }
}
class Sigmoid {
  @inline f(x: v128): v128 { return vmath.sigmoid(x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.mul(g, f32x4.mul(y, f32x4.sub(f32x4.splat(1.0), y))); }
}
class Tanh {
  @inline f(x: v128): v128 { return vmath.tanh(x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.mul(g, f32x4.sub(f32x4.splat(1.0), f32x4.mul(y, y))); }
}
class Elu {
  @inline f(x: v128): v128 { return vmath.elu(x); }
  @inline d(x: v128, y: v128, g: v128): v128 {
    return v128.bitselect(g, f32x4.mul(g, f32x4.add(y, f32x4.splat(1.0))), f32x4.gt(x, f32x4.splat(0.0)));
  }
}
class Relu {
  @inline f(x: v128): v128 { return f32x4.max(x, f32x4.splat(0.0)); }
  @inline d(x: v128, y: v128, g: v128): v128 { return v128.and(g, f32x4.gt(x, f32x4.splat(0.0))); }
}
class Softplus {
  @inline f(x: v128): v128 { return vmath.softplus(x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.mul(g, vmath.sigmoid(x)); }
}
class Sqrt {
  @inline f(x: v128): v128 { return f32x4.sqrt(x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.div(g, f32x4.add(y, y)); }
}
class Neg {
  @inline f(x: v128): v128 { return f32x4.neg(x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.neg(g); }
}
class Abs {
  @inline f(x: v128): v128 { return f32x4.abs(x); }
  @inline d(x: v128, y: v128, g: v128): v128 {
    const zero = f32x4.splat(0.0);
    const s = v128.or(v128.and(f32x4.gt(x, zero), f32x4.splat(1.0)), v128.and(f32x4.lt(x, zero), f32x4.splat(-1.0)));
    return f32x4.mul(g, s);
  }
}
class Square {
  @inline f(x: v128): v128 { return f32x4.mul(x, x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.mul(g, f32x4.add(x, x)); }
}
class Reciprocal {
  @inline f(x: v128): v128 { return f32x4.div(f32x4.splat(1.0), x); }
  @inline d(x: v128, y: v128, g: v128): v128 { return f32x4.neg(f32x4.mul(g, f32x4.mul(y, y))); }
}

@inline function unLoop<T>(x: usize, y: usize, begin: i32, end: i32): void {
  const op = changetype<T>(0);
  let i = begin;
  for (; i + 8 <= end; i += 8) {
    const o = <usize>i << 2;
    const a = v128.load(x + o);
    const b = v128.load(x + o, 16);
    v128.store(y + o, op.f(a));
    v128.store(y + o, op.f(b), 16);
  }
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, op.f(v128.load(x + o)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, f32x4.extract_lane(op.f(v128.load32_splat(x + o)), 0));
  }
}

/** y[i] = f(x[i]) for i in [begin, end). `op`: exp 0, log 1, sigmoid 2, tanh 3, elu 4, relu 5, softplus 6, sqrt 7, neg 8, abs 9, square 10, reciprocal 11. */
export function unary(op: i32, x: usize, y: usize, begin: i32, end: i32, scratch: usize): void {
  switch (op) {
    case EXP: unLoop<Exp>(x, y, begin, end); break;
    case LOG: unLoop<Log>(x, y, begin, end); break;
    case SIGMOID: unLoop<Sigmoid>(x, y, begin, end); break;
    case TANH: unLoop<Tanh>(x, y, begin, end); break;
    case ELU: unLoop<Elu>(x, y, begin, end); break;
    case RELU: unLoop<Relu>(x, y, begin, end); break;
    case SOFTPLUS: unLoop<Softplus>(x, y, begin, end); break;
    case SQRT: unLoop<Sqrt>(x, y, begin, end); break;
    case NEG: unLoop<Neg>(x, y, begin, end); break;
    case ABS: unLoop<Abs>(x, y, begin, end); break;
    case SQUARE: unLoop<Square>(x, y, begin, end); break;
    default: unLoop<Reciprocal>(x, y, begin, end); break;
  }
}

@inline function unGradLoop<T>(x: usize, y: usize, g: usize, dx: usize, begin: i32, end: i32): void {
  const op = changetype<T>(0);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, op.d(v128.load(x + o), v128.load(y + o), v128.load(g + o)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    const r = op.d(v128.load32_splat(x + o), v128.load32_splat(y + o), v128.load32_splat(g + o));
    store<f32>(dx + o, f32x4.extract_lane(r, 0));
  }
}

/**
 * Fused backward of `unary`: dx[i] from x[i], y[i] = f(x[i]) and the cotangent
 * g[i]. relu and abs send 0 at x = 0; elu uses e^x = y + 1.
 */
export function unary_grad(op: i32, x: usize, y: usize, g: usize, dx: usize, begin: i32, end: i32, scratch: usize): void {
  switch (op) {
    case EXP: unGradLoop<Exp>(x, y, g, dx, begin, end); break;
    case LOG: unGradLoop<Log>(x, y, g, dx, begin, end); break;
    case SIGMOID: unGradLoop<Sigmoid>(x, y, g, dx, begin, end); break;
    case TANH: unGradLoop<Tanh>(x, y, g, dx, begin, end); break;
    case ELU: unGradLoop<Elu>(x, y, g, dx, begin, end); break;
    case RELU: unGradLoop<Relu>(x, y, g, dx, begin, end); break;
    case SOFTPLUS: unGradLoop<Softplus>(x, y, g, dx, begin, end); break;
    case SQRT: unGradLoop<Sqrt>(x, y, g, dx, begin, end); break;
    case NEG: unGradLoop<Neg>(x, y, g, dx, begin, end); break;
    case ABS: unGradLoop<Abs>(x, y, g, dx, begin, end); break;
    case SQUARE: unGradLoop<Square>(x, y, g, dx, begin, end); break;
    default: unGradLoop<Reciprocal>(x, y, g, dx, begin, end); break;
  }
}

// ---- binary ---------------------------------------------------------------
const ADD = 0;
const SUB = 1;
const MUL = 2;
const DIV = 3;
const MAX = 4;
const MIN = 5;
const POW = 6;
const EQ = 7;
const GT = 8;
const GE = 9;
const LT = 10;

class Add { @inline f(a: v128, b: v128): v128 { return f32x4.add(a, b); } }
class Sub { @inline f(a: v128, b: v128): v128 { return f32x4.sub(a, b); } }
class Mul { @inline f(a: v128, b: v128): v128 { return f32x4.mul(a, b); } }
class Div { @inline f(a: v128, b: v128): v128 { return f32x4.div(a, b); } }
class Max { @inline f(a: v128, b: v128): v128 { return f32x4.max(a, b); } }
class Min { @inline f(a: v128, b: v128): v128 { return f32x4.min(a, b); } }
class Pow {
  // musl's powf with JavaScript's special cases (Math.pow), within 1 ulp.
  @inline f(a: v128, b: v128): v128 {
    let r = f32x4.splat(Mathf.pow(f32x4.extract_lane(a, 0), f32x4.extract_lane(b, 0)));
    r = f32x4.replace_lane(r, 1, Mathf.pow(f32x4.extract_lane(a, 1), f32x4.extract_lane(b, 1)));
    r = f32x4.replace_lane(r, 2, Mathf.pow(f32x4.extract_lane(a, 2), f32x4.extract_lane(b, 2)));
    return f32x4.replace_lane(r, 3, Mathf.pow(f32x4.extract_lane(a, 3), f32x4.extract_lane(b, 3)));
  }
}
class Eq { @inline f(a: v128, b: v128): v128 { return v128.and(f32x4.eq(a, b), f32x4.splat(1.0)); } }
class Gt { @inline f(a: v128, b: v128): v128 { return v128.and(f32x4.gt(a, b), f32x4.splat(1.0)); } }
class Ge { @inline f(a: v128, b: v128): v128 { return v128.and(f32x4.ge(a, b), f32x4.splat(1.0)); } }
class Lt { @inline f(a: v128, b: v128): v128 { return v128.and(f32x4.lt(a, b), f32x4.splat(1.0)); } }

@inline function binScalar<T>(pa: usize, pb: usize, po: usize): void {
  store<f32>(po, f32x4.extract_lane(changetype<T>(0).f(v128.load32_splat(pa), v128.load32_splat(pb)), 0));
}

// One row of n outputs; operand strides (in elements) sa, sb are 0 or 1 on the
// vector paths, anything on the scalar path.
function binRow<T>(a: usize, sa: i32, b: usize, sb: i32, out: usize, n: i32): void {
  const op = changetype<T>(0);
  let i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + 8 <= n; i += 8) {
      const o = <usize>i << 2;
      const r0 = op.f(v128.load(a + o), v128.load(b + o));
      const r1 = op.f(v128.load(a + o, 16), v128.load(b + o, 16));
      v128.store(out + o, r0);
      v128.store(out + o, r1, 16);
    }
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, op.f(v128.load(a + o), v128.load(b + o)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      binScalar<T>(a + o, b + o, out + o);
    }
  } else if (sa == 1 && sb == 0) {
    const vb = v128.load32_splat(b);
    for (; i + 8 <= n; i += 8) {
      const o = <usize>i << 2;
      const r0 = op.f(v128.load(a + o), vb);
      const r1 = op.f(v128.load(a + o, 16), vb);
      v128.store(out + o, r0);
      v128.store(out + o, r1, 16);
    }
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, op.f(v128.load(a + o), vb));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      binScalar<T>(a + o, b, out + o);
    }
  } else if (sa == 0 && sb == 1) {
    const va = v128.load32_splat(a);
    for (; i + 8 <= n; i += 8) {
      const o = <usize>i << 2;
      const r0 = op.f(va, v128.load(b + o));
      const r1 = op.f(va, v128.load(b + o, 16));
      v128.store(out + o, r0);
      v128.store(out + o, r1, 16);
    }
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, op.f(va, v128.load(b + o)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      binScalar<T>(a, b + o, out + o);
    }
  } else {
    for (; i < n; i++) {
      binScalar<T>(a + ((<usize>(i * sa)) << 2), b + ((<usize>(i * sb)) << 2), out + (<usize>i << 2));
    }
  }
}

/**
 * out[i] = a[i * sa] (op) b[i * sb] for i in [begin, end), sa and sb 0 or 1
 * (0: that operand is one broadcast element). `op`: add 0, sub 1, mul 2, div 3,
 * maximum 4, minimum 5, pow 6, equal 7, greater 8, greaterEqual 9, less 10
 * (comparisons give 1.0 / 0.0). maximum/minimum propagate NaN.
 */
export function binary_flat(op: i32, a: usize, sa: i32, b: usize, sb: i32, out: usize, begin: i32, end: i32, scratch: usize): void {
  const n = end - begin;
  if (n <= 0) return;
  const pa = a + ((<usize>(begin * sa)) << 2);
  const pb = b + ((<usize>(begin * sb)) << 2);
  const po = out + (<usize>begin << 2);
  switch (op) {
    case ADD: binRow<Add>(pa, sa, pb, sb, po, n); break;
    case SUB: binRow<Sub>(pa, sa, pb, sb, po, n); break;
    case MUL: binRow<Mul>(pa, sa, pb, sb, po, n); break;
    case DIV: binRow<Div>(pa, sa, pb, sb, po, n); break;
    case MAX: binRow<Max>(pa, sa, pb, sb, po, n); break;
    case MIN: binRow<Min>(pa, sa, pb, sb, po, n); break;
    case POW: binRow<Pow>(pa, sa, pb, sb, po, n); break;
    case EQ: binRow<Eq>(pa, sa, pb, sb, po, n); break;
    case GT: binRow<Gt>(pa, sa, pb, sb, po, n); break;
    case GE: binRow<Ge>(pa, sa, pb, sb, po, n); break;
    default: binRow<Lt>(pa, sa, pb, sb, po, n); break;
  }
}

function binRows<T>(
  a: usize, b: usize, out: usize, d1: i32, d2: i32, d3: i32,
  sa0: i32, sa1: i32, sa2: i32, sa3: i32, sb0: i32, sb1: i32, sb2: i32, sb3: i32, begin: i32, end: i32,
): void {
  let i2 = begin % d2;
  const t = begin / d2;
  let i1 = t % d1;
  let i0 = t / d1;
  for (let r = begin; r < end; r++) {
    const oa = <usize>(i0 * sa0 + i1 * sa1 + i2 * sa2) << 2;
    const ob = <usize>(i0 * sb0 + i1 * sb1 + i2 * sb2) << 2;
    binRow<T>(a + oa, sa3, b + ob, sb3, out + ((<usize>r * <usize>d3) << 2), d3);
    if (++i2 == d2) {
      i2 = 0;
      if (++i1 == d1) {
        i1 = 0;
        i0++;
      }
    }
  }
}

/**
 * Broadcasting binary map on a coalesced [d0, d1, d2, d3] output (contiguous),
 * operand element strides sa*, sb* (0 on broadcast dims). The range runs over
 * rows, the flattened index of (d0, d1, d2); each row is d3 outputs.
 */
export function binary(
  op: i32, a: usize, b: usize, out: usize, d1: i32, d2: i32, d3: i32,
  sa0: i32, sa1: i32, sa2: i32, sa3: i32, sb0: i32, sb1: i32, sb2: i32, sb3: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  if (end <= begin) return;
  switch (op) {
    case ADD: binRows<Add>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case SUB: binRows<Sub>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case MUL: binRows<Mul>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case DIV: binRows<Div>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case MAX: binRows<Max>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case MIN: binRows<Min>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case POW: binRows<Pow>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case EQ: binRows<Eq>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case GT: binRows<Gt>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    case GE: binRows<Ge>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
    default: binRows<Lt>(a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, begin, end); break;
  }
}

// ---- select (where) ---------------------------------------------------------

// Operand access along a row: Dense steps through consecutive elements,
// Bcast repeats one element.
class Dense {
  @inline v(p: usize, o: usize): v128 { return v128.load(p + o); }
  @inline s(p: usize, o: usize): f32 { return load<f32>(p + o); }
}
class Bcast {
  @inline v(p: usize, o: usize): v128 { return v128.load32_splat(p); }
  @inline s(p: usize, o: usize): f32 { return load<f32>(p); }
}

function whereRow<C, A, B>(c: usize, a: usize, b: usize, out: usize, n: i32): void {
  const lc = changetype<C>(0);
  const la = changetype<A>(0);
  const lb = changetype<B>(0);
  const zero = f32x4.splat(0.0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const m = f32x4.ne(lc.v(c, o), zero);
    v128.store(out + o, v128.bitselect(la.v(a, o), lb.v(b, o), m));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, lc.s(c, o) != 0 ? la.s(a, o) : lb.s(b, o));
  }
}

/**
 * out = c != 0 ? a : b with broadcasting, on a coalesced [d0, d1, d2, d3]
 * output; strides as in `binary` (inner strides sc3, sa3, sb3 are 0 or 1).
 * Range over rows of d3 outputs. A NaN condition counts as true.
 */
export function where_bcast(
  c: usize, a: usize, b: usize, out: usize, d1: i32, d2: i32, d3: i32,
  sc0: i32, sc1: i32, sc2: i32, sc3: i32, sa0: i32, sa1: i32, sa2: i32, sa3: i32, sb0: i32, sb1: i32, sb2: i32, sb3: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  if (end <= begin) return;
  let i2 = begin % d2;
  const t = begin / d2;
  let i1 = t % d1;
  let i0 = t / d1;
  const kind = (sc3 << 2) | (sa3 << 1) | sb3;
  for (let r = begin; r < end; r++) {
    const pc = c + (<usize>(i0 * sc0 + i1 * sc1 + i2 * sc2) << 2);
    const pa = a + (<usize>(i0 * sa0 + i1 * sa1 + i2 * sa2) << 2);
    const pb = b + (<usize>(i0 * sb0 + i1 * sb1 + i2 * sb2) << 2);
    const po = out + ((<usize>r * <usize>d3) << 2);
    switch (kind) {
      case 7: whereRow<Dense, Dense, Dense>(pc, pa, pb, po, d3); break;
      case 6: whereRow<Dense, Dense, Bcast>(pc, pa, pb, po, d3); break;
      case 5: whereRow<Dense, Bcast, Dense>(pc, pa, pb, po, d3); break;
      case 4: whereRow<Dense, Bcast, Bcast>(pc, pa, pb, po, d3); break;
      case 3: whereRow<Bcast, Dense, Dense>(pc, pa, pb, po, d3); break;
      case 2: whereRow<Bcast, Dense, Bcast>(pc, pa, pb, po, d3); break;
      case 1: whereRow<Bcast, Bcast, Dense>(pc, pa, pb, po, d3); break;
      default: whereRow<Bcast, Bcast, Bcast>(pc, pa, pb, po, d3); break;
    }
    if (++i2 == d2) {
      i2 = 0;
      if (++i1 == d1) {
        i1 = 0;
        i0++;
      }
    }
  }
}

// ---- broadcasting copy ------------------------------------------------------

/**
 * y = x broadcast to a coalesced [d0, d1, d2, d3] (contiguous) with x's element
 * strides s0..s3 (0 on broadcast dims; s3 is 0 or 1). Range over rows of d3.
 */
export function broadcast_copy(
  x: usize, y: usize, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  if (end <= begin) return;
  let i2 = begin % d2;
  const t = begin / d2;
  let i1 = t % d1;
  let i0 = t / d1;
  for (let r = begin; r < end; r++) {
    const px = x + (<usize>(i0 * s0 + i1 * s1 + i2 * s2) << 2);
    const py = y + ((<usize>r * <usize>d3) << 2);
    let i = 0;
    if (s3 != 0) {
      for (; i + 4 <= d3; i += 4) v128.store(py + (<usize>i << 2), v128.load(px + (<usize>i << 2)));
      for (; i < d3; i++) store<f32>(py + (<usize>i << 2), load<f32>(px + (<usize>i << 2)));
    } else {
      const v = v128.load32_splat(px);
      for (; i + 4 <= d3; i += 4) v128.store(py + (<usize>i << 2), v);
      const s = load<f32>(px);
      for (; i < d3; i++) store<f32>(py + (<usize>i << 2), s);
    }
    if (++i2 == d2) {
      i2 = 0;
      if (++i1 == d1) {
        i1 = 0;
        i0++;
      }
    }
  }
}
