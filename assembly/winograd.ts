// Winograd convolution for 3x3, stride-1, undilated filters, NHWC activations
// and HWIO filters, in two tile sizes: F(2x2, 3x3) / F(3x3, 2x2) here, and
// F(4x4, 3x3) / F(3x3, 4x4) in the second half of the file.
//
// Forward (and, through a flipped filter, the input gradient): F(2x2, 3x3).
// Each 2x2 output tile is read from a 4x4 input tile d; with
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
//   G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 -1 -1],
// the tile is y = Aᵀ [ Σ_ci (G g Gᵀ)[ci, co] ⊙ (Bᵀ d B)[ci] ] A: 16 products
// per tile and channel pair instead of 36. Summed over input channels, the 16
// element positions ξ of the 4x4 transformed tile are 16 independent matrix
// products M[ξ] = V[ξ] · U[ξ] (tiles x Cin times Cin x Cout). Tiles go in
// blocks: the block's transformed inputs V and products M stay in cache.
//
// Filter gradient: F(3x3, 2x2). A 2x2 tile of dy and the 4x4 tile of x it
// meets give a 3x3 block of dw; with the same Bᵀ on x,
//   Gd = [1 0; ½ ½; ½ -½; 0 1] on dy, and Adᵀ = [1 1 1 0; 0 1 -1 0; 0 1 1 -1],
// dw = Adᵀ [ Σ_tiles (Bᵀ x B) ⊙ (Gd dy Gdᵀ) ] Ad: the sum over every tile of
// the batch is taken in the transformed domain (16 products of Cin x tiles by
// tiles x Cout) and transformed back once. Shards are ranges of input
// channels (rows of those products), so every dw element has one owner.
//
// Geometry (all kernels): out[oh, ow] = Σ_{kh, kw} in[oh - pt + kh, ow - pl + kw] · f[kh, kw],
// zero outside the input; pt and pl may be any integers (the input gradient
// uses 2 - pt, 2 - pl, negative when the forward padding exceeds 2).
//
// Determinism: an output tile is computed from its own inputs only, every
// channel sum runs over ci = 0, 1, ... from +0 in one micro-kernel row, and
// every element of a filter gradient's sums adds the tiles' terms one by one
// in tile order (blocks of tiles pause and resume it, and change no bits);
// ranges never change which terms meet in which order. Mul and add stay
// separate (no fused multiply-add).
import { gemm_tile } from './gemm';

const FIXED: i32 = 256; // pointer table (64 bytes), one table entry (12), pad

@inline function align16(n: i32): i32 {
  return (n + 15) & ~15;
}

/** Tiles per block of the forward kernel: V and M of a block about 128 KiB together. */
@inline function fwdBlock(Cin: i32, Cout: i32): i32 {
  const c = max(((Cin + 3) & ~3) + ((Cout + 7) & ~7), 8);
  return max(4, min(32, (2048 / c) & ~3));
}

/** Tiles per block of the F(3x3, 2x2) filter gradient (its transforms and products in cache together). */
@inline function bwfBlock(Cin: i32, Cout: i32): i32 {
  const c = max(((Cin + 3) & ~3) + ((Cout + 7) & ~7), 8);
  return max(8, min(128, (8192 / c) & ~3));
}

/**
 * A byte stride for the ξ planes of a block: a multiple of 64 with an odd
 * number of cache lines, so the planes' lines at one offset fall in different
 * L1 sets (strides of whole 4 KiB pages would put them all in one set).
 */
@inline function planeStride(bytes: i32): i32 {
  const s = (bytes + 63) & ~63;
  return (s & 64) != 0 ? s : s + 64;
}

/** Four floats at p, lanes past nv (0..4) zero. */
@inline function loadN(p: usize, nv: i32): v128 {
  if (nv >= 4) return v128.load(p);
  let v = f32x4.splat(0);
  if (nv > 0) v = v128.load32_lane(p, v, 0);
  if (nv > 1) v = v128.load32_lane(p, v, 1, 4);
  if (nv > 2) v = v128.load32_lane(p, v, 2, 8);
  return v;
}

/** Store the first nv (0..4) lanes of v at p. */
@inline function storeN(p: usize, v: v128, nv: i32): void {
  if (nv >= 4) {
    v128.store(p, v);
    return;
  }
  if (nv > 0) v128.store32_lane(p, v, 0);
  if (nv > 1) v128.store32_lane(p, v, 1, 4);
  if (nv > 2) v128.store32_lane(p, v, 2, 8);
}

/** Element j of the pointer table, + off: 4 floats (lanes past nv zero). */
@inline function tload(p: usize, off: usize, nv: i32, j: i32): v128 {
  return loadN(<usize>load<u32>(p + (<usize>j << 2)) + off, nv);
}

/**
 * Bᵀ d B for 4 channels of one 4x4 tile: d[i][j] at the 16 pointers of `ptab`
 * (row-major, each + off), lanes past nv zero; V[i][j] is stored at out + (4i + j)·xs.
 */
@inline function inputTransform(ptab: usize, off: usize, nv: i32, out: usize, xs: usize): void {
  // Rows 1 and 2, each with B applied on the right.
  let a0 = tload(ptab, off, nv, 4), a1 = tload(ptab, off, nv, 5), a2 = tload(ptab, off, nv, 6), a3 = tload(ptab, off, nv, 7);
  const r10 = f32x4.sub(a0, a2), r11 = f32x4.add(a1, a2), r12 = f32x4.sub(a2, a1), r13 = f32x4.sub(a1, a3);
  a0 = tload(ptab, off, nv, 8); a1 = tload(ptab, off, nv, 9); a2 = tload(ptab, off, nv, 10); a3 = tload(ptab, off, nv, 11);
  const r20 = f32x4.sub(a0, a2), r21 = f32x4.add(a1, a2), r22 = f32x4.sub(a2, a1), r23 = f32x4.sub(a1, a3);
  v128.store(out + 4 * xs, f32x4.add(r10, r20));
  v128.store(out + 5 * xs, f32x4.add(r11, r21));
  v128.store(out + 6 * xs, f32x4.add(r12, r22));
  v128.store(out + 7 * xs, f32x4.add(r13, r23));
  v128.store(out + 8 * xs, f32x4.sub(r20, r10));
  v128.store(out + 9 * xs, f32x4.sub(r21, r11));
  v128.store(out + 10 * xs, f32x4.sub(r22, r12));
  v128.store(out + 11 * xs, f32x4.sub(r23, r13));
  // Row 0 minus row 2.
  a0 = tload(ptab, off, nv, 0); a1 = tload(ptab, off, nv, 1); a2 = tload(ptab, off, nv, 2); a3 = tload(ptab, off, nv, 3);
  v128.store(out, f32x4.sub(f32x4.sub(a0, a2), r20));
  v128.store(out + xs, f32x4.sub(f32x4.add(a1, a2), r21));
  v128.store(out + 2 * xs, f32x4.sub(f32x4.sub(a2, a1), r22));
  v128.store(out + 3 * xs, f32x4.sub(f32x4.sub(a1, a3), r23));
  // Row 1 minus row 3.
  a0 = tload(ptab, off, nv, 12); a1 = tload(ptab, off, nv, 13); a2 = tload(ptab, off, nv, 14); a3 = tload(ptab, off, nv, 15);
  v128.store(out + 12 * xs, f32x4.sub(r10, f32x4.sub(a0, a2)));
  v128.store(out + 13 * xs, f32x4.sub(r11, f32x4.add(a1, a2)));
  v128.store(out + 14 * xs, f32x4.sub(r12, f32x4.sub(a2, a1)));
  v128.store(out + 15 * xs, f32x4.sub(r13, f32x4.sub(a1, a3)));
}

