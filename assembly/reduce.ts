// Reductions over the middle axis of an (outer, n, inner) view of a contiguous
// tensor: y[o, j] = reduce_k x[o, k, j]. Every kernel takes a range of the
// outer*inner outputs (flattened, row-major), so each output is owned by one
// range and its reduction runs in one order fixed by (n, inner) alone:
// - inner = 1 (contiguous rows): 16 running partial sums (4 vectors) over
//   k = 0, 16, 32, ..., combined as ((a0 + a1) + (a2 + a3)) and across lanes
//   as ((l0 + l1) + (l2 + l3)), then the n mod 16 last terms in order;
// - inner > 1: sequentially over k, one running sum per output; vector lanes
//   and the scalar tail do the identical arithmetic.

// The two reductions: the vector and scalar combine steps and their identity.
class Sum {
  @inline zero(): v128 { return f32x4.splat(0.0); }
  @inline zero1(): f32 { return 0; }
  @inline v(a: v128, b: v128): v128 { return f32x4.add(a, b); }
  @inline s(a: f32, b: f32): f32 { return a + b; }
}
class Max {
  @inline zero(): v128 { return f32x4.splat(-Infinity); }
  @inline zero1(): f32 { return -Infinity; }
  @inline v(a: v128, b: v128): v128 { return f32x4.max(a, b); }
  @inline s(a: f32, b: f32): f32 { return max<f32>(a, b); }
}

