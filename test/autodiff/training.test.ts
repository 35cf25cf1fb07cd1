/**
 * Whole training steps: a small conv net under valueAndGrad leaks nothing over
 * 100 steps, frees its activations during the backward pass, and 20 SGD steps
 * give byte-identical parameters on 1 and 2 threads.
 */
import { describe, expect, it } from 'vitest';
import { _testing } from '../../src/tensor/threads.js';
import { apply, defineRule } from '../../src/tensor/primitive.js';
import { empty } from '../../src/tensor/tensor.js';
import { heapF32 } from '../../src/tensor/heap.js';
import {
  conv2d, elu, maxPool, mean, matmul, add, sub, mul, logSoftmax, oneHot, sum, reciprocalGate, randn, zeros, key, split,
  scope, memory, dispose, valueAndGrad, setThreads, getThreads, type Tensor,
} from '../../src/index.js';

interface Net { w1: Tensor; b1: Tensor; a: Tensor; c: Tensor; fc: Tensor }

function init(seed: number): Net {
  const [k1, k2, k3, k4] = split(key(seed), 4);
  return { w1: randn(k1, [3, 3, 3, 16], 0.3), b1: zeros([16]), a: randn(k2, [3, 3, 16, 16], 0.1), c: randn(k3, [3, 3, 16, 16], 0.1), fc: randn(k4, [16, 5], 0.3) };
}

// Two recurrent steps of a gated cell on a conv feature map, then a linear readout.
function loss(p: Net, x: Tensor, labels: Int32Array, w1 = p.w1): Tensor {
  const f = maxPool(elu(conv2d(x, w1, { padding: 'same', bias: p.b1 })), { size: 2 });
  let h = zeros(f.shape);
  for (let t = 0; t < 2; t++) h = elu(reciprocalGate(conv2d(h, p.a, { padding: 'same' }), f, conv2d(h, p.c, { padding: 'same' }), h));
  const logits = matmul(mean(h, [1, 2]), p.fc);
  return mul(sum(mul(oneHot(labels, 5), logSoftmax(logits))), -1 / labels.length);
}

function step(p: Net, x: Tensor, labels: Int32Array): Net {
  return scope(() => {
    const [, g] = valueAndGrad((q: Net) => loss(q, x, labels))(p);
    return { w1: sub(p.w1, mul(g.w1, 0.1)), b1: sub(p.b1, mul(g.b1, 0.1)), a: sub(p.a, mul(g.a, 0.1)), c: sub(p.c, mul(g.c, 0.1)), fc: sub(p.fc, mul(g.fc, 0.1)) };
  });
}

function train(steps: number, x: Tensor, labels: Int32Array): Net {
  let p = init(3);
  for (let i = 0; i < steps; i++) {
    const next = step(p, x, labels);
    dispose(p);
    p = next;
  }
  return p;
}

const bytes = (p: Net) => Object.values(p).map((t) => Buffer.from(t.toArray().buffer));

describe('training steps', () => {
  const x = randn(key(9), [8, 32, 32, 3]);
  const labels = Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2]);

  it('100 valueAndGrad steps of a small conv net leak no tensor and no heap byte', () => {
    let p = init(1);
    p = (() => { const n = step(p, x, labels); dispose(p); return n; })();
    const before = memory();
    for (let i = 0; i < 100; i++) {
      const next = step(p, x, labels);
      dispose(p);
      p = next;
    }
    expect(memory()).toEqual(before);
    dispose(p);
  });

  it("frees the step's activations during the backward pass: when it reaches the first op, little of them is alive", () => {
    // A copy of w1 as the net's first recorded op: its vjp runs last and notes the live bytes.
    let atFirstOp = 0;
    const probe = defineRule('testProbe', {
      forward([w]) {
        const out = empty(w.shape);
        heapF32().copyWithin(out.ptr >>> 2, w.ptr >>> 2, (w.ptr >>> 2) + w.size);
        return out;
      },
      vjp(g) {
        atFirstOp = memory().bytes;
        return [g];
      },
    });
    const p = init(2);
    let forwardEnd = 0;
    const before = memory().bytes;
    const [value, g] = scope(() =>
      valueAndGrad((q: Net) => {
        const l = loss(q, x, labels, apply(probe, [q.w1], undefined));
        forwardEnd = memory().bytes;
        return l;
      })(p),
    );
    const [plainValue, plainG] = valueAndGrad((q: Net) => loss(q, x, labels))(p);
    expect(bytes(g)).toEqual(bytes(plainG));
    expect(value.item()).toBe(plainValue.item());
    const activations = forwardEnd - before;
    expect(activations).toBeGreaterThan(1 << 20); // conv maps of 8x32x32x16 floats
    expect(atFirstOp - before).toBeLessThan(activations / 10);
    dispose([p, value, g, plainValue, plainG]);
  });

  it('20 SGD steps give byte-identical parameters on 1 and 2 threads', () => {
    const saved = getThreads();
    setThreads(1);
    const one = train(20, x, labels);
    setThreads(2);
    const jobsBefore = _testing.jobs();
    const two = train(20, x, labels);
    expect(_testing.jobs() - jobsBefore).toBeGreaterThan(100); // the convolutions really were split over threads
    setThreads(saved);
    expect(bytes(two)).toEqual(bytes(one));
    // and training moved them: the comparison is not between two initialisations
    expect(bytes(one)).not.toEqual(bytes(init(3)));
  });
});