/**
 * Fill the size x size pointers of an input tile whose top-left pixel is
 * (ih0, iw0) of image n (row-major): the pixel's channels, or `zero` outside the image.
 */
@inline function tilePointers(
  ptab: usize, x: usize, zero: usize, n: i32, ih0: i32, iw0: i32, H: i32, W: i32, pix: usize, size: i32,
): void {
  for (let i = 0; i < size; i++) {
    const ih = ih0 + i;
    const rowOk = ih >= 0 && ih < H;
    const rp = x + <usize>((n * H + ih) * W) * pix;
    for (let j = 0; j < size; j++) {
      const iw = iw0 + j;
      store<u32>(ptab + <usize>((size * i + j) << 2), rowOk && iw >= 0 && iw < W ? <u32>(rp + <usize>iw * pix) : <u32>zero);
    }
  }
}

// ---- filter transform --------------------------------------------------------------

/**
 * Tap k (0..8) of the filter, 4 consecutive B-channels b..b+3 (lanes past nv zero) of
 * A-channel a: w[k, a, b + l] (flip 0), or w[8 - k, b + l, a] (flip 1: flipped and transposed).
 */
@inline function gload(w: usize, k: i32, a: i32, b: i32, nv: i32, flip: i32, Cin: i32, Cout: i32): v128 {
  const tap = <usize>Cin * <usize>Cout * 4;
  if (!flip) return loadN(w + <usize>k * tap + ((<usize>a * <usize>Cout + <usize>b) << 2), nv);
  const p = w + <usize>(8 - k) * tap + ((<usize>b * <usize>Cout + <usize>a) << 2);
  const st = <usize>Cout << 2;
  let v = f32x4.splat(0);
  if (nv > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (nv > 1) v = f32x4.replace_lane(v, 1, load<f32>(p + st));
  if (nv > 2) v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * st));
  if (nv > 3) v = f32x4.replace_lane(v, 3, load<f32>(p + 3 * st));
  return v;
}

/** Scratch bytes per thread for winograd_filter and winograd4_filter. */
export function winograd_filter_scratch(): i32 {
  return 320;
}

/** G·(a, b, c) for F(2x2, 3x3): a, (a + b + c)/2, (a - b + c)/2, c, stored st bytes apart from o. */
@inline function g4store(a: v128, b: v128, c: v128, o: usize, st: usize): void {
  const h = f32x4.splat(0.5);
  v128.store(o, a);
  v128.store(o + st, f32x4.mul(f32x4.add(f32x4.add(a, b), c), h));
  v128.store(o + 2 * st, f32x4.mul(f32x4.add(f32x4.sub(a, b), c), h));
  v128.store(o + 3 * st, c);
}

/**
 * The transformed filter U = G g Gᵀ of w[3, 3, Cin, Cout] (HWIO) as 16 matrices
 * of A x B in column panels of 8 for the micro-kernel: up[ξ][j][a][q] is element
 * ξ of the transform of g[a, 8j + q] (zero past B), np = ceil(B / 8) panels.
 * flip = 0: A = Cin, B = Cout, g[a, b][kh, kw] = w[kh, kw, a, b] (the forward filter).
 * flip = 1: A = Cout, B = Cin, g[a, b][kh, kw] = w[2 - kh, 2 - kw, b, a] (the input
 * gradient's filter). 4 channels b at a time. Range over a in [0, A).
 */
export function winograd_filter(w: usize, Cin: i32, Cout: i32, flip: i32, up: usize, begin: i32, end: i32, scratch: usize): void {
  const A = flip ? Cout : Cin;
  const B = flip ? Cin : Cout;
  const np = (B + 7) >> 3;
  const xs = <usize>np * <usize>A * 32; // bytes between the ξ of U
  const t = scratch; // G·g: 4 rows of 3 vectors
  for (let a = begin; a < end; a++) {
    for (let b = 0; b < np * 8; b += 4) {
      const nv = max(0, min(4, B - b));
      // Columns kw of g: G applied down each, row i of G·g at t + 48i.
      for (let k = 0; k < 3; k++) {
        g4store(gload(w, k, a, b, nv, flip, Cin, Cout), gload(w, 3 + k, a, b, nv, flip, Cin, Cout), gload(w, 6 + k, a, b, nv, flip, Cin, Cout), t + <usize>(16 * k), 48);
      }
      const o = up + <usize>(((b >> 3) * A + a) * 32 + ((b & 4) << 2));
      for (let i = 0; i < 4; i++) {
        const r = t + <usize>(48 * i);
        g4store(v128.load(r), v128.load(r, 16), v128.load(r, 32), o + <usize>(4 * i) * xs, xs);
      }
    }
  }
}

// ---- forward -----------------------------------------------------------------------

/**
 * The micro-kernel of the forward products: the 4 x 8 tile
 * C[r][0..8] = Σ_{k < K} A[r][k] · Bp[k][0..8], rows of A at a + r·rs (k contiguous),
 * the panel Bp contiguous ([k][8]), rows of C ldc bytes apart. Each row's sum
 * runs over k in order from +0.
 */
function wino_tile(a: usize, rs: usize, b: usize, K: i32, c: usize, ldc: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let a0 = a, a1 = a + rs, a2 = a + 2 * rs, a3 = a + 3 * rs;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let s = v128.load32_splat(a0);
    c00 = f32x4.add(c00, f32x4.mul(s, b0)); c01 = f32x4.add(c01, f32x4.mul(s, b1));
    s = v128.load32_splat(a1);
    c10 = f32x4.add(c10, f32x4.mul(s, b0)); c11 = f32x4.add(c11, f32x4.mul(s, b1));
    s = v128.load32_splat(a2);
    c20 = f32x4.add(c20, f32x4.mul(s, b0)); c21 = f32x4.add(c21, f32x4.mul(s, b1));
    s = v128.load32_splat(a3);
    c30 = f32x4.add(c30, f32x4.mul(s, b0)); c31 = f32x4.add(c31, f32x4.mul(s, b1));
    a0 += 4; a1 += 4; a2 += 4; a3 += 4; b += 32;
  }
  v128.store(c, c00); v128.store(c, c01, 16); c += ldc;
  v128.store(c, c10); v128.store(c, c11, 16); c += ldc;
  v128.store(c, c20); v128.store(c, c21, 16); c += ldc;
  v128.store(c, c30); v128.store(c, c31, 16);
}

/** Scratch bytes per thread for winograd_forward. */
export function winograd_forward_scratch(Cin: i32, Cout: i32): i32 {
  const bt = fwdBlock(Cin, Cout);
  const cinP = (Cin + 3) & ~3;
  const coutP = (Cout + 7) & ~7;
  return FIXED + align16((Cin + 4) * 4) + 16 * planeStride(bt * cinP * 4) + 16 * planeStride(bt * coutP * 4) + 64;
}

/**
 * y[N, OH, OW, Cout] = conv(x[N, H, W, Cin], f) (+ bias) for a 3x3 filter f given
 * transformed by winograd_filter at up (A = Cin, B = Cout), stride 1:
 * y[n, oh, ow, co] = Σ x[n, oh - pt + kh, ow - pl + kw, ci] · f[kh, kw, ci, co] (+ bias[co]).
 * bias is 0 or Cout floats. Range over rows of 2x2 output tiles (n, th) in [0, N·ceil(OH / 2)).
 */
