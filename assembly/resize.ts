// Bilinear resize, NHWC, SIMD over channels, with TensorFlow's coordinate
// conventions (resize_bilinear / tf.image.resize without antialias), all in
// float32 as TensorFlow computes them:
//
//   scale = (mode == ALIGN && out > 1) ? (in - 1) / (out - 1) : in / out
//   src   = HALF_PIXEL: (dst + 0.5) * scale - 0.5;  LEGACY, ALIGN: dst * scale
//   lower = clamp(floor(src), 0, in - 1), upper = min(ceil(src), in - 1), lerp = src - floor(src)
//   top = x[ly, lx] + (x[ly, ux] - x[ly, lx]) * xl, bottom likewise on row uy,
//   out = top + (bottom - top) * yl.
//
// The backward kernel is the transpose of that map read as
// out = sum (1-yl|yl) * (1-xl|xl) * x[corner]: each output's cotangent goes to its
// four corners with those weights.

const LEGACY: i32 = 0;
const HALF_PIXEL: i32 = 1;
const ALIGN: i32 = 2;

@inline function scaleOf(inSize: i32, outSize: i32, mode: i32): f32 {
  return mode == ALIGN && outSize > 1 ? <f32>(inSize - 1) / <f32>(outSize - 1) : <f32>inSize / <f32>outSize;
}

@inline function srcOf(dst: i32, scale: f32, mode: i32): f32 {
  return mode == HALF_PIXEL ? (<f32>dst + 0.5) * scale - 0.5 : <f32>dst * scale;
}

@inline function lowerOf(src: f32, inSize: i32): i32 {
  const l = <i32>Mathf.floor(src);
  return l < 0 ? 0 : l > inSize - 1 ? inSize - 1 : l;
}

@inline function upperOf(src: f32, inSize: i32): i32 {
  const u = <i32>Mathf.ceil(src);
  return u < 0 ? 0 : u > inSize - 1 ? inSize - 1 : u;
}

/**
 * out[n, oy, ox, c] = bilinear sample of x[n, :, :, c] at the source point of (oy, ox).
 * x: [N, H, W, C], out: [N, OH, OW, C], mode: 0 legacy, 1 half-pixel centers, 2 align corners.
 * Range: output rows r = n*OH + oy. scratch: 2 * OW * C floats. When enlarging rows
 * (OH > H), two input rows interpolated along x (`top` and `bottom` of the formula
 * above) are kept while consecutive output rows read the same input rows; the
 * values, hence the bits, are those of the formula whatever the range.
 */
