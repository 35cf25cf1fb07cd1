import { describe, expect, it } from 'vitest';
import { grad, valueAndGrad, vjp, stopGradient, checkGrad, GradCheckError } from '../../src/autodiff/index.js';
import { tensor, scalar, randn } from '../../src/tensor/create.js';
import { scope, memory, empty, type Tensor } from '../../src/tensor/tensor.js';
import { apply, defineRule, observe } from '../../src/tensor/primitive.js';
import { heapF32 } from '../../src/tensor/heap.js';
import { add, mul, sub } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { elu, exp, tanh } from '../../src/tensor/ops/unary.js';
import { reshape } from '../../src/tensor/ops/shape.js';
import { conv2d } from '../../src/tensor/ops/conv2d.js';
import { sigmoidGate } from '../../src/tensor/ops/gates.js';
import { maxPool } from '../../src/tensor/ops/pool.js';
import { key, split } from '../../src/tensor/random.js';
import { ValueError } from '../../src/tensor/errors.js';

const arr = (t: Tensor) => Array.from(t.toArray());

describe('grad', () => {
  it("skips the cotangents of inputs nothing differentiates (a constant operand's vjp work is not done)", () => {
    const a = tensor([1, 2, 3]);
    const b = tensor([4, 5, 6]);
    const names: string[] = [];
    const prev = observe((rule) => void names.push(rule.name)); // sees only the backward: the tape observes the forward
    try {
      expect(arr(grad((a: Tensor) => sum(mul(a, b)))(a))).toEqual([4, 5, 6]);
    } finally {
      observe(prev);
    }
    expect(names.filter((n) => n === 'mul')).toHaveLength(1); // g·b only; g·a for the constant is never computed
  });
  it('d/dx sum(x*x) = 2x', () => {
    const x = tensor([1, -2, 3]);
    expect(arr(grad((x: Tensor) => sum(mul(x, x)))(x))).toEqual([2, -4, 6]);
  });
  it('accumulates over fan-out: f = sum(x*y + x) gives df/dx = y + 1, df/dy = x', () => {
    const x = tensor([1, 2]);
    const y = tensor([5, 7]);
    const [gx, gy] = grad((x: Tensor, y: Tensor) => sum(add(mul(x, y), x)), [0, 1])(x, y);
    expect(arr(gx)).toEqual([6, 8]);
    expect(arr(gy)).toEqual([1, 2]);
  });
  it('differentiates with respect to pytrees and returns the same structure', () => {
    const params = { w: tensor([2, 3]), layers: [{ b: tensor([1]) }] };
    const g = grad((p: typeof params) => sum(mul(p.w, add(p.layers[0].b, p.w))))(params);
    // f = sum(w*(b+w)) -> df/dw = b + 2w, df/db = sum(w)
    expect(arr(g.w)).toEqual([5, 7]);
    expect(arr(g.layers[0].b)).toEqual([5]);
  });
  it('gives zeros for an argument the output does not depend on', () => {
    const [, gy] = grad((x: Tensor, _y: Tensor) => sum(x), [0, 1])(tensor([1]), tensor([4, 5]));
    expect(arr(gy)).toEqual([0, 0]);
  });
  it('returns distinct tensor objects for each gradient even when the vjp passes one cotangent through', () => {
    const [gx, gy] = grad((x: Tensor, y: Tensor) => sum(add(x, y)), [0, 1])(tensor([1, 2]), tensor([3, 4]));
    expect(gx).not.toBe(gy);
    gx.dispose();
    expect(arr(gy)).toEqual([1, 1]);
  });
  it('backpropagates through time in an unrolled loop: h_{t+1} = tanh(w*h_t + x)', () => {
    const x = tensor([0.3]);
    const h0 = tensor([0.1]);
    const f = (w: Tensor) => {
      let h = h0;
      for (let t = 0; t < 5; t++) h = tanh(add(mul(w, h), x));
      return sum(h);
    };
    const w = tensor([0.7]);
    // Reference by the chain rule in float64.
    let h = 0.1, dh = 0;
    for (let t = 0; t < 5; t++) {
      const a = 0.7 * h + 0.3;
      const hn = Math.tanh(a);
      dh = (1 - hn * hn) * (h + 0.7 * dh);
      h = hn;
    }
    expect(grad(f)(w).item()).toBeCloseTo(dh, 5);
  });
  it('valueAndGrad returns the value; hasAux carries aux along', () => {
    const x = tensor([1, 2]);
    const [v, g] = valueAndGrad((x: Tensor) => sum(mul(x, x)))(x);
    expect(v.item()).toBe(5);
    expect(arr(g)).toEqual([2, 4]);
    const [[loss, aux], g2] = valueAndGrad((x: Tensor) => [sum(x), { doubled: add(x, x) }], 0, { hasAux: true })(x);
    expect(loss.item()).toBe(3);
    expect(arr(aux.doubled)).toEqual([2, 4]);
    expect(arr(g2)).toEqual([1, 1]);
  });
  it('stopGradient cuts the graph', () => {
    const x = tensor([3]);
    expect(grad((x: Tensor) => sum(mul(stopGradient(x), x)))(x).item()).toBe(3);
  });
  it('rejects non-scalar outputs, bad argnums and nested differentiation with clear errors', () => {
    const x = tensor([1, 2]);
    expect(() => grad((x: Tensor) => mul(x, x))(x)).toThrow(/scalar tensor.*\[2\]/);
    expect(() => grad((x: Tensor) => sum(x), 3)(x)).toThrow(/argnums entry 3 is out of range/);
    expect(() => grad((x: Tensor) => sum(grad((y: Tensor) => sum(mul(y, y)))(x)))(x)).toThrow(/nested differentiation/);
    expect(() => grad((x: Tensor) => sum(x))(5 as never)).toThrow(ValueError);
  });
});