export function winograd_forward(
  x: usize, up: usize, bias: usize, y: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32, pt: i32, pl: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const bt = fwdBlock(Cin, Cout);
  const cinP = (Cin + 3) & ~3;
  const coutP = (Cout + 7) & ~7;
  const np = coutP >> 3;
  const TH = (OH + 1) >> 1;
  const TW = (OW + 1) >> 1;
  const ptab = scratch;
  const zero = scratch + FIXED;
  const vs = <usize>planeStride(bt * cinP * 4); // bytes between the ξ of V
  const ms = <usize>planeStride(bt * coutP * 4); // bytes between the ξ of M
  const V = (zero + <usize>align16((Cin + 4) * 4) + 63) & ~63;
  const M = V + 16 * vs;
  for (let i = 0; i < Cin + 4; i += 4) v128.store(zero + (<usize>i << 2), f32x4.splat(0));
  const pix = <usize>Cin << 2;
  const rsV = <usize>cinP << 2;
  const ldm = <usize>coutP << 2;
  const ldy = <usize>Cout << 2;
  const last = end * TW;
  for (let t0 = begin * TW; t0 < last; t0 += bt) {
    const nt = min(bt, last - t0);
    // Input transform: V[ξ][t][ci].
    for (let t = 0; t < nt; t++) {
      const L = t0 + t;
      const tr = L / TW;
      const tw = L - tr * TW;
      const n = tr / TH;
      const th = tr - n * TH;
      tilePointers(ptab, x, zero, n, 2 * th - pt, 2 * tw - pl, H, W, pix, 4);
      const vt = V + <usize>t * rsV;
      let c = 0;
      for (; c + 4 <= Cin; c += 4) inputTransform(ptab, <usize>c << 2, 4, vt + (<usize>c << 2), vs);
      if (c < Cin) inputTransform(ptab, <usize>c << 2, Cin - c, vt + (<usize>c << 2), vs);
    }
    // The 16 products M[ξ] = V[ξ] · U[ξ].
    const ng = (nt + 3) >> 2;
    for (let xi = 0; xi < 16; xi++) {
      const va = V + <usize>xi * vs;
      const ma = M + <usize>xi * ms;
      const ub = up + <usize>(xi * np) * <usize>Cin * 32;
      for (let jp = 0; jp < np; jp++) {
        const bpan = ub + <usize>jp * <usize>Cin * 32;
        for (let g = 0; g < ng; g++) {
          wino_tile(va + <usize>(4 * g) * rsV, rsV, bpan, Cin, ma + <usize>(4 * g) * ldm + <usize>jp * 32, ldm);
        }
      }
    }
    // Output transform y = Aᵀ m A (+ bias), 4 channels at a time.
    for (let t = 0; t < nt; t++) {
      const L = t0 + t;
      const tr = L / TW;
      const tw = L - tr * TW;
      const n = tr / TH;
      const th = tr - n * TH;
      const oh = 2 * th;
      const ow = 2 * tw;
      const two_r = oh + 1 < OH;
      const two_c = ow + 1 < OW;
      const y0 = y + <usize>((n * OH + oh) * OW + ow) * ldy;
      const y1 = y0 + <usize>OW * ldy;
      const mt = M + <usize>t * ldm;
      for (let c = 0; c < Cout; c += 4) {
        const nv = min(4, Cout - c);
        const m = mt + (<usize>c << 2);
        // Row a of m with A on the right: [m0 + m1 + m2, m1 - m2 - m3].
        let q0 = v128.load(m), q1 = v128.load(m + ms), q2 = v128.load(m + 2 * ms), q3 = v128.load(m + 3 * ms);
        const s00 = f32x4.add(f32x4.add(q0, q1), q2);
        const s01 = f32x4.sub(f32x4.sub(q1, q2), q3);
        q0 = v128.load(m + 4 * ms); q1 = v128.load(m + 5 * ms); q2 = v128.load(m + 6 * ms); q3 = v128.load(m + 7 * ms);
        const s10 = f32x4.add(f32x4.add(q0, q1), q2);
        const s11 = f32x4.sub(f32x4.sub(q1, q2), q3);
        q0 = v128.load(m + 8 * ms); q1 = v128.load(m + 9 * ms); q2 = v128.load(m + 10 * ms); q3 = v128.load(m + 11 * ms);
        const s20 = f32x4.add(f32x4.add(q0, q1), q2);
        const s21 = f32x4.sub(f32x4.sub(q1, q2), q3);
        q0 = v128.load(m + 12 * ms); q1 = v128.load(m + 13 * ms); q2 = v128.load(m + 14 * ms); q3 = v128.load(m + 15 * ms);
        const s30 = f32x4.add(f32x4.add(q0, q1), q2);
        const s31 = f32x4.sub(f32x4.sub(q1, q2), q3);
        // Aᵀ on the left.
        let o00 = f32x4.add(f32x4.add(s00, s10), s20);
        let o01 = f32x4.add(f32x4.add(s01, s11), s21);
        let o10 = f32x4.sub(f32x4.sub(s10, s20), s30);
        let o11 = f32x4.sub(f32x4.sub(s11, s21), s31);
        if (bias) {
          const bv = loadN(bias + (<usize>c << 2), nv);
          o00 = f32x4.add(o00, bv); o01 = f32x4.add(o01, bv);
          o10 = f32x4.add(o10, bv); o11 = f32x4.add(o11, bv);
        }
        const off = <usize>c << 2;
        storeN(y0 + off, o00, nv);
        if (two_c) storeN(y0 + ldy + off, o01, nv);
        if (two_r) {
          storeN(y1 + off, o10, nv);
          if (two_c) storeN(y1 + ldy + off, o11, nv);
        }
      }
    }
  }
}

// ---- filter gradient ---------------------------------------------------------------

/** Scratch bytes per thread for winograd_filter_grad. */
export function winograd_filter_grad_scratch(Cin: i32, Cout: i32): i32 {
  const bt = bwfBlock(Cin, Cout);
  const cinP = (Cin + 3) & ~3;
  const coutP = (Cout + 7) & ~7;
  return FIXED + align16((max(Cin, Cout) + 4) * 4) + 16 * planeStride(bt * cinP * 4) + 16 * planeStride(bt * coutP * 4) + 16 * planeStride(cinP * coutP * 4) + 64;
}

/**
 * dw[3, 3, Cin, Cout] = the gradient of the 3x3 stride-1 convolution
 * y[n, oh, ow, co] = Σ x[n, oh - pt + kh, ow - pl + kw, ci] · w[kh, kw, ci, co]
 * with respect to w, given x[N, H, W, Cin] and dy[N, OH, OW, Cout]. The sum over
 * 2x2 tiles of dy runs in the transformed domain in tile order. dw is cut into
 * blocks of cg input x og output channels (cg a multiple of 4, og of 8, or the
 * whole side), numbered input-major; range over blocks.
 */
export function winograd_filter_grad(
  x: usize, dy: usize, dw: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32, pt: i32, pl: i32, cg: i32, og: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const groups = (Cout + og - 1) / og;
  for (let u = begin; u < end; u++) {
    const ci = (u / groups) * cg;
    const co = (u % groups) * og;
    filterGrad2(x, dy, dw, N, H, W, Cin, OH, OW, Cout, pt, pl, ci, min(Cin, ci + cg), co, min(Cout, co + og), scratch);
  }
}

