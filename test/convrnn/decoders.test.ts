import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { randn, tensor } from '../../src/tensor/create.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { ConfigError } from '../../src/tensor/errors.js';
import { valueAndGrad } from '../../src/autodiff/index.js';
import { mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import {
  decode, decoderLoss, decoderInit, readDecoderConfig, thresholdSteps, maxConfidenceSteps, pickSteps, buildModel, unroll, stimulusSchedule,
  type DecoderConfig, type DecoderKind,
} from '../../src/convrnn/index.js';

// Three steps of logits for two images, three categories.
const Z = [
  [[0, 0, 0], [1, 0, 0]],
  [[5, 0, 0], [2, 0, 0]],
  [[0, 6, 0], [0.5, 0, 0]],
];
const logits = (): Tensor[] => Z.map((z) => tensor(z.flat(), [2, 3]));
const rows = (t: Tensor): number[][] => {
  const a = Array.from(t.toArray());
  return [a.slice(0, 3), a.slice(3, 6)];
};

/** float64 references. */
const softmax = (z: number[], beta = 1): number[] => {
  const m = Math.max(...z.map((v) => beta * v));
  const e = z.map((v) => Math.exp(beta * v - m));
  const s = e.reduce((a, b) => a + b);
  return e.map((v) => v / s);
};
const ce = (z: number[], label: number): number => -Math.log(softmax(z)[label]);
const meanRows = (zs: number[][][]): number[][] => zs[0].map((row, n) => row.map((_, k) => zs.reduce((a, z) => a + z[n][k], 0) / zs.length));
const close = (a: number[][], b: number[][], digits = 5): void => a.forEach((row, n) => row.forEach((v, k) => expect(v).toBeCloseTo(b[n][k], digits)));

const identityHead = (y: Tensor): Tensor => y;
const run = (config: DecoderConfig, params = decoderInit(config)) => decode(config, params, identityHead, logits());

describe('nayebi2022 §A.5 decoders', () => {
  it("'last' returns the last step's logits and runs the head once", () => {
    let calls = 0;
    const zs = logits();
    const d = decode({ kind: 'last' }, {}, (y) => (calls++, y), [undefined, undefined, zs[2]]);
    expect(calls).toBe(1);
    expect(rows(d.logits)).toEqual(Z[2]);
    expect(rows(run({ kind: 'no-avg' }).logits)).toEqual(Z[2]);
  });

  it("'threshold' picks the first step whose largest probability exceeds 0.9, else the last", () => {
    // image 0: max p = 1/3, e⁵/(e⁵+2) = 0.987 → step 1; image 1: 0.576, 0.787, 0.452 → never, so step 2.
    expect(softmax(Z[1][0])[0]).toBeGreaterThan(0.9);
    expect(Array.from(thresholdSteps(logits(), 0.9))).toEqual([1, 2]);
    const d = run(readDecoderConfig('test', { kind: 'threshold' }, 'config'));
    expect(Array.from(d.steps!)).toEqual([1, 2]);
    expect(rows(d.logits)).toEqual([Z[1][0], Z[2][1]]);
    // threshold 0.5: image 1 crosses at step 0 (0.576)
    expect(Array.from(thresholdSteps(logits(), 0.5))).toEqual([1, 0]);
    // a probability equal to the threshold does not cross it
    const half = tensor([0, 0, 0, 0], [2, 2]);
    expect(Array.from(thresholdSteps([half, half], 0.5))).toEqual([1, 1]);
  });

  it("'maxConfidence' picks the step where the most confident category peaks and returns β·z there", () => {
    // β = 1: image 0 peaks at step 2 (e⁶/(e⁶+2) = 0.995 > 0.987), image 1 at step 1 (0.787).
    expect(Array.from(maxConfidenceSteps(logits(), 1))).toEqual([2, 1]);
    const d = run({ kind: 'maxConfidence' });
    expect(Array.from(d.steps!)).toEqual([2, 1]);
    expect(rows(d.logits)).toEqual([Z[2][0], Z[1][1]]);
    // β = 0.1 flattens the probabilities: image 0 still peaks at 2 (0.477), image 1 at 1 (0.379 > 0.356 > 0.344).
    const p = (z: number[]) => Math.max(...softmax(z, 0.1));
    expect(p(Z[2][0])).toBeGreaterThan(p(Z[1][0]));
    expect(p(Z[1][1])).toBeGreaterThan(p(Z[0][1]));
    const beta = tensor([0.1], [1]);
    const e = decode({ kind: 'maxConfidence' }, { beta }, identityHead, logits());
    expect(Array.from(e.steps!)).toEqual([2, 1]);
    close(rows(e.logits), [Z[2][0].map((v) => 0.1 * v), Z[1][1].map((v) => 0.1 * v)]);
    // ties: the earliest step
    const flat = [tensor([1, 2], [1, 2]), tensor([1, 2], [1, 2])];
    expect(Array.from(maxConfidenceSteps(flat, 1))).toEqual([0]);
  });

  it('β is trainable: it starts at 1 and the loss has a gradient for it', () => {
    const cfg: DecoderConfig = { kind: 'maxConfidence' };
    const init = decoderInit(cfg);
    expect(init.beta!.item()).toBe(1);
    const [loss, g] = valueAndGrad((beta: Tensor) => decoderLoss(cfg, decode(cfg, { beta }, identityHead, logits()), [1, 0]))(init.beta!);
    // loss = mean over images of CE(β·z_{t*}); d/dβ at β = 1 by hand: Σ_k p_k z_k − z_label, averaged
    const picked = [Z[2][0], Z[1][1]];
    const want = picked.reduce((a, z, n) => a + ce(z, [1, 0][n]), 0) / 2;
    const dwant = picked.reduce((a, z, n) => a + softmax(z).reduce((s, p, k) => s + p * z[k], 0) - z[[1, 0][n]], 0) / 2;
    expect(loss.item()).toBeCloseTo(want, 5);
    expect((g as Tensor).item()).toBeCloseTo(dwant, 4);
  });

  it("'timeAverage' is the mean over steps of the logits, and runs the head once per distinct input", () => {
    close(rows(run({ kind: 'timeAverage' }).logits), meanRows(Z));
    let calls = 0;
    const zs = logits();
    const d = decode({ kind: 'timeAverage' }, {}, (y) => (calls++, y), [zs[0], zs[0], zs[1]]);
    expect(calls).toBe(2);
    close(rows(d.logits), meanRows([Z[0], Z[0], Z[1]]));
  });

  it('pickSteps passes the gradient to the chosen rows only', () => {
    const zs = logits();
    const w = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const [, g] = valueAndGrad((a: Tensor, b: Tensor, c: Tensor) => sum(mul(pickSteps([a, b, c], new Int32Array([2, 0])), w)), [0, 1, 2])(zs[0], zs[1], zs[2]);
    const [ga, gb, gc] = (g as Tensor[]).map(rows);
    expect([ga, gb, gc]).toEqual([[[0, 0, 0], [4, 5, 6]], [[0, 0, 0], [0, 0, 0]], [[1, 2, 3], [0, 0, 0]]]);
  });
});

describe('zhang2021 readout modes (eqs. 2a–2e)', () => {
  const labels = [2, 0];

  it("'early-avg': the head of the mean of the features (2b)", () => {
    let calls = 0;
    const d = decode({ kind: 'early-avg' }, {}, (y) => (calls++, y), logits());
    expect(calls).toBe(1);
    close(rows(d.logits), meanRows(Z));
    expect(decoderLoss({ kind: 'early-avg' }, d, labels).item()).toBeCloseTo((ce(meanRows(Z)[0], 2) + ce(meanRows(Z)[1], 0)) / 2, 5);
  });

  it("'late-avg': the mean of the per-step outputs (2c); its loss is the mean of the per-step losses", () => {
    const d = run({ kind: 'late-avg' });
    close(rows(d.logits), meanRows(Z));
    const perStep = Z.map((z) => (ce(z[0], 2) + ce(z[1], 0)) / 2);
    const want = perStep.reduce((a, b) => a + b) / 3;
    expect(decoderLoss({ kind: 'late-avg' }, d, labels).item()).toBeCloseTo(want, 5);
    // ... which is not the loss of the averaged logits (timeAverage's)
    expect(Math.abs(decoderLoss({ kind: 'timeAverage' }, run({ kind: 'timeAverage' }), labels).item() - want)).toBeGreaterThan(1e-3);
  });

  it("'2-avg': the mean over t of the head of the running means ȳ_t (2d, 2e); the loss averages over steps", () => {
    const cum = Z.map((_, t) => meanRows(Z.slice(0, t + 1)));
    const d = run({ kind: '2-avg' });
    expect(d.stepLogits.length).toBe(3);
    d.stepLogits.forEach((z, t) => close(rows(z), cum[t]));
    close(rows(d.logits), meanRows(cum));
    const want = cum.map((z) => (ce(z[0], 2) + ce(z[1], 0)) / 2).reduce((a, b) => a + b) / 3;
    expect(decoderLoss({ kind: '2-avg' }, d, labels).item()).toBeCloseTo(want, 5);
  });

  it("a model's loss with a late-avg decoder is the mean over steps of the per-step cross-entropies", () => {
    const config = {
      network: {
        layers: [{ ff: [{ kind: 'conv', channels: 3, kernelSize: 3 }], cell: { kind: 'timeDecay', tauInit: 0.5 }, post: [{ kind: 'relu' }] }],
        wiring: 'standard',
        head: { kind: 'linear' },
        decoder: { kind: 'late-avg' },
      },
      T: 4,
      imageOff: 2,
    };
    const model = buildModel(config, { inputShape: [5, 5, 2], classes: 3 });
    const { params, buffers } = model.init(key(1));
    const images = randn(key(2), [2, 5, 5, 2]);
    const labs = new Int32Array([1, 2]);
    const res = model.loss(params, buffers, images, labs, { training: false, key: key(3) });
    const r = unroll(model.network, params, stimulusSchedule(images, { T: 4, imageOff: 2 }), 4);
    expect(r.decoded.stepLogits.length).toBe(4);
    const per = r.decoded.stepLogits.map((z) => {
      const a = rows(z);
      return (ce(a[0], 1) + ce(a[1], 2)) / 2;
    });
    expect(res.loss.item()).toBeCloseTo(per.reduce((a, b) => a + b) / 4, 5);
    close(rows(res.logits), meanRows(r.decoded.stepLogits.map(rows)));
  });
});

describe('decoder configs', () => {
  it('validate kind and threshold, naming the field', () => {
    for (const kind of ['last', 'threshold', 'maxConfidence', 'timeAverage', 'no-avg', 'early-avg', 'late-avg', '2-avg'] as DecoderKind[]) {
      expect(readDecoderConfig('f', { kind }, 'config.decoder').kind).toBe(kind);
    }
    expect(readDecoderConfig('f', { kind: 'threshold' }, 'c').threshold).toBe(0.9);
    expect(readDecoderConfig('f', undefined, 'c')).toEqual({ kind: 'last' });
    expect(() => readDecoderConfig('f', { kind: 'median' }, 'config.decoder')).toThrow(/config\.decoder\.kind must be one of/);
    expect(() => readDecoderConfig('f', { kind: 'threshold', threshold: 1.5 }, 'config.decoder')).toThrow(/config\.decoder\.threshold/);
    expect(() => readDecoderConfig('f', { kind: 'maxConfidence', beta: 2 }, 'config.decoder')).toThrow(ConfigError);
    expect(() => decode({ kind: 'timeAverage' }, {}, identityHead, [undefined, logits()[0]])).toThrow(/reads the head's input at step 0/);
  });
});
