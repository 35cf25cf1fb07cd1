import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  type Batch,
  type Dataset,
  batches,
  epochKey,
  iterateBatches,
  splitDataset,
  subset,
  validateDataset,
} from '../../../src/nn/data/dataset.js';
import { DataError, ShapeError, ValueError } from '../../../src/tensor/errors.js';
import { foldIn, key } from '../../../src/tensor/random.js';

/** n examples of 2x1x2 pixels whose values encode the example index, labels i mod 3. */
function toy(n: number): Dataset {
  const images = new Float32Array(n * 4);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(i / 4) + (i % 4) / 10;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return { images, labels, shape: [n, 2, 1, 2], classNames: ['a', 'b', 'c'] };
}

function order(d: Dataset, opts: Parameters<typeof batches>[1]): number[] {
  return [...batches(d, opts)].flatMap((b) => Array.from(b.indices));
}

describe('batches', () => {
  it('visits every example exactly once per epoch, with the right pixels and labels', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1, max: 70 }),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
        (n, batchSize, dropLast, seed) => {
          const d = toy(n);
          const all = [...batches(d, { batchSize, dropLast, key: seed === undefined ? undefined : key(seed) })];
          const seen = all.flatMap((b) => Array.from(b.indices));
          const expected = dropLast ? n - (n % batchSize) : n;
          expect(seen.length).toBe(expected);
          expect(new Set(seen).size).toBe(expected);
          if (!dropLast) expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
          for (const [k, b] of all.entries()) {
            const last = k === all.length - 1;
            if (!last || dropLast) expect(b.shape[0]).toBe(batchSize);
            expect(b.shape).toEqual([b.indices.length, 2, 1, 2]);
            b.indices.forEach((j, r) => {
              expect(b.labels[r]).toBe(j % 3);
              expect(Array.from(b.images.subarray(r * 4, r * 4 + 4))).toEqual(Array.from(d.images.subarray(j * 4, j * 4 + 4)));
            });
          }
          if (seed === undefined) expect(seen).toEqual(Array.from({ length: expected }, (_, i) => i));
        },
      ),
    );
  });

  it('gives the same order for the same key and different orders for different epochs', () => {
    const d = toy(50);
    const k = key(7);
    expect(order(d, { batchSize: 8, key: k })).toEqual(order(d, { batchSize: 8, key: key(7) }));
    const e0 = order(d, { batchSize: 8, key: epochKey(k, 0) });
    const e1 = order(d, { batchSize: 8, key: epochKey(k, 1) });
    expect(e0).not.toEqual(e1);
    expect(e0).toEqual(order(d, { batchSize: 8, key: foldIn(k, 0) }));
    // Shuffled, not dataset order.
    expect(e0).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('checks its arguments when called', () => {
    const d = toy(4);
    expect(() => batches(d, { batchSize: 0 })).toThrow(ValueError);
    expect(() => batches(d, { batchSize: 1.5 })).toThrow(/batchSize must be a positive integer, got 1.5/);
    expect(() => batches(d, { batchSize: 2, key: 3 as never })).toThrow(/options.key must be a Key/);
    expect(() => batches(d, { batchSize: 2, shuffle: true } as never)).toThrow(/unknown option "shuffle"/);
    expect(() => batches({ ...d, labels: new Int32Array(3) }, { batchSize: 2 })).toThrow(ShapeError);
  });
});

describe('validateDataset', () => {
  it('accepts a well-formed dataset', () => {
    expect(() => validateDataset(toy(5))).not.toThrow();
    expect(() => validateDataset(toy(0))).not.toThrow();
  });

  it('names the argument and the problem', () => {
    const d = toy(3);
    expect(() => validateDataset({ ...d, images: new Float32Array(5) }, 'train')).toThrow(
      /train.images must have N\*H\*W\*C = 12 elements for shape \[3, 2, 1, 2\], got 5/,
    );
    expect(() => validateDataset({ ...d, images: Array.from(d.images) }, 'train')).toThrow(ValueError);
    expect(() => validateDataset({ ...d, labels: Int32Array.of(0, 1, 3) }, 'train')).toThrow(
      new DataError('train.labels[2] must be in [0, 3), got 3'),
    );
    expect(() => validateDataset({ ...d, labels: Int32Array.of(0, -1, 1) }, 'd')).toThrow(/d.labels\[1\] must be in \[0, 3\), got -1/);
    const noNames: Dataset = { images: d.images, labels: Int32Array.of(0, 5, 9), shape: d.shape };
    expect(() => validateDataset(noNames)).not.toThrow();
    expect(() => validateDataset(noNames, 'd', 6)).toThrow(/d.labels\[2\] must be in \[0, 6\), got 9/);
    expect(() => validateDataset({ ...d, shape: [3, 2, 0, 2] })).toThrow(ShapeError);
    expect(() => validateDataset({ ...d, shape: [3, 4, 1] })).toThrow(/shape must be \[N, H, W, C\]/);
    const bad = toy(3);
    bad.images[5] = NaN;
    expect(() => validateDataset(bad, 'x')).toThrow(/x.images\[5\] must be finite, got NaN/);
    expect(() => validateDataset(null, 'x')).toThrow(/x must be a dataset object/);
  });
});

