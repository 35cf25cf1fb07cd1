/**
 * The laws every standard cell must obey, as one suite per cell: its step
 * equals a float64 reference of its equation for any config and shape, its
 * gradients through a 3-step unroll match finite differences, and its step
 * is pure.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Cell } from '../../../src/convrnn/cell.js';
import { Tensor, scope } from '../../../src/tensor/tensor.js';
import { randn } from '../../../src/tensor/create.js';
import { key, foldIn, type Key } from '../../../src/tensor/random.js';
import { leaves, unflatten } from '../../../src/tensor/tree.js';
import { add, mul } from '../../../src/tensor/ops/binary.js';
import { sum } from '../../../src/tensor/ops/reduce.js';
import { checkGrad } from '../../../src/autodiff/index.js';
import { ConfigError, ShapeError, ValueError } from '../../../src/tensor/errors.js';
import type { ConvParams } from '../../../src/nn/layers.js';
import type { CellConvParams } from '../../../src/convrnn/cells/conv.js';
import { arr, arrTree, maxRelError, type Arr } from './reference.js';

export type Json = Record<string, unknown>;
export type AnyCell = Cell<any, any>;

/** A float64 reference step: (params, state, x as Arr trees, the validated config) -> [newState, output]. */
export type RefStep = (p: any, s: any, x: Arr, config: any) => [Record<string, Arr>, Arr];

export interface CellLaws {
  /** The equation the cell implements, for the test names ('eq. 4'). */
  eq: string;
  make: (config: Json) => AnyCell;
  ref: RefStep;
  /** The cell's own config fields, drawn at random (the conv fields are added here). */
  extra: fc.Arbitrary<Json>;
  /** Configs to check gradients under. */
  gradConfigs: Json[];
  /** Time decay has no convs: the conv fields are not drawn. */
  noConv?: boolean;
  /** The cell's boolean config fields. */
  flags?: string[];
}

export const ctx = (t = 0) => ({ t, training: true });

/** A cell conv's params in its full (not depth-separable) form. */
export const full = (p: CellConvParams): ConvParams => {
  if (!('w' in p)) throw new Error('expected a full conv');
  return p;
};

/** A copy of `tree` with every tensor replaced by N(0, std²) draws. */
export function randomize<T>(tree: T, k: Key, std: number): T {
  return unflatten(
    tree,
    leaves(tree).map((t, i) => randn(foldIn(k, i), t.shape, std)),
  );
}

/** Random params, state and input for `cell` at `shape`. */
export function randomSetup(cell: AnyCell, shape: number[], seed: number) {
  const k = key(seed);
  const params = randomize(cell.init(foldIn(k, 0), shape), foldIn(k, 1), 0.5);
  const state = randomize(cell.initialState(shape), foldIn(k, 2), 1);
  const x = randn(foldIn(k, 3), shape);
  return { params, state, x };
}

const bits = (tree: unknown): Float32Array[] => leaves(tree).map((t) => t.toArray());

const convFields = fc.record({
  kernelSize: fc.integer({ min: 1, max: 5 }),
  separable: fc.boolean(),
  biasInit: fc.double({ min: -2, max: 2, noNaN: true }),
});
const shapes = fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }));

