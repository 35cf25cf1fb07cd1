/**
 * Losses and regularisers: scalar tensors, differentiable with respect to
 * their tensor arguments.
 *
 * - softmaxCrossEntropy(logits [B, K], labels): mean over the batch of
 *   -logSoftmax(logits)[b, labels[b]].
 * - mse(pred, target): mean of (pred - target)².
 * - poissonLoss(pred, target, eps): mean of pred - target · log(pred + eps)
 *   (the negative Poisson log-likelihood up to a term constant in pred).
 * - l1(tree) = Σ |t| and l2(tree) = Σ t² over every tensor of a pytree (no ½).
 * - laplacianPenalty(w): the smoothness penalty on first-layer filters
 *   (Klindt et al. 2017, section 5.2, unnormalised): for a filter bank
 *   w [KH, KW, I, O], each of the I·O spatial planes P = w[:, :, i, o] is
 *   convolved with L = [[0, -1, 0], [-1, 4, -1], [0, -1, 0]] with zero
 *   'same' padding (the plane is taken as 0 outside its KH x KW support), and
 *   the penalty is Σ_{i,o} Σ_{h,w} (L * P)[h, w]².
 */
import { Tensor, checkTensor } from '../tensor/tensor.js';
import { oneHot, argmax } from '../tensor/ops/compare.js';
import { scalar, tensor } from '../tensor/create.js';
import { ShapeError, ValueError, describe } from '../tensor/errors.js';
import { add, div, mul, sub } from '../tensor/ops/binary.js';
import { mean, sum } from '../tensor/ops/reduce.js';
import { logSoftmax } from '../tensor/ops/softmax.js';
import { abs, log, neg, square } from '../tensor/ops/unary.js';
import { reshape } from '../tensor/ops/shape.js';
import { depthwiseConv2d } from '../tensor/ops/depthwise.js';
import { flattenParams } from './tree.js';

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

function checkLabels(fn: string, labels: unknown, batch: number, classes: number): Int32Array | number[] {
  if (!(labels instanceof Int32Array) && !Array.isArray(labels)) {
    throw new ValueError(`${fn}: labels must be an Int32Array or an array of integers, got ${describe(labels)}`);
  }
  if (labels.length !== batch) throw new ShapeError(`${fn}: labels has ${labels.length} entries, logits has a batch of ${batch}`);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classes) throw new ValueError(`${fn}: labels[${i}] must be an integer in [0, ${classes - 1}], got ${describe(l)}`);
  }
  return labels;
}

function checkLogits(fn: string, logits: unknown): asserts logits is Tensor {
  checkTensor(fn, 'logits', logits);
  if (logits.rank !== 2 || logits.shape[0] < 1 || logits.shape[1] < 1) {
    throw new ShapeError(`${fn}: logits must be [B, K] with B, K >= 1, got ${fmt(logits.shape)}`);
  }
}

/** Mean over the batch of the softmax cross-entropy of logits [B, K] with integer labels. */
export function softmaxCrossEntropy(logits: Tensor, labels: Int32Array | readonly number[]): Tensor {
  const fn = 'softmaxCrossEntropy';
  checkLogits(fn, logits);
  const [b, k] = logits.shape;
  const l = checkLabels(fn, labels, b, k);
  return neg(div(sum(mul(logSoftmax(logits, -1), oneHot(l, k))), b));
}

function checkPair(fn: string, pred: unknown, target: unknown): asserts pred is Tensor {
  checkTensor(fn, 'pred', pred);
  checkTensor(fn, 'target', target);
  const p = pred.shape;
  const t = (target as Tensor).shape;
  if (p.length !== t.length || p.some((d, i) => d !== t[i])) throw new ShapeError(`${fn}: pred ${fmt(p)} and target ${fmt(t)} must have the same shape`);
  if (pred.size === 0) throw new ShapeError(`${fn}: pred must not be empty, got ${fmt(p)}`);
}

/** Mean squared error. */
export function mse(pred: Tensor, target: Tensor): Tensor {
  checkPair('mse', pred, target);
  return mean(square(sub(pred, target)));
}

/** Mean Poisson loss: mean(pred - target · log(pred + eps)); pred should be non-negative (a rate). */
export function poissonLoss(pred: Tensor, target: Tensor, eps = 1e-8): Tensor {
  checkPair('poissonLoss', pred, target);
  if (typeof eps !== 'number' || !(eps >= 0) || !Number.isFinite(eps)) throw new ValueError(`poissonLoss: eps must be a non-negative number, got ${describe(eps)}`);
  return mean(sub(pred, mul(target, log(add(pred, eps)))));
}

function sumOver(fn: string, tree: unknown, f: (t: Tensor) => Tensor): Tensor {
  let total: Tensor | null = null;
  for (const [name, t] of flattenParams(tree)) {
    checkTensor(fn, `tensor ${JSON.stringify(name)}`, t);
    const s = sum(f(t));
    total = total === null ? s : add(total, s);
  }
  return total ?? scalar(0);
}

/** Σ |t| over every tensor of a pytree (0 for an empty tree). */
export function l1(tree: unknown): Tensor {
  return sumOver('l1', tree, abs);
}

/** Σ t² over every tensor of a pytree (0 for an empty tree); note: no factor ½. */
export function l2(tree: unknown): Tensor {
  return sumOver('l2', tree, square);
}

const LAPLACE = [0, -1, 0, -1, 4, -1, 0, -1, 0];

/**
 * Σ over the I·O planes of w [KH, KW, I, O] of the squared 3x3 Laplacian of
 * the plane, zero-padded to the same size (see the module comment). Rank-3
 * w [H, W, N] is read as N planes (a readout's spatial masks).
 */
export function laplacianPenalty(w: Tensor): Tensor {
  const fn = 'laplacianPenalty';
  checkTensor(fn, 'w', w);
  if (w.rank !== 4 && w.rank !== 3) throw new ShapeError(`${fn}: w must be [KH, KW, I, O] (or [H, W, N]), got ${fmt(w.shape)}`);
  const [kh, kw] = w.shape;
  const planes = w.size / (kh * kw);
  if (planes === 0) return scalar(0);
  // HWIO with I, O trailing is already an NHWC image of I·O channels: a view, no transpose.
  const img = reshape(w, [1, kh, kw, planes]);
  const kernel = new Float32Array(9 * planes);
  for (let i = 0; i < 9; i++) kernel.fill(LAPLACE[i], i * planes, (i + 1) * planes);
  const lap = depthwiseConv2d(img, tensor(kernel, [3, 3, planes, 1]), { padding: [[1, 1], [1, 1]] });
  return sum(square(lap));
}

/** The fraction of rows of logits [B, K] whose argmax is the label (ties: the first maximum). */
export function accuracy(logits: Tensor, labels: Int32Array | readonly number[]): number {
  const fn = 'accuracy';
  checkLogits(fn, logits);
  const [b, k] = logits.shape;
  const l = checkLabels(fn, labels, b, k);
  const am = argmax(logits, -1);
  const pred = am.toArray();
  am.dispose();
  let hits = 0;
  for (let i = 0; i < b; i++) if (pred[i] === l[i]) hits++;
  return hits / b;
}