/** winograd_filter_grad for input channels [begin, end) and output channels [co0, co1). */
function filterGrad2(
  x: usize, dy: usize, dw: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32, pt: i32, pl: i32,
  begin: i32, end: i32, co0: i32, co1: i32, scratch: usize,
): void {
  const bt = bwfBlock(Cin, Cout);
  const np = (co1 - co0 + 7) >> 3;
  const coutP = np << 3; // the range's output channels, padded to 8
  const nc = end - begin;
  const nq = (nc + 3) >> 2;
  const xc = nq << 2; // channels of the range, padded to 4
  const TH = (OH + 1) >> 1;
  const TW = (OW + 1) >> 1;
  const T = N * TH * TW;
  const ptab = scratch;
  const ent = scratch + 64;
  const zero = scratch + FIXED;
  const xs = <usize>planeStride(bt * xc * 4); // bytes between the ξ of Xt
  const ds = <usize>planeStride(bt * coutP * 4); // bytes between the ξ of Dt
  const ms = <usize>planeStride(xc * coutP * 4); // bytes between the ξ of Macc
  const Xt = (zero + <usize>align16((max(Cin, Cout) + 4) * 4) + 63) & ~63;
  const Dt = Xt + 16 * xs;
  const Macc = Dt + 16 * ds;
  for (let i = 0; i < max(Cin, Cout) + 4; i += 4) v128.store(zero + (<usize>i << 2), f32x4.splat(0));
  const pixX = <usize>Cin << 2;
  const pixD = <usize>Cout << 2;
  const qs = <usize>bt << 4; // bytes between the 4-channel groups of an Xt plane ([q][t][4])
  const ps = <usize>bt << 5; // bytes between the 8-channel panels of a Dt plane ([j][t][8])
  const rD = <usize>coutP << 2;
  const h = f32x4.splat(0.5);
  for (let t0 = 0; t0 < T; t0 += bt) {
    const nt = min(bt, T - t0);
    for (let t = 0; t < nt; t++) {
      const L = t0 + t;
      const tr = L / TW;
      const tw = L - tr * TW;
      const n = tr / TH;
      const th = tr - n * TH;
      const oh = 2 * th;
      const ow = 2 * tw;
      // x tile: Bᵀ x B for the range's channels.
      tilePointers(ptab, x, zero, n, oh - pt, ow - pl, H, W, pixX, 4);
      const xt = Xt + (<usize>t << 4);
      for (let q = 0; q < nq; q++) {
        const ci = begin + 4 * q;
        inputTransform(ptab, <usize>ci << 2, min(4, Cin - ci), xt + <usize>q * qs, xs);
      }
      // dy tile: Gd dy Gdᵀ for the range's output channels (zero past them, up to the panel).
      const d00 = dy + <usize>((n * OH + oh) * OW + ow) * pixD;
      const two_r = oh + 1 < OH;
      const two_c = ow + 1 < OW;
      const d01 = two_c ? d00 + pixD : zero;
      const d10 = two_r ? d00 + <usize>OW * pixD : zero;
      const d11 = two_r && two_c ? d00 + <usize>(OW + 1) * pixD : zero;
      const dt = Dt + (<usize>t << 5);
      for (let c = 0; c < coutP; c += 4) {
        const nv = max(0, min(4, co1 - co0 - c));
        const off = <usize>(co0 + c) << 2;
        const o = dt + <usize>(c >> 3) * ps + (<usize>(c & 4) << 2);
        const a0 = loadN(d00 + off, nv), a1 = loadN(d01 + off, nv);
        const b0 = loadN(d10 + off, nv), b1 = loadN(d11 + off, nv);
        // Rows of Gd·dy: a, (a + b)/2, (a - b)/2, b; then Gdᵀ on the right of each.
        const e0 = f32x4.mul(f32x4.add(a0, b0), h), e1 = f32x4.mul(f32x4.add(a1, b1), h);
        const f0 = f32x4.mul(f32x4.sub(a0, b0), h), f1 = f32x4.mul(f32x4.sub(a1, b1), h);
        v128.store(o, a0);
        v128.store(o + ds, f32x4.mul(f32x4.add(a0, a1), h));
        v128.store(o + 2 * ds, f32x4.mul(f32x4.sub(a0, a1), h));
        v128.store(o + 3 * ds, a1);
        v128.store(o + 4 * ds, e0);
        v128.store(o + 5 * ds, f32x4.mul(f32x4.add(e0, e1), h));
        v128.store(o + 6 * ds, f32x4.mul(f32x4.sub(e0, e1), h));
        v128.store(o + 7 * ds, e1);
        v128.store(o + 8 * ds, f0);
        v128.store(o + 9 * ds, f32x4.mul(f32x4.add(f0, f1), h));
        v128.store(o + 10 * ds, f32x4.mul(f32x4.sub(f0, f1), h));
        v128.store(o + 11 * ds, f1);
        v128.store(o + 12 * ds, b0);
        v128.store(o + 13 * ds, f32x4.mul(f32x4.add(b0, b1), h));
        v128.store(o + 14 * ds, f32x4.mul(f32x4.sub(b0, b1), h));
        v128.store(o + 15 * ds, b1);
      }
    }
    // Macc[ξ] (+)= Xt[ξ]ᵀ · Dt[ξ] over the block's tiles.
    const cont = t0 == 0 ? 0 : 1;
    store<u32>(ent, 0);
    store<u32>(ent, 0, 4);
    store<i32>(ent, nt, 8);
    for (let xi = 0; xi < 16; xi++) {
      const xa = Xt + <usize>xi * xs;
      const db = Dt + <usize>xi * ds;
      const ma = Macc + <usize>xi * ms;
      for (let q = 0; q < nq; q++) {
        for (let jp = 0; jp < np; jp++) {
          gemm_tile(ent, 1, xa + <usize>q * qs, 16, db + <usize>jp * ps, 32, ma + <usize>(4 * q) * rD + (<usize>jp << 5), rD, cont, 0);
        }
      }
    }
  }
  // dw = Adᵀ M Ad, Adᵀ = [1 1 1 0; 0 1 -1 0; 0 1 1 -1].
  const ldw = <usize>Cout << 2;
  const tap = <usize>Cin * ldw;
  for (let i = 0; i < nc; i++) {
    const mrow = Macc + <usize>i * rD;
    const wrow = dw + <usize>(begin + i) * ldw;
    for (let c = 0; c < co1 - co0; c += 4) {
      const nv = min(4, co1 - co0 - c);
      const m = mrow + (<usize>c << 2);
      let q0 = v128.load(m), q1 = v128.load(m + ms), q2 = v128.load(m + 2 * ms), q3 = v128.load(m + 3 * ms);
      const s00 = f32x4.add(f32x4.add(q0, q1), q2), s01 = f32x4.sub(q1, q2), s02 = f32x4.sub(f32x4.add(q1, q2), q3);
      q0 = v128.load(m + 4 * ms); q1 = v128.load(m + 5 * ms); q2 = v128.load(m + 6 * ms); q3 = v128.load(m + 7 * ms);
      const s10 = f32x4.add(f32x4.add(q0, q1), q2), s11 = f32x4.sub(q1, q2), s12 = f32x4.sub(f32x4.add(q1, q2), q3);
      q0 = v128.load(m + 8 * ms); q1 = v128.load(m + 9 * ms); q2 = v128.load(m + 10 * ms); q3 = v128.load(m + 11 * ms);
      const s20 = f32x4.add(f32x4.add(q0, q1), q2), s21 = f32x4.sub(q1, q2), s22 = f32x4.sub(f32x4.add(q1, q2), q3);
      q0 = v128.load(m + 12 * ms); q1 = v128.load(m + 13 * ms); q2 = v128.load(m + 14 * ms); q3 = v128.load(m + 15 * ms);
      const s30 = f32x4.add(f32x4.add(q0, q1), q2), s31 = f32x4.sub(q1, q2), s32 = f32x4.sub(f32x4.add(q1, q2), q3);
      const o = wrow + (<usize>(co0 + c) << 2);
      storeN(o, f32x4.add(f32x4.add(s00, s10), s20), nv);
      storeN(o + tap, f32x4.add(f32x4.add(s01, s11), s21), nv);
      storeN(o + 2 * tap, f32x4.add(f32x4.add(s02, s12), s22), nv);
      storeN(o + 3 * tap, f32x4.sub(s10, s20), nv);
      storeN(o + 4 * tap, f32x4.sub(s11, s21), nv);
      storeN(o + 5 * tap, f32x4.sub(s12, s22), nv);
      storeN(o + 6 * tap, f32x4.sub(f32x4.add(s10, s20), s30), nv);
      storeN(o + 7 * tap, f32x4.sub(f32x4.add(s11, s21), s31), nv);
      storeN(o + 8 * tap, f32x4.sub(f32x4.add(s12, s22), s32), nv);
    }
  }
}

