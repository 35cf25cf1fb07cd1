// Packed, register-tiled SIMD GEMM: C[M, N] = op(A)[M, K] · B[K, N] (+ bias[N]).
//
// Both operands are packed so the micro-kernel reads two contiguous streams:
// B once (gemm_pack_b) into column panels of 8 (panel j holds, for each k, the
// 8 floats B[k, 8j .. 8j + 7], zero past N); A per block of rows into tiles of
// 4 rows interleaved by k ([k][4]). The micro-kernel keeps a 4 x 8 tile of C in
// eight f32x4 accumulators; per k it loads two B vectors, splats each row's A
// value (v128.load32_splat at a fixed offset) and does 8 mul + 8 add. Mul and
// add stay separate (no fused multiply-add: bits must not depend on the CPU).
// The loop is not unrolled: V8 hoists every load of an unrolled body to its
// top and runs out of the 16 xmm registers, so one k per iteration is fastest.
//
// Determinism: every C element is the sum over k = 0, 1, ..., K-1 in that order,
// starting from +0, whatever the tile, the K block or the range that computes
// it (K blocks continue from the stored partial sum, the same float). Partial
// tiles run the same 4 x 8 kernel on zero rows or zero columns and keep only
// the valid part, so no element has a second code path.

/** Bytes per entry of a micro-kernel table: [a, b, len] as i32. */
export const ENTRY: i32 = 12;

const KC: i32 = 256; // K block: a B panel slice of KC x 8 floats (8 KiB) stays in L1
const MC: i32 = 64; // rows per block: the packed A block (MC x KC floats, 64 KiB) stays in L2
const FIXED: i32 = 256; // tmp tile (128 bytes), bias of a partial panel (32), one entry (12), pad

/**
 * The micro-kernel. acc = cont ? the C tile : 0; then for each entry [a, b, len]
 * of the table, for k < len: acc[r] += splat(A[a + aoff + k*astride + 4r]) · B[b + boff + k*bstride];
 * then acc += bias[0..8] when bias != 0; the 4 x 8 tile is stored at c, rows ldc bytes apart.
 */
export function gemm_tile(
  tab: usize, nent: i32, aoff: usize, astride: usize, boff: usize, bstride: usize,
  c: usize, ldc: usize, cont: i32, bias: usize,
): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  if (cont) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(c + ldc); c11 = v128.load(c + ldc, 16);
    c20 = v128.load(c + 2 * ldc); c21 = v128.load(c + 2 * ldc, 16);
    c30 = v128.load(c + 3 * ldc); c31 = v128.load(c + 3 * ldc, 16);
  }
  const tend = tab + <usize>nent * ENTRY;
  for (let e = tab; e < tend; e += ENTRY) {
    let a = <usize>load<u32>(e) + aoff;
    let b = <usize>load<u32>(e, 4) + boff;
    for (let n = load<i32>(e, 8); n > 0; n--) {
      const b0 = v128.load(b), b1 = v128.load(b, 16);
      let s = v128.load32_splat(a);
      c00 = f32x4.add(c00, f32x4.mul(s, b0)); c01 = f32x4.add(c01, f32x4.mul(s, b1));
      s = v128.load32_splat(a, 4);
      c10 = f32x4.add(c10, f32x4.mul(s, b0)); c11 = f32x4.add(c11, f32x4.mul(s, b1));
      s = v128.load32_splat(a, 8);
      c20 = f32x4.add(c20, f32x4.mul(s, b0)); c21 = f32x4.add(c21, f32x4.mul(s, b1));
      s = v128.load32_splat(a, 12);
      c30 = f32x4.add(c30, f32x4.mul(s, b0)); c31 = f32x4.add(c31, f32x4.mul(s, b1));
      a += astride; b += bstride;
    }
  }
  if (bias) {
    const b0 = v128.load(bias), b1 = v128.load(bias, 16);
    c00 = f32x4.add(c00, b0); c01 = f32x4.add(c01, b1);
    c10 = f32x4.add(c10, b0); c11 = f32x4.add(c11, b1);
    c20 = f32x4.add(c20, b0); c21 = f32x4.add(c21, b1);
    c30 = f32x4.add(c30, b0); c31 = f32x4.add(c31, b1);
  }
  v128.store(c, c00); v128.store(c, c01, 16); c += ldc;
  v128.store(c, c10); v128.store(c, c11, 16); c += ldc;
  v128.store(c, c20); v128.store(c, c21, 16); c += ldc;
  v128.store(c, c30); v128.store(c, c31, 16);
}

