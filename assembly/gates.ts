// Fused gate kernels of the recurrent cells, forward and backward.
//
// Every kernel is elementwise over same-shape operands: the range
// [begin, end) counts elements, `scratch` is unused. SIMD four lanes at a
// time, four vectors per loop trip (independent chains for the out-of-order
// core: measured faster than one or two, and than eight); the scalar tail
// runs the very same vector code on one lane, so an element's bits never
// depend on where a range starts or ends.
//
// sigmoid and tanh are built on one exp: k = round(y / ln 2),
// r = y - k ln 2 (two-part ln 2, |r| <= ln2/2), expm1(r) by a degree-6
// polynomial, and 2^k by building the exponent bits.
//   Forward: sigmoid(x) = 1 / (1 + exp(-x)), and 1 - sigmoid(c) is computed
//   as sigmoid(-c) = 1 / (1 + exp(c)). Either way the division never
//   cancels, so both keep full relative accuracy (~3 ulp); exp overflowing to
//   +Inf gives exactly 0, so results under about 4e-39 flush to 0.
//   Backward: sigmoid and its derivative sigmoid(x) sigmoid(-x) = e / (1 + e)^2
//   from e = exp(-|x|) in (0, 1], which never overflows and runs correctly
//   into the subnormals.
//   tanh(|x|) = -m / (2 + m), m = expm1(-2|x|): accurate near 0 too; the
//   backward kernels also get 1 - tanh^2 = 4e / (2 + m)^2 from the same
//   reduction.
// Separate mul and add only (no FMA, no approximate reciprocal), so results
// are the same on every CPU. Finite inputs never give NaN; ±Inf gives the
// limits; NaN propagates.

// ---- shared vector math -----------------------------------------------------

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

/**
 * exp(-|x|) in (0, 1]. Clamped at -104 (where exp rounds to 0); 2^k is built
 * as 2^(k+24) * 2^-24 so results below 2^-126 round correctly into the
 * subnormals and reach 0.
 */
@inline function expNegAbs(x: v128): v128 {
  const y = f32x4.pmax(v128.or(x, i32x4.splat(SIGN_BITS)), vsplat(-104.0));
  const sh = shifted(y);
  const p = reducedExpm1(y, sh);
  const s = pow2(sh, (127 + 24) << 23);
  return f32x4.mul(f32x4.mul(f32x4.add(p, vsplat(1.0)), s), vsplat(5.9604644775390625e-8)); // 2^-24
}

/** sigmoid(x) and sigmoid(-x) from e = exp(-|x|), r = 1 / (1 + e): r on the side of the sign, e·r on the other. */
@inline function pickPos(e: v128, r: v128, x: v128): v128 {
  return v128.bitselect(f32x4.mul(e, r), r, negMask(x));
}

@inline function pickNeg(e: v128, r: v128, x: v128): v128 {
  return v128.bitselect(r, f32x4.mul(e, r), negMask(x));
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

/**
 * 1 / (1 + exp(y)) = sigmoid(-y), for the forward kernels: one exp, one
 * division, no select. exp's argument is clamped to [-87, 89]: below, the
 * result is 1 in float32 anyway; near the top, 2^k overflows to +Inf and the
 * result is exactly 0 (from y > 88.37, where it is under about 4e-39).
 */
@inline function sigmoidOfNeg(y: v128): v128 {
  const yc = f32x4.pmin(f32x4.pmax(y, vsplat(-87.0)), vsplat(89.0));
  const sh = shifted(yc);
  const p = reducedExpm1(yc, sh);
  const e = f32x4.mul(f32x4.add(p, vsplat(1.0)), pow2(sh, 127 << 23));
  return f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), e));
}

@inline function sigmoidV(x: v128): v128 {
  return sigmoidOfNeg(f32x4.neg(x));
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

@inline function flipMask(flip: i32): v128 {
  return i32x4.splat(flip != 0 ? SIGN_BITS : 0);
}

// ---- gateBlend: sigmoid(a)·b + (1 - sigmoid(c))·d ---------------------------

@inline function blendAt(a: usize, b: usize, c: usize, d: usize, na: v128, o: usize, full: bool): v128 {
  const sa = sigmoidOfNeg(v128.xor(get(a + o, full), na)); // sigmoid(a'), na flips a to -a'
  const sc = sigmoidOfNeg(get(c + o, full)); // sigmoid(-c) = 1 - sigmoid(c)
  return f32x4.add(f32x4.mul(sa, get(b + o, full)), f32x4.mul(sc, get(d + o, full)));
}

/**
 * out = sigmoid(a')·b + sigmoid(-c)·d with a' = flipA ? -a : a.
 * flipA = 1 gives the reciprocal gated cell's (1 - sigmoid(a))·b + (1 - sigmoid(c))·d.
 */
export function gateBlend(a: usize, b: usize, c: usize, d: usize, out: usize, flipA: i32, begin: i32, end: i32, scratch: usize): void {
  const fa = flipMask(flipA == 0 ? 1 : 0);
  let i = begin;
  for (; i + 16 <= end; i += 16) {
    const o = <usize>i << 2;
    const v0 = blendAt(a, b, c, d, fa, o, true);
    const v1 = blendAt(a, b, c, d, fa, o + 16, true);
    const v2 = blendAt(a, b, c, d, fa, o + 32, true);
    const v3 = blendAt(a, b, c, d, fa, o + 48, true);
    store4(out + o, v0, v1, v2, v3);
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
  const ea = expNegAbs(av);
  const ra = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), ea));
  const ec = expNegAbs(cv);
  const rc = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), ec));
  const da = f32x4.mul(f32x4.mul(ea, ra), ra); // sigmoid'(a) = sigmoid(a) sigmoid(-a) = e / (1 + e)^2
  const dc = f32x4.mul(f32x4.mul(ec, rc), rc);
  put(ga + o, v128.xor(f32x4.mul(f32x4.mul(gv, get(b + o, full)), da), fa), full);
  put(gb + o, f32x4.mul(gv, pickPos(ea, ra, av)), full);
  put(gc + o, f32x4.neg(f32x4.mul(f32x4.mul(gv, get(d + o, full)), dc)), full);
  put(gd + o, f32x4.mul(gv, pickNeg(ec, rc, cv)), full);
}

