// conv2d on NHWC activations and HWIO filters, forward and both gradients, on
// the GEMM micro-kernel of assembly/gemm.ts.
//
// Forward and input gradient are implicit GEMMs by indirection: for a tile of
// 4 output pixels of one output row, each filter tap names the input row of
// channels each pixel reads (or a zero row where it falls in the padding);
// those rows are interleaved into the packed A tile ([k][4]) and the packed
// filter is B. No im2col matrix is ever formed: a block of at most 8 tiles
// (64 KiB) is packed, run against every 8-column filter panel, and reused.
// The input gradient is the same GEMM from input pixels to rows of dy: input
// (ih, iw) receives output (oh, ow) through tap (kh, kw) iff
// ih = oh*sh - pt + kh*dh and iw = ow*sw - pl + kw*dw; the pixels of an input
// row are grouped by iw mod sw so all pixels of a tile use the same taps (no
// scatter, no zero-stuffed dy).
//
// The filter gradient is a GEMM with rows (tap, ci), columns Cout and the
// output pixels as K, summed in the fixed order (n, oh, ow) over the pixels the
// tap sees; shards are ranges of filter rows, so each dw element is owned by one
// range. Pixels go in blocks of output rows (fixed by the shape, not the range)
// for cache; each block continues from the stored partial sum.
//
// Determinism: a tap is left out of a pixel's sum only for a reason that
// depends on that pixel's own row (and phase), never on the tile or range it
// falls in; a kept tap that reads padding multiplies a zero (for finite
// values an exact +0 term). Which terms are kept is fixed by the geometry, so
// every output element has the same terms in the same order on any split.
import { ENTRY, gemm_tile, gemm_pack4, gemm_copy_tile } from './gemm';

const FIXED: i32 = 256; // tmp tile (128 bytes), bias of a partial panel (32), pad
const REC: i32 = 32; // per-tile record: [entries, count, out, rows]
const PACK_BYTES: i32 = 65536; // packed A per block
const BWF_PIXELS: i32 = 256; // output pixels per block of the filter gradient

@inline function align16(n: i32): i32 {
  return (n + 15) & ~15;
}

@inline function floorDiv(a: i32, b: i32): i32 {
  const q = a / b;
  return a % b != 0 && (a < 0) != (b < 0) ? q - 1 : q;
}

@inline function ceilDiv(a: i32, b: i32): i32 {
  return -floorDiv(-a, b);
}

@inline function zeroFill(p: usize, bytes: i32): void {
  for (let i = 0; i < bytes; i += 16) v128.store(p + <usize>i, i32x4.splat(0));
}

/** Tiles per block for a K-deep packed tile. */
@inline function blockTiles(K: i32): i32 {
  return max(1, min(8, PACK_BYTES / max(1, K * 16)));
}

/**
 * Run the tiles of a block against every column panel of B (bp: N panels of
 * K x 8 floats). Tile records at `recs`: [entries, count, out, rows] (i32);
 * the entries' a pointers are into the packed block, b are byte offsets into a panel.
 */
function runBlock(recs: usize, nt: i32, bp: usize, K: i32, N: i32, ldc: usize, bias: usize, scratch: usize): void {
  const tmp = scratch;
  const btmp = scratch + 128;
  const np = (N + 7) >> 3;
  for (let jp = 0; jp < np; jp++) {
    const cols = min(8, N - jp * 8);
    const bpanel = bp + <usize>jp * <usize>K * 32;
    let bb: usize = 0;
    if (bias) {
      if (cols == 8) bb = bias + <usize>jp * 32;
      else {
        for (let q = 0; q < 8; q++) store<f32>(btmp + (<usize>q << 2), q < cols ? load<f32>(bias + (<usize>(jp * 8 + q) << 2)) : 0);
        bb = btmp;
      }
    }
    for (let t = 0; t < nt; t++) {
      const r = recs + <usize>(t * REC);
      const tab = <usize>load<u32>(r);
      const nent = load<i32>(r, 4);
      const cp = <usize>load<u32>(r, 8) + <usize>jp * 32;
      const rows = load<i32>(r, 12);
      if (rows == 4 && cols == 8) {
        gemm_tile(tab, nent, 0, 16, bpanel, 32, cp, ldc, 0, bb);
      } else {
        gemm_tile(tab, nent, 0, 16, bpanel, 32, tmp, 32, 0, bb);
        gemm_copy_tile(tmp, 32, cp, ldc, rows, cols);
      }
    }
  }
}

