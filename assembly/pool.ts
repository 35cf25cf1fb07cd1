// Max and average pooling, NHWC, SIMD over channels.
//
// Window (oh, ow) covers input rows oh*sh - pt + [0, KH) and columns
// ow*sw - pl + [0, KW); positions outside the input are ignored (TensorFlow:
// max ignores them, average divides by the number of positions inside).
// Backward kernels own rows of dx: for each dx row they visit the windows that
// cover it in (oh, ow) ascending order and add into that row only, so every
// dx element is summed in one fixed order whatever the range split.

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

// ---- max -------------------------------------------------------------------

/**
 * out[n, oh, ow, c] = max over the window's positions inside the input of x[n, ih, iw, c].
 * A value replaces the running maximum only when strictly greater (row-major scan).
 * x: [N, H, W, C], out: [N, OH, OW, C]. Range: output rows r = n*OH + oh.
 */
export function maxpool_forward(
  x: usize, out: usize, N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, pt: i32, pl: i32, OH: i32, OW: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const rowBytes = W * C4;
  for (let r = begin; r < end; r++) {
    const n = r / OH;
    const oh = r - n * OH;
    const ih0 = oh * sh - pt;
    const khLo = imax(0, -ih0);
    const khHi = imin(KH, H - ih0);
    const xn = x + <usize>(n * H) * <usize>rowBytes;
    let op = out + <usize>r * <usize>(OW * C4);
    for (let ow = 0; ow < OW; ow++) {
      const iw0 = ow * sw - pl;
      const kwLo = imax(0, -iw0);
      const kwHi = imin(KW, W - iw0);
      const first = xn + <usize>((ih0 + khLo) * rowBytes + (iw0 + kwLo) * C4);
      // Four channel groups side by side (independent running maxima), then one at a time.
      let q = 0;
      for (; q + 16 <= CV; q += 16) {
        let p = first + (q << 2);
        let m0 = v128.load(p);
        let m1 = v128.load(p, 16);
        let m2 = v128.load(p, 32);
        let m3 = v128.load(p, 48);
        for (let kh = khLo; kh < khHi; kh++) {
          let pp = p;
          for (let kw = kwLo; kw < kwHi; kw++) {
            m0 = f32x4.pmax(m0, v128.load(pp)); // m < v ? v : m
            m1 = f32x4.pmax(m1, v128.load(pp, 16));
            m2 = f32x4.pmax(m2, v128.load(pp, 32));
            m3 = f32x4.pmax(m3, v128.load(pp, 48));
            pp += C4;
          }
          p += rowBytes;
        }
        const o = op + (q << 2);
        v128.store(o, m0);
        v128.store(o, m1, 16);
        v128.store(o, m2, 32);
        v128.store(o, m3, 48);
      }
      for (; q < CV; q += 4) {
        let p = first + (q << 2);
        let m = v128.load(p);
        for (let kh = khLo; kh < khHi; kh++) {
          let pp = p;
          for (let kw = kwLo; kw < kwHi; kw++) {
            m = f32x4.pmax(m, v128.load(pp));
            pp += C4;
          }
          p += rowBytes;
        }
        v128.store(op + (q << 2), m);
      }
      for (let c = CV; c < C; c++) {
        let p = first + (c << 2);
        let m = load<f32>(p);
        for (let kh = khLo; kh < khHi; kh++) {
          let pp = p;
          for (let kw = kwLo; kw < kwHi; kw++) {
            const v = load<f32>(pp);
            if (m < v) m = v;
            pp += C4;
          }
          p += rowBytes;
        }
        store<f32>(op + (c << 2), m);
      }
      op += C4;
    }
  }
}