/**
 * Interleave 4 rows of n floats (at s0..s3; point a missing row at zeros) into
 * dst as [n][4]: dst[4k + r] = s_r[k]. Four columns at a time by a 4 x 4 transpose.
 */
export function gemm_pack4(dst: usize, s0: usize, s1: usize, s2: usize, s3: usize, n: i32): void {
  let k = 0;
  for (; k + 4 <= n; k += 4) {
    const o = <usize>k << 2;
    const r0 = v128.load(s0 + o), r1 = v128.load(s1 + o), r2 = v128.load(s2 + o), r3 = v128.load(s3 + o);
    const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5); // a0 b0 a1 b1
    const t1 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5); // c0 d0 c1 d1
    const t2 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7); // a2 b2 a3 b3
    const t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7); // c2 d2 c3 d3
    const d = dst + (<usize>k << 4);
    v128.store(d, v128.shuffle<i32>(t0, t1, 0, 1, 4, 5));
    v128.store(d, v128.shuffle<i32>(t0, t1, 2, 3, 6, 7), 16);
    v128.store(d, v128.shuffle<i32>(t2, t3, 0, 1, 4, 5), 32);
    v128.store(d, v128.shuffle<i32>(t2, t3, 2, 3, 6, 7), 48);
  }
  for (; k < n; k++) {
    const o = <usize>k << 2;
    const d = dst + (<usize>k << 4);
    store<f32>(d, load<f32>(s0 + o));
    store<f32>(d, load<f32>(s1 + o), 4);
    store<f32>(d, load<f32>(s2 + o), 8);
    store<f32>(d, load<f32>(s3 + o), 12);
  }
}

/** Copy `rows` x `cols` floats between matrices with row strides lds and ldd bytes. */
export function gemm_copy_tile(src: usize, lds: usize, dst: usize, ldd: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
    src += lds;
    dst += ldd;
  }
}

/**
 * Run the packed 4-row tiles [tile][len][4] at `ap` (count tiles, the last
 * with `lastRows` rows) against column panel `jp` of B at `bpanel`, writing
 * rows of C at `c` (ldc bytes apart; tile t starts at row 4t). cont: continue
 * from C; bias: 0 or the 8 bias values of the panel. `cols` valid columns.
 */
export function gemm_run_panel(
  ap: usize, len: i32, count: i32, lastRows: i32, bpanel: usize, c: usize, ldc: usize, cols: i32,
  cont: i32, bias: usize, scratch: usize,
): void {
  const tmp = scratch;
  const ent = scratch + 160;
  store<u32>(ent, 0);
  store<u32>(ent, bpanel, 4);
  store<i32>(ent, len, 8);
  const tileBytes = <usize>len << 4;
  for (let t = 0; t < count; t++) {
    const rows = t == count - 1 ? lastRows : 4;
    const cp = c + <usize>(t << 2) * ldc;
    if (rows == 4 && cols == 8) {
      gemm_tile(ent, 1, ap, 16, 0, 32, cp, ldc, cont, bias);
    } else {
      if (cont) gemm_copy_tile(cp, ldc, tmp, 32, rows, cols);
      gemm_tile(ent, 1, ap, 16, 0, 32, tmp, 32, cont, bias);
      gemm_copy_tile(tmp, 32, cp, ldc, rows, cols);
    }
    ap += tileBytes;
  }
}

/**
 * Pack B (K x N, or N x K when transB) into column panels of 8 at `out`:
 * out[j][k][0..8] = B[k, 8j .. 8j + 7], zero past N. Range over panels j in [0, ceil(N / 8)).
 */