/** Scratch bytes per thread for conv2d_forward. */
export function conv2d_forward_scratch(Cin: i32, KH: i32, KW: i32, sw: i32): i32 {
  const K = KH * KW * Cin;
  const bt = blockTiles(K);
  return FIXED + align16(KW * Cin * 4) + align16((3 * sw + KW) * Cin * 4) + bt * (REC + KH * ENTRY) + bt * K * 16;
}

/**
 * y[N, OH, OW, Cout] = conv(x[N, H, W, Cin], w) (+ bias), with the filter packed
 * by gemm_pack_b as a (KH*KW*Cin) x Cout matrix at bp. bias is 0 or Cout floats.
 * Range over output rows (n, oh) in [0, N*OH).
 */
export function conv2d_forward(
  x: usize, bp: usize, bias: usize, y: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32,
  KH: i32, KW: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const K = KH * KW * Cin;
  const bt = blockTiles(K);
  const zero = scratch + FIXED;
  const seg = zero + <usize>align16(KW * Cin * 4); // a span of one input row, for few channels
  const recs = seg + <usize>align16((3 * sw + KW) * Cin * 4);
  const ents = recs + <usize>(bt * REC);
  const ap = ents + <usize>(bt * KH * ENTRY);
  zeroFill(zero, align16(KW * Cin * 4));
  const pix = <usize>Cin << 2;
  const ldc = <usize>Cout << 2;
  const runW = dw == 1 || KW == 1;
  const run = KW * Cin;
  let nt = 0;
  let e = ents;
  let d = ap;
  for (let row = begin; row < end; row++) {
    const n = row / OH;
    const oh = row - n * OH;
    // Filter rows whose input row is inside the image: the same for every pixel of the row.
    const khLo = max(0, ceilDiv(pt - oh * sh, dh));
    const khHi = min(KH, floorDiv(H - 1 + pt - oh * sh, dh) + 1);
    for (let ow0 = 0; ow0 < OW; ow0 += 4) {
      const rows = min(4, OW - ow0);
      const r = recs + <usize>(nt * REC);
      store<u32>(r, e);
      store<i32>(r, khLo < khHi ? 1 : 0, 4);
      store<u32>(r, y + <usize>(row * OW + ow0) * ldc, 8);
      store<i32>(r, rows, 12);
      if (khLo < khHi) {
        store<u32>(e, d);
        store<u32>(e, <u32>(khLo * run) << 5, 4);
        store<i32>(e, (khHi - khLo) * run, 8);
        e += ENTRY;
        const iwFirst = ow0 * sw - pl;
        const iwLast = (ow0 + rows - 1) * sw - pl + (KW - 1) * dw;
        for (let kh = khLo; kh < khHi; kh++) {
          const xrow = x + <usize>((n * H + oh * sh - pt + kh * dh) * W) * pix;
          if (runW && iwFirst >= 0 && iwLast < W) {
            // Every pixel reads KW whole pixels in a row: one run of KW*Cin floats.
            const s0 = xrow + <usize>iwFirst * pix;
            const st = <usize>sw * pix;
            gemm_pack4(d, s0, rows > 1 ? s0 + st : zero, rows > 2 ? s0 + 2 * st : zero, rows > 3 ? s0 + 3 * st : zero, run);
            d += <usize>run << 4;
          } else if (runW && Cin < 8) {
            // Few channels: copy the span of the input row the tile reads, with zeros
            // outside the image, and interleave the pixels' runs from that copy.
            const span = (rows - 1) * sw + KW;
            zeroFill(seg, align16(span * Cin * 4));
            const lo = max(0, iwFirst);
            const hi = min(W, iwFirst + span);
            const src = xrow + <usize>lo * pix;
            const dst = seg + <usize>(lo - iwFirst) * pix;
            const nf = (hi - lo) * Cin;
            let k = 0;
            for (; k + 4 <= nf; k += 4) v128.store(dst + (<usize>k << 2), v128.load(src + (<usize>k << 2)));
            for (; k < nf; k++) store<f32>(dst + (<usize>k << 2), load<f32>(src + (<usize>k << 2)));
            const st = <usize>sw * pix;
            gemm_pack4(d, seg, rows > 1 ? seg + st : zero, rows > 2 ? seg + 2 * st : zero, rows > 3 ? seg + 3 * st : zero, run);
            d += <usize>run << 4;
          } else {
            for (let kw = 0; kw < KW; kw++) {
              let iw = iwFirst + kw * dw;
              const s0 = iw >= 0 && iw < W ? xrow + <usize>iw * pix : zero;
              iw += sw;
              const s1 = rows > 1 && iw >= 0 && iw < W ? xrow + <usize>iw * pix : zero;
              iw += sw;
              const s2 = rows > 2 && iw >= 0 && iw < W ? xrow + <usize>iw * pix : zero;
              iw += sw;
              const s3 = rows > 3 && iw >= 0 && iw < W ? xrow + <usize>iw * pix : zero;
              gemm_pack4(d, s0, s1, s2, s3, Cin);
              d += pix << 2;
            }
          }
        }
      }
      if (++nt == bt) {
        runBlock(recs, nt, bp, K, Cout, ldc, bias, scratch);
        nt = 0;
        e = ents;
        d = ap;
      }
    }
  }
  if (nt > 0) runBlock(recs, nt, bp, K, Cout, ldc, bias, scratch);
}

