// Softmax and log-softmax over the middle axis of an (outer, n, inner) view,
// with their fused backward. Numerically stable: exponents are x - max.
// Ranges run over the outer*inner independent slices (flattened); every sum
// has one order fixed by (n, inner): for inner = 1, 16 running partial sums
// over k = 0, 16, ... combined by a fixed tree and then the tail in order; for
// inner > 1 one sequential sum per slice (vector lanes and the scalar tail
// compute the same thing).
import { vmath } from './elementwise';

@inline function lane0(v: v128): f32 {
  return f32x4.extract_lane(v, 0);
}

@inline function hsum(a0: v128, a1: v128, a2: v128, a3: v128): f32 {
  const v = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// ---- the two variants ---------------------------------------------------------
// keep: what the exponential pass stores; fin: the output from x, the max m and
// the sum s; term / dx: the backward's sum term and result.

class Soft {
  @inline keep<W>(p: usize, e: v128): void { changetype<W>(0).st(p, e); }
  @inline prep(s: v128): v128 { return s; }
  @inline fin(x: v128, m: v128, y: v128, s: v128): v128 { return f32x4.div(y, s); }
  @inline term(g: v128, y: v128): v128 { return f32x4.mul(g, y); }
  @inline dx(g: v128, y: v128, s: v128): v128 { return f32x4.mul(y, f32x4.sub(g, s)); }
}

class LogSoft {
  @inline keep<W>(p: usize, e: v128): void {}
  @inline prep(s: v128): v128 { return vmath.log(s); }
  @inline fin(x: v128, m: v128, y: v128, ls: v128): v128 { return f32x4.sub(f32x4.sub(x, m), ls); }
  @inline term(g: v128, y: v128): v128 { return g; }
  @inline dx(g: v128, y: v128, s: v128): v128 { return f32x4.sub(g, f32x4.mul(vmath.exp(y), s)); }
}

// Column access: four adjacent slices (W4) or one slice splatted (W1).
class W4 {
  @inline ld(p: usize): v128 { return v128.load(p); }
  @inline st(p: usize, v: v128): void { v128.store(p, v); }
}
class W1 {
  @inline ld(p: usize): v128 { return v128.load32_splat(p); }
  @inline st(p: usize, v: v128): void { store<f32>(p, lane0(v)); }
}

// ---- forward ------------------------------------------------------------------

// One contiguous row of n (inner = 1).
function softmaxRow<S>(x: usize, y: usize, n: i32): void {
  const op = changetype<S>(0);
  // max (its order does not matter)
  let m0 = f32x4.splat(-Infinity);
  let m1 = m0;
  let k = 0;
  for (; k + 8 <= n; k += 8) {
    const q = x + (<usize>k << 2);
    m0 = f32x4.max(m0, v128.load(q));
    m1 = f32x4.max(m1, v128.load(q, 16));
  }
  const mv = f32x4.max(m0, m1);
  let m = max<f32>(max<f32>(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max<f32>(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; k < n; k++) m = max<f32>(m, load<f32>(x + (<usize>k << 2)));
  const vm = f32x4.splat(m);
  // sum of e^(x - m); softmax keeps the exponentials in y
  let a0 = f32x4.splat(0.0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  k = 0;
  for (; k + 16 <= n; k += 16) {
    const o = <usize>k << 2;
    const e0 = vmath.exp(f32x4.sub(v128.load(x + o), vm));
    const e1 = vmath.exp(f32x4.sub(v128.load(x + o, 16), vm));
    const e2 = vmath.exp(f32x4.sub(v128.load(x + o, 32), vm));
    const e3 = vmath.exp(f32x4.sub(v128.load(x + o, 48), vm));
    op.keep<W4>(y + o, e0);
    op.keep<W4>(y + o + 16, e1);
    op.keep<W4>(y + o + 32, e2);
    op.keep<W4>(y + o + 48, e3);
    a0 = f32x4.add(a0, e0);
    a1 = f32x4.add(a1, e1);
    a2 = f32x4.add(a2, e2);
    a3 = f32x4.add(a3, e3);
  }
  let s = hsum(a0, a1, a2, a3);
  for (; k < n; k++) {
    const o = <usize>k << 2;
    const e = vmath.exp(f32x4.splat(load<f32>(x + o) - m));
    op.keep<W1>(y + o, e);
    s += lane0(e);
  }
  const vs = op.prep(f32x4.splat(s));
  k = 0;
  for (; k + 4 <= n; k += 4) {
    const o = <usize>k << 2;
    v128.store(y + o, op.fin(v128.load(x + o), vm, v128.load(y + o), vs));
  }
  for (; k < n; k++) {
    const o = <usize>k << 2;
    store<f32>(y + o, lane0(op.fin(v128.load32_splat(x + o), vm, v128.load32_splat(y + o), vs)));
  }
}

// W slices (4 or 1) of a strided column starting at x, y; rs = row stride in bytes.
@inline function softmaxCol<S, W>(x: usize, y: usize, n: i32, rs: usize): void {
  const op = changetype<S>(0);
  const w = changetype<W>(0);
  let m = f32x4.splat(-Infinity);
  let p: usize = 0;
  for (let k = 0; k < n; k++, p += rs) m = f32x4.max(m, w.ld(x + p));
  let s = f32x4.splat(0.0);
  p = 0;
  for (let k = 0; k < n; k++, p += rs) {
    const e = vmath.exp(f32x4.sub(w.ld(x + p), m));
    op.keep<W>(y + p, e);
    s = f32x4.add(s, e);
  }
  const vs = op.prep(s);
  p = 0;
  for (let k = 0; k < n; k++, p += rs) w.st(y + p, op.fin(w.ld(x + p), m, w.ld(y + p), vs));
}

/**
 * y = softmax (log = 0) or log-softmax (log = 1) of x over the middle axis of
 * (outer, n, inner); range over the outer*inner slices; n >= 1.
 */
export function softmax(x: usize, y: usize, outer: i32, n: i32, inner: i32, log: i32, begin: i32, end: i32, scratch: usize): void {
  if (inner == 1) {
    for (let o = begin; o < end; o++) {
      const off = (<usize>o * <usize>n) << 2;
      if (log == 0) softmaxRow<Soft>(x + off, y + off, n);
      else softmaxRow<LogSoft>(x + off, y + off, n);
    }
    return;
  }
  const rs = <usize>inner << 2;
  let idx = begin;
  while (idx < end) {
    const o = idx / inner;
    let j = idx - o * inner;
    const j1 = min<i32>(inner, j + (end - idx));
    idx += j1 - j;
    const base = <usize>o * <usize>n * rs;
    for (; j + 4 <= j1; j += 4) {
      const off = base + (<usize>j << 2);
      if (log == 0) softmaxCol<Soft, W4>(x + off, y + off, n, rs);
      else softmaxCol<LogSoft, W4>(x + off, y + off, n, rs);
    }
    for (; j < j1; j++) {
      const off = base + (<usize>j << 2);
      if (log == 0) softmaxCol<Soft, W1>(x + off, y + off, n, rs);
      else softmaxCol<LogSoft, W1>(x + off, y + off, n, rs);
    }
  }
}

// ---- backward -----------------------------------------------------------------

// softmax: dx = y (g - sum(g y)); log-softmax: dx = g - e^y sum(g). One contiguous row.
function gradRow<S>(y: usize, g: usize, dx: usize, n: i32): void {
  const op = changetype<S>(0);
  let a0 = f32x4.splat(0.0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    const o = <usize>k << 2;
    a0 = f32x4.add(a0, op.term(v128.load(g + o), v128.load(y + o)));
    a1 = f32x4.add(a1, op.term(v128.load(g + o, 16), v128.load(y + o, 16)));
    a2 = f32x4.add(a2, op.term(v128.load(g + o, 32), v128.load(y + o, 32)));
    a3 = f32x4.add(a3, op.term(v128.load(g + o, 48), v128.load(y + o, 48)));
  }
  let s = hsum(a0, a1, a2, a3);
  for (; k < n; k++) {
    const o = <usize>k << 2;
    s += lane0(op.term(v128.load32_splat(g + o), v128.load32_splat(y + o)));
  }
  const vs = f32x4.splat(s);
  k = 0;
  for (; k + 4 <= n; k += 4) {
    const o = <usize>k << 2;
    v128.store(dx + o, op.dx(v128.load(g + o), v128.load(y + o), vs));
  }
  for (; k < n; k++) {
    const o = <usize>k << 2;
    store<f32>(dx + o, lane0(op.dx(v128.load32_splat(g + o), v128.load32_splat(y + o), vs)));
  }
}

@inline function gradCol<S, W>(y: usize, g: usize, dx: usize, n: i32, rs: usize): void {
  const op = changetype<S>(0);
  const w = changetype<W>(0);
  let s = f32x4.splat(0.0);
  let p: usize = 0;
  for (let k = 0; k < n; k++, p += rs) s = f32x4.add(s, op.term(w.ld(g + p), w.ld(y + p)));
  p = 0;
  for (let k = 0; k < n; k++, p += rs) w.st(dx + p, op.dx(w.ld(g + p), w.ld(y + p), s));
}

/**
 * Fused backward of `softmax`: dx from the output y and its cotangent g
 * (softmax: dx = y (g - sum(g y)); log-softmax: dx = g - exp(y) sum(g)).
 * Same view and range as `softmax`.
 */
export function softmax_grad(y: usize, g: usize, dx: usize, outer: i32, n: i32, inner: i32, log: i32, begin: i32, end: i32, scratch: usize): void {
  if (inner == 1) {
    for (let o = begin; o < end; o++) {
      const off = (<usize>o * <usize>n) << 2;
      if (log == 0) gradRow<Soft>(y + off, g + off, dx + off, n);
      else gradRow<LogSoft>(y + off, g + off, dx + off, n);
    }
    return;
  }
  const rs = <usize>inner << 2;
  let idx = begin;
  while (idx < end) {
    const o = idx / inner;
    let j = idx - o * inner;
    const j1 = min<i32>(inner, j + (end - idx));
    idx += j1 - j;
    const base = <usize>o * <usize>n * rs;
    for (; j + 4 <= j1; j += 4) {
      const off = base + (<usize>j << 2);
      if (log == 0) gradCol<Soft, W4>(y + off, g + off, dx + off, n, rs);
      else gradCol<LogSoft, W4>(y + off, g + off, dx + off, n, rs);
    }
    for (; j < j1; j++) {
      const off = base + (<usize>j << 2);
      if (log == 0) gradCol<Soft, W1>(y + off, g + off, dx + off, n, rs);
      else gradCol<LogSoft, W1>(y + off, g + off, dx + off, n, rs);
    }
  }
}
