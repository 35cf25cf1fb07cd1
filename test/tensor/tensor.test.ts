import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import v8 from 'node:v8';
import vm from 'node:vm';
import { tensor, zeros, full, randn, uniform, scalar } from '../../src/tensor/create.js';
import { scope, memory, dispose, Tensor } from '../../src/tensor/tensor.js';
import { alloc, free, heapStats, heapF32 } from '../../src/tensor/heap.js';
import { key } from '../../src/tensor/random.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';

describe('Tensor', () => {
  it('holds a copy of its data; toArray returns a copy', () => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = tensor(src, [2, 3]);
    src[0] = 99;
    const a = t.toArray();
    expect(Array.from(a)).toEqual([1, 2, 3, 4, 5, 6]);
    a[1] = 42;
    expect(t.toArray()[1]).toBe(2);
    expect(t.shape).toEqual([2, 3]);
    t.dispose();
  });
  it('item reads a scalar and refuses a larger tensor', () => {
    expect(scalar(2.5).item()).toBe(2.5);
    expect(() => zeros([2]).item()).toThrow(ShapeError);
  });
  it('rejects data that does not fit the shape, and bad shapes', () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/shape \[2, 2\] holds 4 elements, data has 3/);
    expect(() => zeros([2, -1])).toThrow(ShapeError);
    expect(() => zeros([1.5])).toThrow(ShapeError);
    expect(() => tensor('abc' as never)).toThrow(ValueError);
  });
  it('a disposed tensor cannot be read', () => {
    const t = zeros([3]);
    t.dispose();
    expect(() => t.toArray()).toThrow(/disposed/);
    t.dispose(); // idempotent
  });
  it('full repeats an array of values along the last axis, and rejects a wrong count', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 0, maxLength: 4 }), fc.nat(1000), (shape, seed) => {
        const last = shape.length === 0 ? 1 : shape[shape.length - 1];
        const values = Array.from({ length: last }, (_, i) => Math.fround(Math.sin(seed + 7 * i)));
        const got = scope(() => full(shape, values).toArray());
        const size = shape.reduce((a, d) => a * d, 1);
        expect(got.length).toBe(size);
        for (let i = 0; i < size; i++) expect(got[i]).toBe(values[i % last]);
      }),
    );
    expect(Array.from(scope(() => full([2, 3], 4).toArray()))).toEqual([4, 4, 4, 4, 4, 4]);
    expect(() => full([2, 3], [1, 2])).toThrow(/full: value must be a number or 3 numbers .* got \[1, 2\]/);
    expect(() => full([2, 3], [1, 'a', 3] as never)).toThrow(ValueError);
    expect(() => full([2], '1' as never)).toThrow(/full: value must be a number or an array of numbers/);
  });
  it('randn and uniform depend only on the key', () => {
    const a = randn(key(5), [7, 3]).toArray();
    uniform(key(9), [100]);
    expect(randn(key(5), [7, 3]).toArray()).toEqual(a);
    const u = uniform(key(1), [1000], -2, 3).toArray();
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    expect(() => randn(key(1), [2], NaN)).toThrow(ValueError);
    expect(() => uniform(key(1), [2], 3, 1)).toThrow(ValueError);
    expect(() => randn(7 as never, [2])).toThrow(/key must be a Key/);
  });
});