/** Cotangents of gateBlend (same flipA) given the output cotangent g: all four in one pass. */
export function gateBlendBackward(
  g: usize, a: usize, b: usize, c: usize, d: usize,
  ga: usize, gb: usize, gc: usize, gd: usize, flipA: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const fa = flipMask(flipA);
  let i = begin;
  for (; i + 16 <= end; i += 16) {
    const o = <usize>i << 2;
    blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, o, true);
    blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, o + 16, true);
    blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, o + 32, true);
    blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, o + 48, true);
  }
  for (; i + 4 <= end; i += 4) blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, <usize>i << 2, true);
  for (; i < end; i++) blendBackAt(g, a, b, c, d, ga, gb, gc, gd, fa, <usize>i << 2, false);
}

// ---- sigmoidGate: (1 - sigmoid(a))·x ----------------------------------------

@inline function sigGateAt(a: usize, x: usize, o: usize, full: bool): v128 {
  return f32x4.mul(sigmoidOfNeg(get(a + o, full)), get(x + o, full));
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
  const e = expNegAbs(av);
  const r = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), e));
  const da = f32x4.mul(f32x4.mul(e, r), r);
  put(ga + o, f32x4.neg(f32x4.mul(f32x4.mul(gv, get(x + o, full)), da)), full);
  put(gx + o, f32x4.mul(gv, pickNeg(e, r, av)), full);
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
// 2^k is carried as sw = 2^(k+24) as in expNegAbs. For |x| < 10 m is the very
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
  const ei = expNegAbs(iv);
  const ri = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), ei));
  const ef = expNegAbs(fv);
  const rf = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), ef));
  const y = negTwiceAbsWide(gv);
  const sh = shifted(y);
  const p = reducedExpm1(y, sh);
  const sw = pow2(sh, (127 + 24) << 23);
  const m = expm1Of(p, sw);
  const den = f32x4.div(vsplat(1.0), f32x4.add(vsplat(2.0), m));
  const tg = tanhOf(gv, m, den);
  const dg = sech2Of(expOf(p, sw), den);
  put(gi + o, f32x4.mul(f32x4.mul(Gv, tg), f32x4.mul(f32x4.mul(ei, ri), ri)), full);
  put(gf + o, f32x4.mul(f32x4.mul(Gv, get(c + o, full)), f32x4.mul(f32x4.mul(ef, rf), rf)), full);
  put(gg + o, f32x4.mul(f32x4.mul(Gv, pickPos(ei, ri, iv)), dg), full);
  put(gc + o, f32x4.mul(Gv, pickPos(ef, rf, fv)), full);
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
  const eo = expNegAbs(ov);
  const ro = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), eo));
  const y = negTwiceAbsWide(cv);
  const sh = shifted(y);
  const p = reducedExpm1(y, sh);
  const sw = pow2(sh, (127 + 24) << 23);
  const m = expm1Of(p, sw);
  const den = f32x4.div(vsplat(1.0), f32x4.add(vsplat(2.0), m));
  const tc = tanhOf(cv, m, den);
  const dc = sech2Of(expOf(p, sw), den);
  put(go + o, f32x4.mul(f32x4.mul(Gv, tc), f32x4.mul(f32x4.mul(eo, ro), ro)), full);
  put(gc + o, f32x4.mul(f32x4.mul(Gv, pickPos(eo, ro, ov)), dc), full);
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
  const e = expNegAbs(uv);
  const r = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), e));
  return f32x4.add(f32x4.mul(pickPos(e, r, uv), get(s + o, full)), f32x4.mul(pickNeg(e, r, uv), get(c + o, full)));
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
  const e = expNegAbs(uv);
  const r = f32x4.div(vsplat(1.0), f32x4.add(vsplat(1.0), e));
  const du = f32x4.mul(f32x4.mul(e, r), r);
  put(gu + o, f32x4.mul(f32x4.mul(Gv, f32x4.sub(get(s + o, full), get(c + o, full))), du), full);
  put(gc + o, f32x4.mul(Gv, pickNeg(e, r, uv)), full);
  put(gs + o, f32x4.mul(Gv, pickPos(e, r, uv)), full);
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
