// Fused gate kernels of the recurrent cells, forward and backward.
//
// Every kernel is elementwise over same-shape operands: the range
// [begin, end) counts elements, `scratch` is unused. SIMD four lanes at a
// time, a few vectors per loop trip (independent chains for the out-of-order
// core; gateBlend two, gateBlendBackward one, as measured fastest); the scalar
// tail runs the very same vector code on one lane, so an element's bits never
// depend on where a range starts or ends.
//
// sigmoid: e^y = 2^k P(r) / Q(r), k = round(y / ln 2), r = y - k ln 2 (two-part
// ln 2, |r| <= ln2/2), with P = E + O, Q = E - O, E = 1 + e2 r^2 and
// O = r (1/2 + o1 r^2): a rational approximation with the symmetry of e^r
// (Q(r) = P(-r); O/E approximates tanh(r/2)), fitted for least maximum
// relative error (0.012 ulp in exact arithmetic). Eight operations where an
// exp polynomial of like accuracy takes twelve, and no separate exp:
//   Forward: sigmoid(-y) = 1 / (1 + e^y) = Q / (Q + 2^k P): one division that
//   never cancels; 1 - sigmoid(c) is sigmoid(-c). Measured against float64
//   on every 13th float32: within 2.6 ulp, and 3.4 * 2^-24 relative; exactly
//   1 from x = 17.33 up, and exactly 0 where the exact value is under about
//   4e-39 (2^k overflows to +Inf).
//   Backward: s = sigmoid(-|x|) = 2^k P / (Q + 2^k P), with 2^k P rounded once
//   into the subnormals, so s stays accurate all the way down (within 2.5 ulp);
//   sigmoid(|x|) = 1 - s (>= 1/2, no cancellation) and sigmoid'(x) =
//   sigmoid(x) sigmoid(-x) (within 3.5 ulp). Same approximation as the
//   forward, so the two agree to rounding.
// tanh(|x|) = -m / (2 + m), m = expm1(-2|x|) by a degree-6 polynomial of the
// same kind of reduced argument: accurate near 0 too; the backward kernels
// also get 1 - tanh^2 = 4e / (2 + m)^2 from the same reduction.
// Separate mul and add only (no FMA, no approximate reciprocal), so results
// are the same on every CPU. Finite inputs never give NaN; ±Inf gives the
// limits; NaN propagates.

// ---- shared vector math: tanh's expm1, loads and stores ---------------------

const SIGN_BITS: i32 = 0x80000000;
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375; // 9 significant bits: k * LN2_HI is exact for |k| <= 2^15
const LN2_LO: f32 = -2.12194440e-4;
// Adding 1.5 * 2^23 rounds a float in (-2^22, 2^22) to an integer (ties to
// even) and leaves that integer in the low mantissa bits.
const SHIFTER: f32 = 12582912.0;

@inline function vsplat(x: f32): v128 {
  return f32x4.splat(x);
}

/**
 * expm1(r) for |r| <= ln2/2 as r + r^2 q(r), q of degree 4 fitted for least
 * maximum relative error of expm1 (fit error 0.22 · 2^-24; about 1.5 · 2^-24
 * evaluated in float32).
 */
@inline function expm1Poly(r: v128): v128 {
  let q = f32x4.add(f32x4.mul(r, vsplat(0.0013882489874958992)), vsplat(0.008366646245121956));
  q = f32x4.add(f32x4.mul(q, r), vsplat(0.04166720435023308));
  q = f32x4.add(f32x4.mul(q, r), vsplat(0.16666541993618011));
  q = f32x4.add(f32x4.mul(q, r), vsplat(0.4999999701976776));
  return f32x4.add(r, f32x4.mul(f32x4.mul(r, r), q));
}

/** round(y / ln 2), held in the low mantissa bits of the result (see SHIFTER). */
@inline function shifted(y: v128): v128 {
  return f32x4.add(f32x4.mul(y, vsplat(LOG2E)), vsplat(SHIFTER));
}