/**
 * Pack the filter w[KH, KW, Cin, Cout] for the input gradient: a (KH*KW*Cout) x Cin
 * matrix in panels of 8 input channels, taps in the order (kh, KW-1-kw):
 * out[j][(kh*KW + kw') * Cout + co][q] = w[kh, KW-1-kw', 8j + q, co] (0 past Cin).
 * Range over panels j in [0, ceil(Cin / 8)).
 */
export function conv2d_pack_filter_t(
  w: usize, KH: i32, KW: i32, Cin: i32, Cout: i32, out: usize, begin: i32, end: i32, scratch: usize,
): void {
  const K = KH * KW * Cout;
  for (let j = begin; j < end; j++) {
    let o = out + <usize>j * <usize>K * 32;
    for (let kh = 0; kh < KH; kh++) {
      for (let kr = 0; kr < KW; kr++) {
        const wt = w + <usize>((kh * KW + KW - 1 - kr) * Cin) * <usize>Cout * 4;
        for (let co = 0; co < Cout; co++) {
          for (let q = 0; q < 8; q++) {
            const ci = j * 8 + q;
            store<f32>(o + (<usize>q << 2), ci < Cin ? load<f32>(wt + (<usize>(ci * Cout + co) << 2)) : 0);
          }
          o += 32;
        }
      }
    }
  }
}

/** Scratch bytes per thread for conv2d_backprop_input. */
export function conv2d_backprop_input_scratch(Cout: i32, KH: i32, KW: i32): i32 {
  const K = KH * KW * Cout;
  const bt = blockTiles(K);
  return FIXED + align16(KW * Cout * 4) + bt * (REC + KH * KW * ENTRY) + bt * K * 16;
}

/**
 * dx[N, H, W, Cin] = the gradient of conv2d with respect to its input, given
 * dy[N, OH, OW, Cout] and the filter packed by conv2d_pack_filter_t at bp.
 * Range over input rows (n, ih) in [0, N*H).
 */