/**
 * dx[n, ih, iw, c] = sum over windows (oh, ow) ascending whose first maximal position
 * (row-major scan, positions inside the input) is (ih, iw), of g[n, oh, ow, c].
 * x: [N, H, W, C], g: [N, OH, OW, C], dx: [N, H, W, C]. Range: dx rows r = n*H + ih.
 * scratch: R = ceil(KH / sh) i32 tags padded to 16 bytes, then R slots of window
 * argmax indices (i32 [OW, C], kh*KW + kw; window row oh in slot oh % R), so a
 * window's argmax is found once per call rather than once per dx row it covers:
 * align16(4R) + 4 * R * OW * C bytes. The indices depend only on x, so the bits do
 * not depend on the range.
 */
export function maxpool_backward(
  x: usize, g: usize, dx: usize, N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, pt: i32, pl: i32, OH: i32, OW: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const rowBytes = W * C4;
  const R = (KH + sh - 1) / sh;
  const tags = scratch;
  const slots = scratch + <usize>((R * 4 + 15) & ~15);
  const slotBytes = <usize>(OW * C4);
  for (let i = 0; i < R; i++) store<i32>(tags + <usize>(i << 2), -1);
  for (let r = begin; r < end; r++) {
    const n = r / H;
    const ih = r - n * H;
    const dxRow = dx + <usize>r * <usize>rowBytes;
    memory.fill(dxRow, 0, <usize>rowBytes);
    // Windows covering row ih: oh*sh - pt <= ih <= oh*sh - pt + KH - 1.
    const ohLo = imax(0, ceilDiv(ih + pt - KH + 1, sh));
    const ohHi = imin(OH, floorDiv(ih + pt, sh) + 1);
    for (let oh = ohLo; oh < ohHi; oh++) {
      const ih0 = oh * sh - pt;
      const slot = oh % R;
      const at = slots + <usize>slot * slotBytes;
      if (load<i32>(tags + <usize>(slot << 2)) != n * OH + oh) {
        argmaxRow(x + <usize>(n * H) * <usize>rowBytes, at, H, W, C, KH, KW, sw, pl, OW, ih0);
        store<i32>(tags + <usize>(slot << 2), n * OH + oh);
      }
      const target = (ih - ih0) * KW; // window index of (ih, kw) is target + kw
      const gRow = g + <usize>(n * OH + oh) * <usize>(OW * C4);
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * sw - pl;
        const kwLo = imax(0, -iw0);
        const kwHi = imin(KW, W - iw0);
        const gp = gRow + <usize>(ow * C4);
        const ap = at + <usize>(ow * C4);
        const dp0 = dxRow + <usize>((iw0 + kwLo) * C4);
        for (let q = 0; q < CV; q += 4) {
          const qb = <usize>(q << 2);
          const gv = v128.load(gp + qb);
          const idx = v128.load(ap + qb);
          let dp = dp0 + qb;
          for (let kw = kwLo; kw < kwHi; kw++) {
            const hit = i32x4.eq(idx, i32x4.splat(target + kw));
            v128.store(dp, f32x4.add(v128.load(dp), v128.and(gv, hit)));
            dp += C4;
          }
        }
        for (let c = CV; c < C; c++) {
          const k = load<i32>(ap + <usize>(c << 2)) - target;
          if (k >= kwLo && k < kwHi) {
            const dp = dp0 + <usize>(((k - kwLo) * C + c) << 2);
            store<f32>(dp, load<f32>(dp) + load<f32>(gp + <usize>(c << 2)));
          }
        }
      }
    }
  }
}

/**
 * at[ow, c] = kh*KW + kw of the first maximal position (row-major, inside the input)
 * of window (oh, ow), whose top row is ih0; xn is the image.
 */