/** expm1 of the reduced argument r = y - k ln 2, given shifted(y). */
@inline function reducedExpm1(y: v128, sh: v128): v128 {
  const kf = f32x4.sub(sh, vsplat(SHIFTER));
  const r = f32x4.sub(f32x4.sub(y, f32x4.mul(kf, vsplat(LN2_HI))), f32x4.mul(kf, vsplat(LN2_LO)));
  return expm1Poly(r);
}

/** 2^(k + bias) as floats, k from shifted(y); `bias` is the exponent offset. */
@inline function pow2(sh: v128, biasBits: i32): v128 {
  return i32x4.add(i32x4.shl(sh, 23), i32x4.splat(biasBits));
}

/** -2|x|, clamped at -20 (tanh(10) rounds to 1 in float32). */
@inline function negTwiceAbs(x: v128): v128 {
  const n = v128.or(x, i32x4.splat(SIGN_BITS));
  return f32x4.pmax(f32x4.add(n, n), vsplat(-20.0));
}

/** Load a whole vector (main loop) or one float into lane 0 (scalar tail). */
@inline function get(ptr: usize, full: bool): v128 {
  return full ? v128.load(ptr) : v128.load32_zero(ptr);
}

/** Store four consecutive vectors. */
@inline function store4(ptr: usize, v0: v128, v1: v128, v2: v128, v3: v128): void {
  v128.store(ptr, v0);
  v128.store(ptr, v1, 16);
  v128.store(ptr, v2, 32);
  v128.store(ptr, v3, 48);
}

/** Store a whole vector (main loop) or only lane 0 (scalar tail). */
@inline function put(ptr: usize, v: v128, full: bool): void {
  if (full) v128.store(ptr, v);
  else v128.store32_lane(ptr, v, 0);
}

/** Lanes where x has its sign bit set become all ones. */
@inline function negMask(x: v128): v128 {
  return i32x4.shr_s(x, 31);
}

/** tanh(x): -m / (2 + m) with m = expm1(-2|x|), sign restored. Saturates at |x| >= 10. */
@inline function tanhV(x: v128): v128 {
  const y = negTwiceAbs(x);
  const sh = shifted(y);
  const p = reducedExpm1(y, sh);
  const s = pow2(sh, 127 << 23);
  const m = f32x4.add(f32x4.mul(s, p), f32x4.sub(s, vsplat(1.0)));
  const t = f32x4.div(f32x4.sub(vsplat(0.0), m), f32x4.add(vsplat(2.0), m)); // 0 - m: +0 at x = 0
  return v128.or(t, v128.and(x, i32x4.splat(SIGN_BITS)));
}

// ---- sigmoid ------------------------------------------------------------------

// The sigmoid's constants, each in four lanes, are read from this table (a load
// per use): with f32x4.splat constants V8 keeps them all in registers across
// the loop and spills the working values instead, which measured slower.
const SIG = memory.data<f32>([
  -87.0, -87.0, -87.0, -87.0, // sigmoidNeg clamps y below (2^k stays normal; the result is 1)
  88.9, 88.9, 88.9, 88.9, // and above (k <= 128; 2^128 = +Inf gives exactly 0)
  1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341, // log2(e)
  12582912.0, 12582912.0, 12582912.0, 12582912.0, // SHIFTER
  0.693359375, 0.693359375, 0.693359375, 0.693359375, // ln 2, high part: 9 significant bits, k * it is exact
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, // ln 2, low part
  0.09997481107711792, 0.09997481107711792, 0.09997481107711792, 0.09997481107711792, // e2
  0.008320800960063934, 0.008320800960063934, 0.008320800960063934, 0.008320800960063934, // o1
  0.5, 0.5, 0.5, 0.5,
  1.0, 1.0, 1.0, 1.0, // also the bits 127 << 23
  -104.0, -104.0, -104.0, -104.0, // sigmoidTail clamps -|x| (e^-104 is under half the least subnormal)
  5.9604644775390625e-8, 5.9604644775390625e-8, 5.9604644775390625e-8, 5.9604644775390625e-8, // 2^-24
  16777216.0, 16777216.0, 16777216.0, 16777216.0, // 2^24: the bits (127 + 24) << 23
], 16);
const Y_LO = 0;
const Y_HI = 1;
const L2E = 2;
const SHIFT = 3;
const LN2H = 4;
const LN2L = 5;
const E2 = 6;
const O1 = 7;
const HALF = 8;
const ONE = 9;
const TAIL_LO = 10;
const TWO_M24 = 11;
const TWO_24 = 12;

