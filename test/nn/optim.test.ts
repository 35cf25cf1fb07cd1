import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { randn, tensor } from '../../src/tensor/create.js';
import { Tensor, dispose, memory, scope } from '../../src/tensor/tensor.js';
import { ConfigError, ShapeError, ValueError } from '../../src/tensor/errors.js';
import { mul, sub } from '../../src/tensor/ops/binary.js';
import { sum, mean } from '../../src/tensor/ops/reduce.js';
import { square } from '../../src/tensor/ops/unary.js';
import { valueAndGrad } from '../../src/autodiff/index.js';
import { leaves } from '../../src/tensor/tree.js';
import {
  sgd,
  adam,
  clipByValue,
  clipByGlobalNorm,
  globalNorm,
  withGradTransforms,
  type Optimizer,
} from '../../src/nn/optim.js';

const arr = (t: Tensor) => Array.from(t.toArray());

// Three steps of fixed gradients for two tensors, written out.
const P0 = { a: [1, -2, 0.5], b: [3] };
const GRADS = [
  { a: [0.5, -0.25, 1], b: [2] },
  { a: [-1, 0.75, 0.5], b: [-0.5] },
  { a: [0.25, 0.25, -2], b: [1] },
];
type Vals = { a: number[]; b: number[] };
const toTree = (v: Vals) => ({ a: tensor(v.a), b: tensor(v.b) });
const map2 = (x: Vals, y: Vals, f: (p: number, q: number) => number): Vals => ({
  a: x.a.map((v, i) => f(v, y.a[i])),
  b: x.b.map((v, i) => f(v, y.b[i])),
});

function expectTree(got: { a: Tensor; b: Tensor }, want: Vals, tol = 1e-6): void {
  for (const k of ['a', 'b'] as const) {
    const g = got[k].toArray();
    want[k].forEach((w, i) => {
      if (!(Math.abs(g[i] - w) <= tol * Math.max(1, Math.abs(w)))) throw new Error(`${k}[${i}]: got ${g[i]}, want ${w}`);
    });
  }
}

/** Run `steps` updates of `opt` from P0 with GRADS; returns the params after each step. */
function run<S>(opt: Optimizer<S>, steps = 3): { a: Tensor; b: Tensor }[] {
  let params = toTree(P0);
  let state = opt.init(params);
  const out: { a: Tensor; b: Tensor }[] = [];
  for (let t = 0; t < steps; t++) {
    const g = toTree(GRADS[t]);
    const [p, s] = opt.update(params, g, state);
    dispose([g, state]);
    if (t === 0) dispose(params); // later params are returned in `out`
    state = s;
    params = p;
    out.push(p);
  }
  dispose(state);
  return out;
}

describe('sgd', () => {
  it('plain: p - lr·g', () => {
    const lr = 0.1;
    const got = run(sgd({ lr }));
    let p: Vals = P0;
    GRADS.forEach((g, t) => {
      p = map2(p, g, (x, y) => x - lr * y);
      expectTree(got[t], p);
    });
  });
  it('momentum: v = mu·v + g, p -= lr·v', () => {
    const lr = 0.1;
    const mu = 0.9;
    const got = run(sgd({ lr, momentum: mu }));
    let p: Vals = P0;
    let v: Vals = { a: [0, 0, 0], b: [0] };
    GRADS.forEach((g, t) => {
      v = map2(v, g, (x, y) => mu * x + y);
      p = map2(p, v, (x, y) => x - lr * y);
      expectTree(got[t], p);
    });
  });
  it('Nesterov: v = mu·v + g, p -= lr·(g + mu·v)', () => {
    const lr = 0.05;
    const mu = 0.9;
    const got = run(sgd({ lr, momentum: mu, nesterov: true }));
    let p: Vals = P0;
    let v: Vals = { a: [0, 0, 0], b: [0] };
    GRADS.forEach((g, t) => {
      v = map2(v, g, (x, y) => mu * x + y);
      const d = map2(g, v, (x, y) => x + mu * y);
      p = map2(p, d, (x, y) => x - lr * y);
      expectTree(got[t], p);
    });
  });
  it('weight decay adds wd·p to the gradient', () => {
    const lr = 0.1;
    const wd = 0.01;
    const got = run(sgd({ lr, momentum: 0.5, weightDecay: wd }));
    let p: Vals = P0;
    let v: Vals = { a: [0, 0, 0], b: [0] };
    GRADS.forEach((g, t) => {
      const gd = map2(g, p, (x, y) => x + wd * y);
      v = map2(v, gd, (x, y) => 0.5 * x + y);
      p = map2(p, v, (x, y) => x - lr * y);
      expectTree(got[t], p);
    });
  });
  it('takes the learning rate from a schedule at the state count, or at an explicit step', () => {
    const schedule = (step: number) => [0.1, 0.2, 0.3][step] ?? 0;
    const got = run(sgd({ lr: schedule }));
    let p: Vals = P0;
    GRADS.forEach((g, t) => {
      p = map2(p, g, (x, y) => x - schedule(t) * y);
      expectTree(got[t], p);
    });
    const opt = sgd({ lr: schedule });
    const params = toTree(P0);
    const state = opt.init(params);
    const g = toTree(GRADS[0]);
    const [p1, s1] = opt.update(params, g, state, 2);
    expectTree(p1, map2(P0, GRADS[0], (x, y) => x - 0.3 * y));
    expect(s1.count.item()).toBe(3);
    dispose([params, state, g, p1, s1]);
  });
  it('validates options', () => {
    expect(() => sgd({ lr: -1 })).toThrow(/lr/);
    expect(() => sgd({ lr: 0.1, momentum: 1 })).toThrow(/momentum/);
    expect(() => sgd({ lr: 0.1, nesterov: true })).toThrow(ConfigError);
    expect(() => sgd({ lr: 0.1, weightDecay: -1 })).toThrow(/weightDecay/);
  });
});

