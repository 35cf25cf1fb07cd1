/**
 * The W7 network of ../shared/WORKLOADS.md, written directly with engine ops:
 * conv 3x3 3->32 + ELU + maxpool 2, a reciprocal gated cell at 16x16x32,
 * conv 3x3 32->64 + ELU + maxpool 2, the same cell at 8x8x64, global average
 * pool, linear 64->10, softmax cross-entropy. Standard unrolling: every layer
 * every step, the image given at every step, zero initial states.
 */
import {
  conv2d, maxPool, reciprocalGate, add, mul, sub, mean, matmul, logSoftmax, oneHot, sum, randn, zeros,
  split, scope, dispose, valueAndGrad, type Key, type Tensor,
} from '../src/index.js';

export interface CellParams { sh: Tensor; hh: Tensor; hs: Tensor; ss: Tensor; bsh: Tensor; bhh: Tensor; bhs: Tensor; bss: Tensor }
export interface W7Params { conv1: Tensor; b1: Tensor; cell1: CellParams; conv2: Tensor; b2: Tensor; cell2: CellParams; fc: Tensor; bfc: Tensor }

function he(k: Key, shape: number[]): Tensor {
  const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return randn(k, shape, Math.sqrt(2 / fanIn));
}

function cellInit(k: Key, c: number): CellParams {
  const [a, b, d, e] = split(k, 4);
  return { sh: he(a, [3, 3, c, c]), hh: he(b, [3, 3, c, c]), hs: he(d, [3, 3, c, c]), ss: he(e, [3, 3, c, c]),
    bsh: zeros([c]), bhh: zeros([c]), bhs: zeros([c]), bss: zeros([c]) };
}

export function w7Init(k: Key): W7Params {
  const [k1, k2, k3, k4, k5] = split(k, 5);
  return { conv1: he(k1, [3, 3, 3, 32]), b1: zeros([32]), cell1: cellInit(k2, 32), conv2: he(k3, [3, 3, 32, 64]), b2: zeros([64]),
    cell2: cellInit(k4, 64), fc: he(k5, [64, 10]), bfc: zeros([10]) };
}

/** h' = elu((1 − σ(conv_sh(s)))·x + (1 − σ(conv_hh(h)))·h); s' = elu((1 − σ(conv_hs(h)))·x + (1 − σ(conv_ss(s)))·s). */
function rgcStep(p: CellParams, x: Tensor, h: Tensor, s: Tensor): [Tensor, Tensor] {
  const c = (t: Tensor, w: Tensor, b: Tensor) => conv2d(t, w, { padding: 'same', bias: b });
  const hNew = reciprocalGate(c(s, p.sh, p.bsh), x, c(h, p.hh, p.bhh), h, { activation: 'elu' });
  const sNew = reciprocalGate(c(h, p.hs, p.bhs), x, c(s, p.ss, p.bss), s, { activation: 'elu' });
  return [hNew, sNew];
}

export function w7Logits(p: W7Params, x: Tensor, T: number): Tensor {
  const B = x.shape[0];
  let h1 = zeros([B, 16, 16, 32]), s1 = h1;
  let h2 = zeros([B, 8, 8, 64]), s2 = h2;
  for (let t = 0; t < T; t++) {
    const a1 = maxPool(conv2d(x, p.conv1, { padding: 'same', bias: p.b1, activation: 'elu' }), { size: 2 });
    [h1, s1] = rgcStep(p.cell1, a1, h1, s1);
    const a2 = maxPool(conv2d(h1, p.conv2, { padding: 'same', bias: p.b2, activation: 'elu' }), { size: 2 });
    [h2, s2] = rgcStep(p.cell2, a2, h2, s2);
  }
  return add(matmul(mean(h2, [1, 2]), p.fc), p.bfc);
}

/** Mean softmax cross-entropy of integer labels. */
export function crossEntropy(logits: Tensor, labels: Int32Array): Tensor {
  const depth = logits.shape[1];
  return mul(sum(mul(oneHot(labels, depth), logSoftmax(logits))), -1 / labels.length);
}

export function w7Loss(p: W7Params, x: Tensor, labels: Int32Array, T: number): Tensor {
  return crossEntropy(w7Logits(p, x, T), labels);
}

/** Plain SGD: p - lr * g over the whole pytree. */
export function sgd<T>(params: T, grads: T, lr: number): T {
  const walk = (p: unknown, g: unknown): unknown => {
    if (Array.isArray(p)) return p.map((x, i) => walk(x, (g as unknown[])[i]));
    if (p !== null && typeof p === 'object' && !('shape' in p)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(p)) out[k] = walk((p as Record<string, unknown>)[k], (g as Record<string, unknown>)[k]);
      return out;
    }
    return sub(p as Tensor, mul(g as Tensor, lr));
  };
  return walk(params, grads) as T;
}

/** Conv FLOPs of one forward and one training step (as the anchors count them). */
export function w7Flops(B = 32, T = 8): { forward: number; train: number } {
  const f = (n: number, h: number, w: number, co: number, ci: number, k: number) => 2 * n * h * w * co * ci * k * k;
  const c1 = f(B, 32, 32, 32, 3, 3);
  const perStep = c1 + 4 * f(B, 16, 16, 32, 32, 3) + f(B, 16, 16, 64, 32, 3) + 4 * f(B, 8, 8, 64, 64, 3);
  return { forward: T * perStep, train: 3 * T * perStep - T * c1 };
}

/**
 * W7 training from `params`: each step() takes one SGD step (learning rate
 * 0.01), frees the parameters it replaced and returns the step's loss.
 */
export function w7Training(params: W7Params, x: Tensor, labels: Int32Array, T: number): { step(): number; dispose(): void } {
  let p = params;
  return {
    step(): number {
      let loss = NaN;
      const next = scope(() => {
        const [l, g] = valueAndGrad((q: W7Params) => w7Loss(q, x, labels, T))(p);
        loss = l.item();
        return sgd(p, g, 0.01);
      });
      dispose(p);
      p = next;
      return loss;
    },
    dispose: () => dispose(p),
  };
}