/** Constant vector number `i` of SIG. */
@inline function cst(i: i32): v128 {
  return v128.load(SIG + <usize>(i << 4));
}

/** t = y log2(e) + SHIFTER: k = round(y / ln 2) in the low mantissa bits. */
@inline function sigShifted(y: v128): v128 {
  return f32x4.add(f32x4.mul(y, cst(L2E)), cst(SHIFT));
}

/** r = y - k ln 2 in [-ln2/2, ln2/2], given t = sigShifted(y). */
@inline function sigReduced(y: v128, t: v128): v128 {
  const kf = f32x4.sub(t, cst(SHIFT));
  return f32x4.sub(f32x4.sub(y, f32x4.mul(kf, cst(LN2H))), f32x4.mul(kf, cst(LN2L)));
}

/** E = 1 + e2 r^2, the even part of the rational approximation of e^r. */
@inline function ratEven(r2: v128): v128 {
  return f32x4.add(f32x4.mul(r2, cst(E2)), cst(ONE));
}

/** O = r (1/2 + o1 r^2), the odd part: e^r ~ P / Q = (E + O) / (E - O). */
@inline function ratOdd(r: v128, r2: v128): v128 {
  return f32x4.mul(f32x4.add(f32x4.mul(r2, cst(O1)), cst(HALF)), r);
}

/**
 * sigmoid(-y) = 1 / (1 + e^y) = Q / (Q + 2^k P), for the forward kernels; y is
 * clamped to [-87, 88.9].
 */
@inline function sigmoidNeg(x: v128): v128 {
  const y = f32x4.pmin(f32x4.pmax(x, cst(Y_LO)), cst(Y_HI));
  const t = sigShifted(y);
  const r = sigReduced(y, t);
  const r2 = f32x4.mul(r, r);
  const e = ratEven(r2);
  const o = ratOdd(r, r2);
  const q = f32x4.sub(e, o);
  const s = i32x4.add(i32x4.shl(t, 23), cst(ONE)); // 2^k: k added to 1.0's exponent
  return f32x4.div(q, f32x4.add(q, f32x4.mul(f32x4.add(e, o), s)));
}

/** sigmoid(x), for the forward kernels. */
@inline function sigmoidV(x: v128): v128 {
  return sigmoidNeg(v128.xor(x, i32x4.splat(SIGN_BITS)));
}

/**
 * sigmoid(-|x|) = 2^k P / (Q + 2^k P) for y = -|x| (clamped at -104), for the
 * backward kernels. 2^k is built as 2^(k+24) * 2^-24, so 2^k P rounds once into
 * the subnormals and the result stays accurate down to them.
 */
@inline function sigmoidTail(x: v128): v128 {
  const y = f32x4.pmax(v128.or(x, i32x4.splat(SIGN_BITS)), cst(TAIL_LO));
  const t = sigShifted(y);
  const r = sigReduced(y, t);
  const r2 = f32x4.mul(r, r);
  const e = ratEven(r2);
  const o = ratOdd(r, r2);
  const s = i32x4.add(i32x4.shl(t, 23), cst(TWO_24)); // 2^(k+24)
  const ep = f32x4.mul(f32x4.mul(f32x4.add(e, o), s), cst(TWO_M24));
  return f32x4.div(ep, f32x4.add(f32x4.sub(e, o), ep));
}