describe('adam', () => {
  it('three bias-corrected steps match a float64 reference', () => {
    const lr = 0.01;
    const b1 = 0.9;
    const b2 = 0.999;
    const eps = 1e-8;
    const got = run(adam({ lr, beta1: b1, beta2: b2, eps }));
    let p: Vals = P0;
    let m: Vals = { a: [0, 0, 0], b: [0] };
    let v: Vals = { a: [0, 0, 0], b: [0] };
    GRADS.forEach((g, i) => {
      const t = i + 1;
      m = map2(m, g, (x, y) => b1 * x + (1 - b1) * y);
      v = map2(v, g, (x, y) => b2 * x + (1 - b2) * y * y);
      const mh = map2(m, m, (x) => x / (1 - b1 ** t));
      const vh = map2(v, v, (x) => x / (1 - b2 ** t));
      const step = map2(mh, vh, (x, y) => x / (Math.sqrt(y) + eps));
      p = map2(p, step, (x, y) => x - lr * y);
      expectTree(got[i], p, 2e-6);
    });
    // The first step of Adam moves every element by lr·sign(g) (up to eps).
    expectTree(got[0], map2(P0, GRADS[0], (x, y) => x - lr * Math.sign(y)), 2e-6);
  });
  it('weight decay is added to the gradient; state slots are trees like params', () => {
    const opt = adam({ lr: 0.1, weightDecay: 0.5 });
    const params = toTree(P0);
    const state = opt.init(params);
    expect(Object.keys(state.m as object)).toEqual(['a', 'b']);
    const g = toTree(GRADS[0]);
    const [, s1] = opt.update(params, g, state);
    const m = (s1.m as { a: Tensor }).a.toArray();
    // m1 = 0.1·(g + 0.5·p)
    [1, -2, 0.5].forEach((p, i) => expect(m[i]).toBeCloseTo(0.1 * (GRADS[0].a[i] + 0.5 * p), 6));
    dispose([params, state, g, s1]);
  });
  it('validates options', () => {
    expect(() => adam({ lr: 0.1, beta1: 1 })).toThrow(/beta1/);
    expect(() => adam({ lr: 0.1, eps: 0 })).toThrow(/eps/);
  });
});

