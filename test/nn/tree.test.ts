import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { tensor, zeros } from '../../src/tensor/create.js';
import { Tensor, dispose } from '../../src/tensor/tensor.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { add } from '../../src/tensor/ops/binary.js';
import {
  countParams,
  flattenParams,
  paramNames,
  treeEqual,
  treeMap,
  treeZip,
  unflattenParams,
} from '../../src/nn/tree.js';

const arr = (t: Tensor) => Array.from(t.toArray());

describe('flattenParams', () => {
  it('names tensors by dotted path, arrays by index, depth-first in insertion order', () => {
    const tree = { cell1: { sh: { w: zeros([2]), b: zeros([1]) } }, layers: [{ w: zeros([3]) }, zeros([1, 1])] };
    expect(paramNames(tree)).toEqual(['cell1.sh.w', 'cell1.sh.b', 'layers.0.w', 'layers.1']);
    const flat = flattenParams(tree);
    expect(flat.get('cell1.sh.w')).toBe(tree.cell1.sh.w); // the same objects, no copies
    dispose(tree);
  });
  it('skips undefined entries and names a bare tensor ""', () => {
    const t = zeros([1]);
    expect(paramNames({ w: t, b: undefined })).toEqual(['w']);
    expect(paramNames(t)).toEqual(['']);
    t.dispose();
  });
  it('rejects dotted or empty keys and non-tensor leaves, naming the path', () => {
    const t = zeros([1]);
    expect(() => flattenParams({ 'a.b': t })).toThrow(ValueError);
    expect(() => flattenParams({ '': t })).toThrow(/non-empty/);
    expect(() => flattenParams({ a: { lr: 0.1 } })).toThrow(/"a\.lr".*got 0\.1/);
    expect(() => flattenParams({ a: [null] })).toThrow(/"a\.0"/);
    t.dispose();
  });
});

describe('unflattenParams', () => {
  it('rebuilds the template structure from names, checking names and shapes', () => {
    const template = { a: { w: zeros([2]) }, l: [zeros([1])] };
    const w = tensor([1, 2]);
    const l0 = tensor([3]);
    const out = unflattenParams(new Map([['a.w', w], ['l.0', l0]]), template);
    expect(out.a.w).toBe(w);
    expect(out.l[0]).toBe(l0);
    expect(unflattenParams({ 'a.w': w, 'l.0': l0 }, template).a.w).toBe(w);
    expect(() => unflattenParams({ 'a.w': w }, template)).toThrow(/no tensor named "l\.0"/);
    expect(() => unflattenParams({ 'a.w': w, 'l.0': l0, extra: l0 }, template)).toThrow(/"extra" has no place/);
    expect(() => unflattenParams({ 'a.w': l0, 'l.0': l0 }, template)).toThrow(ShapeError);
    dispose([template, w, l0]);
  });

  // Random trees: nested objects (keys k0..k3) and arrays, leaves small tensors.
  type Spec = { t: number[] } | { o: Record<string, Spec> } | { a: Spec[] };
  const specArb: fc.Arbitrary<Spec> = fc.letrec<{ spec: Spec }>((tie) => ({
    spec: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({ t: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }) }),
      fc.record({ o: fc.dictionary(fc.constantFrom('k0', 'k1', 'k2', 'w', 'b'), tie('spec'), { maxKeys: 3 }) }),
      fc.record({ a: fc.array(tie('spec'), { maxLength: 3 }) }),
    ),
  })).spec;
  let counter = 0;
  const build = (s: Spec): unknown => {
    if ('t' in s) {
      const n = s.t.reduce((p, d) => p * d, 1);
      return tensor(Array.from({ length: n }, () => counter++ * 0.5 - 3), s.t);
    }
    if ('o' in s) return Object.fromEntries(Object.entries(s.o).map(([k, v]) => [k, build(v)]));
    return s.a.map(build);
  };

  it('round trip: unflattenParams(flattenParams(tree), tree) has the same structure and tensors; countParams sums sizes', () => {
    fc.assert(
      fc.property(specArb, (spec) => {
        const tree = build(spec);
        const flat = flattenParams(tree);
        const back = unflattenParams(flat, tree);
        expect(JSON.stringify(back, (_k, v) => (v instanceof Tensor ? `T${v.id}` : v))).toBe(
          JSON.stringify(tree, (_k, v) => (v instanceof Tensor ? `T${v.id}` : v)),
        );
        expect(treeEqual(back, tree)).toBe(true);
        let total = 0;
        for (const t of flat.values()) total += t.size;
        expect(countParams(tree)).toBe(total);
        dispose(tree);
      }),
      { numRuns: 60 },
    );
  });
});

describe('countParams', () => {
  it('counts scalars', () => {
    const tree = { conv: { w: zeros([3, 3, 2, 4]), b: zeros([4]) }, l: [zeros([4, 10])] };
    expect(countParams(tree)).toBe(72 + 4 + 40);
    expect(countParams({})).toBe(0);
    dispose(tree);
  });
});

describe('treeEqual', () => {
  it('compares names, shapes and bits, not key order', () => {
    const a = { w: tensor([1, 2]), b: tensor([0]) };
    const b = { b: tensor([0]), w: tensor([1, 2]) };
    expect(treeEqual(a, b)).toBe(true);
    const c = { w: tensor([1, 2.0000002]), b: tensor([0]) };
    expect(treeEqual(a, c)).toBe(false);
    const negZero = { w: tensor([1, 2]), b: tensor([-0]) };
    expect(treeEqual(a, negZero)).toBe(false); // to the bit
    const reshaped = { w: tensor([1, 2], [2, 1]), b: tensor([0]) };
    expect(treeEqual(a, reshaped)).toBe(false);
    expect(treeEqual(a, { w: a.w })).toBe(false);
    const nan1 = tensor([NaN]);
    expect(treeEqual(nan1, nan1)).toBe(true); // NaN with the same bits is equal
    dispose([a, b, c, negZero, reshaped, nan1]);
  });
});

describe('treeMap / treeZip', () => {
  it('treeMap maps each tensor with its name', () => {
    const tree = { a: tensor([1]), l: [tensor([2])] };
    const seen: string[] = [];
    const out = treeMap(tree, (t, name) => {
      seen.push(name);
      return add(t, 1);
    });
    expect(seen).toEqual(['a', 'l.0']);
    expect(arr(out.a)).toEqual([2]);
    expect(arr(out.l[0])).toEqual([3]);
    dispose([tree, out]);
  });
  it('treeZip pairs tensors by name regardless of key order and checks structure', () => {
    const a = { x: tensor([1]), y: tensor([2]) };
    const b = { y: tensor([20]), x: tensor([10]) };
    const out = treeZip([a, b], ([p, q]) => add(p, q));
    expect(Object.keys(out)).toEqual(['x', 'y']);
    expect(arr(out.x)).toEqual([11]);
    expect(arr(out.y)).toEqual([22]);
    expect(() => treeZip([a, { x: b.x } as typeof a], ([p]) => p)).toThrow(/no tensor named "y"/);
    expect(() => treeZip([a, { x: b.x, y: b.y, z: b.x } as typeof a], ([p]) => p)).toThrow(/"z"/);
    const wrong = { x: tensor([1, 2]), y: tensor([1]) };
    expect(() => treeZip([a, wrong], ([p]) => p)).toThrow(ShapeError);
    dispose([a, b, out, wrong]);
  });
});