/** sigmoid(|x|) = 1 - s for s = sigmoidTail(x) <= 1/2: no cancellation. */
@inline function sigmoidHead(s: v128): v128 {
  return f32x4.sub(cst(ONE), s);
}

/** sigmoid(x) given s = sigmoid(-|x|) and h = 1 - s. */
@inline function pickPos(x: v128, s: v128, h: v128): v128 {
  return v128.bitselect(s, h, negMask(x));
}

/** sigmoid(-x) given s = sigmoid(-|x|) and h = 1 - s. */
@inline function pickNeg(x: v128, s: v128, h: v128): v128 {
  return v128.bitselect(h, s, negMask(x));
}

@inline function flipMask(flip: i32): v128 {
  return i32x4.splat(flip != 0 ? SIGN_BITS : 0);
}

// ---- gateBlend: sigmoid(a)·b + (1 - sigmoid(c))·d ---------------------------

@inline function blendAt(a: usize, b: usize, c: usize, d: usize, na: v128, o: usize, full: bool): v128 {
  const sa = sigmoidNeg(v128.xor(get(a + o, full), na)); // sigmoid(a'): na flips a to -a'
  const sc = sigmoidNeg(get(c + o, full)); // sigmoid(-c) = 1 - sigmoid(c)
  return f32x4.add(f32x4.mul(sa, get(b + o, full)), f32x4.mul(sc, get(d + o, full)));
}

/**
 * out = sigmoid(a')·b + sigmoid(-c)·d with a' = flipA ? -a : a.
 * flipA = 1 gives the reciprocal gated cell's (1 - sigmoid(a))·b + (1 - sigmoid(c))·d.
 */
export function gateBlend(a: usize, b: usize, c: usize, d: usize, out: usize, flipA: i32, begin: i32, end: i32, scratch: usize): void {
  const fa = flipMask(flipA == 0 ? 1 : 0);
  let i = begin;
  for (; i + 8 <= end; i += 8) {
    const o = <usize>i << 2;
    const v0 = blendAt(a, b, c, d, fa, o, true);
    const v1 = blendAt(a, b, c, d, fa, o + 16, true);
    v128.store(out + o, v0);
    v128.store(out + o, v1, 16);
  }
  for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), blendAt(a, b, c, d, fa, <usize>i << 2, true));
  for (; i < end; i++) v128.store32_lane(out + (<usize>i << 2), blendAt(a, b, c, d, fa, <usize>i << 2, false), 0);
}

@inline function blendBackAt(
  g: usize, a: usize, b: usize, c: usize, d: usize,
  ga: usize, gb: usize, gc: usize, gd: usize, fa: v128, o: usize, full: bool,
): void {
  const gv = get(g + o, full);
  const av = v128.xor(get(a + o, full), fa);
  const cv = get(c + o, full);
  const ta = sigmoidTail(av);
  const ha = sigmoidHead(ta);
  const tc = sigmoidTail(cv);
  const hc = sigmoidHead(tc);
  // sigmoid'(z) = sigmoid(z) sigmoid(-z) = h t, and d/da sigmoid(-a) = -sigmoid'(a).
  put(ga + o, v128.xor(f32x4.mul(f32x4.mul(gv, get(b + o, full)), f32x4.mul(ha, ta)), fa), full);
  put(gb + o, f32x4.mul(gv, pickPos(av, ta, ha)), full);
  put(gc + o, f32x4.neg(f32x4.mul(f32x4.mul(gv, get(d + o, full)), f32x4.mul(hc, tc))), full);
  put(gd + o, f32x4.mul(gv, pickNeg(cv, tc, hc)), full);
}

/** Cotangents of gateBlend (same flipA) given the output cotangent g: all four in one pass. */
export function gateBlendBackward(
  g: usize, a: usize, b: usize, c: usize, d: usize,
  ga: usize, gb: usize, gc: usize, gd: usize, flipA: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const fa = flipMask(flipA);
  let i = begin;
  for (; i + 4 <= end; i += 4) blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, <usize>i << 2, true);
  for (; i < end; i++) blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, <usize>i << 2, false);
}