describe('gradient transforms', () => {
  it('clipByValue clips each element to [-limit, limit]', () => {
    const g = { a: tensor([-1, 0.5, 2, -0.7]), b: [tensor([0.69, 0.71])] };
    const c = clipByValue(0.7)(g);
    expect(arr(c.a)).toEqual(arr(tensor([-0.7, 0.5, 0.7, -0.7])));
    expect(arr(c.b[0])).toEqual(arr(tensor([0.69, 0.7])));
    expect(() => clipByValue(0)).toThrow(ConfigError);
    dispose([g, c]);
  });
  it('clipByGlobalNorm rescales the whole tree to maxNorm, and leaves a smaller one bit-identical', () => {
    const g = { a: tensor([3, 0]), b: tensor([4]) };
    expect(globalNorm(g).item()).toBe(5);
    const c = clipByGlobalNorm(2.5)(g);
    expect(arr(c.a)).toEqual([1.5, 0]);
    expect(arr(c.b)).toEqual([2]);
    const same = clipByGlobalNorm(10)(g);
    expect(arr(same.a)).toEqual([3, 0]);
    expect(arr(same.b)).toEqual([4]);
    const edge = clipByGlobalNorm(5)(g);
    expect(arr(edge.b)).toEqual([4]);
    expect(() => clipByGlobalNorm(-1)).toThrow(/maxNorm/);
    dispose([g, c, same, edge]);
  });
  it('compose with any optimizer, in order', () => {
    const lr = 0.1;
    const clipped = run(withGradTransforms(sgd({ lr }), clipByValue(0.7)));
    let p: Vals = P0;
    GRADS.forEach((g, t) => {
      p = map2(p, g, (x, y) => x - lr * Math.max(-0.7, Math.min(0.7, y)));
      expectTree(clipped[t], p);
    });
    // Global norm of GRADS[0] is sqrt(0.25 + 0.0625 + 1 + 4) = 2.305...; clip to 1 then by value 0.3.
    const opt = withGradTransforms(adam({ lr: 0.01 }), clipByGlobalNorm(1), clipByValue(0.3));
    const params = toTree(P0);
    const state = opt.init(params);
    const g = toTree(GRADS[0]);
    const [p1, s1] = opt.update(params, g, state);
    const n = Math.sqrt(0.25 + 0.0625 + 1 + 4);
    const m1 = (s1.m as { a: Tensor; b: Tensor }).b.item();
    expect(m1).toBeCloseTo(0.1 * Math.min(0.3, 2 / n), 6);
    dispose([params, state, g, p1, s1]);
  });
});

describe('update hygiene', () => {
  it('returns fresh tensors only and disposes nothing it was given', () => {
    for (const opt of [sgd({ lr: 0.1, momentum: 0.9 }), adam({ lr: 0.1 }), withGradTransforms(sgd({ lr: 0.1 }), clipByGlobalNorm(100))] as Optimizer<unknown>[]) {
      const params = toTree(P0);
      const grads = toTree(GRADS[0]);
      const state = opt.init(params);
      const inputs = new Set([...leaves(params), ...leaves(grads), ...leaves(state)]);
      const [p1, s1] = opt.update(params, grads, state);
      for (const t of inputs) expect(t.disposed).toBe(false);
      for (const t of [...leaves(p1), ...leaves(s1)]) expect(inputs.has(t)).toBe(false);
      dispose([params, grads, state]);
      expect(arr(p1.a).length).toBe(3);
      dispose([p1, s1]);
    }
  });
  it('rejects grads that do not match params, naming the tensor', () => {
    const opt = sgd({ lr: 0.1, momentum: 0.5 });
    const params = toTree(P0);
    const state = opt.init(params);
    const bad = { a: tensor([1, 2, 3]) } as unknown as typeof params;
    expect(() => opt.update(params, bad, state)).toThrow(/grads has no tensor named "b"/);
    const wrong = { a: tensor([1, 2]), b: tensor([1]) };
    expect(() => opt.update(params, wrong, state)).toThrow(ShapeError);
    expect(() => opt.update(params, params, {} as never)).toThrow(ValueError);
    expect(() => opt.update(params, params, state, -1)).toThrow(/step/);
    dispose([params, state, bad, wrong]);
  });
  it('leaks nothing: memory returns to its baseline after 50 training steps', () => {
    const x = randn(key(1), [8, 4]);
    const w0 = randn(key(2), [4]);
    const target = randn(key(3), [8]);
    const loss = (p: { w: Tensor }) => mean(square(sub(sum(mul(x, p.w), 1), target)));
    for (const opt of [
      withGradTransforms(sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }), clipByValue(0.7), clipByGlobalNorm(5)),
      adam({ lr: 0.01 }),
    ] as Optimizer<unknown>[]) {
      let params = { w: mul(w0, 1) };
      let state = opt.init(params);
      const run1 = () => {
        const [l, g] = valueAndGrad(loss)(params);
        const [p, s] = opt.update(params, g, state);
        dispose([l, g, params, state]);
        params = p;
        state = s;
      };
      run1(); // warm up any lazily created constants
      const before = memory();
      let first = 0;
      for (let i = 0; i < 50; i++) {
        run1();
        if (i === 0) first = scope(() => loss(params).item());
      }
      const after = memory();
      expect(after.tensors).toBe(before.tensors);
      expect(after.bytes).toBe(before.bytes);
      const last = scope(() => loss(params).item());
      expect(last).toBeLessThan(first); // and it learns
      dispose([params, state]);
    }
    dispose([x, w0, target]);
  });
});
