import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { threefry2x32, key, split, foldIn, randomBits, normalFloats, uniformFloats, permutation } from '../../src/tensor/random.js';
import { ValueError } from '../../src/tensor/errors.js';

describe('threefry2x32', () => {
  // Known-answer vectors of Threefry-2x32-20 from the Random123 distribution (kat_vectors).
  it.each([
    [[0, 0], [0, 0], [0x6b200159, 0x99ba4efe]],
    [[0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x1cb996fc, 0xbb002be7]],
    [[0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3], [0xc4923a9c, 0x483df7a0]],
  ])('key %j counter %j gives %j', (k, c, expected) => {
    const out = new Uint32Array(2);
    threefry2x32(k[0], k[1], c[0], c[1], out, 0);
    expect([out[0], out[1]]).toEqual(expected);
  });
});

describe('keys', () => {
  it('the same key gives the same bits whatever ran before', () => {
    const a = randomBits(key(7), 33);
    randomBits(key(8), 1000);
    expect(randomBits(key(7), 33)).toEqual(a);
  });
  it('a prefix of a longer draw equals the shorter draw (bits depend on index only)', () => {
    fc.assert(fc.property(fc.nat(1000), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 64 }), (s, n, extra) => {
      expect(randomBits(key(s), n + extra).subarray(0, n)).toEqual(randomBits(key(s), n));
    }));
  });
  it('split keys differ from each other and from the parent stream', () => {
    const [a, b] = split(key(1));
    expect(a).not.toEqual(b);
    expect(randomBits(a, 4)).not.toEqual(randomBits(b, 4));
    expect(randomBits(a, 4)).not.toEqual(randomBits(key(1), 4));
    expect(foldIn(key(1), 3)).not.toEqual(foldIn(key(1), 4));
  });
  it('rejects bad seeds with a ValueError naming the seed', () => {
    for (const bad of [NaN, -1, 1.5, Infinity, 2 ** 53]) expect(() => key(bad)).toThrow(ValueError);
    expect(() => key(NaN)).toThrow(/seed.*NaN/);
  });
  it('uniform floats lie in [0, 1) with mean near 1/2; normals have mean 0 and variance 1', () => {
    const u = uniformFloats(key(3), 20000);
    let m = 0;
    for (const v of u) { expect(v).toBeGreaterThanOrEqual(0); expect(v).toBeLessThan(1); m += v; }
    expect(m / u.length).toBeCloseTo(0.5, 2);
    const z = normalFloats(key(4), 20001);
    let s = 0, s2 = 0;
    for (const v of z) { s += v; s2 += v * v; }
    expect(s / z.length).toBeCloseTo(0, 1);
    expect(s2 / z.length).toBeCloseTo(1, 1);
  });
  it('permutation is a permutation', () => {
    fc.assert(fc.property(fc.nat(1000), fc.integer({ min: 0, max: 200 }), (s, n) => {
      const p = Array.from(permutation(key(s), n)).sort((a, b) => a - b);
      expect(p).toEqual(Array.from({ length: n }, (_, i) => i));
    }));
  });
});