// ---- sigmoidGate: (1 - sigmoid(a))·x ----------------------------------------

@inline function sigGateAt(a: usize, x: usize, o: usize, full: bool): v128 {
  return f32x4.mul(sigmoidNeg(get(a + o, full)), get(x + o, full));
}

/** out = (1 - sigmoid(a))·x, computed as sigmoid(-a)·x. */
export function gateSigmoid(a: usize, x: usize, out: usize, begin: i32, end: i32, scratch: usize): void {
  let i = begin;
  for (; i + 16 <= end; i += 16) {
    const o = <usize>i << 2;
    store4(out + o, sigGateAt(a, x, o, true), sigGateAt(a, x, o + 16, true), sigGateAt(a, x, o + 32, true), sigGateAt(a, x, o + 48, true));
  }
  for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), sigGateAt(a, x, <usize>i << 2, true));
  for (; i < end; i++) v128.store32_lane(out + (<usize>i << 2), sigGateAt(a, x, <usize>i << 2, false), 0);
}

@inline function sigGateBackAt(g: usize, a: usize, x: usize, ga: usize, gx: usize, o: usize, full: bool): void {
  const gv = get(g + o, full);
  const av = get(a + o, full);
  const t = sigmoidTail(av);
  const h = sigmoidHead(t);
  put(ga + o, f32x4.neg(f32x4.mul(f32x4.mul(gv, get(x + o, full)), f32x4.mul(h, t))), full);
  put(gx + o, f32x4.mul(gv, pickNeg(av, t, h)), full);
}

/** ga = -g·x·sigmoid'(a), gx = g·(1 - sigmoid(a)). */
export function gateSigmoidBackward(g: usize, a: usize, x: usize, ga: usize, gx: usize, begin: i32, end: i32, scratch: usize): void {
  let i = begin;
  for (; i + 16 <= end; i += 16) {
    const o = <usize>i << 2;
    sigGateBackAt(g, a, x, ga, gx, o, true);
    sigGateBackAt(g, a, x, ga, gx, o + 16, true);
    sigGateBackAt(g, a, x, ga, gx, o + 32, true);
    sigGateBackAt(g, a, x, ga, gx, o + 48, true);
  }
  for (; i + 4 <= end; i += 4) sigGateBackAt(g, a, x, ga, gx, <usize>i << 2, true);
  for (; i < end; i++) sigGateBackAt(g, a, x, ga, gx, <usize>i << 2, false);
}

// ---- LSTM (nayebi2022 eq. 6): c' = sigmoid(f)·c + sigmoid(i)·tanh(g),
//      h = sigmoid(o)·tanh(c') ------------------------------------------------

@inline function lstmStateAt(i: usize, f: usize, g: usize, c: usize, o: usize, full: bool): v128 {
  const sf = sigmoidV(get(f + o, full));
  const si = sigmoidV(get(i + o, full));
  const tg = tanhV(get(g + o, full));
  return f32x4.add(f32x4.mul(sf, get(c + o, full)), f32x4.mul(si, tg));
}

/** New LSTM cell state c' = sigmoid(f)·c + sigmoid(i)·tanh(g). */
export function lstmState(i: usize, f: usize, g: usize, c: usize, out: usize, begin: i32, end: i32, scratch: usize): void {
  let k = begin;
  for (; k + 16 <= end; k += 16) {
    const o = <usize>k << 2;
    const v0 = lstmStateAt(i, f, g, c, o, true);
    const v1 = lstmStateAt(i, f, g, c, o + 16, true);
    const v2 = lstmStateAt(i, f, g, c, o + 32, true);
    const v3 = lstmStateAt(i, f, g, c, o + 48, true);
    store4(out + o, v0, v1, v2, v3);
  }
  for (; k + 4 <= end; k += 4) v128.store(out + (<usize>k << 2), lstmStateAt(i, f, g, c, <usize>k << 2, true));
  for (; k < end; k++) v128.store32_lane(out + (<usize>k << 2), lstmStateAt(i, f, g, c, <usize>k << 2, false), 0);
}

