import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { randn, tensor, ones, uniform } from '../../src/tensor/create.js';
import { Tensor, dispose } from '../../src/tensor/tensor.js';
import { ShapeError, ValueError } from '../../src/tensor/errors.js';
import { checkGrad, grad } from '../../src/autodiff/index.js';
import { softmaxCrossEntropy, mse, poissonLoss, l1, l2, laplacianPenalty, accuracy } from '../../src/nn/losses.js';

const logSumExp = (row: number[]): number => {
  const m = Math.max(...row);
  return m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
};

describe('softmaxCrossEntropy', () => {
  it('is the batch mean of -log softmax at the label', () => {
    const rows = [
      [1, 2, 3],
      [1, 0, -1],
    ];
    const labels = [2, 0];
    const want = rows.reduce((a, r, i) => a + logSumExp(r) - r[labels[i]], 0) / 2;
    const logits = tensor(rows.flat(), [2, 3]);
    expect(softmaxCrossEntropy(logits, labels).item()).toBeCloseTo(want, 5);
    expect(softmaxCrossEntropy(logits, Int32Array.from(labels)).item()).toBeCloseTo(want, 5);
    dispose(logits);
  });
  it('is stable for large logits', () => {
    const logits = tensor([1000, 0, -1000, 999], [2, 2]);
    const v = softmaxCrossEntropy(logits, [1, 1]).item();
    // row 0: 1000 - 0 = 1000; row 1: log(e^-1000 + e^999) - 999 = ~0
    expect(v).toBeCloseTo(500, 3);
    dispose(logits);
  });
  it('gradient is (softmax - onehot) / B and checks against finite differences', () => {
    const logits = randn(key(1), [4, 5]);
    const labels = [0, 3, 4, 1];
    const g = grad((x: Tensor) => softmaxCrossEntropy(x, labels))(logits).toArray();
    const lv = logits.toArray();
    for (let b = 0; b < 4; b++) {
      const row = Array.from(lv.slice(b * 5, b * 5 + 5));
      const lse = logSumExp(row);
      for (let k = 0; k < 5; k++) {
        expect(g[b * 5 + k]).toBeCloseTo((Math.exp(row[k] - lse) - (k === labels[b] ? 1 : 0)) / 4, 5);
      }
    }
    checkGrad((x) => softmaxCrossEntropy(x, labels), [logits]);
    dispose(logits);
  });
  it('validates labels and logits', () => {
    const logits = randn(key(1), [2, 3]);
    expect(() => softmaxCrossEntropy(logits, [0])).toThrow(ShapeError);
    expect(() => softmaxCrossEntropy(logits, [0, 3])).toThrow(/labels\[1\]/);
    expect(() => softmaxCrossEntropy(logits, [0, 1.5])).toThrow(ValueError);
    expect(() => softmaxCrossEntropy(randn(key(0), [6]), [0])).toThrow(/\[B, K\]/);
    dispose(logits);
  });
});

describe('mse / poissonLoss', () => {
  it('mse is the mean squared difference', () => {
    const p = tensor([1, 2, 3, 4], [2, 2]);
    const t = tensor([0, 2, 5, 3], [2, 2]);
    expect(mse(p, t).item()).toBeCloseTo((1 + 0 + 4 + 1) / 4, 6);
    checkGrad((p, t) => mse(p, t), [p, t]);
    expect(() => mse(p, tensor([1, 2, 3, 4]))).toThrow(ShapeError);
    dispose([p, t]);
  });
  it('poisson loss is mean(pred - y log(pred + eps))', () => {
    const pred = tensor([0.5, 2, 1, 3]);
    const y = tensor([1, 0, 2, 4]);
    const eps = 1e-8;
    const want = [0.5, 2, 1, 3].reduce((a, p, i) => a + p - [1, 0, 2, 4][i] * Math.log(p + eps), 0) / 4;
    expect(poissonLoss(pred, y).item()).toBeCloseTo(want, 5);
    expect(poissonLoss(pred, y, 0.5).item()).toBeCloseTo([0.5, 2, 1, 3].reduce((a, p, i) => a + p - [1, 0, 2, 4][i] * Math.log(p + 0.5), 0) / 4, 5);
    // d/dpred = (1 - y / (pred + eps)) / n
    const g = grad((p: Tensor) => poissonLoss(p, y))(pred).toArray();
    [0.5, 2, 1, 3].forEach((p, i) => expect(g[i]).toBeCloseTo((1 - [1, 0, 2, 4][i] / p) / 4, 5));
    const pos = uniform(key(3), [3, 4], 0.5, 2);
    const yy = uniform(key(4), [3, 4], 0, 3);
    checkGrad((p) => poissonLoss(p, yy), [pos], { eps: 1e-3 });
    dispose([pred, y, pos, yy]);
  });
});

