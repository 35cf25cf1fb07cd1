import { describe, expect, it } from 'vitest';
import { ConfigError, ValueError } from '../../src/tensor/errors.js';
import { constant, stepDecay, cosine } from '../../src/nn/schedule.js';

describe('constant', () => {
  it('gives lr at every step', () => {
    const s = constant(0.01);
    expect([0, 1, 1e6].map(s)).toEqual([0.01, 0.01, 0.01]);
    expect(() => constant(-1)).toThrow(ConfigError);
    expect(() => s(-1)).toThrow(ValueError);
    expect(() => s(1.5)).toThrow(/step/);
  });
});

describe('stepDecay', () => {
  it('the ResNet schedule: x0.1 at epochs 30, 60, 80; the boundary step already decays', () => {
    const s = stepDecay({ lr: 0.1, factor: 0.1, epochs: [30, 60, 80], stepsPerEpoch: 100 });
    expect(s(0)).toBe(0.1);
    expect(s(2999)).toBe(0.1);
    expect(s(3000)).toBeCloseTo(0.01, 15);
    expect(s(5999)).toBeCloseTo(0.01, 15);
    expect(s(6000)).toBeCloseTo(0.001, 15);
    expect(s(7999)).toBeCloseTo(0.001, 15);
    expect(s(8000)).toBeCloseTo(0.0001, 15);
    expect(s(1e7)).toBeCloseTo(0.0001, 15);
  });
  it('validates its options, naming the field', () => {
    const ok = { lr: 0.1, factor: 0.1, epochs: [1, 2], stepsPerEpoch: 10 };
    expect(() => stepDecay({ ...ok, factor: 0 })).toThrow(/factor/);
    expect(() => stepDecay({ ...ok, factor: 1.5 })).toThrow(ConfigError);
    expect(() => stepDecay({ ...ok, epochs: [2, 2] })).toThrow(/epochs/);
    expect(() => stepDecay({ ...ok, epochs: [0] })).toThrow(/epochs/);
    expect(() => stepDecay({ ...ok, stepsPerEpoch: 0 })).toThrow(/stepsPerEpoch/);
    expect(() => stepDecay({ ...ok, lr: NaN })).toThrow(/lr/);
    expect(stepDecay({ ...ok, epochs: [] })(100)).toBe(0.1);
  });
});

describe('cosine', () => {
  it('decays from lr to final over totalSteps (half-way: the midpoint) and stays at final', () => {
    const s = cosine({ lr: 1, totalSteps: 100 });
    expect(s(0)).toBe(1);
    expect(s(50)).toBeCloseTo(0.5, 12);
    expect(s(25)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(s(100)).toBeCloseTo(0, 12);
    expect(s(500)).toBeCloseTo(0, 12);
    const f = cosine({ lr: 1, totalSteps: 100, final: 0.1 });
    expect(f(50)).toBeCloseTo(0.55, 12);
    expect(f(1000)).toBeCloseTo(0.1, 12);
  });
  it('warmup: linear ramp lr·(step+1)/warmup, then the cosine from lr', () => {
    const s = cosine({ lr: 0.4, totalSteps: 110, warmup: 10 });
    expect(s(0)).toBeCloseTo(0.04, 12);
    expect(s(4)).toBeCloseTo(0.2, 12);
    expect(s(9)).toBeCloseTo(0.4, 12);
    expect(s(10)).toBeCloseTo(0.4, 12);
    expect(s(60)).toBeCloseTo(0.2, 12);
    expect(s(110)).toBeCloseTo(0, 12);
  });
  it('validates its options', () => {
    expect(() => cosine({ lr: 1, totalSteps: 0 })).toThrow(/totalSteps/);
    expect(() => cosine({ lr: 1, totalSteps: 10, warmup: 10 })).toThrow(/warmup/);
    expect(() => cosine({ lr: 1, totalSteps: 10, warmup: -1 })).toThrow(ConfigError);
    expect(() => cosine({ lr: 1, totalSteps: 10, final: -1 })).toThrow(/final/);
  });
});