export function conv2d_backprop_input(
  dy: usize, bp: usize, dx: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32,
  KH: i32, KW: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const K = KH * KW * Cout;
  const bt = blockTiles(K);
  const zero = scratch + FIXED;
  const recs = zero + <usize>align16(KW * Cout * 4);
  const ents = recs + <usize>(bt * REC);
  const ap = ents + <usize>(bt * KH * KW * ENTRY);
  zeroFill(zero, align16(KW * Cout * 4));
  const pix = <usize>Cout << 2;
  const ldx = <usize>Cin << 2;
  const ldc = <usize>sw * ldx;
  const runW = sw == 1 && (dw == 1 || KW == 1);
  let nt = 0;
  let e = ents;
  let d = ap;
  for (let row = begin; row < end; row++) {
    const n = row / H;
    const ih = row - n * H;
    for (let pw = 0; pw < min(sw, W); pw++) {
      const cnt = ceilDiv(W - pw, sw); // pixels iw = pw + sw * j, j < cnt
      for (let j0 = 0; j0 < cnt; j0 += 4) {
        const rows = min(4, cnt - j0);
        const r = recs + <usize>(nt * REC);
        const e0 = e;
        let lastB = -1; // k index just past the last entry's run
        for (let kh = 0; kh < KH; kh++) {
          const th = ih + pt - kh * dh;
          if (th < 0 || th % sh != 0) continue;
          const oh = th / sh;
          if (oh >= OH) continue;
          const dyrow = dy + <usize>((n * OH + oh) * OW) * pix;
          // kw' = KW-1-kw: with unit stride and dilation, ow = iw + pl - (KW-1) + kw'.
          const owFirst = pw + j0 + pl - (KW - 1);
          const owLast = pw + j0 + rows - 1 + pl;
          const whole = runW && owFirst >= 0 && owLast < OW;
          for (let kr = 0; kr < KW; kr++) {
            let len = Cout;
            let s0: usize, s1: usize, s2: usize, s3: usize;
            if (whole) {
              len = KW * Cout;
              s0 = dyrow + <usize>owFirst * pix;
              s1 = rows > 1 ? s0 + pix : zero;
              s2 = rows > 2 ? s0 + 2 * pix : zero;
              s3 = rows > 3 ? s0 + 3 * pix : zero;
            } else {
              const u = pw + pl - (KW - 1 - kr) * dw;
              if (u - floorDiv(u, sw) * sw != 0) continue; // no pixel of this phase meets this tap
              let ow = floorDiv(u, sw) + j0;
              s0 = ow >= 0 && ow < OW ? dyrow + <usize>ow * pix : zero;
              ow++;
              s1 = rows > 1 && ow >= 0 && ow < OW ? dyrow + <usize>ow * pix : zero;
              ow++;
              s2 = rows > 2 && ow >= 0 && ow < OW ? dyrow + <usize>ow * pix : zero;
              ow++;
              s3 = rows > 3 && ow >= 0 && ow < OW ? dyrow + <usize>ow * pix : zero;
            }
            gemm_pack4(d, s0, s1, s2, s3, len);
            const kb = (kh * KW + kr) * Cout;
            if (kb == lastB) {
              store<i32>(e - ENTRY, load<i32>(e - ENTRY, 8) + len, 8);
            } else {
              store<u32>(e, d);
              store<u32>(e, <u32>kb << 5, 4);
              store<i32>(e, len, 8);
              e += ENTRY;
            }
            lastB = kb + len;
            d += <usize>len << 4;
            if (whole) break;
          }
        }
        store<u32>(r, e0);
        store<i32>(r, <i32>((e - e0) / ENTRY), 4);
        store<u32>(r, dx + <usize>(row * W + pw + j0 * sw) * ldx, 8);
        store<i32>(r, rows, 12);
        if (++nt == bt) {
          runBlock(recs, nt, bp, K, Cin, ldc, 0, scratch);
          nt = 0;
          e = ents;
          d = ap;
        }
      }
    }
  }
  if (nt > 0) runBlock(recs, nt, bp, K, Cin, ldc, 0, scratch);
}

/** Output rows per pixel block of the filter gradient (~256 pixels, fewer for wide channels). */
@inline function bwfRows(OW: i32, Cin: i32, Cout: i32): i32 {
  return max(1, min(BWF_PIXELS, 32768 / max(Cin, Cout)) / OW);
}

/** Scratch bytes per thread for conv2d_backprop_filter. */
export function conv2d_backprop_filter_scratch(OW: i32, Cin: i32, Cout: i32): i32 {
  const rpb = bwfRows(OW, Cin, Cout);
  const bp = rpb * OW;
  return FIXED + bp * ((Cout + 7) >> 3) * 32 + bp * ((Cin + 3) >> 2) * 16 + rpb * ENTRY;
}

/**
 * dw[KH, KW, Cin, Cout] = the gradient of conv2d with respect to its filter,
 * given x[N, H, W, Cin] and dy[N, OH, OW, Cout]. Per block of output rows, dy
 * is packed into 8-channel panels and, per tap, the input pixels it meets into
 * 4-channel tiles. Range over filter rows (kh, kw, ci) in [0, KH*KW*Cin).
 */
