import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MIN_CONTRAST,
  OBJECT_RADIUS,
  SHAPE_NAMES,
  VARIATION_RANGES,
  type Variation,
  channelStats,
  meanGray,
  normalizeImages,
  proceduralDataset,
  proceduralExample,
  shapeCoverage,
} from '../../../src/nn/data/procedural.js';
import { validateDataset } from '../../../src/nn/data/dataset.js';
import { ValueError } from '../../../src/tensor/errors.js';

const bytes = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/** Byte-for-byte equality of two typed arrays. */
const same = (a: Float32Array | Int32Array, b: Float32Array | Int32Array) => bytes(a).equals(bytes(b));
const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

/** Coverage-weighted moments of the object in a 1-channel gray-background image of known object luminance. */
function moments(image: Float32Array, size: number, objectLuminance: number) {
  let area = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const a = (image[y * size + x] - 0.5) / (objectLuminance - 0.5);
      area += a;
      sx += a * (x + 0.5);
      sy += a * (y + 0.5);
    }
  }
  const cx = sx / area;
  const cy = sy / area;
  let xx = 0;
  let yy = 0;
  let xy = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const a = (image[y * size + x] - 0.5) / (objectLuminance - 0.5);
      xx += a * (x + 0.5 - cx) ** 2;
      yy += a * (y + 0.5 - cy) ** 2;
      xy += a * (x + 0.5 - cx) * (y + 0.5 - cy);
    }
  }
  // Orientation of the major axis in degrees, counter-clockwise on screen, in (-90, 90].
  const orientation = (-0.5 * Math.atan2(2 * xy, xx - yy) * 180) / Math.PI;
  return { area, cx, cy, orientation };
}

const std = (v: number[]) => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
};

