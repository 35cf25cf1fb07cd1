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
      for (let q = 0; q < CV; q += 4) {
        let p = first + (q << 2);
        let m = v128.load(p);
        for (let kh = khLo; kh < khHi; kh++) {
          let pp = p;
          for (let kw = kwLo; kw < kwHi; kw++) {
            m = f32x4.pmax(m, v128.load(pp)); // m < v ? v : m
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
 */
export function maxpool_backward(
  x: usize, g: usize, dx: usize, N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
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
    const xn = x + <usize>(n * H) * <usize>rowBytes;
    // Windows covering row ih: oh*sh - pt <= ih <= oh*sh - pt + KH - 1.
    const ohLo = imax(0, ceilDiv(ih + pt - KH + 1, sh));
    const ohHi = imin(OH, floorDiv(ih + pt, sh) + 1);
    for (let oh = ohLo; oh < ohHi; oh++) {
      const ih0 = oh * sh - pt;
      const khLo = imax(0, -ih0);
      const khHi = imin(KH, H - ih0);
      const target = (ih - ih0) * KW; // window index of (ih, kw) is target + kw
      let gp = g + <usize>(n * OH + oh) * <usize>(OW * C4);
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * sw - pl;
        const kwLo = imax(0, -iw0);
        const kwHi = imin(KW, W - iw0);
        const first = xn + <usize>((ih0 + khLo) * rowBytes + (iw0 + kwLo) * C4);
        const dp0 = dxRow + <usize>((iw0 + kwLo) * C4);
        for (let q = 0; q < CV; q += 4) {
          let p = first + (q << 2);
          let m = v128.load(p);
          let at = i32x4.splat(khLo * KW + kwLo);
          for (let kh = khLo; kh < khHi; kh++) {
            let pp = p;
            for (let kw = kwLo; kw < kwHi; kw++) {
              const v = v128.load(pp);
              const gt = f32x4.lt(m, v);
              m = v128.bitselect(v, m, gt);
              at = v128.bitselect(i32x4.splat(kh * KW + kw), at, gt);
              pp += C4;
            }
            p += rowBytes;
          }
          const gv = v128.load(gp + (q << 2));
          let dp = dp0 + (q << 2);
          for (let kw = kwLo; kw < kwHi; kw++) {
            const hit = i32x4.eq(at, i32x4.splat(target + kw));
            v128.store(dp, f32x4.add(v128.load(dp), v128.and(gv, hit)));
            dp += C4;
          }
        }
        for (let c = CV; c < C; c++) {
          let p = first + (c << 2);
          let m = load<f32>(p);
          let at = khLo * KW + kwLo;
          for (let kh = khLo; kh < khHi; kh++) {
            let pp = p;
            for (let kw = kwLo; kw < kwHi; kw++) {
              const v = load<f32>(pp);
              if (m < v) {
                m = v;
                at = kh * KW + kw;
              }
              pp += C4;
            }
            p += rowBytes;
          }
          const k = at - target;
          if (k >= kwLo && k < kwHi) {
            const dp = dp0 + <usize>(((k - kwLo) * C + c) << 2);
            store<f32>(dp, load<f32>(dp) + load<f32>(gp + (c << 2)));
          }
        }
        gp += C4;
      }
    }
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
      for (let q = 0; q < CV; q += 4) {
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