@inline function argmaxRow(
  xn: usize, at: usize, H: i32, W: i32, C: i32, KH: i32, KW: i32, sw: i32, pl: i32, OW: i32, ih0: i32,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const rowBytes = W * C4;
  const khLo = imax(0, -ih0);
  const khHi = imin(KH, H - ih0);
  let ap = at;
  for (let ow = 0; ow < OW; ow++) {
    const iw0 = ow * sw - pl;
    const kwLo = imax(0, -iw0);
    const kwHi = imin(KW, W - iw0);
    const first = xn + <usize>((ih0 + khLo) * rowBytes + (iw0 + kwLo) * C4);
    let q = 0;
    for (; q + 8 <= CV; q += 8) {
      let p = first + (q << 2);
      let m0 = v128.load(p);
      let m1 = v128.load(p, 16);
      let i0 = i32x4.splat(khLo * KW + kwLo);
      let i1 = i0;
      for (let kh = khLo; kh < khHi; kh++) {
        let pp = p;
        for (let kw = kwLo; kw < kwHi; kw++) {
          const k = i32x4.splat(kh * KW + kw);
          const v0 = v128.load(pp);
          const v1 = v128.load(pp, 16);
          const gt0 = f32x4.lt(m0, v0);
          const gt1 = f32x4.lt(m1, v1);
          m0 = v128.bitselect(v0, m0, gt0);
          m1 = v128.bitselect(v1, m1, gt1);
          i0 = v128.bitselect(k, i0, gt0);
          i1 = v128.bitselect(k, i1, gt1);
          pp += C4;
        }
        p += rowBytes;
      }
      v128.store(ap + (q << 2), i0);
      v128.store(ap + (q << 2), i1, 16);
    }
    for (; q < CV; q += 4) {
      let p = first + (q << 2);
      let m = v128.load(p);
      let idx = i32x4.splat(khLo * KW + kwLo);
      for (let kh = khLo; kh < khHi; kh++) {
        let pp = p;
        for (let kw = kwLo; kw < kwHi; kw++) {
          const v = v128.load(pp);
          const gt = f32x4.lt(m, v);
          m = v128.bitselect(v, m, gt);
          idx = v128.bitselect(i32x4.splat(kh * KW + kw), idx, gt);
          pp += C4;
        }
        p += rowBytes;
      }
      v128.store(ap + (q << 2), idx);
    }
    for (let c = CV; c < C; c++) {
      let p = first + (c << 2);
      let m = load<f32>(p);
      let idx = khLo * KW + kwLo;
      for (let kh = khLo; kh < khHi; kh++) {
        let pp = p;
        for (let kw = kwLo; kw < kwHi; kw++) {
          const v = load<f32>(pp);
          if (m < v) {
            m = v;
            idx = kh * KW + kw;
          }
          pp += C4;
        }
        p += rowBytes;
      }
      store<i32>(ap + (c << 2), idx);
    }
    ap += <usize>C4;
  }
}

// ---- average -----------------------------------------------------------------

/**
 * out[n, oh, ow, c] = (sum over the window's positions inside the input, row-major, of x) / (their count).
 * Range: output rows r = n*OH + oh.
 */
