// Layout kernels: one strided copy that serves transpose, slice, concat and
// pad; a blocked 4x4 SIMD transpose for swapping the last two axes; a fill.
// Copies move bits unchanged, so any split of a range gives the same output.

/** Copy `n` contiguous floats (16 per trip, then 4, then 1). */
@inline function copyRun(dst: usize, src: usize, n: i32): void {
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    const o = <usize>k << 2;
    const v0 = v128.load(src + o);
    const v1 = v128.load(src + o, 16);
    const v2 = v128.load(src + o, 32);
    const v3 = v128.load(src + o, 48);
    v128.store(dst + o, v0);
    v128.store(dst + o, v1, 16);
    v128.store(dst + o, v2, 32);
    v128.store(dst + o, v3, 48);
  }
  for (; k + 4 <= n; k += 4) v128.store(dst + (<usize>k << 2), v128.load(src + (<usize>k << 2)));
  for (; k < n; k++) store<f32>(dst + (<usize>k << 2), load<f32>(src + (<usize>k << 2)));
}

// Longer contiguous runs go to memory.copy (the engine's memmove).
const BULK_RUN: i32 = 1024;

/**
 * Strided copy over a rank-6 index space (callers pad lower ranks with
 * leading 1s and merge axes that are contiguous in both tensors):
 *
 *   dst[t0·i0 + … + t5·i5] = src[s0·i0 + … + s5·i5],  0 <= ik < dk
 *
 * strides in elements. The range [begin, end) counts rows: the flattened
 * index of (i0, …, i4), i.e. 0 <= row < d0·d1·d2·d3·d4; each row copies d5
 * elements (a SIMD memcpy when s5 = t5 = 1).
 */
export function copyStrided(
  src: usize, dst: usize,
  d0: i32, d1: i32, d2: i32, d3: i32, d4: i32, d5: i32,
  s0: i32, s1: i32, s2: i32, s3: i32, s4: i32, s5: i32,
  t0: i32, t1: i32, t2: i32, t3: i32, t4: i32, t5: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  if (begin >= end || d5 <= 0) return;
  // Unflatten `begin` into (i0, …, i4).
  let r = begin;
  let i4 = r % d4; r = r / d4;
  let i3 = r % d3; r = r / d3;
  let i2 = r % d2; r = r / d2;
  let i1 = r % d1; r = r / d1;
  const i0 = r;
  let so = i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3 + i4 * s4;
  let to = i0 * t0 + i1 * t1 + i2 * t2 + i3 * t3 + i4 * t4;
  const contiguous = s5 == 1 && t5 == 1;
  for (let row = begin; row < end; row++) {
    const sp = src + (<usize>so << 2);
    const dp = dst + (<usize>to << 2);
    if (contiguous) {
      if (d5 >= BULK_RUN) memory.copy(dp, sp, <usize>d5 << 2);
      else copyRun(dp, sp, d5);
    } else {
      let a = sp;
      let b = dp;
      const sa = <usize>s5 << 2;
      const tb = <usize>t5 << 2;
      for (let k = 0; k < d5; k++) {
        store<f32>(b, load<f32>(a));
        a += sa;
        b += tb;
      }
    }
    // Advance the odometer (i0, …, i4) and both offsets.
    so += s4;
    to += t4;
    if (++i4 < d4) continue;
    i4 = 0;
    so += s3 - d4 * s4;
    to += t3 - d4 * t4;
    if (++i3 < d3) continue;
    i3 = 0;
    so += s2 - d3 * s3;
    to += t2 - d3 * t3;
    if (++i2 < d2) continue;
    i2 = 0;
    so += s1 - d2 * s2;
    to += t1 - d2 * t2;
    if (++i1 < d1) continue;
    i1 = 0;
    so += s0 - d1 * s1;
    to += t0 - d1 * t1;
  }
}

