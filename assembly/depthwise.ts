// Depthwise (channelwise) convolution, NHWC, SIMD over channels.
//
// The kernels here are channelwise: channel c of the output reads only
// channel c of the input, with a filter w[KH, KW, C]. A channel multiplier
// M > 1 is reduced to this case by the op: `depthwise_expand` repeats every
// input channel M times (x[.., c] -> xr[.., c*M + m], TensorFlow's output
// channel order), the channelwise kernels run on C*M channels, and
// `depthwise_fold` sums the M copies of an input-gradient channel back.
//
// Geometry (all kernels): output pixel (oh, ow) reads input pixel
// (oh*sh - pt + kh*dh, ow*sw - pl + kw*dw); taps that fall outside the input
// are skipped (zero padding). Every sum runs over taps in (kh, kw) ascending
// order, or over output pixels in (n, oh, ow) ascending order, whichever path
// (SIMD block, single pixel, scalar channel tail) computes it.

@inline function floorDiv(a: i32, b: i32): i32 {
  return a >= 0 ? a / b : -((b - 1 - a) / b);
}

@inline function ceilDiv(a: i32, b: i32): i32 {
  return -floorDiv(-a, b);
}

@inline function imin(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

@inline function imax(a: i32, b: i32): i32 {
  return a > b ? a : b;
}

@inline function gcd(a: i32, b: i32): i32 {
  while (b != 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** First k in [0, K) with 0 <= base + k*d < size (taps in range form one run). */
@inline function tapLo(base: i32, d: i32): i32 {
  return base >= 0 ? 0 : ceilDiv(-base, d);
}

/** One past the last k in [0, K) with base + k*d < size. */
@inline function tapHi(base: i32, d: i32, size: i32, K: i32): i32 {
  return imin(K, floorDiv(size - 1 - base, d) + 1);
}

// ---- forward ---------------------------------------------------------------

/**
 * out[n, oh, ow, c] = sum_{kh, kw} x[n, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw, c] * w[kh, kw, c]  (+ b[c])
 * x: [N, H, W, C], w: [KH, KW, C], b: [C] or 0 for none, out: [N, OH, OW, C].
 * Range: output rows r = n*OH + oh in [begin, end).
 */
export function depthwise_forward(
  x: usize, w: usize, b: usize, out: usize,
  N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32, OH: i32, OW: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const rowBytes = W * C4;
  const sC4 = sw * C4;
  const dC4 = dw * C4;
  // Output columns whose taps all fall inside the input.
  const owI0 = imin(OW, ceilDiv(pl, sw));
  const owI1 = imax(owI0, imin(OW, floorDiv(W - 1 - (KW - 1) * dw + pl, sw) + 1));
  for (let r = begin; r < end; r++) {
    const n = r / OH;
    const oh = r - n * OH;
    const ih0 = oh * sh - pt;
    const khLo = tapLo(ih0, dh);
    const khHi = tapHi(ih0, dh, H, KH);
    const xn = x + <usize>(n * H) * <usize>rowBytes;
    const outRow = out + <usize>r * <usize>(OW * C4);
    // The input rows that the next output row (of this image) reads and this one does not:
    // touched along the way, a line per block (see touch).
    const last = ih0 + (KH - 1) * dh;
    const t0 = imin(imax(last + 1, 0), H);
    const t1 = oh + 1 < OH ? imax(t0, imin(last + sh + 1, H)) : t0;
    let tp = xn + <usize>t0 * <usize>rowBytes;
    const tEnd = xn + <usize>t1 * <usize>rowBytes;
    let ow = 0;
    while (ow < OW) {
      if (ow >= owI0 && ow < owI1 && owI1 - owI0 >= 4) {
        // Four interior pixels at once (every tap valid); the last block of a run may
        // overlap the one before it, recomputing the same bits.
        ow = imin(ow, owI1 - 4);
        const iw0 = ow * sw - pl;
        const op = outRow + <usize>(ow * C4);
        const xb = xn + <usize>(iw0 * C4);
        if (KW == 3 && sw == 1 && dw == 1) {
          for (let q = 0; q < CV; q += 4) {
            forwardBlock3(xb, w, b, op, q, ih0, khLo, khHi, C4, rowBytes, dh);
            tp = touch(tp, tEnd);
          }
        } else {
          for (let q = 0; q < CV; q += 4) {
            forwardBlock(xb, w, b, op, q, ih0, khLo, khHi, KW, C, C4, rowBytes, sC4, dC4, dh);
            tp = touch(tp, tEnd);
          }
        }
        for (let j = 0; j < 4; j++) {
          forwardTail(xn, w, b, op + <usize>(j * C4), C, CV, rowBytes, ih0, khLo, khHi, iw0 + j * sw, 0, KW, KW, dh, dw);
        }
        ow += 4;
      } else {
        const iw0 = ow * sw - pl;
        const kwLo = tapLo(iw0, dw);
        const kwHi = tapHi(iw0, dw, W, KW);
        const op = outRow + <usize>(ow * C4);
        if (khLo < khHi && kwLo < kwHi) {
          const xp = xn + <usize>((ih0 + khLo * dh) * rowBytes + (iw0 + kwLo * dw) * C4);
          const wp = w + <usize>(((khLo * KW + kwLo) * C) << 2);
          pixelTaps(xp, wp, b, op, CV, khHi - khLo, kwHi - kwLo, dh * rowBytes, dC4, KW * C4, C4);
        } else {
          pixelTaps(xn, w, b, op, CV, 0, 0, 0, 0, 0, 0);
        }
        forwardTail(xn, w, b, op, C, CV, rowBytes, ih0, khLo, khHi, iw0, kwLo, kwHi, KW, dh, dw);
        tp = touch(tp, tEnd);
        ow++;
      }
    }
    while (tp < tEnd) tp = touch(tp, tEnd);
  }
}

/**
 * Reads one byte of the 64-byte line at p (if p < end) and returns the next line. The
 * forward pass touches the input rows that the next output row reads for the first time,
 * one line per block, in address order: that sequential stream lets the hardware
 * prefetcher bring them in ahead of use, where the blocks' own accesses (strided across
 * pixels) do not. On W3-sized inputs (8 MB, beyond the L2) about 1.25x faster; no cost
 * once the data sits in cache. The value is unused; a load may trap, so the compilers
 * keep it.
 */
@inline function touch(p: usize, end: usize): usize {
  if (p >= end) return p;
  load<u8>(p);
  return p + 64;
}

/**
 * One pixel, channel groups of 4 in [0, CV): out[q] = sum over i < n1, then k < n2, of
 * a[i*aRow + k*aTap + q] * b[i*bRow + k*bTap + q] (+ bias[q] when bias != 0). Four groups
 * run side by side (independent sums, so the adds overlap); strides may be negative.
 */
@inline function pixelTaps(
  a: usize, b: usize, bias: usize, out: usize, CV: i32, n1: i32, n2: i32, aRow: i32, aTap: i32, bRow: i32, bTap: i32,
): void {
  let q = 0;
  for (; q + 16 <= CV; q += 16) {
    let s0 = f32x4.splat(0);
    let s1 = s0;
    let s2 = s0;
    let s3 = s0;
    let ar = a + <usize>(q << 2);
    let br = b + <usize>(q << 2);
    for (let i = 0; i < n1; i++) {
      let ap = ar;
      let bp = br;
      for (let k = 0; k < n2; k++) {
        s0 = f32x4.add(s0, f32x4.mul(v128.load(ap), v128.load(bp)));
        s1 = f32x4.add(s1, f32x4.mul(v128.load(ap, 16), v128.load(bp, 16)));
        s2 = f32x4.add(s2, f32x4.mul(v128.load(ap, 32), v128.load(bp, 32)));
        s3 = f32x4.add(s3, f32x4.mul(v128.load(ap, 48), v128.load(bp, 48)));
        ap += <usize>aTap;
        bp += <usize>bTap;
      }
      ar += <usize>aRow;
      br += <usize>bRow;
    }
    const o = out + <usize>(q << 2);
    if (bias != 0) {
      const bb = bias + <usize>(q << 2);
      s0 = f32x4.add(s0, v128.load(bb));
      s1 = f32x4.add(s1, v128.load(bb, 16));
      s2 = f32x4.add(s2, v128.load(bb, 32));
      s3 = f32x4.add(s3, v128.load(bb, 48));
    }
    v128.store(o, s0);
    v128.store(o, s1, 16);
    v128.store(o, s2, 32);
    v128.store(o, s3, 48);
  }
  for (; q < CV; q += 4) {
    let s0 = f32x4.splat(0);
    let ar = a + <usize>(q << 2);
    let br = b + <usize>(q << 2);
    for (let i = 0; i < n1; i++) {
      let ap = ar;
      let bp = br;
      for (let k = 0; k < n2; k++) {
        s0 = f32x4.add(s0, f32x4.mul(v128.load(ap), v128.load(bp)));
        ap += <usize>aTap;
        bp += <usize>bTap;
      }
      ar += <usize>aRow;
      br += <usize>bRow;
    }
    if (bias != 0) s0 = f32x4.add(s0, v128.load(bias + <usize>(q << 2)));
    v128.store(out + <usize>(q << 2), s0);
  }
}

/**
 * Four horizontally adjacent output pixels (all taps inside the input), one channel
 * group of 4 starting at channel q; taps in (kh, kw) order, then the bias. (Two
 * channel groups at once would need more registers than V8 keeps: it hoists every
 * load of a block to its top.)
 */
@inline function forwardBlock(
  xb: usize, w: usize, b: usize, op: usize, q: i32, ih0: i32, khLo: i32, khHi: i32, KW: i32,
  C: i32, C4: i32, rowBytes: i32, sC4: i32, dC4: i32, dh: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  const qb = <usize>(q << 2);
  let row = xb + <usize>((ih0 + khLo * dh) * rowBytes) + qb;
  let wr = w + <usize>((khLo * KW * C) << 2) + qb;
  const rowStep = <usize>(dh * rowBytes);
  for (let kh = khLo; kh < khHi; kh++) {
    let p = row;
    let wp = wr;
    for (let kw = 0; kw < KW; kw++) {
      const wv = v128.load(wp);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(p), wv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(p + sC4), wv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(p + 2 * sC4), wv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(p + 3 * sC4), wv));
      p += dC4;
      wp += C4;
    }
    row += rowStep;
    wr += <usize>(KW * C4);
  }
  if (b != 0) {
    const bv = v128.load(b + qb);
    a0 = f32x4.add(a0, bv);
    a1 = f32x4.add(a1, bv);
    a2 = f32x4.add(a2, bv);
    a3 = f32x4.add(a3, bv);
  }
  const o = op + qb;
  v128.store(o, a0);
  v128.store(o + C4, a1);
  v128.store(o + 2 * C4, a2);
  v128.store(o + 3 * C4, a3);
}

/**
 * forwardBlock for a 1x3-wide row of taps at stride 1, dilation 1: the six input
 * pixels under four outputs are loaded once each. Same term order (kw ascending
 * within kh) for every output.
 */
@inline function forwardBlock3(
  xb: usize, w: usize, b: usize, op: usize, q: i32, ih0: i32, khLo: i32, khHi: i32,
  C4: i32, rowBytes: i32, dh: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  const qb = <usize>(q << 2);
  const c = <usize>C4;
  const pStep = <usize>(dh * rowBytes);
  let p = xb + <usize>((ih0 + khLo * dh) * rowBytes) + qb;
  let wp = w + <usize>(khLo * 3) * c + qb;
  for (let kh = khLo; kh < khHi; kh++) {
    const w0 = v128.load(wp);
    const w1 = v128.load(wp + c);
    const w2 = v128.load(wp + 2 * c);
    let v = v128.load(p);
    a0 = f32x4.add(a0, f32x4.mul(v, w0));
    v = v128.load(p + C4);
    a0 = f32x4.add(a0, f32x4.mul(v, w1));
    a1 = f32x4.add(a1, f32x4.mul(v, w0));
    v = v128.load(p + 2 * C4);
    a0 = f32x4.add(a0, f32x4.mul(v, w2));
    a1 = f32x4.add(a1, f32x4.mul(v, w1));
    a2 = f32x4.add(a2, f32x4.mul(v, w0));
    v = v128.load(p + 3 * C4);
    a1 = f32x4.add(a1, f32x4.mul(v, w2));
    a2 = f32x4.add(a2, f32x4.mul(v, w1));
    a3 = f32x4.add(a3, f32x4.mul(v, w0));
    v = v128.load(p + 4 * C4);
    a2 = f32x4.add(a2, f32x4.mul(v, w2));
    a3 = f32x4.add(a3, f32x4.mul(v, w1));
    v = v128.load(p + 5 * C4);
    a3 = f32x4.add(a3, f32x4.mul(v, w2));
    p += pStep;
    wp += 3 * c;
  }
  if (b != 0) {
    const bv = v128.load(b + qb);
    a0 = f32x4.add(a0, bv);
    a1 = f32x4.add(a1, bv);
    a2 = f32x4.add(a2, bv);
    a3 = f32x4.add(a3, bv);
  }
  const o = op + qb;
  v128.store(o, a0);
  v128.store(o + C4, a1);
  v128.store(o + 2 * C4, a2);
  v128.store(o + 3 * C4, a3);
}

/** The channels past the last multiple of 4 of one output pixel, one at a time, in the same tap order. */
@inline function forwardTail(
  xn: usize, w: usize, b: usize, op: usize, C: i32, CV: i32, rowBytes: i32,
  ih0: i32, khLo: i32, khHi: i32, iw0: i32, kwLo: i32, kwHi: i32, KW: i32, dh: i32, dw: i32,
): void {
  for (let c = CV; c < C; c++) {
    let a: f32 = 0;
    for (let kh = khLo; kh < khHi; kh++) {
      for (let kw = kwLo; kw < kwHi; kw++) {
        const xv = load<f32>(xn + <usize>((ih0 + kh * dh) * rowBytes + ((iw0 + kw * dw) * C + c) * 4));
        a += xv * load<f32>(w + <usize>(((kh * KW + kw) * C + c) << 2));
      }
    }
    if (b != 0) a += load<f32>(b + (c << 2));
    store<f32>(op + (c << 2), a);
  }
}

// ---- gradient with respect to the input -----------------------------------

/**
 * dx[n, ih, iw, c] = sum over (kh, kw) with oh = (ih + pt - kh*dh) / sh and ow = (iw + pl - kw*dw) / sw
 * whole and inside the output, of g[n, oh, ow, c] * w[kh, kw, c]; (kh, kw) ascending.
 * g: [N, OH, OW, C], w: [KH, KW, C], dx: [N, H, W, C]. Range: input rows r = n*H + ih.
 */
export function depthwise_backward_input(
  g: usize, w: usize, dx: usize,
  N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32, OH: i32, OW: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const gRowBytes = OW * C4;
  // Taps with the same residue class modulo the stride step together.
  const stepH = sh / gcd(sh, dh);
  const stepW = sw / gcd(sw, dw);
  const ohStep = (stepH * dh) / sh; // oh decreases by this per kh step
  const owStep = (stepW * dw) / sw;
  const wKhBytes = stepH * KW * C4;
  const wKwBytes = stepW * C4;
  const gKhBytes = ohStep * gRowBytes;
  const gKwBytes = owStep * C4;
  for (let r = begin; r < end; r++) {
    const n = r / H;
    const ih = r - n * H;
    const dxRow = dx + <usize>r * <usize>(W * C4);
    // The valid kh: kh0, kh0 + stepH, ... (cntH of them).
    let kh0 = 0;
    let cntH = 0;
    for (let kh = 0; kh < KH; kh++) {
      const t = ih + pt - kh * dh;
      if (t >= 0 && t % sh == 0 && t / sh < OH) {
        if (cntH == 0) kh0 = kh;
        cntH++;
      }
    }
    if (cntH == 0) {
      memory.fill(dxRow, 0, <usize>(W * C4));
      continue;
    }
    const oh0 = (ih + pt - kh0 * dh) / sh;
    const gRow0 = g + <usize>(n * OH + oh0) * <usize>gRowBytes;
    const wRow0 = w + <usize>(kh0 * KW * C4);
    const phases = imin(sw, W);
    for (let ph = 0; ph < phases; ph++) {
      // kw with (ph + pl - kw*dw) divisible by sw: km0, km0 + stepW, ..., kmLast.
      let km0 = -1;
      let cntM = 0;
      for (let kw = 0; kw < KW; kw++) {
        const t = ph + pl - kw * dw;
        if (t - floorDiv(t, sw) * sw == 0) {
          if (km0 < 0) km0 = kw;
          cntM++;
        }
      }
      if (cntM == 0) {
        for (let iw = ph; iw < W; iw += sw) memory.fill(dxRow + <usize>(iw * C4), 0, <usize>C4);
        continue;
      }
      const kmLast = km0 + (cntM - 1) * stepW;
      // Pixels of this phase (inside the row) whose taps all land inside the output.
      // iw + pl - kmLast*dw >= 0 and iw + pl - km0*dw <= (OW - 1)*sw.
      const fullLo = imax(kmLast * dw - pl, 0);
      const fullHi = imin((OW - 1) * sw + km0 * dw - pl, W - 1);
      let iw = ph;
      while (iw < W) {
        // A block of four pixels (iw, iw + sw, ...) whose taps are all inside; the last
        // block of a run may step back to overlap the one before it (same bits).
        const back = iw + 3 * sw > fullHi ? ceilDiv(iw + 3 * sw - fullHi, sw) * sw : 0;
        if (iw >= fullLo && iw <= fullHi && iw - back >= fullLo) {
          iw -= back;
          const ow0 = (iw + pl - km0 * dw) / sw;
          const gp0 = gRow0 + <usize>(ow0 * C4);
          const wp0 = wRow0 + <usize>(km0 * C4);
          const dp = dxRow + <usize>(iw * C4);
          const sC4 = sw * C4;
          if (KW == 3 && sw == 1 && dw == 1) {
            for (let q = 0; q < CV; q += 4) inputBlock3(gp0, wp0, dp, q, cntH, C4, gKhBytes, wKhBytes);
          } else {
            for (let q = 0; q < CV; q += 4) {
              let a0 = f32x4.splat(0);
              let a1 = a0;
              let a2 = a0;
              let a3 = a0;
              let gr = gp0 + (q << 2);
              let wr = wp0 + (q << 2);
              for (let i = 0; i < cntH; i++) {
                let gp = gr;
                let wp = wr;
                for (let k = 0; k < cntM; k++) {
                  const wv = v128.load(wp);
                  a0 = f32x4.add(a0, f32x4.mul(v128.load(gp), wv));
                  a1 = f32x4.add(a1, f32x4.mul(v128.load(gp + C4), wv));
                  a2 = f32x4.add(a2, f32x4.mul(v128.load(gp + 2 * C4), wv));
                  a3 = f32x4.add(a3, f32x4.mul(v128.load(gp + 3 * C4), wv));
                  gp -= gKwBytes;
                  wp += wKwBytes;
                }
                gr -= gKhBytes;
                wr += wKhBytes;
              }
              const o = dp + (q << 2);
              v128.store(o, a0);
              v128.store(o + sC4, a1);
              v128.store(o + 2 * sC4, a2);
              v128.store(o + 3 * sC4, a3);
            }
          }
          for (let j = 0; j < 4; j++) {
            inputTail(gp0 + <usize>(j * C4), wp0, dp + <usize>(j * sC4), C, CV, cntH, cntM, gKhBytes, gKwBytes, wKhBytes, wKwBytes);
          }
          iw += 4 * sw;
        } else {
          // The run of this phase's taps whose ow lies in [0, OW).
          let k0 = -1;
          let cnt = 0;
          for (let k = 0; k < cntM; k++) {
            const t = iw + pl - (km0 + k * stepW) * dw;
            if (t >= 0 && t / sw < OW) {
              if (k0 < 0) k0 = k;
              cnt++;
            }
          }
          const dp = dxRow + <usize>(iw * C4);
          if (cnt == 0) {
            memory.fill(dp, 0, <usize>C4);
          } else {
            const kw0 = km0 + k0 * stepW;
            const ow0 = (iw + pl - kw0 * dw) / sw;
            const gp0 = gRow0 + <usize>(ow0 * C4);
            const wp0 = wRow0 + <usize>(kw0 * C4);
            pixelTaps(gp0, wp0, 0, dp, CV, cntH, cnt, -gKhBytes, -gKwBytes, wKhBytes, wKwBytes);
            inputTail(gp0, wp0, dp, C, CV, cntH, cnt, gKhBytes, gKwBytes, wKhBytes, wKwBytes);
          }
          iw += sw;
        }
      }
    }
  }
}

/**
 * Four adjacent dx pixels of a 3-wide filter at stride 1, dilation 1 (all taps inside
 * the output): the six g pixels under them are loaded once each, in the order that
 * gives every pixel its terms with kw ascending, as on the other paths.
 * gp0: g at the first pixel's kw = 0 tap (ow = iw + pl), wp0: w at the first valid kh.
 */
@inline function inputBlock3(
  gp0: usize, wp0: usize, dp: usize, q: i32, cntH: i32, C4: i32, gKhBytes: i32, wKhBytes: i32,
): void {
  const c = <usize>C4;
  const qb = <usize>(q << 2);
  let gr = gp0 - 2 * c + qb; // ow0 - 2: the kw = 2 tap of the first pixel
  let wr = wp0 + qb;
  let a0 = f32x4.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  for (let i = 0; i < cntH; i++) {
    const w0 = v128.load(wr);
    const w1 = v128.load(wr + c);
    const w2 = v128.load(wr + 2 * c);
    let v = v128.load(gr + 5 * c);
    a3 = f32x4.add(a3, f32x4.mul(v, w0));
    v = v128.load(gr + 4 * c);
    a2 = f32x4.add(a2, f32x4.mul(v, w0));
    a3 = f32x4.add(a3, f32x4.mul(v, w1));
    v = v128.load(gr + 3 * c);
    a1 = f32x4.add(a1, f32x4.mul(v, w0));
    a2 = f32x4.add(a2, f32x4.mul(v, w1));
    a3 = f32x4.add(a3, f32x4.mul(v, w2));
    v = v128.load(gr + 2 * c);
    a0 = f32x4.add(a0, f32x4.mul(v, w0));
    a1 = f32x4.add(a1, f32x4.mul(v, w1));
    a2 = f32x4.add(a2, f32x4.mul(v, w2));
    v = v128.load(gr + c);
    a0 = f32x4.add(a0, f32x4.mul(v, w1));
    a1 = f32x4.add(a1, f32x4.mul(v, w2));
    v = v128.load(gr);
    a0 = f32x4.add(a0, f32x4.mul(v, w2));
    gr -= <usize>gKhBytes;
    wr += <usize>wKhBytes;
  }
  const o = dp + qb;
  v128.store(o, a0);
  v128.store(o + c, a1);
  v128.store(o + 2 * c, a2);
  v128.store(o + 3 * c, a3);
}

/** Channels past the last multiple of 4 of one dx pixel, in the same tap order. */
@inline function inputTail(
  gp0: usize, wp0: usize, dp: usize, C: i32, CV: i32, cntH: i32, cntW: i32,
  gKhBytes: i32, gKwBytes: i32, wKhBytes: i32, wKwBytes: i32,
): void {
  for (let c = CV; c < C; c++) {
    let a: f32 = 0;
    let gr = gp0 + (c << 2);
    let wr = wp0 + (c << 2);
    for (let i = 0; i < cntH; i++) {
      let gp = gr;
      let wp = wr;
      for (let k = 0; k < cntW; k++) {
        a += load<f32>(gp) * load<f32>(wp);
        gp -= gKwBytes;
        wp += wKwBytes;
      }
      gr -= gKhBytes;
      wr += wKhBytes;
    }
    store<f32>(dp + (c << 2), a);
  }
}

// ---- gradient with respect to the filter ----------------------------------

/**
 * dwt[kh, kw, c] = sum over (n, oh, ow) ascending of g[n, oh, ow, c] * x[n, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw, c]
 * (terms with the input pixel outside the image skipped).
 * x: [N, H, W, C], g: [N, OH, OW, C], dwt: [KH, KW, C].
 * Range: channel groups [4*begin, min(4*end, C)) (total = ceil(C / 4)); every filter
 * element belongs to one group, so the sum over the batch is never split.
 */
export function depthwise_backward_filter(
  x: usize, g: usize, dwt: usize,
  N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32, OH: i32, OW: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const c0 = begin << 2;
  const c1 = imin(end << 2, C);
  const v1 = imin(c1, CV); // SIMD groups are [c0, v1), scalar channels [max(c0, CV), c1)
  const rowBytes = W * C4;
  const sC4 = sw * C4;
  const dC4 = dw * C4;
  for (let t = 0; t < KH * KW; t++) {
    memory.fill(dwt + <usize>((t * C + c0) << 2), 0, <usize>((c1 - c0) << 2));
  }
  const rows = N * OH;
  for (let r = 0; r < rows; r++) {
    const n = r / OH;
    const oh = r - n * OH;
    const ih0 = oh * sh - pt;
    const khLo = tapLo(ih0, dh);
    const khHi = tapHi(ih0, dh, H, KH);
    const xn = x + <usize>(n * H) * <usize>rowBytes;
    const gRow = g + <usize>r * <usize>(OW * C4);
    for (let kh = khLo; kh < khHi; kh++) {
      const xRow = xn + <usize>((ih0 + kh * dh) * rowBytes);
      for (let k0 = 0; k0 < KW; k0 += 4) {
        const G = imin(4, KW - k0);
        // ow valid for tap kw: ceil((pl - kw*dw)/sw) <= ow <= floor((W - 1 + pl - kw*dw)/sw).
        // Union over the group: [lo(last), hi(first)]; all taps valid on [lo(first... last)].
        const kLast = k0 + G - 1;
        const uLo = imax(0, ceilDiv(pl - kLast * dw, sw));
        const uHi = imin(OW, floorDiv(W - 1 + pl - k0 * dw, sw) + 1);
        const iLo = imax(0, ceilDiv(pl - k0 * dw, sw));
        const iHi = imin(OW, floorDiv(W - 1 + pl - kLast * dw, sw) + 1);
        if (uLo >= uHi) continue;
        // [uLo, a) edge, [a, e) all taps valid, [e, uHi) edge.
        const a = imax(uLo, imin(iLo, uHi));
        const e = imax(a, imin(iHi, uHi));
        const wBase = dwt + <usize>(((kh * KW + k0) * C) << 2);
        const xBase = xRow + <usize>((k0 * dw - pl) * C4); // + ow*sC4 for pixel ow
        let q = c0;
        if (KW == 3 && sw == 1 && dw == 1) {
          for (; q + 8 <= v1; q += 8) {
            const qb = <usize>(q << 2);
            filterGroup3(xBase + qb, gRow + qb, wBase + qb, C4, uLo, a, e, uHi, pl, W, 2);
          }
          if (q < v1) {
            const qb = <usize>(q << 2);
            filterGroup3(xBase + qb, gRow + qb, wBase + qb, C4, uLo, a, e, uHi, pl, W, 1);
          }
          q = v1;
        }
        for (; q < v1; q += 4) {
          const qb = <usize>(q << 2);
          if (G == 4) filterGroup(xBase + qb, gRow + qb, wBase + qb, C4, sC4, dC4, uLo, a, e, uHi, pl, sw, dw, W, k0, 4);
          else if (G == 3) filterGroup(xBase + qb, gRow + qb, wBase + qb, C4, sC4, dC4, uLo, a, e, uHi, pl, sw, dw, W, k0, 3);
          else if (G == 2) filterGroup(xBase + qb, gRow + qb, wBase + qb, C4, sC4, dC4, uLo, a, e, uHi, pl, sw, dw, W, k0, 2);
          else filterGroup(xBase + qb, gRow + qb, wBase + qb, C4, sC4, dC4, uLo, a, e, uHi, pl, sw, dw, W, k0, 1);
        }
        for (let c = imax(c0, CV); c < c1; c++) {
          for (let kw = k0; kw <= kLast; kw++) {
            const lo = imax(0, ceilDiv(pl - kw * dw, sw));
            const hi = imin(OW, floorDiv(W - 1 + pl - kw * dw, sw) + 1);
            const wp = dwt + <usize>(((kh * KW + kw) * C + c) << 2);
            let acc = load<f32>(wp);
            for (let ow = lo; ow < hi; ow++) {
              acc += load<f32>(gRow + <usize>((ow * C + c) << 2)) * load<f32>(xRow + <usize>(((ow * sw - pl + kw * dw) * C + c) << 2));
            }
            store<f32>(wp, acc);
          }
        }
      }
    }
  }
}

/** One channel group, G (1..4) consecutive taps, one output row; accumulates into the filter gradient in ow order. */
@inline function filterGroup(
  xb: usize, gb: usize, wb: usize, C4: i32, sC4: i32, dC4: i32,
  uLo: i32, a: i32, e: i32, uHi: i32, pl: i32, sw: i32, dw: i32, W: i32, k0: i32, G: i32,
): void {
  let a0 = v128.load(wb);
  let a1 = G > 1 ? v128.load(wb + C4) : a0;
  let a2 = G > 2 ? v128.load(wb + 2 * C4) : a0;
  let a3 = G > 3 ? v128.load(wb + 3 * C4) : a0;
  // Edge pixels: some taps of the group fall outside the input.
  for (let ow = uLo; ow < a; ow++) {
    const gv = v128.load(gb + <usize>(ow * C4));
    const base = ow * sw - pl + k0 * dw; // input column of tap k0
    const xp = xb + <usize>(ow * sC4);
    if (<u32>base < <u32>W) a0 = f32x4.add(a0, f32x4.mul(gv, v128.load(xp)));
    if (G > 1 && <u32>(base + dw) < <u32>W) a1 = f32x4.add(a1, f32x4.mul(gv, v128.load(xp + dC4)));
    if (G > 2 && <u32>(base + 2 * dw) < <u32>W) a2 = f32x4.add(a2, f32x4.mul(gv, v128.load(xp + 2 * dC4)));
    if (G > 3 && <u32>(base + 3 * dw) < <u32>W) a3 = f32x4.add(a3, f32x4.mul(gv, v128.load(xp + 3 * dC4)));
  }
  let gp = gb + <usize>(a * C4);
  let xp = xb + <usize>(a * sC4);
  for (let ow = a; ow < e; ow++) {
    const gv = v128.load(gp);
    a0 = f32x4.add(a0, f32x4.mul(gv, v128.load(xp)));
    if (G > 1) a1 = f32x4.add(a1, f32x4.mul(gv, v128.load(xp + dC4)));
    if (G > 2) a2 = f32x4.add(a2, f32x4.mul(gv, v128.load(xp + 2 * dC4)));
    if (G > 3) a3 = f32x4.add(a3, f32x4.mul(gv, v128.load(xp + 3 * dC4)));
    gp += C4;
    xp += sC4;
  }
  for (let ow = e; ow < uHi; ow++) {
    const gv = v128.load(gb + <usize>(ow * C4));
    const base = ow * sw - pl + k0 * dw;
    const xp = xb + <usize>(ow * sC4);
    if (<u32>base < <u32>W) a0 = f32x4.add(a0, f32x4.mul(gv, v128.load(xp)));
    if (G > 1 && <u32>(base + dw) < <u32>W) a1 = f32x4.add(a1, f32x4.mul(gv, v128.load(xp + dC4)));
    if (G > 2 && <u32>(base + 2 * dw) < <u32>W) a2 = f32x4.add(a2, f32x4.mul(gv, v128.load(xp + 2 * dC4)));
    if (G > 3 && <u32>(base + 3 * dw) < <u32>W) a3 = f32x4.add(a3, f32x4.mul(gv, v128.load(xp + 3 * dC4)));
  }
  v128.store(wb, a0);
  if (G > 1) v128.store(wb + C4, a1);
  if (G > 2) v128.store(wb + 2 * C4, a2);
  if (G > 3) v128.store(wb + 3 * C4, a3);
}

/**
 * filterGroup for the three taps of a 3-wide filter row at stride 1, dilation 1, V (1 or 2)
 * channel groups: consecutive outputs share input pixels, so each x pixel is loaded
 * once. Same order: every tap's sum over ow ascending.
 */
@inline function filterGroup3(
  xb: usize, gb: usize, wb: usize, C4: i32, uLo: i32, a: i32, e: i32, uHi: i32, pl: i32, W: i32, V: i32,
): void {
  const c = <usize>C4;
  let a0 = v128.load(wb);
  let a1 = v128.load(wb + c);
  let a2 = v128.load(wb + 2 * c);
  let b0 = V > 1 ? v128.load(wb, 16) : a0;
  let b1 = V > 1 ? v128.load(wb + c, 16) : a0;
  let b2 = V > 1 ? v128.load(wb + 2 * c, 16) : a0;
  for (let ow = uLo; ow < a; ow++) {
    const base = ow - pl;
    const gp = gb + <usize>ow * c;
    const xp = xb + <usize>ow * c;
    for (let k = 0; k < 3; k++) {
      if (<u32>(base + k) < <u32>W) {
        const xk = xp + <usize>k * c;
        if (k == 0) a0 = f32x4.add(a0, f32x4.mul(v128.load(gp), v128.load(xk)));
        if (k == 1) a1 = f32x4.add(a1, f32x4.mul(v128.load(gp), v128.load(xk)));
        if (k == 2) a2 = f32x4.add(a2, f32x4.mul(v128.load(gp), v128.load(xk)));
        if (V > 1) {
          if (k == 0) b0 = f32x4.add(b0, f32x4.mul(v128.load(gp, 16), v128.load(xk, 16)));
          if (k == 1) b1 = f32x4.add(b1, f32x4.mul(v128.load(gp, 16), v128.load(xk, 16)));
          if (k == 2) b2 = f32x4.add(b2, f32x4.mul(v128.load(gp, 16), v128.load(xk, 16)));
        }
      }
    }
  }
  if (a < e) {
    let gp = gb + <usize>a * c;
    let xp = xb + <usize>a * c;
    let x0 = v128.load(xp);
    let x1 = v128.load(xp + c);
    let y0 = V > 1 ? v128.load(xp, 16) : x0;
    let y1 = V > 1 ? v128.load(xp + c, 16) : x0;
    for (let ow = a; ow < e; ow++) {
      const g = v128.load(gp);
      const x2 = v128.load(xp + 2 * c);
      a0 = f32x4.add(a0, f32x4.mul(g, x0));
      a1 = f32x4.add(a1, f32x4.mul(g, x1));
      a2 = f32x4.add(a2, f32x4.mul(g, x2));
      x0 = x1;
      x1 = x2;
      if (V > 1) {
        const h = v128.load(gp, 16);
        const y2 = v128.load(xp + 2 * c, 16);
        b0 = f32x4.add(b0, f32x4.mul(h, y0));
        b1 = f32x4.add(b1, f32x4.mul(h, y1));
        b2 = f32x4.add(b2, f32x4.mul(h, y2));
        y0 = y1;
        y1 = y2;
      }
      gp += c;
      xp += c;
    }
  }
  for (let ow = e; ow < uHi; ow++) {
    const base = ow - pl;
    const gp = gb + <usize>ow * c;
    const xp = xb + <usize>ow * c;
    for (let k = 0; k < 3; k++) {
      if (<u32>(base + k) < <u32>W) {
        const xk = xp + <usize>k * c;
        if (k == 0) a0 = f32x4.add(a0, f32x4.mul(v128.load(gp), v128.load(xk)));
        if (k == 1) a1 = f32x4.add(a1, f32x4.mul(v128.load(gp), v128.load(xk)));
        if (k == 2) a2 = f32x4.add(a2, f32x4.mul(v128.load(gp), v128.load(xk)));
        if (V > 1) {
          if (k == 0) b0 = f32x4.add(b0, f32x4.mul(v128.load(gp, 16), v128.load(xk, 16)));
          if (k == 1) b1 = f32x4.add(b1, f32x4.mul(v128.load(gp, 16), v128.load(xk, 16)));
          if (k == 2) b2 = f32x4.add(b2, f32x4.mul(v128.load(gp, 16), v128.load(xk, 16)));
        }
      }
    }
  }
  v128.store(wb, a0);
  v128.store(wb + c, a1);
  v128.store(wb + 2 * c, a2);
  if (V > 1) {
    v128.store(wb, b0, 16);
    v128.store(wb + c, b1, 16);
    v128.store(wb + 2 * c, b2, 16);
  }
}

// ---- the channel multiplier -------------------------------------------------

/** xr[p, c*M + m] = x[p, c] for x: [P, C]. Range: pixels p in [begin, end). */
export function depthwise_expand(x: usize, C: i32, M: i32, xr: usize, begin: i32, end: i32, scratch: usize): void {
  for (let p = begin; p < end; p++) {
    const src = x + <usize>p * <usize>(C << 2);
    let dst = xr + <usize>p * <usize>((C * M) << 2);
    for (let c = 0; c < C; c++) {
      const v = load<f32>(src + <usize>(c << 2));
      for (let m = 0; m < M; m++) {
        store<f32>(dst, v);
        dst += 4;
      }
    }
  }
}

/** out[p, c] = sum over m ascending of xr[p, c*M + m] for xr: [P, C*M]. Range: pixels p in [begin, end). */
export function depthwise_fold(xr: usize, C: i32, M: i32, out: usize, begin: i32, end: i32, scratch: usize): void {
  for (let p = begin; p < end; p++) {
    let src = xr + <usize>p * <usize>((C * M) << 2);
    const dst = out + <usize>p * <usize>(C << 2);
    for (let c = 0; c < C; c++) {
      let a = load<f32>(src);
      for (let m = 1; m < M; m++) a += load<f32>(src + <usize>(m << 2));
      store<f32>(dst + <usize>(c << 2), a);
      src += <usize>(M << 2);
    }
  }
}