describe('l1 / l2', () => {
  it('sum |t| and sum t² over every tensor of a tree, 0 for an empty tree', () => {
    const tree = { a: tensor([1, -2]), b: [tensor([3], [1, 1]), { c: tensor([-0.5]) }] };
    expect(l1(tree).item()).toBeCloseTo(6.5, 6);
    expect(l2(tree).item()).toBeCloseTo(1 + 4 + 9 + 0.25, 6);
    expect(l1({}).item()).toBe(0);
    expect(l2([]).item()).toBe(0);
    const [ga, gb] = grad((a: Tensor, b: Tensor) => l2({ a, b }), [0, 1])(tree.a, tree.b[0] as Tensor);
    expect(Array.from(ga.toArray())).toEqual([2, -4]);
    expect(Array.from(gb.toArray())).toEqual([6]);
    const g1 = grad((a: Tensor) => l1({ a }))(tree.a);
    expect(Array.from(g1.toArray())).toEqual([1, -1]);
    dispose([tree, ga, gb, g1]);
  });
});

/** Σ over planes of the zero-padded 3x3 Laplacian, squared, in float64. */
function refLaplacian(w: Float32Array, shape: number[]): number {
  const [KH, KW] = shape;
  const P = w.length / (KH * KW);
  const at = (h: number, x: number, p: number): number => (h < 0 || h >= KH || x < 0 || x >= KW ? 0 : w[(h * KW + x) * P + p]);
  let total = 0;
  for (let p = 0; p < P; p++)
    for (let h = 0; h < KH; h++)
      for (let x = 0; x < KW; x++) {
        const lap = 4 * at(h, x, p) - at(h - 1, x, p) - at(h + 1, x, p) - at(h, x - 1, p) - at(h, x + 1, p);
        total += lap * lap;
      }
  return total;
}

describe('laplacianPenalty', () => {
  it('a constant 3x3 plane: edges 1, corners 2, centre 0 -> 4·1 + 4·4 = 20', () => {
    const w = ones([3, 3, 1, 1]);
    expect(laplacianPenalty(w).item()).toBeCloseTo(20, 5);
    dispose(w);
  });
  it('matches a plain loop over each filter plane (HWIO and [H, W, N])', () => {
    for (const shape of [
      [3, 3, 2, 4],
      [5, 4, 3, 2],
      [1, 1, 2, 2],
      [4, 6, 3],
    ]) {
      const w = randn(key(shape.length * 10 + shape[0]), shape);
      expect(laplacianPenalty(w).item()).toBeCloseTo(refLaplacian(w.toArray(), shape), 3);
      w.dispose();
    }
  });
  it('gradients check', () => {
    const w = randn(key(7), [3, 4, 2, 3]);
    checkGrad((w) => laplacianPenalty(w), [w]);
    expect(() => laplacianPenalty(randn(key(0), [3, 3]))).toThrow(ShapeError);
    dispose(w);
  });
});

describe('accuracy', () => {
  it('counts rows whose argmax is the label', () => {
    const logits = tensor([0.1, 0.9, 0, 5, 1, 2, 0, 0, 1, 3, 3, 0], [4, 3]);
    // argmaxes 1, 0, 2, 0 (row 3 ties 3, 3: the first maximum wins)
    expect(accuracy(logits, [1, 0, 2, 1])).toBe(0.75);
    expect(accuracy(logits, [1, 1, 1, 0])).toBe(0.5);
    expect(accuracy(logits, [1, 0, 2, 0])).toBe(1);
    expect(() => accuracy(logits, [1, 0])).toThrow(ShapeError);
    dispose(logits);
  });
});