// Backward passes need tanh(x) = -m / (2 + m) and its derivative
// 1 - tanh(x)^2 = 4e / (2 + m)^2, with m = expm1(-2|x|) and e = exp(-2|x|)
// from one range reduction. The derivative stays accurate far beyond where
// tanh saturates, so the argument is clamped at -104 (e underflows to 0) and
// 2^k is carried as sw = 2^(k+24) as in sigmoidTail. For |x| < 10 m is the very
// value tanhV computes, so forward and backward see the same tanh.

/** -2|x|, clamped at -104. */
@inline function negTwiceAbsWide(x: v128): v128 {
  const n = v128.or(x, i32x4.splat(SIGN_BITS));
  return f32x4.pmax(f32x4.add(n, n), vsplat(-104.0));
}

/** m = 2^k p + (2^k - 1) = expm1(y), given p = expm1(r) and sw = 2^(k+24). */
@inline function expm1Of(p: v128, sw: v128): v128 {
  const s = f32x4.mul(sw, vsplat(5.9604644775390625e-8)); // 2^k, exact
  return f32x4.add(f32x4.mul(s, p), f32x4.sub(s, vsplat(1.0)));
}

/** e = 2^k (1 + p) = exp(y), rounded once into the subnormals. */
@inline function expOf(p: v128, sw: v128): v128 {
  return f32x4.mul(f32x4.add(f32x4.mul(sw, p), sw), vsplat(5.9604644775390625e-8));
}

@inline function tanhOf(x: v128, m: v128, den: v128): v128 {
  return v128.or(f32x4.mul(f32x4.sub(vsplat(0.0), m), den), v128.and(x, i32x4.splat(SIGN_BITS)));
}

/** 1 - tanh^2 = 4 e den^2, den = 1 / (2 + m). */
@inline function sech2Of(e: v128, den: v128): v128 {
  return f32x4.mul(f32x4.mul(vsplat(4.0), e), f32x4.mul(den, den));
}

@inline function lstmStateBackAt(
  G: usize, i: usize, f: usize, g: usize, c: usize,
  gi: usize, gf: usize, gg: usize, gc: usize, o: usize, full: bool,
): void {
  const Gv = get(G + o, full);
  const iv = get(i + o, full);
  const fv = get(f + o, full);
  const gv = get(g + o, full);
  const ti = sigmoidTail(iv);
  const hi = sigmoidHead(ti);
  const tf = sigmoidTail(fv);
  const hf = sigmoidHead(tf);
  const y = negTwiceAbsWide(gv);
  const sh = shifted(y);
  const p = reducedExpm1(y, sh);
  const sw = pow2(sh, (127 + 24) << 23);
  const m = expm1Of(p, sw);
  const den = f32x4.div(vsplat(1.0), f32x4.add(vsplat(2.0), m));
  const tg = tanhOf(gv, m, den);
  const dg = sech2Of(expOf(p, sw), den);
  put(gi + o, f32x4.mul(f32x4.mul(Gv, tg), f32x4.mul(hi, ti)), full);
  put(gf + o, f32x4.mul(f32x4.mul(Gv, get(c + o, full)), f32x4.mul(hf, tf)), full);
  put(gg + o, f32x4.mul(f32x4.mul(Gv, pickPos(iv, ti, hi)), dg), full);
  put(gc + o, f32x4.mul(Gv, pickPos(fv, tf, hf)), full);
}

