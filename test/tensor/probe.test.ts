import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { K } from '../../src/tensor/kernels.js';

const f = Math.fround;

/** simd_peak in plain float32 arithmetic: lane l of chain i starts at 4i + l + 1. */
function peakReference(n: number, m: number, d: number): number {
  const [fm, fd] = [f(m), f(d)];
  const a = Array.from({ length: 6 }, (_, i) => [1, 2, 3, 4].map((l) => 4 * i + l));
  const b = a.map((lanes) => [...lanes]);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < 6; i++) {
      for (let l = 0; l < 4; l++) {
        a[i][l] = f(a[i][l] * fm);
        b[i][l] = f(b[i][l] + fd);
      }
    }
  }
  const tree = (c: number[][], l: number): number => f(f(f(f(c[0][l] + c[1][l]) + f(c[2][l] + c[3][l]))) + f(c[4][l] + c[5][l]));
  const lane = (l: number): number => f(tree(a, l) + tree(b, l));
  return f(f(f(lane(0) + lane(1)) + lane(2)) + lane(3));
}

describe('simd_peak (the bench probe of one core)', () => {
  it('runs every multiply and add chain n steps: equal to float32 arithmetic in plain TypeScript', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0.5, max: 1.5, noNaN: true }), fc.double({ min: -2, max: 2, noNaN: true }), (n, m, d) => {
        expect(K.simd_peak(n, m, d)).toBe(peakReference(n, m, d));
      }),
    );
    expect(K.simd_peak(0, 3, 5)).toBe(2 * 300); // 1 + 2 + ... + 24, twice
    expect(K.simd_peak(1, 2, 1)).toBe(2 * 300 + 300 + 24);
  });
});