// ---- F(4x4, 3x3) and F(3x3, 4x4) ---------------------------------------------------
//
// With the points 0, ±1, ±2 and ∞ a 6x6 input tile gives a 4x4 output tile
// (forward, input gradient) or, against a 4x4 tile of dy, a 3x3 block of the
// filter gradient: 36 products per tile and channel pair instead of 144. The
// structure is that of the 2x2 kernels above, with 36 planes. The transforms:
//   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G  = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// and for the filter gradient the same Bᵀ on x, Gd = diag(σ)·G̃ on dy and Adᵀ:
//   G̃ = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1], σ = (¼, -⅙, -⅙, 1/24, 1/24, 1),
//   Adᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 1];
// σ_i·σ_j scales element ξ = (i, j) of the summed products once, not every
// tile. The filter transform divides by 6 and 24 (correctly rounded) rather
// than multiplying by rounded reciprocals. The larger coefficients cost
// accuracy: against a float64 reference the error is about 10x that of
// F(2x2, 3x3) (see src/tensor/ops/conv2d.ts and test/tensor/winograd.test.ts).

const FIXED6: i32 = 1024; // pointer table (144 bytes), staging of 36 vectors (576), entry (12), pad

/** Tiles (of 4x4 outputs) per block of the F(4x4, 3x3) forward kernel. */
@inline function fwd4Block(Cin: i32, Cout: i32): i32 {
  const c = max(((Cin + 3) & ~3) + ((Cout + 7) & ~7), 8);
  return max(8, min(32, (2048 / c) & ~3));
}

/**
 * Tiles (of 4x4 pixels of dy) per block of the F(3x3, 4x4) filter gradient:
 * transformed together, then their products added to M, which is read and
 * written once per block. Blocks of about 8192 tile-channels (their 36
 * transformed planes 1.2 MB) measured 1-10% faster than blocks of half that.
 */
@inline function bwf4Block(Cin: i32, Cout: i32): i32 {
  const c = max(((Cin + 3) & ~3) + ((Cout + 7) & ~7), 8);
  return max(8, min(128, (8192 / c) & ~3));
}

/** Bᵀ·d for one line of 6 (4 channels each), the 6 results stored st bytes apart from o. */
@inline function bt6(d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, d5: v128, o: usize, st: usize): void {
  const four = f32x4.splat(4);
  const a = f32x4.sub(d4, f32x4.mul(four, d2));
  const b = f32x4.sub(d3, f32x4.mul(four, d1));
  const c = f32x4.sub(d4, d2);
  let e = f32x4.sub(d3, d1);
  e = f32x4.add(e, e);
  v128.store(o, f32x4.add(f32x4.mul(four, f32x4.sub(d0, d2)), c)); // 4d0 - 5d2 + d4
  v128.store(o + st, f32x4.add(a, b)); // -4d1 - 4d2 + d3 + d4
  v128.store(o + 2 * st, f32x4.sub(a, b)); // 4d1 - 4d2 - d3 + d4
  v128.store(o + 3 * st, f32x4.add(c, e)); // -2d1 - d2 + 2d3 + d4
  v128.store(o + 4 * st, f32x4.sub(c, e)); // 2d1 - d2 - 2d3 + d4
  v128.store(o + 5 * st, f32x4.add(f32x4.mul(four, f32x4.sub(d1, d3)), f32x4.sub(d5, d3))); // 4d1 - 5d3 + d5
}

/**
 * Bᵀ d B for 4 channels of one 6x6 tile: d[i][j] at the 36 pointers of `ptab`
 * (each + off, lanes past nv zero); V[i][j] is stored at out + (6i + j)·xs.
 * Rows first (staged at tmp), then columns.
 */
@inline function inputTransform6(ptab: usize, off: usize, nv: i32, out: usize, xs: usize, tmp: usize): void {
  for (let i = 0; i < 6; i++) {
    const p = ptab + <usize>(24 * i);
    bt6(tload(p, off, nv, 0), tload(p, off, nv, 1), tload(p, off, nv, 2), tload(p, off, nv, 3), tload(p, off, nv, 4), tload(p, off, nv, 5), tmp + <usize>(96 * i), 16);
  }
  for (let j = 0; j < 6; j++) {
    const q = tmp + <usize>(16 * j);
    bt6(v128.load(q), v128.load(q, 96), v128.load(q, 192), v128.load(q, 288), v128.load(q, 384), v128.load(q, 480), out + <usize>j * xs, 6 * xs);
  }
}

/** G·(a, b, c) for F(4x4, 3x3): a/4, -(a + b + c)/6, -(a - b + c)/6, (a + 2b + 4c)/24, (a - 2b + 4c)/24, c, stored st bytes apart from o. */
@inline function g6store(a: v128, b: v128, c: v128, o: usize, st: usize): void {
  const s = f32x4.add(a, c);
  const s4 = f32x4.add(a, f32x4.mul(f32x4.splat(4), c));
  const b2 = f32x4.add(b, b);
  const m6 = f32x4.splat(-6);
  const p24 = f32x4.splat(24);
  v128.store(o, f32x4.mul(a, f32x4.splat(0.25)));
  v128.store(o + st, f32x4.div(f32x4.add(s, b), m6));
  v128.store(o + 2 * st, f32x4.div(f32x4.sub(s, b), m6));
  v128.store(o + 3 * st, f32x4.div(f32x4.add(s4, b2), p24));
  v128.store(o + 4 * st, f32x4.div(f32x4.sub(s4, b2), p24));
  v128.store(o + 5 * st, c);
}

/**
 * The F(4x4, 3x3) transformed filter U = G g Gᵀ of w[3, 3, Cin, Cout], as 36
 * matrices of A x B in column panels of 8: up[ξ][j][a][q] (zero past B),
 * np = ceil(B / 8). flip as for winograd_filter. 4 channels b at a time.
 * Range over a in [0, A).
 */
export function winograd4_filter(w: usize, Cin: i32, Cout: i32, flip: i32, up: usize, begin: i32, end: i32, scratch: usize): void {
  const A = flip ? Cout : Cin;
  const B = flip ? Cin : Cout;
  const np = (B + 7) >> 3;
  const xs = <usize>np * <usize>A * 32; // bytes between the ξ of U
  const t = scratch; // G·g: 6 rows of 3 vectors
  for (let a = begin; a < end; a++) {
    for (let b = 0; b < np * 8; b += 4) {
      const nv = max(0, min(4, B - b));
      for (let k = 0; k < 3; k++) {
        g6store(gload(w, k, a, b, nv, flip, Cin, Cout), gload(w, 3 + k, a, b, nv, flip, Cin, Cout), gload(w, 6 + k, a, b, nv, flip, Cin, Cout), t + <usize>(16 * k), 48);
      }
      const o = up + <usize>(((b >> 3) * A + a) * 32 + ((b & 4) << 2));
      for (let i = 0; i < 6; i++) {
        const r = t + <usize>(48 * i);
        g6store(v128.load(r), v128.load(r, 16), v128.load(r, 32), o + <usize>(6 * i) * xs, xs);
      }
    }
  }
}