/** Transpose one 4x4 tile: 4 source rows at `p` (row pitch `sp` bytes) to 4 output rows at `o` (pitch `op`). */
@inline function tile4x4(p: usize, sp: usize, o: usize, op: usize): void {
  const r0 = v128.load(p);
  const r1 = v128.load(p + sp);
  const r2 = v128.load(p + 2 * sp);
  const r3 = v128.load(p + 3 * sp);
  const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5); // r0.0 r1.0 r0.1 r1.1
  const t1 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5); // r2.0 r3.0 r2.1 r3.1
  const t2 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
  v128.store(o, v128.shuffle<i32>(t0, t1, 0, 1, 4, 5));
  v128.store(o + op, v128.shuffle<i32>(t0, t1, 2, 3, 6, 7));
  v128.store(o + 2 * op, v128.shuffle<i32>(t2, t3, 0, 1, 4, 5));
  v128.store(o + 3 * op, v128.shuffle<i32>(t2, t3, 2, 3, 6, 7));
}

/**
 * Batched transpose of the last two axes: src [B, rows, cols] -> dst [B, cols, rows].
 * The range [begin, end) counts output rows (0 <= q < B·cols). Blocks of up
 * to 16 output rows x 16 source rows are cut into 4x4 tiles, transposed in
 * registers with two rounds of shuffles.
 */
export function transposeLast2(src: usize, dst: usize, rows: i32, cols: i32, begin: i32, end: i32, scratch: usize): void {
  const sp = <usize>cols << 2; // source row pitch
  const op = <usize>rows << 2; // output row pitch
  // Tile order: finish four output rows at a time when output rows are the
  // longer ones (they would otherwise keep 16 partly written lines live, all
  // in one cache set when the pitch is a multiple of 4 KiB); else finish four
  // source rows at a time.
  const outerOut = op >= sp;
  let q = begin;
  while (q < end) {
    const b = q / cols;
    const j0 = q - b * cols;
    let jn = cols - j0;
    if (jn > 16) jn = 16;
    if (jn > end - q) jn = end - q;
    const jn4 = jn & ~3;
    const sb = src + ((<usize>b * <usize>rows * <usize>cols + <usize>j0) << 2); // source (b, 0, j0)
    const db = dst + ((<usize>q * <usize>rows) << 2); // output row q
    for (let i0 = 0; i0 < rows; i0 += 16) {
      let iN = rows - i0;
      if (iN > 16) iN = 16;
      const iN4 = iN & ~3;
      const s0 = sb + <usize>i0 * sp;
      const d0 = db + (<usize>i0 << 2);
      if (outerOut) {
        for (let jj = 0; jj < jn4; jj += 4) {
          const s = s0 + (<usize>jj << 2);
          const d = d0 + <usize>jj * op;
          for (let ii = 0; ii < iN4; ii += 4) tile4x4(s + <usize>ii * sp, sp, d + (<usize>ii << 2), op);
        }
      } else {
        for (let ii = 0; ii < iN4; ii += 4) {
          const s = s0 + <usize>ii * sp;
          const d = d0 + (<usize>ii << 2);
          for (let jj = 0; jj < jn4; jj += 4) tile4x4(s + (<usize>jj << 2), sp, d + <usize>jj * op, op);
        }
      }
      for (let jj = 0; jj < jn4; jj += 4) {
        const s = s0 + (<usize>jj << 2);
        const d = d0 + <usize>jj * op;
        for (let ii = iN4; ii < iN; ii++) {
          const p = s + <usize>ii * sp;
          const o = d + (<usize>ii << 2);
          store<f32>(o, load<f32>(p));
          store<f32>(o + op, load<f32>(p, 4));
          store<f32>(o + 2 * op, load<f32>(p, 8));
          store<f32>(o + 3 * op, load<f32>(p, 12));
        }
      }
      for (let jj = jn4; jj < jn; jj++) {
        const s = s0 + (<usize>jj << 2);
        const d = d0 + <usize>jj * op;
        for (let ii = 0; ii < iN; ii++) store<f32>(d + (<usize>ii << 2), load<f32>(s + <usize>ii * sp));
      }
    }
    q += jn;
  }
}

/** dst[k] = value for k in [begin, end). */
export function layoutFill(dst: usize, value: f32, begin: i32, end: i32, scratch: usize): void {
  const v = f32x4.splat(value);
  let k = begin;
  for (; k + 16 <= end; k += 16) {
    const o = dst + (<usize>k << 2);
    v128.store(o, v);
    v128.store(o, v, 16);
    v128.store(o, v, 32);
    v128.store(o, v, 48);
  }
  for (; k + 4 <= end; k += 4) v128.store(dst + (<usize>k << 2), v);
  for (; k < end; k++) store<f32>(dst + (<usize>k << 2), value);
}