describe('vjp', () => {
  it('pulls back a cotangent of a non-scalar output', () => {
    scope(() => {
      const x = tensor([1, 2, 3]);
      const [y, pullback] = vjp((x: Tensor) => mul(x, x), x);
      expect(arr(y)).toEqual([1, 4, 9]);
      const [gx] = pullback(tensor([1, 0, 2]));
      expect(arr(gx)).toEqual([2, 0, 12]);
      expect(() => pullback(tensor([1, 0, 2]))).toThrow(/only once/);
    });
  });
  it('checks the cotangent shape', () => {
    scope(() => {
      const [, pullback] = vjp((x: Tensor) => exp(x), tensor([1, 2]));
      expect(() => pullback(tensor([1]))).toThrow(/cotangent leaf 0 has shape \[1\]/);
    });
  });
});

describe('checkGrad', () => {
  it('accepts correct gradients', () => {
    const [k1, k2] = split(key(0));
    const x = randn(k1, [3, 4]);
    const r = randn(k2, [3, 4]);
    const report = checkGrad((x) => sum(mul(tanh(x), r)), [x]);
    expect(report.checked).toBe(12);
  });
  it('catches a primitive whose vjp is wrong', () => {
    // A "cube" primitive whose vjp forgets the factor 3.
    const cube = defineRule('testCube', {
      forward([x]) {
        const out = empty(x.shape);
        const h = heapF32();
        for (let i = 0; i < x.size; i++) h[(out.ptr >>> 2) + i] = h[(x.ptr >>> 2) + i] ** 3;
        return out;
      },
      vjp(g, [x]) {
        return [mul(g, mul(x, x))];
      },
    });
    const x = tensor([0.5, -1, 2]);
    expect(() => checkGrad((x) => sum(apply(cube, [x], undefined)), [x])).toThrow(GradCheckError);
  });
});

describe('memory', () => {
  it('a 100-step valueAndGrad loop leaks no tensor and no heap byte', () => {
    const [k1, k2] = split(key(1));
    let w = randn(k1, [4], 0.5);
    const x = randn(k2, [8, 4]);
    const step = (w: Tensor) =>
      scope(() => {
        const [loss, g] = valueAndGrad((w: Tensor) => sum(tanh(mul(add(x, w), w))))(w);
        loss.item();
        return sub(w, mul(g, 0.01));
      });
    const before = memory();
    for (let i = 0; i < 100; i++) {
      const next = step(w);
      w.dispose();
      w = next;
    }
    expect(memory()).toEqual(before);
  });
});