/** Scratch bytes per thread for winograd4_forward. */
export function winograd4_forward_scratch(Cin: i32, Cout: i32): i32 {
  const bt = fwd4Block(Cin, Cout);
  const cinP = (Cin + 3) & ~3;
  const coutP = (Cout + 7) & ~7;
  return FIXED6 + align16((Cin + 4) * 4) + 36 * planeStride(bt * cinP * 4) + 36 * planeStride(bt * coutP * 4) + 64;
}

/**
 * y[N, OH, OW, Cout] = conv(x[N, H, W, Cin], f) (+ bias) by F(4x4, 3x3), the filter
 * transformed by winograd4_filter at up (A = Cin, B = Cout); otherwise as
 * winograd_forward. Range over rows of 4x4 output tiles (n, th) in [0, N·ceil(OH / 4)).
 */
export function winograd4_forward(
  x: usize, up: usize, bias: usize, y: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32, pt: i32, pl: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const bt = fwd4Block(Cin, Cout);
  const cinP = (Cin + 3) & ~3;
  const coutP = (Cout + 7) & ~7;
  const np = coutP >> 3;
  const TH = (OH + 3) >> 2;
  const TW = (OW + 3) >> 2;
  const ptab = scratch;
  const tmp = scratch + 256;
  const zero = scratch + FIXED6;
  const vs = <usize>planeStride(bt * cinP * 4); // bytes between the ξ of V
  const ms = <usize>planeStride(bt * coutP * 4); // bytes between the ξ of M
  const V = (zero + <usize>align16((Cin + 4) * 4) + 63) & ~63;
  const M = V + 36 * vs;
  for (let i = 0; i < Cin + 4; i += 4) v128.store(zero + (<usize>i << 2), f32x4.splat(0));
  const pix = <usize>Cin << 2;
  const rsV = <usize>cinP << 2;
  const ldm = <usize>coutP << 2;
  const ldy = <usize>Cout << 2;
  const last = end * TW;
  for (let t0 = begin * TW; t0 < last; t0 += bt) {
    const nt = min(bt, last - t0);
    // Input transform: V[ξ][t][ci].
    for (let t = 0; t < nt; t++) {
      const L = t0 + t;
      const tr = L / TW;
      const tw = L - tr * TW;
      const n = tr / TH;
      const th = tr - n * TH;
      tilePointers(ptab, x, zero, n, 4 * th - pt, 4 * tw - pl, H, W, pix, 6);
      const vt = V + <usize>t * rsV;
      let c = 0;
      for (; c + 4 <= Cin; c += 4) inputTransform6(ptab, <usize>c << 2, 4, vt + (<usize>c << 2), vs, tmp);
      if (c < Cin) inputTransform6(ptab, <usize>c << 2, Cin - c, vt + (<usize>c << 2), vs, tmp);
    }
    // The 36 products M[ξ] = V[ξ] · U[ξ].
    const ng = (nt + 3) >> 2;
    for (let xi = 0; xi < 36; xi++) {
      const va = V + <usize>xi * vs;
      const ma = M + <usize>xi * ms;
      const ub = up + <usize>(xi * np) * <usize>Cin * 32;
      for (let jp = 0; jp < np; jp++) {
        const bpan = ub + <usize>jp * <usize>Cin * 32;
        for (let g = 0; g < ng; g++) {
          wino_tile(va + <usize>(4 * g) * rsV, rsV, bpan, Cin, ma + <usize>(4 * g) * ldm + <usize>jp * 32, ldm);
        }
      }
    }
    // Output transform y = Aᵀ m A (+ bias), 4 channels at a time: rows of m
    // (A on the right, staged at tmp as [6][4]), then columns.
    for (let t = 0; t < nt; t++) {
      const L = t0 + t;
      const tr = L / TW;
      const tw = L - tr * TW;
      const n = tr / TH;
      const th = tr - n * TH;
      const oh = 4 * th;
      const ow = 4 * tw;
      const rows = min(4, OH - oh);
      const cols = min(4, OW - ow);
      const yt = y + <usize>((n * OH + oh) * OW + ow) * ldy;
      const mt = M + <usize>t * ldm;
      for (let c = 0; c < Cout; c += 4) {
        const nv = min(4, Cout - c);
        const m = mt + (<usize>c << 2);
        for (let a = 0; a < 6; a++) {
          const r = m + <usize>(6 * a) * ms;
          at4(v128.load(r), v128.load(r + ms), v128.load(r + 2 * ms), v128.load(r + 3 * ms), v128.load(r + 4 * ms), v128.load(r + 5 * ms), tmp + <usize>(64 * a), 16);
        }
        const bv = bias ? loadN(bias + (<usize>c << 2), nv) : f32x4.splat(0);
        const off = <usize>c << 2;
        const rowStride = <usize>OW * ldy;
        for (let k = 0; k < cols; k++) {
          const q = tmp + <usize>(16 * k);
          const yc = yt + <usize>k * ldy + off;
          if (rows == 4 && nv == 4) {
            // Column k of a whole tile: straight to y.
            if (bias) at4bias(v128.load(q), v128.load(q, 64), v128.load(q, 128), v128.load(q, 192), v128.load(q, 256), v128.load(q, 320), bv, yc, rowStride);
            else at4(v128.load(q), v128.load(q, 64), v128.load(q, 128), v128.load(q, 192), v128.load(q, 256), v128.load(q, 320), yc, rowStride);
            continue;
          }
          // Column k: the outputs of rows oh..oh+3, staged after the rows.
          at4(v128.load(q), v128.load(q, 64), v128.load(q, 128), v128.load(q, 192), v128.load(q, 256), v128.load(q, 320), tmp + 384, 16);
          for (let i = 0; i < rows; i++) {
            let v = v128.load(tmp + 384 + <usize>(16 * i));
            if (bias) v = f32x4.add(v, bv);
            storeN(yc + <usize>i * rowStride, v, nv);
          }
        }
      }
    }
  }
}

/** Aᵀ·m for one line of 6 (4 channels each): the 4 results stored st bytes apart from o. */
@inline function at4(m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, o: usize, st: usize): void {
  const p = f32x4.add(m1, m2);
  const q = f32x4.sub(m1, m2);
  const u = f32x4.add(m3, m4);
  const v = f32x4.sub(m3, m4);
  v128.store(o, f32x4.add(f32x4.add(m0, p), u));
  v128.store(o + st, f32x4.add(q, f32x4.add(v, v)));
  v128.store(o + 2 * st, f32x4.add(p, f32x4.mul(f32x4.splat(4), u)));
  v128.store(o + 3 * st, f32x4.add(f32x4.add(q, f32x4.mul(f32x4.splat(8), v)), m5));
}

