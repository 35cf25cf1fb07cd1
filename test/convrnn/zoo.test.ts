import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { randn } from '../../src/tensor/create.js';
import { scope } from '../../src/tensor/tensor.js';
import { ConfigError } from '../../src/tensor/errors.js';
import { valueAndGrad } from '../../src/autodiff/index.js';
import {
  baseNet6, baseNet11, ffWider, ffDeeper, zhang, matchFeedforward, buildModel, countUnits, countParams, modelParamCount, minimalUnroll,
  validateModelConfig, makeNetwork, type ModelConfig, type OpConfig,
} from '../../src/convrnn/index.js';

const convs = (ops: OpConfig[]) => ops.filter((op) => op.kind === 'conv') as Extract<OpConfig, { kind: 'conv' }>[];
const data32 = { inputShape: [32, 32, 3] as [number, number, number], classes: 10 };

describe('nayebi2022 §A.2.1 BaseNets', () => {
  it('BaseNet-6: the table at width 1/8, sizes at 32x32 and 64x64, logits from a 2x2 conv', () => {
    const cfg = baseNet6({ width: 1 / 8, classes: 10, inputSize: 32 });
    expect(cfg.network.layers.map((l) => convs(l.ff).map((c) => [c.kernelSize, c.channels, c.stride]))).toEqual([
      [[7, 8, 2]], [[3, 16, 1]], [[3, 32, 1]], [[3, 32, 1]], [[3, 64, 1]],
    ]);
    expect(cfg.network.layers.every((l) => l.cell === null && l.post.map((op) => op.kind).join() === 'elu,maxPool')).toBe(true);
    expect(cfg.network.head).toMatchObject({ kind: 'conv', kernelSize: 2, classes: 10 });
    // feedforward: the minimal unrolling (5 layers and the head under delays), the image throughout
    expect([cfg.T, cfg.imageOff, cfg.network.wiring]).toEqual([6, 6, 'delays']);
    const net = makeNetwork(cfg.network);
    expect(net.shapes([1, 32, 32, 3]).map((s) => s.output[1])).toEqual([8, 4, 2, 1, 1]);
    expect(net.shapes([1, 64, 64, 3]).map((s) => s.output[1])).toEqual([16, 8, 4, 2, 1]);
    expect(net.logitsShape([4, 32, 32, 3])).toEqual([4, 10]);
  });

  it('BaseNet-6 ConvRNN: cells in layers 3–5, T = 16 with the image off at 12', () => {
    const cfg = baseNet6({ width: 1 / 8, classes: 10, cell: 'rgc' });
    expect(cfg.network.layers.map((l) => l.cell?.kind ?? null)).toEqual([null, null, 'rgc', 'rgc', 'rgc']);
    expect([cfg.T, cfg.imageOff]).toEqual([16, 12]);
    expect(baseNet6({ cell: 'gru', T: 8 }).imageOff).toBe(8);
    expect(baseNet6({ cell: { kind: 'lstm', kernelSize: 1 }, cellLayers: [2] }).network.layers[1].cell).toEqual({ kind: 'lstm', kernelSize: 1 });
    expect(minimalUnroll(makeNetwork(cfg.network))).toBe(8); // 5 layers, the head, and the RGC's two-step depth
    // a time-decay BaseNet with τ = 0 is the BaseNet: its parameter count adds exactly one τ per cell
    const td = baseNet6({ width: 1 / 8, classes: 10, cell: 'timeDecay', T: 6 });
    expect(modelParamCount(td, data32)).toBe(modelParamCount(baseNet6({ width: 1 / 8, classes: 10 }), data32) + 3);
  });

  it('BaseNet-11: nine layers of two convs, cells in 4–10, sizes at 64x64, average-pool FC head', () => {
    const cfg = baseNet11({ width: 1 / 8, classes: 10, cell: 'ugrnn' });
    expect(cfg.network.layers.map((l) => convs(l.ff).length)).toEqual([1, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    expect(cfg.network.layers[1].ff.map((op) => op.kind)).toEqual(['conv', 'elu', 'conv']);
    expect(cfg.network.layers.map((l) => convs(l.ff)[0].channels)).toEqual([8, 8, 8, 16, 16, 32, 32, 64, 64, 64]);
    expect(cfg.network.layers.map((l) => (l.cell === null ? 0 : 1)).join('')).toBe('0001111111');
    expect(cfg.network.head.kind).toBe('linear');
    expect([cfg.T, cfg.imageOff]).toEqual([17, 12]);
    const net = makeNetwork(cfg.network);
    expect(net.shapes([1, 64, 64, 3]).map((s) => s.output[1])).toEqual([16, 16, 16, 8, 8, 4, 2, 2, 2, 1]);
  });

  it('FF Wider and FF Deeper: their tables, feedforward', () => {
    const wide = ffWider({ width: 1 / 8, classes: 10 });
    expect(wide.network.layers.map((l) => convs(l.ff)[0].channels)).toEqual([16, 64, 64, 64, 128]);
    const deep = ffDeeper({ width: 1 / 8 });
    expect(deep.network.layers.map((l) => convs(l.ff).length)).toEqual(new Array(10).fill(1));
    expect(deep.network.layers.map((l) => l.post.some((op) => op.kind === 'maxPool'))).toEqual([true, false, false, true, false, true, true, false, false, true]);
    expect([deep.T, deep.network.head.kind]).toEqual([11, 'linear']);
    expect(modelParamCount(wide, data32)).toBeGreaterThan(modelParamCount(baseNet6({ width: 1 / 8, classes: 10 }), data32));
  });

  it('options are checked', () => {
    expect(() => baseNet6({ width: 0 })).toThrow(/baseNet6: options\.width/);
    expect(() => baseNet6({ cell: 'rgc', cellLayers: [6] })).toThrow(/options\.cellLayers/);
    expect(() => baseNet6({ cell: 'nope' })).toThrow(ConfigError);
    expect(() => baseNet6({ cell: 'rgc', T: 4, imageOff: 5 })).toThrow(/config\.imageOff/);
    expect(() => zhang({ blocks: 4 as 3 })).toThrow(/options\.blocks/);
    // a zoo config is a fixed point of validation
    const cfg = baseNet11({ cell: 'rgc', width: 0.25, decoder: 'maxConfidence', feedback: [{ from: 10, to: 4, at: 'state' }] });
    expect(validateModelConfig(cfg)).toEqual(cfg);
  });
});

describe('zhang2021 models', () => {
  it('one CPB with k = 9, then RCPBs with k = 3 (or CPBs), BN, factored readout after 3x3 pooling', () => {
    const r3 = zhang({ T: 5 });
    expect(r3.network.layers.length).toBe(2);
    expect(r3.network.layers[0].ff.map((op) => op.kind)).toEqual(['batchNorm', 'conv', 'batchNorm']);
    expect(convs(r3.network.layers[0].ff)[0].kernelSize).toBe(9);
    expect(r3.network.layers[1].cell).toMatchObject({ kind: 'rcpb', iterations: 5, kernelSize: 3 });
    expect(r3.network.head).toMatchObject({ kind: 'factored', pool: { size: 3, stride: 3 } });
    expect([r3.network.wiring, r3.network.decoder.kind, r3.T, r3.imageOff]).toEqual(['standard', 'late-avg', 5, 5]);
    expect(zhang({ blocks: 5 }).network.layers.length).toBe(3);
    const ff = zhang({ recurrent: false, blocks: 5, activation: 'softplus' });
    expect(ff.network.layers.map((l) => l.cell)).toEqual([null, null, null, null, null]);
    expect(ff.network.layers[1].post).toEqual([{ kind: 'softplus' }]);
    expect([ff.T, ff.network.decoder.kind]).toEqual([1, 'last']);
    // zhang2021 C.2: an RCPB has about as many parameters as two CPBs (plus its per-iteration BNs)
    const data = { inputShape: [18, 18, 1] as [number, number, number], classes: 4 };
    const rec = modelParamCount(zhang({ channels: 8, T: 2, recurrent: true, classes: 4 }), data);
    const fwd = modelParamCount(zhang({ channels: 8, recurrent: false, classes: 4 }), data);
    expect(Math.abs(rec - fwd) / fwd).toBeLessThan(0.1);
  });

  it('trains: a loss and its gradient on a small batch', () => {
    const model = buildModel(zhang({ channels: 4, T: 3, decoder: '2-avg', classes: 3 }), { inputShape: [12, 12, 1], classes: 3 });
    const { params, buffers } = model.init(key(0));
    scope(() => {
      const x = randn(key(1), [2, 12, 12, 1]);
      const [loss, g] = valueAndGrad((p: typeof params) => model.loss(p, buffers, x, new Int32Array([0, 2]), { training: true, key: key(2) }).loss)(params);
      expect(Number.isFinite(loss.item())).toBe(true);
      expect(countParams(g)).toBe(countParams(params));
    });
  });
});

describe('sizes and matched controls', () => {
  it('countUnits: every layer output plus the logits, per image', () => {
    const cfg = baseNet6({ width: 1 / 8, classes: 10 });
    const net = makeNetwork(cfg.network);
    // 8·8·8 + 4·4·16 + 2·2·32 + 1·1·32 + 1·1·64 + 10
    expect(countUnits(net, [32, 32, 3])).toBe(512 + 256 + 128 + 32 + 64 + 10);
    expect(() => countUnits(net, [32, 32])).toThrow(/inputShape/);
  });

  it('matchFeedforward: the FF Wider width whose parameter count is closest to the ConvRNN', () => {
    const rgc: ModelConfig = baseNet6({ width: 1 / 8, classes: 10, cell: 'rgc', inputSize: 32 });
    const m = matchFeedforward(rgc, data32);
    expect(m.target).toBe(modelParamCount(rgc, data32));
    expect(m.params).toBe(modelParamCount(m.config, data32));
    const n = Math.round(m.width * 128);
    const neighbour = (k: number) => modelParamCount(ffWider({ width: k / 128, classes: 10 }), data32);
    expect(Math.abs(m.params - m.target)).toBeLessThanOrEqual(Math.abs(neighbour(n + 1) - m.target));
    expect(Math.abs(m.params - m.target)).toBeLessThanOrEqual(Math.abs(neighbour(n - 1) - m.target));
    expect(m.config.network.layers.every((l) => l.cell === null)).toBe(true);
    expect(m.config.inputSize).toBe(32);
    const d = matchFeedforward(rgc, data32, 'deeper');
    expect(d.config.network.layers.length).toBe(10);
    expect(Math.abs(d.params - d.target) / d.target).toBeLessThan(0.1);
  });

  it('the README job: an RGC BaseNet and its matched feedforward BaseNet both train a step at 32x32', () => {
    const rgc = baseNet6({ width: 1 / 8, classes: 10, cell: 'rgc', T: 8, imageOff: 6 });
    const control = matchFeedforward(rgc, data32).config;
    for (const cfg of [rgc, control]) {
      const model = buildModel(cfg, data32);
      const { params, buffers } = model.init(key(3));
      scope(() => {
        const x = randn(key(4), [2, 32, 32, 3]);
        const [loss] = valueAndGrad((p: typeof params) => model.loss(p, buffers, x, new Int32Array([1, 7]), { training: true, key: key(5) }).loss)(params);
        expect(Number.isFinite(loss.item())).toBe(true);
      });
    }
  });
});

describe('buildModel on normalised data', () => {
  it('maps the mean-gray stimulus through the images normalisation (gray is in raw image units)', () => {
    // T = 10: a gray step (t >= 3) reaches the last logits after 6 steps (5 layers and the head).
    const cfg = baseNet6({ cell: 'rgc', width: 1 / 16, inputSize: 16, classes: 3, T: 10, imageOff: 3, gray: 0.5 });
    const shape = { inputShape: [16, 16, 3] as [number, number, number], classes: 3 };
    const normalize = { mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.5] };
    const mapped = normalize.mean.map((m, c) => (0.5 - m) / normalize.std[c]);
    const a = buildModel(cfg, { ...shape, normalize });
    const b = buildModel({ ...cfg, gray: mapped }, shape);
    const loss = (m: typeof a) =>
      scope(() => {
        const { params, buffers } = m.init(key(0));
        return m.loss(params, buffers, randn(key(1), [2, 16, 16, 3]), Int32Array.from([0, 2]), { training: false, key: key(2) }).loss.item();
      });
    expect(loss(a)).toBe(loss(b));
    expect(loss(a)).not.toBe(loss(buildModel(cfg, shape)));
    expect(() => buildModel(cfg, { ...shape, normalize: { mean: [0, 0], std: [1, 1] } })).toThrow(/data\.normalize must be \{ mean, std \} with 3 finite values/);
  });
});