describe('backward pass memory', () => {
  // A copy of x whose vjp notes the live heap bytes when the backward pass reaches it.
  const seen: number[] = [];
  const probeRule = defineRule('testProbe', {
    forward([x]) {
      const out = empty(x.shape);
      heapF32().copyWithin(out.ptr >>> 2, x.ptr >>> 2, (x.ptr >>> 2) + x.size);
      return out;
    },
    vjp(g) {
      seen.push(memory().bytes);
      return [g];
    },
  });
  const probe = (x: Tensor) => apply(probeRule, [x], undefined);
  const bits = (ts: Tensor[]) => ts.map((t) => Buffer.from(t.toArray().buffer).toString('hex'));

  it('frees each activation of a long chain once the backward pass has left it behind', () => {
    const n = 256; // 1 KiB per activation
    const x = randn(key(4), [n], 0.5);
    const depth = 40;
    const f = (x: Tensor) => {
      let h = probe(x);
      for (let i = 0; i < depth; i++) h = tanh(i === depth / 2 ? probe(h) : h);
      return sum(h);
    };
    seen.length = 0;
    const before = memory().bytes;
    scope(() => void grad(f)(x));
    expect(memory().bytes).toBe(before);
    const activations = (depth + 2) * n * 4;
    const [atMiddle, atStart] = seen.map((b) => b - before);
    // At the chain's midpoint only the first half (which the rest of the backward pass still reads) is alive ...
    expect(atMiddle).toBeGreaterThanOrEqual((depth / 2) * n * 4);
    expect(atMiddle).toBeLessThan((depth / 2 + 4) * n * 4);
    // ... and at its start, a few tensors: far below the sum of the activations kept alive to the end.
    expect(atStart).toBeLessThan(4 * n * 4);
    expect(atStart).toBeLessThan(activations / 10);
  });

  it('gives bit-identical values and gradients (BPTT through a conv cell) whether or not every intermediate is kept', () => {
    const [k1, k2, k3, k4] = split(key(5), 4);
    const x = randn(k1, [2, 8, 8, 2]);
    const p = { w: randn(k2, [3, 3, 2, 3], 0.3), a: randn(k3, [3, 3, 3, 3], 0.3), c: randn(k4, [3, 3, 3, 3], 0.3) };
    // h' = elu((1 - σ(conv_a(h)))·u + (1 - σ(conv_c(h)))·h), u = maxpool(elu(conv_w(x))), over 4 steps.
    const run = (p: { w: Tensor; a: Tensor; c: Tensor }, keep: (t: Tensor) => Tensor) => {
      let h: Tensor | undefined;
      for (let t = 0; t < 4; t++) {
        const u = keep(maxPool(keep(elu(keep(conv2d(x, p.w, { padding: 'same' })))), { size: 2 }));
        h ??= mul(u, 0);
        const ga = keep(sigmoidGate(keep(conv2d(h, p.a, { padding: 'same' })), u));
        const gc = keep(sigmoidGate(keep(conv2d(h, p.c, { padding: 'same' })), h));
        h = keep(elu(keep(add(ga, gc))));
      }
      return sum(mul(h!, h!));
    };
    scope(() => {
      const [loss, g] = valueAndGrad((q: typeof p) => run(q, (t) => t))(p);
      const kept: Tensor[] = [];
      const [[lossKept, all], gKept] = valueAndGrad(
        (q: typeof p) => [run(q, (t) => (kept.push(t), t)), kept],
        0,
        { hasAux: true },
      )(p);
      expect(all).toHaveLength(36);
      expect(bits([loss])).toEqual(bits([lossKept]));
      expect(bits([g.w, g.a, g.c])).toEqual(bits([gKept.w, gKept.a, gKept.c]));
      expect(g.w.toArray().some((v) => v !== 0)).toBe(true);
    });
  });

  it('keeps returned aux tensors, views of freed intermediates, arguments and outside tensors intact', () => {
    const [k1, k2] = split(key(6));
    const x = randn(k1, [64], 0.5);
    const outside = randn(k2, [64]);
    const xBits = bits([x, outside]);
    const f = (x: Tensor) => {
      const v = tanh(exp(x));
      const w = mul(v, outside);
      // v and w are freed during the backward pass; their views and the returned intermediates stay.
      const aux = { vView: stopGradient(v), wShaped: reshape(w, [8, 8]), v3: mul(v, 3), x, outside };
      return [sum(mul(w, w)), aux] as const;
    };
    scope(() => {
      const [, expected] = f(x); // the same kernels outside differentiation
      const want = bits([expected.vView, expected.wShaped, expected.v3]);
      const [[loss, aux], g] = valueAndGrad(f, 0, { hasAux: true })(x);
      expect(bits([aux.vView, aux.wShaped, aux.v3])).toEqual(want);
      expect(aux.x).toBe(x);
      expect(aux.outside).toBe(outside);
      expect(bits([x, outside])).toEqual(xBits);
      expect(loss.disposed || g.disposed).toBe(false);
    });
    expect(x.disposed || outside.disposed).toBe(false);
  });

  it("vjp's pullback keeps every output leaf, also one that later ops read", () => {
    scope(() => {
      const x = tensor([0.5, -1, 2]);
      const [[t, y], pullback] = vjp((x: Tensor) => {
        const t = tanh(x);
        return [t, mul(exp(t), t)];
      }, x);
      const want = bits([t, y]);
      const [gx] = pullback([tensor([1, 1, 1]), tensor([1, 0, 2])]);
      expect(bits([t, y])).toEqual(want);
      expect(gx.toArray().every(Number.isFinite)).toBe(true);
    });
  });

  it('100 steps with aux views of intermediates leak no tensor and no heap byte', () => {
    const x = randn(key(7), [16], 0.5);
    const f = (x: Tensor) => {
      const v = tanh(mul(x, x));
      return [sum(exp(v)), stopGradient(v)] as const;
    };
    const before = memory();
    for (let i = 0; i < 100; i++) scope(() => void valueAndGrad(f, 0, { hasAux: true })(x));
    expect(memory()).toEqual(before);
  });
});

it('scalar helper makes 0-d tensors usable in ops', () => {
  expect(mul(scalar(2), tensor([1, 2])).toArray()).toEqual(new Float32Array([2, 4]));
});