// Reduce a contiguous row of n floats: 16 lanes, a fixed tree, then the tail.
@inline function row<R>(p: usize, n: i32): f32 {
  const op = changetype<R>(0);
  let a0 = op.zero();
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    const q = p + (<usize>k << 2);
    a0 = op.v(a0, v128.load(q));
    a1 = op.v(a1, v128.load(q, 16));
    a2 = op.v(a2, v128.load(q, 32));
    a3 = op.v(a3, v128.load(q, 48));
  }
  const v = op.v(op.v(a0, a1), op.v(a2, a3));
  let s = op.s(op.s(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), op.s(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
  for (; k < n; k++) s = op.s(s, load<f32>(p + (<usize>k << 2)));
  return s;
}

// Columns [j0, j1) of outer row o, each reduced sequentially over k.
@inline function columns<R>(x: usize, y: usize, o: i32, n: i32, inner: i32, j0: i32, j1: i32): void {
  const op = changetype<R>(0);
  const rs = <usize>inner << 2;
  const base = x + (<usize>o * <usize>n * rs);
  const yo = y + ((<usize>o * <usize>inner) << 2);
  let j = j0;
  for (; j + 32 <= j1; j += 32) {
    let a0 = op.zero(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    let p = base + (<usize>j << 2);
    for (let k = 0; k < n; k++, p += rs) {
      a0 = op.v(a0, v128.load(p));
      a1 = op.v(a1, v128.load(p, 16));
      a2 = op.v(a2, v128.load(p, 32));
      a3 = op.v(a3, v128.load(p, 48));
      a4 = op.v(a4, v128.load(p, 64));
      a5 = op.v(a5, v128.load(p, 80));
      a6 = op.v(a6, v128.load(p, 96));
      a7 = op.v(a7, v128.load(p, 112));
    }
    const q = yo + (<usize>j << 2);
    v128.store(q, a0);
    v128.store(q, a1, 16);
    v128.store(q, a2, 32);
    v128.store(q, a3, 48);
    v128.store(q, a4, 64);
    v128.store(q, a5, 80);
    v128.store(q, a6, 96);
    v128.store(q, a7, 112);
  }
  for (; j + 4 <= j1; j += 4) {
    let a = op.zero();
    let p = base + (<usize>j << 2);
    for (let k = 0; k < n; k++, p += rs) a = op.v(a, v128.load(p));
    v128.store(yo + (<usize>j << 2), a);
  }
  for (; j < j1; j++) {
    let a = op.zero1();
    let p = base + (<usize>j << 2);
    for (let k = 0; k < n; k++, p += rs) a = op.s(a, load<f32>(p));
    store<f32>(yo + (<usize>j << 2), a);
  }
}

@inline function reduce<R>(x: usize, y: usize, outer: i32, n: i32, inner: i32, begin: i32, end: i32): void {
  if (inner == 1) {
    for (let o = begin; o < end; o++) store<f32>(y + (<usize>o << 2), row<R>(x + ((<usize>o * <usize>n) << 2), n));
    return;
  }
  let idx = begin;
  while (idx < end) {
    const o = idx / inner;
    const j = idx - o * inner;
    const j1 = min<i32>(inner, j + (end - idx));
    columns<R>(x, y, o, n, inner, j, j1);
    idx += j1 - j;
  }
}

/** y[o, j] = sum over k of x[o, k, j]; range over the outer*inner outputs. n = 0 gives 0. */
export function reduce_sum(x: usize, y: usize, outer: i32, n: i32, inner: i32, begin: i32, end: i32, scratch: usize): void {
  reduce<Sum>(x, y, outer, n, inner, begin, end);
}

/** y[o, j] = max over k of x[o, k, j] (NaN if any is NaN); range over the outer*inner outputs; n >= 1. */
export function reduce_max(x: usize, y: usize, outer: i32, n: i32, inner: i32, begin: i32, end: i32, scratch: usize): void {
  reduce<Max>(x, y, outer, n, inner, begin, end);
}

/**
 * Backward of reduce_max: dx[o, k, j] = g[o, j] at the first k where
 * x[o, k, j] equals y[o, j] (or is NaN when y is), 0 elsewhere. Range over the
 * outer*inner outputs; each writes its own column of dx.
 */
export function reduce_max_grad(x: usize, y: usize, g: usize, dx: usize, outer: i32, n: i32, inner: i32, begin: i32, end: i32, scratch: usize): void {
  const rs = <usize>inner << 2;
  let idx = begin;
  while (idx < end) {
    const o = idx / inner;
    let j = idx - o * inner;
    const j1 = min<i32>(inner, j + (end - idx));
    idx += j1 - j;
    const off = <usize>o * <usize>n * rs;
    for (; j + 4 <= j1; j += 4) {
      const q = ((<usize>o * <usize>inner + <usize>j) << 2);
      const m = v128.load(y + q);
      const mnan = f32x4.ne(m, m);
      const gv = v128.load(g + q);
      let found = i32x4.splat(0);
      let p = off + (<usize>j << 2);
      for (let k = 0; k < n; k++, p += rs) {
        const v = v128.load(x + p);
        const hit = v128.andnot(v128.or(f32x4.eq(v, m), v128.and(f32x4.ne(v, v), mnan)), found);
        v128.store(dx + p, v128.and(gv, hit));
        found = v128.or(found, hit);
      }
    }
    for (; j < j1; j++) {
      const q = ((<usize>o * <usize>inner + <usize>j) << 2);
      const m = load<f32>(y + q);
      const gv = load<f32>(g + q);
      let found = false;
      let p = off + (<usize>j << 2);
      for (let k = 0; k < n; k++, p += rs) {
        const v = load<f32>(x + p);
        const hit = !found && (v == m || (v != v && m != m));
        store<f32>(dx + p, hit ? gv : 0);
        if (hit) found = true;
      }
    }
  }
}

/**
 * y[o, j] = the first k at which x[o, k, j] is maximal, as a float (a NaN
 * counts as maximal, as in NumPy). Range over the outer*inner outputs; n >= 1.
 */
export function argmax(x: usize, y: usize, outer: i32, n: i32, inner: i32, begin: i32, end: i32, scratch: usize): void {
  const rs = <usize>inner << 2;
  for (let idx = begin; idx < end; idx++) {
    const o = idx / inner;
    const j = idx - o * inner;
    let p = x + <usize>o * <usize>n * rs + (<usize>j << 2);
    let best = load<f32>(p);
    let bi = 0;
    p += rs;
    for (let k = 1; k < n; k++, p += rs) {
      const v = load<f32>(p);
      if (v > best || (v != v && best == best)) {
        best = v;
        bi = k;
      }
    }
    store<f32>(y + (<usize>idx << 2), <f32>bi);
  }
}