export function cellLaws(name: string, laws: CellLaws): void {
  describe(`${name}: laws`, () => {
    it(`step equals the float64 reference of ${laws.eq} for any config and shape, and keeps the input's shape`, () => {
      const configs = laws.noConv ? laws.extra : fc.tuple(convFields, laws.extra).map(([a, b]) => ({ ...a, ...b }));
      fc.assert(
        fc.property(configs, shapes, fc.nat(1000), (config, shape, seed) =>
          scope(() => {
            const cell = laws.make(config);
            expect(cell.outputShape(shape)).toEqual(shape);
            const { params, state, x } = randomSetup(cell, shape, seed);
            const [next, out] = cell.step(params, state, x, ctx());
            expect(out.shape).toEqual(shape);
            for (const t of leaves(next)) expect(t.shape).toEqual(shape);
            const [refNext, refOut] = laws.ref(arrTree(params), arrTree(state), arr(x), cell.config);
            expect(maxRelError(out.toArray(), refOut)).toBeLessThan(5e-4);
            expect(Object.keys(next).sort()).toEqual(Object.keys(refNext).sort());
            for (const k of Object.keys(refNext)) expect(maxRelError((next[k] as Tensor).toArray(), refNext[k])).toBeLessThan(5e-4);
          }),
        ),
        { numRuns: 12 },
      );
    });

    it.each(laws.gradConfigs.map((c) => [JSON.stringify(c), c] as const))('BPTT gradients through 3 steps match finite differences (%s)', (_, config) => {
      scope(() => {
        const cell = laws.make(config);
        const shape = [2, 4, 4, 3];
        const { params, state } = randomSetup(cell, shape, 7);
        const xs = [0, 1, 2].map((t) => randn(foldIn(key(8), t), shape));
        const R = randn(key(9), shape);
        const pl = leaves(params);
        const sl = leaves(state);
        const R2 = sl.map((t, i) => randn(foldIn(key(10), i), t.shape));
        const loss = (...args: Tensor[]): Tensor => {
          const p = unflatten(params, args.slice(0, pl.length));
          let s = unflatten(state, args.slice(pl.length, pl.length + sl.length));
          let out!: Tensor;
          for (let t = 0; t < 3; t++) [s, out] = cell.step(p, s, args[pl.length + sl.length + t], ctx(t));
          return leaves(s).reduce((acc, st, i) => add(acc, sum(mul(st, R2[i]))), sum(mul(out, R)));
        };
        const report = checkGrad(loss, [...pl, ...sl, ...xs], { eps: 3e-3, maxElements: 24 });
        expect(report.checked).toBeGreaterThan(0);
      });
    });

    it('step is pure: the same arguments give the same bits and are left unchanged', () => {
      scope(() => {
        const cell = laws.make(laws.gradConfigs[0]);
        const { params, state, x } = randomSetup(cell, [2, 3, 4, 2], 11);
        const before = bits([params, state, x]);
        const [s1, h1] = cell.step(params, state, x, ctx());
        const [s2, h2] = cell.step(params, state, x, ctx(5));
        expect(bits([s2, h2])).toEqual(bits([s1, h1]));
        expect(bits([params, state, x])).toEqual(before);
      });
    });

    it('init is a function of the key; initialState is zeros of the input shape', () => {
      scope(() => {
        const cell = laws.make({});
        const shape = [2, 3, 3, 2];
        expect(bits(cell.init(key(3), shape))).toEqual(bits(cell.init(key(3), shape)));
        const state = cell.initialState(shape);
        for (const t of leaves(state)) {
          expect(t.shape).toEqual(shape);
          expect(Array.from(t.toArray()).every((v) => v === 0)).toBe(true);
        }
      });
    });
  
    it('rejects bad configs with a ConfigError naming the field', () => {
      const bad = (config: unknown, field: RegExp) => {
        expect(() => laws.make(config as Json)).toThrow(ConfigError);
        expect(() => laws.make(config as Json)).toThrow(field);
      };
      bad({ bogus: 1 }, /unknown key config\.bogus/);
      bad(null, /config must be an object/);
      if (!laws.noConv) {
        bad({ kernelSize: 0 }, /config\.kernelSize must be .*, got 0/);
        bad({ kernelSize: 2.5 }, /config\.kernelSize/);
        bad({ separable: 'yes' }, /config\.separable must be a boolean/);
        bad({ init: { kind: 'he', scale: -1 } }, /config\.init/);
        bad({ biasInit: Number.NaN }, /config\.biasInit must be a finite number/);
      }
      for (const flag of laws.flags ?? []) bad({ [flag]: 1 }, new RegExp(`config\\.${flag} must be a boolean`));
    });

    it('rejects bad step arguments with errors naming them', () => {
      scope(() => {
        const cell = laws.make({});
        const { params, state, x } = randomSetup(cell, [1, 3, 3, 2], 1);
        const stateKey = Object.keys(state)[0];
        const wrong = { ...state, [stateKey]: randn(key(0), [1, 3, 2, 2]) };
        expect(() => cell.step(params, wrong, x, ctx())).toThrow(ShapeError);
        expect(() => cell.step(params, wrong, x, ctx())).toThrow(new RegExp(`state\\.${stateKey}`));
        expect(() => cell.step({}, state, x, ctx())).toThrow(ValueError);
        expect(() => cell.step(params, state, randn(key(0), [3, 3, 2]), ctx())).toThrow(/x must be \[N, H, W, C\]/);
        expect(() => cell.init(key(0), [3, 3, 2])).toThrow(/inputShape/);
        expect(() => cell.initialState([1, 0, 3, 2])).toThrow(/inputShape/);
      });
    });
  });
}