/** Cotangents of lstmState for i, f, g, c in one pass. */
export function lstmStateBackward(
  G: usize, i: usize, f: usize, g: usize, c: usize,
  gi: usize, gf: usize, gg: usize, gc: usize,
  begin: i32, end: i32, scratch: usize,
): void {
  let k = begin;
  for (; k + 16 <= end; k += 16) {
    const o = <usize>k << 2;
    lstmStateBackAt(G, i, f, g, c, gi, gf, gg, gc, o, true);
    lstmStateBackAt(G, i, f, g, c, gi, gf, gg, gc, o + 16, true);
    lstmStateBackAt(G, i, f, g, c, gi, gf, gg, gc, o + 32, true);
    lstmStateBackAt(G, i, f, g, c, gi, gf, gg, gc, o + 48, true);
  }
  for (; k + 4 <= end; k += 4) lstmStateBackAt(G, i, f, g, c, gi, gf, gg, gc, <usize>k << 2, true);
  for (; k < end; k++) lstmStateBackAt(G, i, f, g, c, gi, gf, gg, gc, <usize>k << 2, false);
}

@inline function lstmOutputAt(og: usize, c: usize, o: usize, full: bool): v128 {
  return f32x4.mul(sigmoidV(get(og + o, full)), tanhV(get(c + o, full)));
}

/** LSTM output h = sigmoid(o)·tanh(c). */
export function lstmOutput(og: usize, c: usize, out: usize, begin: i32, end: i32, scratch: usize): void {
  let k = begin;
  for (; k + 16 <= end; k += 16) {
    const o = <usize>k << 2;
    const v0 = lstmOutputAt(og, c, o, true);
    const v1 = lstmOutputAt(og, c, o + 16, true);
    const v2 = lstmOutputAt(og, c, o + 32, true);
    const v3 = lstmOutputAt(og, c, o + 48, true);
    store4(out + o, v0, v1, v2, v3);
  }
  for (; k + 4 <= end; k += 4) v128.store(out + (<usize>k << 2), lstmOutputAt(og, c, <usize>k << 2, true));
  for (; k < end; k++) v128.store32_lane(out + (<usize>k << 2), lstmOutputAt(og, c, <usize>k << 2, false), 0);
}

@inline function lstmOutputBackAt(G: usize, og: usize, c: usize, go: usize, gc: usize, o: usize, full: bool): void {
  const Gv = get(G + o, full);
  const ov = get(og + o, full);
  const cv = get(c + o, full);
  const to = sigmoidTail(ov);
  const ho = sigmoidHead(to);
  const y = negTwiceAbsWide(cv);
  const sh = shifted(y);
  const p = reducedExpm1(y, sh);
  const sw = pow2(sh, (127 + 24) << 23);
  const m = expm1Of(p, sw);
  const den = f32x4.div(vsplat(1.0), f32x4.add(vsplat(2.0), m));
  const tc = tanhOf(cv, m, den);
  const dc = sech2Of(expOf(p, sw), den);
  put(go + o, f32x4.mul(f32x4.mul(Gv, tc), f32x4.mul(ho, to)), full);
  put(gc + o, f32x4.mul(f32x4.mul(Gv, pickPos(ov, to, ho)), dc), full);
}

/** Cotangents of lstmOutput for o and c. */
export function lstmOutputBackward(G: usize, og: usize, c: usize, go: usize, gc: usize, begin: i32, end: i32, scratch: usize): void {
  let k = begin;
  for (; k + 16 <= end; k += 16) {
    const o = <usize>k << 2;
    lstmOutputBackAt(G, og, c, go, gc, o, true);
    lstmOutputBackAt(G, og, c, go, gc, o + 16, true);
    lstmOutputBackAt(G, og, c, go, gc, o + 32, true);
    lstmOutputBackAt(G, og, c, go, gc, o + 48, true);
  }
  for (; k + 4 <= end; k += 4) lstmOutputBackAt(G, og, c, go, gc, <usize>k << 2, true);
  for (; k < end; k++) lstmOutputBackAt(G, og, c, go, gc, <usize>k << 2, false);
}

// ---- GRU (nayebi2022 eq. 4): s' = u∘s + (1 - u)∘c, u = sigmoid(uPre) --------

@inline function gruAt(u: usize, c: usize, s: usize, o: usize, full: bool): v128 {
  const uv = get(u + o, full);
  const t = sigmoidTail(uv);
  const h = sigmoidHead(t);
  return f32x4.add(f32x4.mul(pickPos(uv, t, h), get(s + o, full)), f32x4.mul(pickNeg(uv, t, h), get(c + o, full)));
}