describe('subset and splitDataset', () => {
  it('subset copies the chosen examples in order', () => {
    const d = toy(6);
    const s = subset(d, [4, 1, 4]);
    expect(s.shape).toEqual([3, 2, 1, 2]);
    expect(Array.from(s.labels)).toEqual([1, 1, 1]);
    expect(Array.from(s.images)).toEqual(Array.from(d.images.subarray(16, 20)).concat(Array.from(d.images.subarray(4, 8)), Array.from(d.images.subarray(16, 20))));
    expect(s.classNames).toEqual(['a', 'b', 'c']);
    s.images[0] = 99;
    expect(d.images[16]).toBe(4);
    expect(() => subset(d, [6])).toThrow(/subset: indices\[0\] must be an integer in \[0, 6\), got 6/);
  });

  it('splitDataset partitions deterministically', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(1000), (n, f, seed) => {
        const d = toy(n);
        const a = splitDataset(d, f, key(seed));
        const b = splitDataset(d, f, key(seed));
        expect(a.validation.shape[0]).toBe(Math.round(f * n));
        expect(a.train.shape[0] + a.validation.shape[0]).toBe(n);
        expect(a.train.images).toEqual(b.train.images);
        expect(a.validation.images).toEqual(b.validation.images);
        // Example i is identified by images[4i]; together the two parts hold each once.
        const ids = [a.train, a.validation].flatMap((p) => Array.from({ length: p.shape[0] }, (_, i) => p.images[4 * i]));
        expect(ids.sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
      }),
    );
    const d = toy(100);
    const s1 = splitDataset(d, 0.2, key(1)).validation.images;
    const s2 = splitDataset(d, 0.2, key(2)).validation.images;
    expect(s1).not.toEqual(s2);
    expect(() => splitDataset(d, 1.5, key(1))).toThrow(/validationFraction must be a number in \[0, 1\], got 1.5/);
    expect(() => splitDataset(d, 0.5, 1 as never)).toThrow(/key must be a Key/);
  });
});

describe('iterateBatches', () => {
  it('shuffles a dataset with the epoch key', () => {
    const d = toy(20);
    const k = key(3);
    const viaSource = [...iterateBatches(d, { batchSize: 6, key: k }, 4)].flatMap((b) => Array.from(b.indices!));
    expect(viaSource).toEqual(order(d, { batchSize: 6, key: epochKey(k, 4) }));
    expect(() => iterateBatches(d, {}, 0)).toThrow(/iterateBatches: options.batchSize must be a positive integer/);
    expect(() => iterateBatches(d, { batchSize: 2 }, -1)).toThrow(/epoch must be an integer/);
  });

  it('streams and checks the batches of a generator source', () => {
    const seenEpochs: number[] = [];
    const source = function* (epoch: number): Generator<Batch> {
      seenEpochs.push(epoch);
      yield { images: new Float32Array(4), labels: Int32Array.of(epoch), shape: [1, 2, 2, 1] };
      yield { images: new Float32Array(3), labels: Int32Array.of(0), shape: [1, 2, 2, 1] };
    };
    const it = iterateBatches(source, {}, 5)[Symbol.iterator]();
    expect(it.next().value!.labels[0]).toBe(5);
    expect(seenEpochs).toEqual([5]);
    expect(() => it.next()).toThrow(DataError);
    expect(() => [...iterateBatches(source, {}, 1)]).toThrow(/batch 1 of epoch 1 from the source function has images.length 3/);
    expect(() => iterateBatches(() => 3 as never, {}, 0)).toThrow(/must return an iterable of batches, got 3/);
  });
});
