import { describe, expect, it } from 'vitest';
import { key, split } from '../../src/tensor/random.js';
import { ConfigError, ShapeError } from '../../src/tensor/errors.js';
import { fans, he, heStd, glorot, glorotLimit, constantInit, initialize } from '../../src/nn/init.js';

function stats(x: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of x) {
    s += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / x.length;
  let q = 0;
  for (const v of x) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / x.length), min, max };
}

describe('fans', () => {
  it('reads linear [in, out], conv HWIO, depthwise and vectors', () => {
    expect(fans([20, 30])).toEqual({ fanIn: 20, fanOut: 30 });
    expect(fans([3, 5, 4, 8])).toEqual({ fanIn: 60, fanOut: 120 });
    expect(fans([3, 3, 16, 2], { depthwise: true })).toEqual({ fanIn: 9, fanOut: 18 });
    expect(fans([7])).toEqual({ fanIn: 7, fanOut: 7 });
    expect(() => fans([3, 3, 2], { depthwise: true })).toThrow(ShapeError);
    expect(() => fans([0, 2])).toThrow(ShapeError);
  });
});

describe('he', () => {
  it('std = scale * sqrt(2 / fanIn), mean 0', () => {
    const shape = [3, 3, 32, 64];
    expect(heStd(shape)).toBeCloseTo(Math.sqrt(2 / 288), 12);
    expect(heStd(shape, { scale: 0.25 })).toBeCloseTo(0.25 * Math.sqrt(2 / 288), 12);
    expect(heStd(shape, { fan: 'out' })).toBeCloseTo(Math.sqrt(2 / 576), 12);
    for (const scale of [0.25, 2]) {
      const w = he(key(1), shape, { scale });
      const s = stats(w.toArray());
      const want = scale * Math.sqrt(2 / 288);
      // 18432 draws: the sample std is within ~1% of the true one.
      expect(Math.abs(s.std / want - 1)).toBeLessThan(0.03);
      expect(Math.abs(s.mean)).toBeLessThan(0.03 * want);
      w.dispose();
    }
  });
  it('is deterministic in the key and differs across keys', () => {
    const [k1, k2] = split(key(5));
    const a = he(k1, [4, 4]).toArray();
    const b = he(k1, [4, 4]).toArray();
    const c = he(k2, [4, 4]).toArray();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });
  it('rejects a bad scale with ConfigError', () => {
    expect(() => he(key(0), [2, 2], { scale: 0 })).toThrow(ConfigError);
    expect(() => he(key(0), [2, 2], { scale: NaN })).toThrow(/scale/);
  });
});

describe('glorot', () => {
  it('uniform in (-a, a), a = scale * sqrt(6 / (fanIn + fanOut)), variance a²/3', () => {
    const shape = [100, 50];
    const a = Math.sqrt(6 / 150);
    expect(glorotLimit(shape)).toBeCloseTo(a, 12);
    expect(glorotLimit(shape, { scale: 2 })).toBeCloseTo(2 * a, 12);
    const w = glorot(key(2), shape);
    const s = stats(w.toArray());
    expect(s.min).toBeGreaterThanOrEqual(-a);
    expect(s.max).toBeLessThan(a);
    expect(s.max).toBeGreaterThan(0.98 * a);
    expect(Math.abs(s.std / (a / Math.sqrt(3)) - 1)).toBeLessThan(0.03);
    w.dispose();
  });
});

describe('constantInit / initialize', () => {
  it('constantInit fills the value; initialize dispatches on the spec', () => {
    expect(Array.from(constantInit([3], -1.5).toArray())).toEqual([-1.5, -1.5, -1.5]);
    expect(Array.from(initialize(key(0), [2], { kind: 'constant', value: 2 }).toArray())).toEqual([2, 2]);
    expect(initialize(key(3), [5, 5], { kind: 'he', scale: 2 }).toArray()).toEqual(he(key(3), [5, 5], { scale: 2 }).toArray());
    expect(initialize(key(3), [5, 5], { kind: 'glorot' }).toArray()).toEqual(glorot(key(3), [5, 5]).toArray());
    expect(() => initialize(key(0), [2], { kind: 'xavier' } as never)).toThrow(/kind/);
    expect(() => initialize(key(0), [2], { kind: 'normal', std: -1 })).toThrow(ConfigError);
    expect(() => constantInit([2], NaN)).toThrow(ConfigError);
  });
});