describe('proceduralDataset', () => {
  it('is a valid NHWC dataset in [0, 1] with class names', () => {
    const d = proceduralDataset({ seed: 1, count: 40 });
    validateDataset(d, 'd');
    expect(d.shape).toEqual([40, 32, 32, 3]);
    expect(d.classNames).toEqual(SHAPE_NAMES.slice(0, 8));
    const lo = d.images.reduce((a, b) => Math.min(a, b), Infinity);
    const hi = d.images.reduce((a, b) => Math.max(a, b), -Infinity);
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThanOrEqual(1);
    // Clutter spans the range; the images are not constant.
    expect(hi - lo).toBeGreaterThan(0.9);
    const g = proceduralDataset({ seed: 1, count: 5, size: 20, channels: 1, classes: 12, variation: 'high' });
    expect(g.shape).toEqual([5, 20, 20, 1]);
    expect(g.classNames).toEqual([...SHAPE_NAMES]);
    expect(SHAPE_NAMES.length).toBeGreaterThanOrEqual(10);
  });

  it('gives byte-identical data for a seed and different data for another', () => {
    const a = proceduralDataset({ seed: 42, count: 30, variation: 'high' });
    const b = proceduralDataset({ seed: 42, count: 30, variation: 'high' });
    const c = proceduralDataset({ seed: 43, count: 30, variation: 'high' });
    expect(same(a.images, b.images)).toBe(true);
    expect(same(a.labels, b.labels)).toBe(true);
    expect(same(a.images, c.images)).toBe(false);
    expect(Array.from(a.labels)).not.toEqual(Array.from(c.labels));
  });

  it('draws example j from (seed, j, options) only: a smaller count is a prefix', () => {
    fc.assert(
      fc.property(
        fc.nat(1_000_000),
        fc.integer({ min: 1, max: 10 }),
        fc.constantFrom<Variation>('low', 'medium', 'high'),
        fc.constantFrom<'gray' | 'clutter'>('gray', 'clutter'),
        fc.constantFrom<1 | 3>(1, 3),
        fc.integer({ min: 2, max: SHAPE_NAMES.length }),
        (seed, count, variation, background, channels, classes) => {
          const opts = { seed, variation, background, channels, classes, size: 16 };
          const small = proceduralDataset({ ...opts, count });
          const large = proceduralDataset({ ...opts, count: 50 });
          expect(same(small.images, large.images.subarray(0, small.images.length))).toBe(true);
          expect(Array.from(small.labels)).toEqual(Array.from(large.labels.subarray(0, count)));
          const j = count - 1;
          const one = proceduralExample(opts, j);
          expect(same(one.image, large.images.subarray(j * 256 * channels, (j + 1) * 256 * channels))).toBe(true);
          expect(one.label).toBe(large.labels[j]);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('balances classes: every block of `classes` consecutive examples holds each class once', () => {
    for (const classes of [2, 8, 12]) {
      const d = proceduralDataset({ seed: 5, count: 10 * classes + 3, size: 8, classes, background: 'gray' });
      for (let b = 0; b < 10; b++) {
        const block = Array.from(d.labels.subarray(b * classes, (b + 1) * classes)).sort((x, y) => x - y);
        expect(block).toEqual(Array.from({ length: classes }, (_, i) => i));
      }
    }
    // Blocks are shuffled differently, so position j mod classes does not give the label away.
    const d = proceduralDataset({ seed: 5, count: 80, size: 8, background: 'gray' });
    expect(new Set(Array.from({ length: 10 }, (_, b) => d.labels[b * 8])).size).toBeGreaterThan(1);
  });

  it('makes 1-channel images the luminance of the 3-channel ones', () => {
    const rgb = proceduralDataset({ seed: 9, count: 6 });
    const gray = proceduralDataset({ seed: 9, count: 6, channels: 1 });
    let worst = 0;
    for (let p = 0; p < gray.images.length; p++) {
      worst = Math.max(worst, Math.abs(gray.images[p] - luma(rgb.images[3 * p], rgb.images[3 * p + 1], rgb.images[3 * p + 2])));
    }
    expect(worst).toBeLessThan(1e-6);
  });

  it('checks its options', () => {
    expect(() => proceduralDataset({ seed: -1, count: 1 })).toThrow(/options.seed must be an integer in \[0, 2\^53\), got -1/);
    expect(() => proceduralDataset({ seed: 1, count: 0 })).toThrow(/options.count must be a positive integer/);
    expect(() => proceduralDataset({ seed: 1, count: 1, classes: 13 })).toThrow(/options.classes must be an integer in \[2, 12\], got 13/);
    expect(() => proceduralDataset({ seed: 1, count: 1, variation: 'extreme' as never })).toThrow(ValueError);
    expect(() => proceduralDataset({ seed: 1, count: 1, channels: 2 as never })).toThrow(/channels must be 1 or 3, got 2/);
    expect(() => proceduralDataset({ seed: 1, count: 1, background: 'white' as never })).toThrow(/background must be 'gray' or 'clutter'/);
    expect(() => proceduralDataset({ seed: 1, count: 1, size: 4 })).toThrow(/size must be an integer in \[8, 1024\], got 4/);
    expect(() => proceduralDataset({ seed: 1, count: 1, colour: 1 } as never)).toThrow(/unknown option "colour"/);
    expect(() => proceduralExample({ seed: 1, count: 3 } as never, 0)).toThrow(/unknown option "count"/);
    expect(() => proceduralExample({ seed: 1 }, 1.5)).toThrow(/index must be an integer/);
  });
});

describe('variation levels', () => {
  const size = 32;
  function measure(variation: Variation, n: number, classes = 12) {
    return Array.from({ length: n }, (_, j) => {
      const { image, params } = proceduralExample({ seed: 11, variation, background: 'gray', channels: 1, classes }, j);
      return { params, ...moments(image, size, params.luminance) };
    });
  }
  const low = measure('low', 240);
  const medium = measure('medium', 240);
  const high = measure('high', 240);

  it('documents the ranges it draws from', () => {
    expect(VARIATION_RANGES.low).toEqual({ shift: 0, scale: [1, 1], rotation: 0 });
    expect(VARIATION_RANGES.medium).toEqual({ shift: 0.15, scale: [0.7, 1.1], rotation: 45 });
    expect(VARIATION_RANGES.high).toEqual({ shift: 0.3, scale: [0.5, 1.2], rotation: 180 });
    for (const [v, set] of [['low', low], ['medium', medium], ['high', high]] as const) {
      const r = VARIATION_RANGES[v];
      for (const { params } of set) {
        expect(Math.abs(params.x - size / 2)).toBeLessThanOrEqual(r.shift * size);
        expect(params.scale).toBeGreaterThanOrEqual(r.scale[0]);
        expect(params.scale).toBeLessThanOrEqual(r.scale[1]);
        expect(Math.abs(params.rotation)).toBeLessThanOrEqual(r.rotation);
      }
    }
  });

  it("centres 'low' objects within a pixel of the image centre", () => {
    for (const m of low) {
      expect(Math.abs(m.cx - size / 2)).toBeLessThan(0.25);
      expect(Math.abs(m.cy - size / 2)).toBeLessThan(0.25);
    }
  });

  it('spreads the measured object centroid as documented: low < medium < high', () => {
    const spread = (set: typeof low) => (std(set.map((m) => m.cx)) + std(set.map((m) => m.cy))) / 2;
    // A uniform shift in ±s*size has standard deviation s*size/sqrt(3): 2.77 px (medium), 5.54 px (high).
    expect(spread(low)).toBeLessThan(0.1);
    expect(spread(medium)).toBeGreaterThan(2.3);
    expect(spread(medium)).toBeLessThan(3.2);
    expect(spread(high)).toBeGreaterThan(4.5);
    expect(spread(high)).toBeLessThan(6.2);
    // The pixels agree with the drawn parameters wherever the object lies fully inside the image.
    for (const m of medium) expect(Math.hypot(m.cx - m.params.x, m.cy - m.params.y)).toBeLessThan(0.25);
  });

  it('varies the measured object size as documented', () => {
    // Area relative to the same shape at 'low' estimates scale^2; medium objects never touch the border.
    const lowArea = new Map(low.map((m) => [m.params.label, m.area]));
    const scales = medium.map((m) => Math.sqrt(m.area / lowArea.get(m.params.label)!));
    expect(Math.min(...scales)).toBeGreaterThan(0.68);
    expect(Math.min(...scales)).toBeLessThan(0.75);
    expect(Math.max(...scales)).toBeLessThan(1.15);
    expect(Math.max(...scales)).toBeGreaterThan(1.05);
    medium.forEach((m, i) => expect(scales[i]).toBeCloseTo(m.params.scale, 1));
    expect(std(low.filter((m) => m.params.label === 0).map((m) => m.area))).toBeLessThan(1e-3);
    const logSpread = (set: typeof low) => std(set.map((m) => Math.log(m.area / lowArea.get(m.params.label)!)));
    expect(logSpread(medium)).toBeGreaterThan(0.1);
    expect(logSpread(high)).toBeGreaterThan(logSpread(medium) * 1.5);
  });

  it('varies the measured orientation of elongated shapes as documented', () => {
    // Rhombus (label 11) and bars (label 6) have a horizontal major axis when upright.
    const angles = (set: typeof low) => set.filter((m) => m.params.label === 11 || m.params.label === 6).map((m) => m.orientation);
    for (const a of angles(low)) expect(Math.abs(a)).toBeLessThan(0.5);
    const med = angles(medium).map(Math.abs);
    expect(Math.max(...med)).toBeLessThan(46);
    expect(Math.max(...med)).toBeGreaterThan(30);
    expect(Math.max(...angles(high).map(Math.abs))).toBeGreaterThan(60);
  });
});

describe('shapes and backgrounds', () => {
  it('draws shapes that differ from one another at any rotation and scale', () => {
    // For every pair, the best rotation (10° steps) and scale of shape b still differs from
    // upright shape a in more than a tenth of a's area.
    const size = 32;
    for (const a of SHAPE_NAMES) {
      const ca = shapeCoverage(a, size);
      const area = ca.reduce((s, v) => s + v, 0);
      for (const b of SHAPE_NAMES) {
        if (a === b) continue;
        let best = Infinity;
        for (let rotation = 0; rotation < 360; rotation += 10) {
          for (const scale of [0.8, 0.9, 1, 1.1, 1.25]) {
            const cb = shapeCoverage(b, size, { rotation, scale });
            let diff = 0;
            for (let i = 0; i < ca.length; i++) diff += Math.abs(ca[i] - cb[i]);
            best = Math.min(best, diff / area);
          }
        }
        expect(best, `${a} vs ${b}`).toBeGreaterThan(0.1);
      }
    }
  });

  it('separates the classes: nearest class mean on low-variation gray images beats 90 %', () => {
    const d = proceduralDataset({ seed: 21, count: 480, variation: 'low', background: 'gray', classes: 12 });
    const px = 32 * 32;
    // Feature: per-pixel distance from the gray background, scaled to a maximum of 1 (the mask).
    const features = (j: number) => {
      const f = new Float64Array(px);
      let max = 0;
      for (let p = 0; p < px; p++) {
        const o = (j * px + p) * 3;
        f[p] = Math.abs(luma(d.images[o], d.images[o + 1], d.images[o + 2]) - 0.5);
        max = Math.max(max, f[p]);
      }
      return f.map((v) => v / max);
    };
    const means = Array.from({ length: 12 }, () => new Float64Array(px));
    for (let j = 0; j < 240; j++) features(j).forEach((v, p) => (means[d.labels[j]][p] += v / 20));
    let correct = 0;
    for (let j = 240; j < 480; j++) {
      const f = features(j);
      const dist = means.map((m) => m.reduce((s, v, p) => s + (v - f[p]) ** 2, 0));
      if (dist.indexOf(Math.min(...dist)) === d.labels[j]) correct++;
    }
    expect(correct / 240).toBeGreaterThan(0.9);
  });

  it('keeps the object visible on clutter', () => {
    const size = 32;
    let visible = 0;
    const n = 200;
    for (let j = 0; j < n; j++) {
      const { image, params } = proceduralExample({ seed: 4, variation: 'high' }, j);
      expect(Math.abs(params.luminance - params.backgroundLuminance)).toBeGreaterThanOrEqual(MIN_CONTRAST - 1e-9);
      expect(luma(...params.colour)).toBeCloseTo(params.luminance, 9);
      const cov = shapeCoverage(params.shape, size, params);
      // Fully covered pixels hold exactly the object colour.
      let ringSum = 0;
      let ringCount = 0;
      const r = OBJECT_RADIUS * size * params.scale;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const p = y * size + x;
          if (cov[p] === 1) for (let c = 0; c < 3; c++) expect(image[3 * p + c]).toBe(Math.fround(params.colour[c]));
          const dist = Math.hypot(x + 0.5 - params.x, y + 0.5 - params.y);
          if (cov[p] === 0 && dist < r + 3) {
            ringSum += luma(image[3 * p], image[3 * p + 1], image[3 * p + 2]);
            ringCount++;
          }
        }
      }
      // The background right around the object differs from it in luminance.
      if (ringCount > 0 && Math.abs(ringSum / ringCount - params.luminance) > 0.15) visible++;
    }
    expect(visible / n).toBeGreaterThan(0.9);
  });

  it('renders a disk of the documented radius with anti-aliased edges', () => {
    const size = 64;
    const cov = shapeCoverage('disk', size, { x: 30.3, y: 33.7, scale: 0.8 });
    const r = OBJECT_RADIUS * size * 0.8;
    const area = cov.reduce((s, v) => s + v, 0);
    expect(Math.abs(area / (Math.PI * r * r) - 1)).toBeLessThan(0.01);
    const partial = cov.filter((v) => v > 0 && v < 1).length;
    expect(partial).toBeGreaterThan(2 * Math.PI * r * 0.8);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const dist = Math.hypot(x + 0.5 - 30.3, y + 0.5 - 33.7);
        if (dist > r + 0.75) expect(cov[y * size + x]).toBe(0);
        if (dist < r - 0.75) expect(cov[y * size + x]).toBe(1);
      }
    }
    expect(() => shapeCoverage('oval' as never, 8)).toThrow(/shape must be one of disk, square/);
  });
});

describe('normalizeImages and meanGray', () => {
  it('standardises each channel', () => {
    const d = proceduralDataset({ seed: 2, count: 50 });
    const out = normalizeImages(d);
    expect(out).not.toBe(d.images);
    const s = channelStats({ images: out, shape: d.shape });
    for (let c = 0; c < 3; c++) {
      expect(s.mean[c]).toBeCloseTo(0, 5);
      expect(s.std[c]).toBeCloseTo(1, 5);
    }
    const given = normalizeImages({ images: Float32Array.of(1, 2, 3, 4), shape: [1, 1, 2, 2] }, [1, 2], [2, 4]);
    expect(Array.from(given)).toEqual([0, 0, 1, 0.5]);
    const constant = normalizeImages({ images: Float32Array.of(0.5, 0.5), shape: [2, 1, 1, 1] });
    expect(Array.from(constant)).toEqual([0, 0]);
    expect(() => normalizeImages(d, [0, 0])).toThrow(/mean must have one value per channel \(3\), got \[0, 0\]/);
    expect(() => normalizeImages(d, [0, 0, 0], [1, 0, 1])).toThrow(/std\[1\] must be a positive finite number, got 0/);
    expect(() => normalizeImages(d.images as never)).toThrow(ValueError);
  });

  it('gives the mean gray pixel', () => {
    expect(meanGray(1)).toEqual([0.5]);
    expect(meanGray(3)).toEqual([0.5, 0.5, 0.5]);
    expect(() => meanGray(2)).toThrow(/channels must be 1 or 3, got 2/);
  });
});