/** at4, then + bv on each result (the same sums and order as at4 followed by the add). */
@inline function at4bias(m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, bv: v128, o: usize, st: usize): void {
  const p = f32x4.add(m1, m2);
  const q = f32x4.sub(m1, m2);
  const u = f32x4.add(m3, m4);
  const v = f32x4.sub(m3, m4);
  v128.store(o, f32x4.add(f32x4.add(f32x4.add(m0, p), u), bv));
  v128.store(o + st, f32x4.add(f32x4.add(q, f32x4.add(v, v)), bv));
  v128.store(o + 2 * st, f32x4.add(f32x4.add(p, f32x4.mul(f32x4.splat(4), u)), bv));
  v128.store(o + 3 * st, f32x4.add(f32x4.add(f32x4.add(q, f32x4.mul(f32x4.splat(8), v)), m5), bv));
}

/** G̃·u for one line of 4 (4 channels each): the 6 results stored st bytes apart from o. */
@inline function gt6(u0: v128, u1: v128, u2: v128, u3: v128, o: usize, st: usize): void {
  const four = f32x4.splat(4);
  const s = f32x4.add(u0, u2);
  const d = f32x4.add(u1, u3);
  const s4 = f32x4.add(u0, f32x4.mul(four, u2));
  const d4 = f32x4.add(f32x4.add(u1, u1), f32x4.mul(f32x4.splat(8), u3));
  v128.store(o, u0);
  v128.store(o + st, f32x4.add(s, d));
  v128.store(o + 2 * st, f32x4.sub(s, d));
  v128.store(o + 3 * st, f32x4.add(s4, d4));
  v128.store(o + 4 * st, f32x4.sub(s4, d4));
  v128.store(o + 5 * st, u3);
}

/** Adᵀ·m for one line of 6 (4 channels each): the 3 results stored st bytes apart from o. */
@inline function ad3(m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, o: usize, st: usize): void {
  const p = f32x4.add(m1, m2);
  const u = f32x4.add(m3, m4);
  const v = f32x4.sub(m3, m4);
  v128.store(o, f32x4.add(f32x4.add(m0, p), u));
  v128.store(o + st, f32x4.add(f32x4.sub(m1, m2), f32x4.add(v, v)));
  v128.store(o + 2 * st, f32x4.add(f32x4.add(p, f32x4.mul(f32x4.splat(4), u)), m5));
}

/** Bytes between the 36 planes of the filter gradient's sums M (ceil4(Cin) x ceil8(Cout) floats each). */
export function winograd4_filter_grad_plane(Cin: i32, Cout: i32): i32 {
  return planeStride(((Cin + 3) & ~3) * ((Cout + 7) & ~7) * 4);
}

/** Scratch bytes of filterGrad4: its tables, zeros and the transformed tiles of a block. */
@inline function fg4WorkBytes(Cin: i32, Cout: i32): i32 {
  const bt = bwf4Block(Cin, Cout);
  const cinP = (Cin + 3) & ~3;
  const coutP = (Cout + 7) & ~7;
  return FIXED6 + align16((max(Cin, Cout) + 4) * 4) + 36 * planeStride(bt * cinP * 4) + 36 * planeStride(bt * coutP * 4) + 64;
}

/** Scratch bytes per thread for winograd4_filter_grad: filterGrad4's, then a block's sums M, then its sums of dy. */
export function winograd4_filter_grad_scratch(Cin: i32, Cout: i32): i32 {
  return fg4WorkBytes(Cin, Cout) + 36 * winograd4_filter_grad_plane(Cin, Cout) + ((Cout + 7) & ~7) * 4 + 64;
}

/**
 * dw[3, 3, Cin, Cout] as winograd_filter_grad, by F(3x3, 4x4): 4x4 tiles of dy
 * against 6x6 tiles of x, summed in the transformed domain (M, 36 planes) in
 * tile order, then dw = Adᵀ M Ad.
 *
 * The T tiles are cut into R runs, [r · runTiles, (r + 1) · runTiles) and the
 * last one to T ((R - 1) · runTiles < T), the channels into blocks of cg input x
 * og output channels (cg a multiple of 4, og of 8, or the whole side); unit u
 * is block u / R, run u % R. Range over units.
 *   - R = 1: each unit sums its block of M in scratch and writes its block of dw.
 *   - R > 1: unit (b, r) writes block b of run r's sums M_r at m + r · 36 ·
 *     winograd4_filter_grad_plane bytes, and dw is not touched: the caller adds
 *     M_0 + M_1 + ... in that order and applies winograd4_filter_grad_out.
 * Either way the bits depend on R and runTiles, never on the channel blocks.
 *
 * With db nonzero, the blocks of input channel 0 also sum dy over the pixels
 * of their tiles (the bias gradient, from the loads the transform makes
 * anyway): each tile's 16 in one fixed order, the tiles' sums in tile order;
 * into db[Cout] when R = 1, else run r's sums into db + r · Cout floats,
 * which the caller adds in order.
 */
export function winograd4_filter_grad(
  x: usize, dy: usize, dw: usize, m: usize, db: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32, pt: i32, pl: i32, cg: i32, og: i32, R: i32, runTiles: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const groups = (Cout + og - 1) / og;
  const T = N * ((OH + 3) >> 2) * ((OW + 3) >> 2);
  const ms = <usize>winograd4_filter_grad_plane(Cin, Cout);
  const rM = <usize>((Cout + 7) & ~7) << 2; // bytes between the rows of an M_r
  const acc = (scratch + <usize>fg4WorkBytes(Cin, Cout) + 63) & ~63; // R = 1: the block's M, 36 planes of at most ms bytes
  const dsum = acc + 36 * ms; // the block's sums of dy
  for (let u = begin; u < end; u++) {
    const b = u / R;
    const r = u % R;
    const ci = (b / groups) * cg;
    const co = (b % groups) * og;
    const ci1 = min(Cin, ci + cg);
    const co1 = min(Cout, co + og);
    // One run: the block's M in scratch, as compact as the block; else run r's M_r.
    const rD = R == 1 ? <usize>((co1 - co + 7) & ~7) << 2 : rM;
    const mp = R == 1 ? <usize>planeStride(((ci1 - ci + 3) & ~3) * <i32>rD) : ms;
    const macc = R == 1 ? acc : m + <usize>r * 36 * ms + <usize>ci * rM + (<usize>co << 2);
    const t0 = r * runTiles;
    const bias = db != 0 && ci == 0 ? dsum : 0;
    filterGrad4(x, dy, macc, mp, rD, bias, N, H, W, Cin, OH, OW, Cout, pt, pl, ci, ci1, co, co1, t0, r == R - 1 ? T : t0 + runTiles, scratch);
    if (R == 1) outTransform4(acc, mp, rD, dw, Cin, Cout, ci, ci1, co, co1, scratch);
    if (bias != 0) memory.copy(db + (<usize>(r * Cout + co) << 2), bias, <usize>(co1 - co) << 2);
  }
}

/** dw from M, the sum of winograd4_filter_grad's runs (R > 1). Range over input channels. */
export function winograd4_filter_grad_out(m: usize, dw: usize, Cin: i32, Cout: i32, begin: i32, end: i32, scratch: usize): void {
  const rM = <usize>((Cout + 7) & ~7) << 2;
  outTransform4(m + <usize>begin * rM, <usize>winograd4_filter_grad_plane(Cin, Cout), rM, dw, Cin, Cout, begin, end, 0, Cout, scratch);
}

/**
 * M[ξ] = Σ Xt[ξ]ᵀ · Dt[ξ] over tiles [t0, t1), for input channels [begin, end)
 * and output channels [co0, co1): rows of the block at macc, rD bytes apart,
 * planes ms bytes apart. bias nonzero: also the sums of dy over the tiles'
 * pixels for the output channels, there (padded to 8).
 */