export function conv2d_backprop_filter(
  x: usize, dy: usize, dwt: usize,
  N: i32, H: i32, W: i32, Cin: i32, OH: i32, OW: i32, Cout: i32,
  KH: i32, KW: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const tmp = scratch;
  const rpb = bwfRows(OW, Cin, Cout);
  const np = (Cout + 7) >> 3;
  const dyp = scratch + FIXED;
  const xp = dyp + <usize>(rpb * OW * np * 32);
  const tab = xp + <usize>(rpb * OW * ((Cin + 3) >> 2) * 16);
  const ldc = <usize>Cout << 2;
  const pix = <usize>Cin << 2;
  const R = N * OH;
  const tBegin = begin / Cin;
  const tEnd = (end + Cin - 1) / Cin;
  for (let r0 = 0; r0 < R; r0 += rpb) {
    const r1 = min(R, r0 + rpb);
    const BP = (r1 - r0) * OW;
    const cont = r0 == 0 ? 0 : 1;
    // B = dy of the block, packed as [np][BP][8] when it pays (many filter rows
    // reuse it) or when a partial panel would read past the end of dy; else
    // read in place (panel jp at +32jp, pixels ldc apart). The same floats
    // either way, so the choice never changes a bit.
    let bbase = dy + <usize>(r0 * OW) * ldc;
    let bstride = ldc;
    let pstride: usize = 32;
    if ((Cout & 7) != 0 || end - begin >= 128) {
      bbase = dyp;
      bstride = 32;
      pstride = <usize>BP * 32;
      for (let p = 0; p < BP; p++) {
        const src = dy + <usize>(r0 * OW + p) * ldc;
        for (let jp = 0; jp < np; jp++) {
          const o = dyp + <usize>(jp * BP + p) * 32;
          if (jp * 8 + 8 <= Cout) {
            v128.store(o, v128.load(src + <usize>jp * 32));
            v128.store(o, v128.load(src + <usize>jp * 32, 16), 16);
          } else {
            for (let q = 0; q < 8; q++) {
              const co = jp * 8 + q;
              store<f32>(o + (<usize>q << 2), co < Cout ? load<f32>(src + (<usize>co << 2)) : 0);
            }
          }
        }
      }
    }
    for (let t = tBegin; t < tEnd; t++) {
      const kh = t / KW;
      const kw = t - kh * KW;
      const c0 = max(begin, t * Cin) - t * Cin;
      const c1 = min(end, t * Cin + Cin) - t * Cin;
      const nq = (c1 - c0 + 3) >> 2;
      // Output columns whose input column is inside the image for this tap.
      const owLo = max(0, ceilDiv(pl - kw * dw, sw));
      const owHi = min(OW, floorDiv(W - 1 + pl - kw * dw, sw) + 1);
      // The block's output rows whose input row is inside the image, as runs of
      // whole rows; columns outside the image are packed as zeros (a zero term,
      // fixed by the geometry), so each run is one stretch of K.
      let nent = 0;
      let prev = -2;
      if (owLo < owHi) {
        for (let row = r0; row < r1; row++) {
          const n = row / OH;
          const oh = row - n * OH;
          const ih = oh * sh - pt + kh * dh;
          if (ih < 0 || ih >= H) continue;
          const p0 = (row - r0) * OW;
          // Pack x at the pixels of this output row, 4 channels per tile: xp[q][p][4].
          for (let q = 0; q < nq; q++) {
            let o = xp + <usize>(q * BP + p0) * 16;
            for (let p = 0; p < owLo; p++) v128.store(o + (<usize>p << 4), i32x4.splat(0));
            for (let p = owHi; p < OW; p++) v128.store(o + (<usize>p << 4), i32x4.splat(0));
            const ci = c0 + 4 * q;
            let src = x + <usize>((n * H + ih) * W + owLo * sw - pl + kw * dw) * pix + (<usize>ci << 2);
            const st = <usize>sw * pix;
            o += <usize>owLo << 4;
            if (ci + 4 <= Cin) {
              for (let p = owLo; p < owHi; p++) {
                v128.store(o, v128.load(src));
                src += st;
                o += 16;
              }
            } else {
              // The last 1-3 channels: zeros in the missing lanes.
              const nv = Cin - ci;
              for (let p = owLo; p < owHi; p++) {
                store<f32>(o, load<f32>(src));
                store<f32>(o, nv > 1 ? load<f32>(src, 4) : 0, 4);
                store<f32>(o, nv > 2 ? load<f32>(src, 8) : 0, 8);
                store<f32>(o, 0, 12);
                src += st;
                o += 16;
              }
            }
          }
          if (row == prev + 1) {
            const el = tab + <usize>((nent - 1) * ENTRY);
            store<i32>(el, load<i32>(el, 8) + OW, 8);
          } else {
            const el = tab + <usize>(nent * ENTRY);
            store<u32>(el, xp + <usize>p0 * 16);
            store<u32>(el, bbase + <usize>p0 * bstride, 4);
            store<i32>(el, OW, 8);
            nent++;
          }
          prev = row;
        }
      }
      for (let jp = 0; jp < np; jp++) {
        const cols = min(8, Cout - jp * 8);
        const boff = <usize>jp * pstride;
        for (let q = 0; q < nq; q++) {
          const ci = c0 + 4 * q;
          const rows = min(4, c1 - ci);
          const aoff = <usize>(q * BP) * 16;
          const cp = dwt + <usize>(t * Cin + ci) * ldc + <usize>jp * 32;
          if (rows == 4 && cols == 8) {
            gemm_tile(tab, nent, aoff, 16, boff, bstride, cp, ldc, cont, 0);
          } else {
            if (cont) gemm_copy_tile(cp, ldc, tmp, 32, rows, cols);
            gemm_tile(tab, nent, aoff, 16, boff, bstride, tmp, 32, cont, 0);
            gemm_copy_tile(tmp, 32, cp, ldc, rows, cols);
          }
        }
      }
    }
  }
}