/** out = sigmoid(u)·s + (1 - sigmoid(u))·c: u the update gate's pre-activation, c the candidate, s the old state. */
export function gruState(u: usize, c: usize, s: usize, out: usize, begin: i32, end: i32, scratch: usize): void {
  let k = begin;
  for (; k + 16 <= end; k += 16) {
    const o = <usize>k << 2;
    store4(out + o, gruAt(u, c, s, o, true), gruAt(u, c, s, o + 16, true), gruAt(u, c, s, o + 32, true), gruAt(u, c, s, o + 48, true));
  }
  for (; k + 4 <= end; k += 4) v128.store(out + (<usize>k << 2), gruAt(u, c, s, <usize>k << 2, true));
  for (; k < end; k++) v128.store32_lane(out + (<usize>k << 2), gruAt(u, c, s, <usize>k << 2, false), 0);
}

@inline function gruBackAt(G: usize, u: usize, c: usize, s: usize, gu: usize, gc: usize, gs: usize, o: usize, full: bool): void {
  const Gv = get(G + o, full);
  const uv = get(u + o, full);
  const t = sigmoidTail(uv);
  const h = sigmoidHead(t);
  const du = f32x4.mul(h, t);
  put(gu + o, f32x4.mul(f32x4.mul(Gv, f32x4.sub(get(s + o, full), get(c + o, full))), du), full);
  put(gc + o, f32x4.mul(Gv, pickNeg(uv, t, h)), full);
  put(gs + o, f32x4.mul(Gv, pickPos(uv, t, h)), full);
}

/** Cotangents of gruState: gu = g·(s - c)·sigmoid'(u), gc = g·(1 - sigmoid(u)), gs = g·sigmoid(u). */
export function gruStateBackward(
  G: usize, u: usize, c: usize, s: usize,
  gu: usize, gc: usize, gs: usize,
  begin: i32, end: i32, scratch: usize,
): void {
  let k = begin;
  for (; k + 16 <= end; k += 16) {
    const o = <usize>k << 2;
    gruBackAt(G, u, c, s, gu, gc, gs, o, true);
    gruBackAt(G, u, c, s, gu, gc, gs, o + 16, true);
    gruBackAt(G, u, c, s, gu, gc, gs, o + 32, true);
    gruBackAt(G, u, c, s, gu, gc, gs, o + 48, true);
  }
  for (; k + 4 <= end; k += 4) gruBackAt(G, u, c, s, gu, gc, gs, <usize>k << 2, true);
  for (; k < end; k++) gruBackAt(G, u, c, s, gu, gc, gs, <usize>k << 2, false);
}

// ---- test hooks: the gates' own sigmoid and tanh, elementwise ----------------

@inline function sigTestAt(x: usize, out: usize, o: usize, full: bool): void {
  put(out + o, sigmoidV(get(x + o, full)), full);
}

/** out = sigmoid(x) with the gate kernels' arithmetic (for accuracy tests). */
export function gateSigmoidTest(x: usize, out: usize, begin: i32, end: i32, scratch: usize): void {
  let k = begin;
  for (; k + 4 <= end; k += 4) sigTestAt(x, out, <usize>k << 2, true);
  for (; k < end; k++) sigTestAt(x, out, <usize>k << 2, false);
}

@inline function tanhTestAt(x: usize, out: usize, o: usize, full: bool): void {
  put(out + o, tanhV(get(x + o, full)), full);
}

/** out = tanh(x) with the gate kernels' arithmetic (for accuracy tests). */
export function gateTanhTest(x: usize, out: usize, begin: i32, end: i32, scratch: usize): void {
  let k = begin;
  for (; k + 4 <= end; k += 4) tanhTestAt(x, out, <usize>k << 2, true);
  for (; k < end; k++) tanhTestAt(x, out, <usize>k << 2, false);
}