function filterGrad4(
  x: usize, dy: usize, macc: usize, ms: usize, rD: usize, bias: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32, pt: i32, pl: i32,
  begin: i32, end: i32, co0: i32, co1: i32, t0: i32, t1: i32, scratch: usize,
): void {
  const bt = bwf4Block(Cin, Cout);
  const np = (co1 - co0 + 7) >> 3;
  const coutP = np << 3; // the range's output channels, padded to 8
  const nc = end - begin;
  const nq = (nc + 3) >> 2;
  const xc = nq << 2; // channels of the range, padded to 4
  const TH = (OH + 3) >> 2;
  const TW = (OW + 3) >> 2;
  const ptab = scratch;
  const tmp = scratch + 256;
  const ent = scratch + 896;
  const zero = scratch + FIXED6;
  const xs = <usize>planeStride(bt * xc * 4); // bytes between the ξ of Xt ([q][t][4] each)
  const ds = <usize>planeStride(bt * coutP * 4); // bytes between the ξ of Dt ([j][t][8] each)
  const Xt = (zero + <usize>align16((max(Cin, Cout) + 4) * 4) + 63) & ~63;
  const Dt = Xt + 36 * xs;
  for (let i = 0; i < max(Cin, Cout) + 4; i += 4) v128.store(zero + (<usize>i << 2), f32x4.splat(0));
  if (bias != 0) for (let c = 0; c < coutP; c += 4) v128.store(bias + (<usize>c << 2), f32x4.splat(0));
  const pixX = <usize>Cin << 2;
  const pixD = <usize>Cout << 2;
  const qs = <usize>bt << 4;
  const ps = <usize>bt << 5;
  for (let tb = t0; tb < t1; tb += bt) {
    const nt = min(bt, t1 - tb);
    for (let t = 0; t < nt; t++) {
      const L = tb + t;
      const tr = L / TW;
      const tw = L - tr * TW;
      const n = tr / TH;
      const th = tr - n * TH;
      const oh = 4 * th;
      const ow = 4 * tw;
      // x tile: Bᵀ x B for the range's channels.
      tilePointers(ptab, x, zero, n, oh - pt, ow - pl, H, W, pixX, 6);
      const xt = Xt + (<usize>t << 4);
      for (let q = 0; q < nq; q++) {
        const ci = begin + 4 * q;
        inputTransform6(ptab, <usize>ci << 2, min(4, Cin - ci), xt + <usize>q * qs, xs, tmp);
      }
      // dy tile: G̃ dy G̃ᵀ for the range's output channels (zero past them, up to the panel).
      // Pointers to its 4x4 pixels (zero outside dy) reuse the table.
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          const ok = oh + i < OH && ow + j < OW;
          store<u32>(ptab + <usize>((4 * i + j) << 2), ok ? <u32>(dy + <usize>((n * OH + oh + i) * OW + ow + j) * pixD) : <u32>zero);
        }
      }
      const dt = Dt + (<usize>t << 5);
      for (let c = 0; c < coutP; c += 4) {
        const nv = max(0, min(4, co1 - co0 - c));
        const off = <usize>(co0 + c) << 2;
        let ts = f32x4.splat(0); // the tile's sum: rows of (u0 + u1) + (u2 + u3), short chains
        for (let i = 0; i < 4; i++) {
          const p = ptab + <usize>(16 * i);
          const u0 = tload(p, off, nv, 0), u1 = tload(p, off, nv, 1), u2 = tload(p, off, nv, 2), u3 = tload(p, off, nv, 3);
          gt6(u0, u1, u2, u3, tmp + <usize>(96 * i), 16);
          if (bias != 0) ts = f32x4.add(ts, f32x4.add(f32x4.add(u0, u1), f32x4.add(u2, u3)));
        }
        if (bias != 0) v128.store(bias + (<usize>c << 2), f32x4.add(v128.load(bias + (<usize>c << 2)), ts));
        const o = dt + <usize>(c >> 3) * ps + (<usize>(c & 4) << 2);
        for (let j = 0; j < 6; j++) {
          const q = tmp + <usize>(16 * j);
          gt6(v128.load(q), v128.load(q, 96), v128.load(q, 192), v128.load(q, 288), o + <usize>j * ds, 6 * ds);
        }
      }
    }
    // M[ξ] (+)= Xt[ξ]ᵀ · Dt[ξ] over the block's tiles.
    const cont = tb == t0 ? 0 : 1;
    store<u32>(ent, 0);
    store<u32>(ent, 0, 4);
    store<i32>(ent, nt, 8);
    for (let xi = 0; xi < 36; xi++) {
      const xa = Xt + <usize>xi * xs;
      const db = Dt + <usize>xi * ds;
      const ma = macc + <usize>xi * ms;
      for (let q = 0; q < nq; q++) {
        for (let jp = 0; jp < np; jp++) {
          gemm_tile(ent, 1, xa + <usize>q * qs, 16, db + <usize>jp * ps, 32, ma + <usize>(4 * q) * rD + (<usize>jp << 5), rD, cont, 0);
        }
      }
    }
  }
}

/**
 * dw = Adᵀ (σσᵀ ⊙ M) Ad for input channels [i0, i1) and output channels
 * [co0, co1); M's row for channel i0 at m, rows rD bytes apart, planes ms.
 * Rows of M staged at tmp (384 bytes) as [6][3], then columns.
 */
function outTransform4(m: usize, ms: usize, rD: usize, dw: usize, Cin: i32, Cout: i32, i0: i32, i1: i32, co0: i32, co1: i32, tmp: usize): void {
  const ldw = <usize>Cout << 2;
  const tap = <usize>Cin * ldw;
  for (let i = i0; i < i1; i++) {
    const mrow = m + <usize>(i - i0) * rD;
    const wrow = dw + <usize>i * ldw;
    for (let c = 0; c < co1 - co0; c += 4) {
      const nv = min(4, co1 - co0 - c);
      const mc = mrow + (<usize>c << 2);
      for (let a = 0; a < 6; a++) {
        const r = mc + <usize>(6 * a) * ms;
        ad3(
          f32x4.mul(v128.load(r), sigma2(a, 0)), f32x4.mul(v128.load(r + ms), sigma2(a, 1)), f32x4.mul(v128.load(r + 2 * ms), sigma2(a, 2)),
          f32x4.mul(v128.load(r + 3 * ms), sigma2(a, 3)), f32x4.mul(v128.load(r + 4 * ms), sigma2(a, 4)), f32x4.mul(v128.load(r + 5 * ms), sigma2(a, 5)),
          tmp + <usize>(48 * a), 16,
        );
      }
      const o = wrow + (<usize>(co0 + c) << 2);
      for (let k = 0; k < 3; k++) {
        const q = tmp + <usize>(16 * k);
        ad3(v128.load(q), v128.load(q, 48), v128.load(q, 96), v128.load(q, 144), v128.load(q, 192), v128.load(q, 240), tmp + 320, 16);
        storeN(o + <usize>k * tap, v128.load(tmp + 320), nv);
        storeN(o + <usize>(3 + k) * tap, v128.load(tmp + 336), nv);
        storeN(o + <usize>(6 + k) * tap, v128.load(tmp + 352), nv);
      }
    }
  }
}

/** σ_a·σ_b (σ = ¼, -⅙, -⅙, 1/24, 1/24, 1) rounded to float32, splat. */
@inline function sigma2(a: i32, b: i32): v128 {
  return f32x4.splat(<f32>(sigma(a) * sigma(b)));
}

@inline function sigma(i: i32): f64 {
  return i == 0 ? 0.25 : i < 3 ? -1.0 / 6 : i < 5 ? 1.0 / 24 : 1;
}