describe('scope', () => {
  it('frees everything created inside except the result, which moves to the parent scope', () => {
    const before = memory();
    const kept = scope(() => {
      const outer = scope(() => {
        zeros([10]);
        const r = { a: full([4], 1), b: [full([2], 2)] };
        zeros([5]);
        return r;
      });
      expect(memory().tensors).toBe(before.tensors + 2);
      zeros([3]);
      return outer.a;
    });
    expect(memory().tensors).toBe(before.tensors + 1);
    expect(kept.toArray()).toEqual(new Float32Array([1, 1, 1, 1]));
    kept.dispose();
    expect(memory()).toEqual(before);
  });
  it('frees everything when fn throws', () => {
    const before = memory();
    expect(() => scope(() => { zeros([8]); throw new Error('boom'); })).toThrow('boom');
    expect(memory()).toEqual(before);
  });
  it('views share a block that lives until the last view is disposed', () => {
    const before = memory();
    const t = tensor([1, 2, 3, 4], [2, 2]);
    const v = t.view([4]);
    t.dispose();
    expect(Array.from(v.toArray())).toEqual([1, 2, 3, 4]);
    expect(memory().bytes).toBe(before.bytes + 16);
    v.dispose();
    expect(memory()).toEqual(before);
  });
  it('a tensor dropped undisposed outside every scope is freed once garbage-collected (the backstop); one inside a scope is freed by the scope', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await settle();
    const before = memory();
    (() => {
      zeros([1000]); // made outside any scope, never disposed
      scope(() => full([500], 1)); // the result of an outermost scope, never disposed
      const inner = scope(() => scope(() => full([250], 2))); // kept by two scopes, then dropped
      expect(inner.size).toBe(250);
    })();
    expect(memory().tensors).toBe(before.tensors + 3);
    await settle();
    expect(memory()).toEqual(before);
  });
  it('a derived layout is made once per scope, freed when the scope ends or the tensor goes first, and made per use outside every scope', () => {
    const t = tensor([1, 2, 3, 4]);
    let made = 0;
    const make = (ptr: number): void => {
      made++;
      new Float32Array(heapF32().buffer, ptr, 4).set(t.toArray().map((v) => 2 * v));
    };
    const read = (ptr: number): number[] => Array.from(new Float32Array(heapF32().buffer, ptr, 4));
    const heap0 = heapStats().liveBytes;
    // Outside every scope: made for each use, nothing kept.
    expect(t.derived('double', 16, make, read)).toEqual([2, 4, 6, 8]);
    expect(t.derived('double', 16, make, read)).toEqual([2, 4, 6, 8]);
    expect(made).toBe(2);
    expect(heapStats().liveBytes).toBe(heap0);
    // Inside a scope: made once, reused by every use in the scope and its inner scopes, freed at its end.
    scope(() => {
      expect(t.derived('double', 16, make, read)).toEqual([2, 4, 6, 8]);
      scope(() => expect(t.derived('double', 16, make, read)).toEqual([2, 4, 6, 8]));
      expect(t.derived('other', 16, make, read)).toEqual([2, 4, 6, 8]); // another key: its own layout
      expect(made).toBe(4);
      expect(heapStats().liveBytes).toBeGreaterThan(heap0);
    });
    expect(heapStats().liveBytes).toBe(heap0);
    // A tensor freed inside the scope takes its layouts with it; the scope's end does not free them twice.
    const u = tensor([5, 6, 7, 8]);
    const heap1 = heapStats().liveBytes;
    scope(() => {
      u.derived('double', 16, (ptr) => new Float32Array(heapF32().buffer, ptr, 4).fill(0), () => 0);
      u.dispose();
      expect(heapStats().liveBytes).toBe(heap1 - 64); // u's 16 bytes and its layout's, each a 64-byte block
    });
    expect(heapStats().liveBytes).toBe(heap1 - 64);
    // A failing make frees its block and caches nothing.
    scope(() => {
      expect(() => t.derived('bad', 16, () => { throw new Error('no'); }, read)).toThrow('no');
      expect(t.derived('bad', 16, make, read)).toEqual([2, 4, 6, 8]);
    });
    expect(heapStats().liveBytes).toBe(heap1 - 64);
    t.dispose();
    expect(() => t.derived('double', 16, make, read)).toThrow(/disposed/);
  });
  it('dispose frees a whole pytree', () => {
    const before = memory();
    dispose({ w: zeros([2]), list: [zeros([3]), { b: zeros([1]) }], n: 3 });
    expect(memory()).toEqual(before);
  });
});

describe('heap allocator', () => {
  it('never hands out overlapping live blocks, and reuses freed memory (property)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 200000 }), fc.boolean()), { maxLength: 60 }), (ops) => {
      const live: [number, number][] = [];
      for (const [bytes, freeOne] of ops) {
        if (freeOne && live.length > 0) free(live.splice(bytes % live.length, 1)[0][0]);
        else live.push([alloc(bytes), bytes]);
        const sorted = [...live].sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < sorted.length; i++) expect(sorted[i - 1][0] + sorted[i - 1][1]).toBeLessThanOrEqual(sorted[i][0]);
        for (const [p] of live) expect(p % 64).toBe(0);
      }
      for (const [p] of live) free(p);
    }));
  });
  it('a repeated allocation pattern does not grow the heap', () => {
    const sizes = [1000, 50000, 4096, 333, 1 << 20];
    const run = () => { const ps = sizes.map(alloc); ps.forEach(free); };
    run();
    const heap = heapStats().heapBytes;
    for (let i = 0; i < 50; i++) run();
    expect(heapStats().heapBytes).toBe(heap);
  });
  it('double free is an error', () => {
    const p = alloc(10);
    free(p);
    expect(() => free(p)).toThrow(/not a live heap block/);
  });
});

it('Tensor is exported as a class', () => expect(typeof Tensor).toBe('function'));
