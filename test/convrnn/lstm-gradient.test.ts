/**
 * Regression: the first training step of a BaseNet-6 with layer-normalised
 * cells (nayebi2022 §A.3.4 LSTM, eqs. 5–6; §A.3.2 SimpleRNN, eq. 3) under
 * conduction delays has a gradient of ordinary size.
 *
 * Before the stimulus reaches layer ℓ (t < ℓ − 1) the layer reads zeros, so
 * every LN in its cell sees a constant input, where LN's gain is
 * 1/sqrt(eps) ≈ 316. Running the cells on those steps multiplied the
 * gradient by that factor per LN, step and layer: a global norm of ~1e17
 * (SimpleRNN ~1e8) at an ordinary loss, against ~2 for the feedforward net.
 */
import { describe, expect, it } from 'vitest';
import { scope } from '../../src/tensor/tensor.js';
import { uniform } from '../../src/tensor/create.js';
import { key } from '../../src/tensor/random.js';
import { valueAndGrad } from '../../src/autodiff/index.js';
import { globalNorm } from '../../src/nn/optim.js';
import { baseNet6, buildModel, type CellConfig, type NetworkParams } from '../../src/convrnn/index.js';

const data = { inputShape: [32, 32, 3] as [number, number, number], classes: 10 };

/** The loss and the gradient's global norm at the first step, from fresh params, on a batch of 2 random images. */
function firstStep(cell: CellConfig | null, schedule: { T: number; imageOff?: number }, seed: number): { loss: number; norm: number } {
  return scope(() => {
    const model = buildModel(baseNet6({ cell, width: 0.125, inputSize: 32, classes: data.classes, ...schedule }), data);
    const { params, buffers } = model.init(key(seed));
    const images = uniform(key(seed + 100), [2, 32, 32, 3]);
    const labels = new Int32Array([seed % 10, (seed + 3) % 10]);
    const ctx = { training: true, key: key(seed) };
    const [loss, grads] = valueAndGrad((p: NetworkParams) => model.loss(p, buffers, images, labels, ctx).loss)(params);
    return { loss: loss.item(), norm: globalNorm(grads).item() };
  });
}

describe('first-step gradient of BaseNet-6 with layer-normalised cells (nayebi2022 §A.3.2, §A.3.4)', () => {
  const cases: [string, CellConfig][] = [
    ['LSTM, LN on (the default)', { kind: 'lstm' }],
    ['LSTM with peepholes, LN on', { kind: 'lstm', peepholes: true }],
    ['SimpleRNN, LN on (the default)', { kind: 'simpleRnn' }],
  ];
  for (const [name, cell] of cases) {
    it(`${name}: T = 6, the global gradient norm is finite and below 1e3`, () => {
      for (const seed of [0, 1]) {
        const { loss, norm } = firstStep(cell, { T: 6 }, seed);
        expect(Number.isFinite(loss)).toBe(true);
        expect(Number.isFinite(norm)).toBe(true);
        expect(norm).toBeGreaterThan(0);
        expect(norm).toBeLessThan(1e3);
      }
    });
  }

  it("LSTM on the paper's schedule (T = 16, image off at 12, §A.3): finite and below 1e3, as the feedforward net's", () => {
    const ff = firstStep(null, { T: 6 }, 0);
    const { loss, norm } = firstStep({ kind: 'lstm' }, { T: 16, imageOff: 12 }, 0);
    expect(Number.isFinite(loss)).toBe(true);
    expect(Number.isFinite(ff.norm)).toBe(true);
    expect(norm).toBeLessThan(1e3);
    expect(ff.norm).toBeLessThan(1e3);
  });
});