export function gemm_pack_b(b: usize, K: i32, N: i32, transB: i32, out: usize, begin: i32, end: i32, scratch: usize): void {
  for (let j = begin; j < end; j++) {
    let o = out + <usize>j * <usize>K * 32;
    const n0 = j * 8;
    const cols = min(8, N - n0);
    if (!transB && cols == 8) {
      let p = b + (<usize>n0 << 2);
      const ld = <usize>N << 2;
      for (let k = 0; k < K; k++) {
        v128.store(o, v128.load(p));
        v128.store(o, v128.load(p, 16), 16);
        p += ld;
        o += 32;
      }
    } else {
      for (let k = 0; k < K; k++) {
        for (let q = 0; q < 8; q++) {
          let v: f32 = 0;
          if (q < cols) {
            const n = n0 + q;
            v = transB ? load<f32>(b + ((<usize>n * <usize>K + <usize>k) << 2)) : load<f32>(b + ((<usize>k * <usize>N + <usize>n) << 2));
          }
          store<f32>(o + (<usize>q << 2), v);
        }
        o += 32;
      }
    }
  }
}

/** Scratch bytes per thread for gemm. */
export function gemm_scratch(): i32 {
  return FIXED + MC * KC * 4 + 16 * KC;
}

/**
 * C[M, N] = op(A) · B (+ bias) with B packed by gemm_pack_b. A is M x K
 * row-major, or K x M when transA. bias is 0 or N floats. Range over rows of C.
 */
export function gemm(
  a: usize, bp: usize, c: usize, M: i32, N: i32, K: i32, transA: i32, bias: usize,
  begin: i32, end: i32, scratch: usize,
): void {
  const btmp = scratch + 128; // bias of a partial panel
  const ap = scratch + FIXED; // packed A block: MC / 4 tiles of [kc][4]
  const zero = ap + <usize>(MC * KC * 4); // KC zeros: the missing rows of a partial tile
  for (let i = 0; i < KC * 16; i += 16) v128.store(zero + <usize>i, i32x4.splat(0));
  const np = (N + 7) >> 3;
  const ldc = <usize>N << 2;
  let pc = 0;
  do {
    const kc = min(KC, K - pc);
    const cont = pc == 0 ? 0 : 1;
    const last = pc + kc >= K;
    for (let ic = begin; ic < end; ic += MC) {
      const ie = min(end, ic + MC);
      // Pack rows [ic, ie) x k in [pc, pc + kc) as 4-row tiles.
      let d = ap;
      for (let i = ic; i < ie; i += 4) {
        const rows = min(4, ie - i);
        if (transA) {
          const src = a + ((<usize>pc * <usize>M + <usize>i) << 2);
          const lda = <usize>M << 2;
          for (let k = 0; k < kc; k++) {
            const s = src + <usize>k * lda;
            const o = d + (<usize>k << 4);
            if (rows == 4) v128.store(o, v128.load(s));
            else for (let r = 0; r < 4; r++) store<f32>(o + (<usize>r << 2), r < rows ? load<f32>(s + (<usize>r << 2)) : 0);
          }
        } else {
          const lda = <usize>K << 2;
          const s0 = a + <usize>i * lda + (<usize>pc << 2);
          gemm_pack4(d, s0, rows > 1 ? s0 + lda : zero, rows > 2 ? s0 + 2 * lda : zero, rows > 3 ? s0 + 3 * lda : zero, kc);
        }
        d += <usize>kc << 4;
      }
      const ntiles = (ie - ic + 3) >> 2;
      const lastRows = ie - ic - ((ntiles - 1) << 2);
      for (let jp = 0; jp < np; jp++) {
        const cols = min(8, N - jp * 8);
        let bb: usize = 0;
        if (last && bias) {
          if (cols == 8) bb = bias + <usize>jp * 32;
          else {
            for (let q = 0; q < 8; q++) store<f32>(btmp + (<usize>q << 2), q < cols ? load<f32>(bias + (<usize>(jp * 8 + q) << 2)) : 0);
            bb = btmp;
          }
        }
        const bpanel = bp + <usize>jp * <usize>K * 32 + <usize>pc * 32;
        gemm_run_panel(ap, kc, ntiles, lastRows, bpanel, c + <usize>ic * ldc + <usize>jp * 32, ldc, cols, cont, bb, scratch);
      }
    }
    pc += KC;
  } while (pc < K);
}