export function avgpool_forward(
  x: usize, out: usize, N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, pt: i32, pl: i32, OH: i32, OW: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const rowBytes = W * C4;
  for (let r = begin; r < end; r++) {
    const n = r / OH;
    const oh = r - n * OH;
    const ih0 = oh * sh - pt;
    const khLo = imax(0, -ih0);
    const khHi = imin(KH, H - ih0);
    const xn = x + <usize>(n * H) * <usize>rowBytes;
    let op = out + <usize>r * <usize>(OW * C4);
    for (let ow = 0; ow < OW; ow++) {
      const iw0 = ow * sw - pl;
      const kwLo = imax(0, -iw0);
      const kwHi = imin(KW, W - iw0);
      const cnt = <f32>((khHi - khLo) * (kwHi - kwLo));
      const cv = f32x4.splat(cnt);
      const first = xn + <usize>((ih0 + khLo) * rowBytes + (iw0 + kwLo) * C4);
      let q = 0;
      for (; q + 16 <= CV; q += 16) {
        let p = first + (q << 2);
        let s0 = f32x4.splat(0);
        let s1 = s0;
        let s2 = s0;
        let s3 = s0;
        for (let kh = khLo; kh < khHi; kh++) {
          let pp = p;
          for (let kw = kwLo; kw < kwHi; kw++) {
            s0 = f32x4.add(s0, v128.load(pp));
            s1 = f32x4.add(s1, v128.load(pp, 16));
            s2 = f32x4.add(s2, v128.load(pp, 32));
            s3 = f32x4.add(s3, v128.load(pp, 48));
            pp += C4;
          }
          p += rowBytes;
        }
        const o = op + (q << 2);
        v128.store(o, f32x4.div(s0, cv));
        v128.store(o, f32x4.div(s1, cv), 16);
        v128.store(o, f32x4.div(s2, cv), 32);
        v128.store(o, f32x4.div(s3, cv), 48);
      }
      for (; q < CV; q += 4) {
        let p = first + (q << 2);
        let s = f32x4.splat(0);
        for (let kh = khLo; kh < khHi; kh++) {
          let pp = p;
          for (let kw = kwLo; kw < kwHi; kw++) {
            s = f32x4.add(s, v128.load(pp));
            pp += C4;
          }
          p += rowBytes;
        }
        v128.store(op + (q << 2), f32x4.div(s, cv));
      }
      for (let c = CV; c < C; c++) {
        let p = first + (c << 2);
        let s: f32 = 0;
        for (let kh = khLo; kh < khHi; kh++) {
          let pp = p;
          for (let kw = kwLo; kw < kwHi; kw++) {
            s += load<f32>(pp);
            pp += C4;
          }
          p += rowBytes;
        }
        store<f32>(op + (c << 2), s / cnt);
      }
      op += C4;
    }
  }
}

/**
 * dx[n, ih, iw, c] = sum over windows (oh, ow) ascending that cover (ih, iw) of g[n, oh, ow, c] / count(oh, ow):
 * the transpose of avgpool_forward. g: [N, OH, OW, C], dx: [N, H, W, C]. Range: dx rows r = n*H + ih.
 */
export function avgpool_backward(
  g: usize, dx: usize, N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, pt: i32, pl: i32, OH: i32, OW: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const rowBytes = W * C4;
  for (let r = begin; r < end; r++) {
    const n = r / H;
    const ih = r - n * H;
    const dxRow = dx + <usize>r * <usize>rowBytes;
    memory.fill(dxRow, 0, <usize>rowBytes);
    const ohLo = imax(0, ceilDiv(ih + pt - KH + 1, sh));
    const ohHi = imin(OH, floorDiv(ih + pt, sh) + 1);
    for (let oh = ohLo; oh < ohHi; oh++) {
      const ih0 = oh * sh - pt;
      const rows = imin(KH, H - ih0) - imax(0, -ih0);
      let gp = g + <usize>(n * OH + oh) * <usize>(OW * C4);
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * sw - pl;
        const kwLo = imax(0, -iw0);
        const kwHi = imin(KW, W - iw0);
        const cnt = <f32>(rows * (kwHi - kwLo));
        const cv = f32x4.splat(cnt);
        const dp0 = dxRow + <usize>((iw0 + kwLo) * C4);
        for (let q = 0; q < CV; q += 4) {
          const v = f32x4.div(v128.load(gp + (q << 2)), cv);
          let dp = dp0 + (q << 2);
          for (let kw = kwLo; kw < kwHi; kw++) {
            v128.store(dp, f32x4.add(v128.load(dp), v));
            dp += C4;
          }
        }
        for (let c = CV; c < C; c++) {
          const v = load<f32>(gp + (c << 2)) / cnt;
          let dp = dp0 + (c << 2);
          for (let kw = kwLo; kw < kwHi; kw++) {
            store<f32>(dp, load<f32>(dp) + v);
            dp += C4;
          }
        }
        gp += C4;
      }
    }
  }
}