export function resize_bilinear_forward(
  x: usize, out: usize, N: i32, H: i32, W: i32, C: i32, OH: i32, OW: i32, mode: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const rowBytes = W * C4;
  const outRowBytes = <usize>(OW * C4);
  const scaleY = scaleOf(H, OH, mode);
  const scaleX = scaleOf(W, OW, mode);
  const bufA = scratch;
  const bufB = scratch + outRowBytes;
  let tagA = -1; // which input row (n*H + iy) each buffer holds
  let tagB = -1;
  for (let r = begin; r < end; r++) {
    const n = r / OH;
    const oy = r - n * OH;
    const sy = srcOf(oy, scaleY, mode);
    const yl = sy - Mathf.floor(sy);
    const kl = n * H + lowerOf(sy, H);
    const ku = n * H + upperOf(sy, H);
    if (OH <= H) {
      // Shrinking (or same size): rows are rarely shared; interpolate directly.
      directRow(x + <usize>kl * <usize>rowBytes, x + <usize>ku * <usize>rowBytes, out + <usize>r * outRowBytes, W, C, OW, scaleX, mode, yl);
      continue;
    }
    let top: usize;
    if (tagA == kl) top = bufA;
    else if (tagB == kl) top = bufB;
    else if (tagA == ku) {
      top = bufB;
      tagB = kl;
      lerpRow(x + <usize>kl * <usize>rowBytes, bufB, W, C, OW, scaleX, mode);
    } else {
      top = bufA;
      tagA = kl;
      lerpRow(x + <usize>kl * <usize>rowBytes, bufA, W, C, OW, scaleX, mode);
    }
    let bot: usize;
    if (tagA == ku) bot = bufA;
    else if (tagB == ku) bot = bufB;
    else if (top == bufA) {
      bot = bufB;
      tagB = ku;
      lerpRow(x + <usize>ku * <usize>rowBytes, bufB, W, C, OW, scaleX, mode);
    } else {
      bot = bufA;
      tagA = ku;
      lerpRow(x + <usize>ku * <usize>rowBytes, bufA, W, C, OW, scaleX, mode);
    }
    // out = top + (bottom - top) * yl over the whole row.
    const op = out + <usize>r * outRowBytes;
    const yv = f32x4.splat(yl);
    const n16 = <usize>((OW * C) & ~15) << 2;
    const n4 = <usize>((OW * C) & ~3) << 2;
    let i: usize = 0;
    for (; i < n16; i += 64) {
      const t0 = v128.load(top + i);
      const t1 = v128.load(top + i, 16);
      const t2 = v128.load(top + i, 32);
      const t3 = v128.load(top + i, 48);
      v128.store(op + i, f32x4.add(t0, f32x4.mul(f32x4.sub(v128.load(bot + i), t0), yv)));
      v128.store(op + i, f32x4.add(t1, f32x4.mul(f32x4.sub(v128.load(bot + i, 16), t1), yv)), 16);
      v128.store(op + i, f32x4.add(t2, f32x4.mul(f32x4.sub(v128.load(bot + i, 32), t2), yv)), 32);
      v128.store(op + i, f32x4.add(t3, f32x4.mul(f32x4.sub(v128.load(bot + i, 48), t3), yv)), 48);
    }
    for (; i < n4; i += 16) {
      const t = v128.load(top + i);
      v128.store(op + i, f32x4.add(t, f32x4.mul(f32x4.sub(v128.load(bot + i), t), yv)));
    }
    for (; i < outRowBytes; i += 4) {
      const t = load<f32>(top + i);
      store<f32>(op + i, t + (load<f32>(bot + i) - t) * yl);
    }
  }
}

/** One output row straight from input rows `top` and `bot` (the same formula, no buffers). */
@inline function directRow(top: usize, bot: usize, op: usize, W: i32, C: i32, OW: i32, scaleX: f32, mode: i32, yl: f32): void {
  const C4 = C << 2;
  const CV = C & ~3;
  const yv = f32x4.splat(yl);
  for (let ox = 0; ox < OW; ox++) {
    const sx = srcOf(ox, scaleX, mode);
    const xl = sx - Mathf.floor(sx);
    const xv = f32x4.splat(xl);
    const lo = <usize>(lowerOf(sx, W) * C4);
    const hi = <usize>(upperOf(sx, W) * C4);
    for (let q = 0; q < CV; q += 4) {
      const qb = <usize>(q << 2);
      const tl = v128.load(top + lo + qb);
      const tr = v128.load(top + hi + qb);
      const bl = v128.load(bot + lo + qb);
      const br = v128.load(bot + hi + qb);
      const t = f32x4.add(tl, f32x4.mul(f32x4.sub(tr, tl), xv));
      const b = f32x4.add(bl, f32x4.mul(f32x4.sub(br, bl), xv));
      v128.store(op + qb, f32x4.add(t, f32x4.mul(f32x4.sub(b, t), yv)));
    }
    for (let c = CV; c < C; c++) {
      const cb = <usize>(c << 2);
      const tl = load<f32>(top + lo + cb);
      const tr = load<f32>(top + hi + cb);
      const bl = load<f32>(bot + lo + cb);
      const br = load<f32>(bot + hi + cb);
      const t = tl + (tr - tl) * xl;
      const b = bl + (br - bl) * xl;
      store<f32>(op + cb, t + (b - t) * yl);
    }
    op += <usize>C4;
  }
}

