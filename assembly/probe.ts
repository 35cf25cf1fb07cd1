// A probe of the machine, not a tensor kernel: how many f32x4 multiplies and
// adds one core sustains, the ceiling against which the kernels' GFLOP/s are
// read (`npm run bench -- --workloads PEAK`).

/**
 * Six independent multiply chains (a_i *= m) and six independent add chains
 * (b_i += d), n steps each: 12 vector operations (48 flops) per step, no loads,
 * and enough chains to cover the operations' latency. m and d are arguments so
 * that the compiler keeps them in registers. Returns the sum of all lanes of
 * every chain (so nothing is optimised away).
 */
export function simd_peak(n: i32, m: f32, d: f32): f32 {
  const vm = f32x4.splat(m);
  const vd = f32x4.splat(d);
  let a0 = f32x4(1, 2, 3, 4), a1 = f32x4(5, 6, 7, 8), a2 = f32x4(9, 10, 11, 12);
  let a3 = f32x4(13, 14, 15, 16), a4 = f32x4(17, 18, 19, 20), a5 = f32x4(21, 22, 23, 24);
  let b0 = a0, b1 = a1, b2 = a2, b3 = a3, b4 = a4, b5 = a5;
  for (let i = 0; i < n; i++) {
    a0 = f32x4.mul(a0, vm); b0 = f32x4.add(b0, vd); a1 = f32x4.mul(a1, vm); b1 = f32x4.add(b1, vd);
    a2 = f32x4.mul(a2, vm); b2 = f32x4.add(b2, vd); a3 = f32x4.mul(a3, vm); b3 = f32x4.add(b3, vd);
    a4 = f32x4.mul(a4, vm); b4 = f32x4.add(b4, vd); a5 = f32x4.mul(a5, vm); b5 = f32x4.add(b5, vd);
  }
  const a = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(a4, a5));
  const b = f32x4.add(f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3)), f32x4.add(b4, b5));
  const s = f32x4.add(a, b);
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
}