/** dst[ox, c] = x[lx, c] + (x[ux, c] - x[lx, c]) * xl for one input row. */
@inline function lerpRow(src: usize, dst: usize, W: i32, C: i32, OW: i32, scaleX: f32, mode: i32): void {
  const C4 = C << 2;
  const CV = C & ~3;
  let dp = dst;
  for (let ox = 0; ox < OW; ox++) {
    const sx = srcOf(ox, scaleX, mode);
    const xl = sx - Mathf.floor(sx);
    const xv = f32x4.splat(xl);
    const lp = src + <usize>(lowerOf(sx, W) * C4);
    const up = src + <usize>(upperOf(sx, W) * C4);
    for (let q = 0; q < CV; q += 4) {
      const qb = <usize>(q << 2);
      const l = v128.load(lp + qb);
      v128.store(dp + qb, f32x4.add(l, f32x4.mul(f32x4.sub(v128.load(up + qb), l), xv)));
    }
    for (let c = CV; c < C; c++) {
      const cb = <usize>(c << 2);
      const l = load<f32>(lp + cb);
      store<f32>(dp + cb, l + (load<f32>(up + cb) - l) * xl);
    }
    dp += <usize>C4;
  }
}

/**
 * dx[n, iy, ix, c] = sum over outputs (oy ascending; the lower-row weight before the
 * upper-row weight; then ox ascending, the left corner before the right) of
 * g[n, oy, ox, c] * wy * wx, where wy = 1 - yl if iy is the lower row, yl if the upper,
 * likewise wx. g: [N, OH, OW, C], dx: [N, H, W, C]. Range: dx rows r = n*H + iy.
 */
export function resize_bilinear_backward(
  g: usize, dx: usize, N: i32, H: i32, W: i32, C: i32, OH: i32, OW: i32, mode: i32,
  begin: i32, end: i32, scratch: usize,
): void {
  const C4 = C << 2;
  const rowBytes = W * C4;
  const scaleY = scaleOf(H, OH, mode);
  const scaleX = scaleOf(W, OW, mode);
  for (let r = begin; r < end; r++) {
    const n = r / H;
    const iy = r - n * H;
    const dxRow = dx + <usize>r * <usize>rowBytes;
    memory.fill(dxRow, 0, <usize>rowBytes);
    for (let oy = 0; oy < OH; oy++) {
      const sy = srcOf(oy, scaleY, mode);
      const ly = lowerOf(sy, H);
      if (ly > iy) break; // the lower row never decreases with oy
      const uy = upperOf(sy, H);
      const yl = sy - Mathf.floor(sy);
      const gRow = g + <usize>(n * OH + oy) * <usize>(OW * C4);
      if (ly == iy) scatterRow(gRow, dxRow, C, OW, W, scaleX, mode, <f32>1 - yl);
      if (uy == iy) scatterRow(gRow, dxRow, C, OW, W, scaleX, mode, yl);
    }
  }
}

/** dxRow[lx] += g * (wy * (1 - xl)); dxRow[ux] += g * (wy * xl) for every output column, in order. */
@inline function scatterRow(gRow: usize, dxRow: usize, C: i32, OW: i32, W: i32, scaleX: f32, mode: i32, wy: f32): void {
  const C4 = C << 2;
  const CV = C & ~3;
  let gp = gRow;
  for (let ox = 0; ox < OW; ox++) {
    const sx = srcOf(ox, scaleX, mode);
    const xl = sx - Mathf.floor(sx);
    const wl = wy * (<f32>1 - xl);
    const wu = wy * xl;
    const vl = f32x4.splat(wl);
    const vu = f32x4.splat(wu);
    const lp = dxRow + <usize>(lowerOf(sx, W) * C4);
    const up = dxRow + <usize>(upperOf(sx, W) * C4);
    for (let q = 0; q < CV; q += 4) {
      const qb = <usize>(q << 2);
      const gv = v128.load(gp + qb);
      v128.store(lp + qb, f32x4.add(v128.load(lp + qb), f32x4.mul(gv, vl)));
      v128.store(up + qb, f32x4.add(v128.load(up + qb), f32x4.mul(gv, vu)));
    }
    for (let c = CV; c < C; c++) {
      const cb = <usize>(c << 2);
      const gv = load<f32>(gp + cb);
      store<f32>(lp + cb, load<f32>(lp + cb) + gv * wl);
      store<f32>(up + cb, load<f32>(up + cb) + gv * wu);
    }
    gp += C4;
  }
}
