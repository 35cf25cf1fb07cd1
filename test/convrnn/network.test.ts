import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { full, randn, tensor, zeros } from '../../src/tensor/create.js';
import { Tensor, scope } from '../../src/tensor/tensor.js';
import { ConfigError, ShapeError, ValueError } from '../../src/tensor/errors.js';
import { concat } from '../../src/tensor/ops/layout.js';
import { conv2d } from '../../src/tensor/ops/conv2d.js';
import { resizeBilinear } from '../../src/tensor/ops/resize.js';
import { maxPool } from '../../src/tensor/ops/pool.js';
import { elu, relu } from '../../src/tensor/ops/unary.js';
import { checkGrad } from '../../src/autodiff/index.js';
import { softmaxCrossEntropy } from '../../src/nn/losses.js';
import {
  makeNetwork, unroll, unrollDecoded, neededSteps, buildModel, readModelConfig, minimalUnroll, stimulusSchedule,
  type NetworkParams, type Network,
} from '../../src/convrnn/index.js';

const w1 = (v: number): Tensor => tensor([v], [1, 1, 1, 1]);
const conv1x1 = () => ({ kind: 'conv', channels: 1, kernelSize: 1, bias: false });
const linearHead = { kind: 'linear', classes: 2 };

/** A stimulus of constant images, value v_t at step t. */
function steps(values: number[], shape = [1, 1, 1, 1]): Tensor[] {
  return values.map((v) => full(shape, v));
}

/** params with layer ff[0] weights, an optional cell and a head reading channel 0 as logit 0. */
function setParams(net: Network, ws: Tensor[], extra: (p: NetworkParams) => void = () => {}): NetworkParams {
  const p = net.init(key(0), [1, 1, 1, 1]);
  ws.forEach((w, i) => (p.layers[i].ff[0] = { w }));
  p.head = { w: tensor([1, 0], [1, 2]), b: zeros([2]) };
  extra(p);
  return p;
}

const values = (ts: Tensor[][], layer: number): number[] => ts.map((o) => o[layer].item());

describe('wiring (hand-computed, 1x1 images, 1x1 convs)', () => {
  const two = (wiring: string, feedback: unknown[] = [], cell: unknown = null) =>
    makeNetwork({ layers: [{ ff: [conv1x1()], cell }, { ff: [conv1x1()] }], feedback, wiring, head: linearHead });

  it("'delays': layer ℓ reads layer ℓ−1 at t−1, layer 1 the stimulus at t; the head reads the top at t−1", () => {
    const net = two('delays');
    const p = setParams(net, [w1(2), w1(3)]);
    const r = unroll(net, p, steps([1, 10, 100]), 3);
    expect(values(r.outputs, 0)).toEqual([2, 20, 200]);
    expect(values(r.outputs, 1)).toEqual([0, 6, 60]);
    expect(Array.from(r.decoded.logits.toArray())).toEqual([6, 0]);
  });

  it("'standard': every layer reads this step's output of the layer below; the head reads the top at t", () => {
    const net = two('standard');
    const p = setParams(net, [w1(2), w1(3)]);
    const r = unroll(net, p, steps([1, 10, 100]), 3);
    expect(values(r.outputs, 0)).toEqual([2, 20, 200]);
    expect(values(r.outputs, 1)).toEqual([6, 60, 600]);
    expect(Array.from(r.decoded.logits.toArray())).toEqual([600, 0]);
  });

  it("'input' feedback: r^2_{t−1} concatenated to layer 1's input before its conv (eq. 1)", () => {
    const fbW = tensor([2, 0.5], [1, 1, 2, 1]); // [stimulus, feedback] -> 1
    for (const [wiring, r1, r2] of [
      ['delays', [2, 20, 203], [0, 6, 60]],
      ['standard', [2, 23, 234.5], [6, 69, 703.5]],
    ] as const) {
      const net = two(wiring, [{ from: 2, to: 1, at: 'input' }]);
      const p = setParams(net, [fbW, w1(3)]);
      const r = unroll(net, p, steps([1, 10, 100]), 3);
      expect(values(r.outputs, 0)).toEqual(r1);
      expect(values(r.outputs, 1)).toEqual(r2);
    }
  });

  it("'state' feedback enters the cell's input; 'output' feedback is added to the cell's output only", () => {
    // Layer 1: conv 2·s, a time-decay cell with τ = 0.5, feedback conv G = 0.5 from layer 2 (= 3·r^1).
    const run = (at: string): number[][] => {
      const net = makeNetwork({
        layers: [{ ff: [conv1x1()], cell: { kind: 'timeDecay' }, feedbackKernelSize: 1 }, { ff: [conv1x1()] }],
        feedback: [{ from: 2, to: 1, at }],
        wiring: 'standard',
        head: linearHead,
      });
      const p = setParams(net, [w1(2), w1(3)], (q) => {
        q.layers[0].cell = { tau: tensor([0.5], [1]) };
        if (at === 'state') q.layers[0].fbState = { w: w1(0.5) };
        else q.layers[0].fbOutput = { w: w1(0.5) };
      });
      const r = unroll(net, p, steps([1, 10, 100]), 3);
      return [values(r.outputs, 0), values(r.outputs, 1)];
    };
    // state:  x_t = 2 s_t + 0.5 r2_{t−1}, c_t = x_t + 0.5 c_{t−1}, r1 = c
    expect(run('state')).toEqual([[2, 24, 248], [6, 72, 744]]);
    // output: c_t = 2 s_t + 0.5 c_{t−1}, r1 = c_t + 0.5 r2_{t−1}
    expect(run('output')).toEqual([[2, 24, 246.5], [6, 72, 739.5]]);
  });

  it('a smaller source is resized bilinearly (half-pixel centers) to the target before concatenation', () => {
    const net = makeNetwork({
      layers: [{ ff: [{ kind: 'conv', channels: 2, kernelSize: 3 }] }, { ff: [{ kind: 'conv', channels: 3, kernelSize: 3 }], post: [{ kind: 'maxPool', size: 2 }] }],
      feedback: [{ from: 2, to: 1 }],
      wiring: 'delays',
      head: linearHead,
    });
    const x = randn(key(1), [2, 4, 4, 1]);
    const p = net.init(key(2), x.shape);
    expect(p.layers[0].ff[0]).toHaveProperty('w');
    const w = (p.layers[0].ff[0] as { w: Tensor; b: Tensor });
    expect(w.w.shape).toEqual([3, 3, 4, 2]); // 1 stimulus channel + 3 feedback channels
    const r = unroll(net, p, x, 3);
    expect(r.outputs[0][1].shape).toEqual([2, 2, 2, 3]);
    const expected = conv2d(concat([x, resizeBilinear(r.outputs[1][1], [4, 4])], 3), w.w, { padding: 'same', bias: w.b });
    expect(Array.from(r.outputs[2][0].toArray())).toEqual(Array.from(expected.toArray()));
  });
});

describe('network as a cell', () => {
  const cfg = {
    layers: [
      { ff: [{ kind: 'conv', channels: 3, kernelSize: 3 }], cell: { kind: 'rgc' }, post: [{ kind: 'elu' }, { kind: 'maxPool', size: 2 }] },
      { ff: [{ kind: 'conv', channels: 4, kernelSize: 3 }], post: [{ kind: 'elu' }] },
    ],
    feedback: [{ from: 2, to: 1, at: 'state' }],
    head: { kind: 'conv', classes: 3, kernelSize: 2 },
  };

  it('its step advances every layer one step; its output is the top layer; shapes are as configured', () => {
    const net = makeNetwork(cfg);
    expect(net.kind).toBe('network');
    expect(net.outputShape([2, 8, 8, 2])).toEqual([2, 4, 4, 4]);
    expect(net.shapes([2, 8, 8, 2]).map((s) => s.x)).toEqual([[2, 8, 8, 3], [2, 4, 4, 4]]);
    const x = randn(key(3), [2, 8, 8, 2]);
    const p = net.init(key(4), x.shape);
    const s0 = net.initialState(x.shape);
    const [s1, y1] = net.step(p, s0, x, { t: 0, training: false });
    const [s2, y2] = net.step(p, s1, x, { t: 1, training: false });
    const r = unroll(net, p, x, 2);
    expect(y1).toBe(s1.layers[1].output);
    expect(Array.from(y2.toArray())).toEqual(Array.from(r.outputs[1][1].toArray()));
    expect(Array.from(s2.layers[0].output.toArray())).toEqual(Array.from(r.outputs[1][0].toArray()));
    expect(r.decoded.logits.shape).toEqual([2, 3]);
  });

  it('feedforward ops give the bits of the ops applied one by one (a conv and the elu or relu after it run fused)', () =>
    scope(() => {
      const net = makeNetwork({
        layers: [{ ff: [{ kind: 'conv', channels: 5, kernelSize: 3 }, { kind: 'elu' }, { kind: 'conv', channels: 4, kernelSize: 1 }, { kind: 'relu' }, { kind: 'maxPool', size: 2 }] }],
        head: linearHead,
        wiring: 'standard',
      });
      const x = randn(key(6), [2, 6, 6, 3]);
      const p = net.init(key(7), x.shape);
      const ff = p.layers[0].ff as { w: Tensor; b: Tensor }[];
      const [c1, c2] = [ff[0], ff[2]]; // the ops after each conv have no parameters
      const byHand = maxPool(relu(conv2d(elu(conv2d(x, c1.w, { padding: 'same', bias: c1.b })), c2.w, { padding: 'same', bias: c2.b })), { size: 2 });
      const [, y] = net.step(p, net.initialState(x.shape), x, { t: 0, training: false });
      expect(Buffer.from(y.toArray().buffer).equals(Buffer.from(byHand.toArray().buffer))).toBe(true);
    }));

  it('a layer without a cell returns its previous output when what it reads has not changed', () => {
    const net = makeNetwork({ layers: [{ ff: [conv1x1()] }, { ff: [conv1x1()] }], head: linearHead, wiring: 'delays' });
    const p = net.init(key(0), [1, 2, 2, 1]);
    const x = randn(key(5), [1, 2, 2, 1]);
    const r = unroll(net, p, x, 4);
    expect(r.outputs[1][0]).toBe(r.outputs[0][0]);
    expect(r.outputs[3][1]).toBe(r.outputs[2][1]);
    expect(r.outputs[1][1]).not.toBe(r.outputs[0][1]); // it read the initial zeros, then layer 1's output
  });

  it('batch-norm buffers move in training and stay in evaluation', () => {
    const net = makeNetwork({ layers: [{ ff: [{ kind: 'conv', channels: 2, kernelSize: 1 }, { kind: 'batchNorm' }], post: [{ kind: 'relu' }] }], head: linearHead });
    const x = randn(key(6), [4, 2, 2, 1]);
    const p = net.init(key(7), x.shape);
    const b0 = net.initBuffers(x.shape);
    const train = unroll(net, p, x, 2, { training: true, buffers: b0 }).state.buffers;
    const bn = (b: typeof b0) => b.layers[0].ff[1] as { mean: Tensor; var: Tensor };
    expect(Array.from(bn(train).mean.toArray()).some((v) => v !== 0)).toBe(true);
    const evalb = unroll(net, p, x, 2, { training: false, buffers: b0 }).state.buffers;
    expect(bn(evalb).mean).toBe(bn(b0).mean);
  });

  it('unrollDecoded computes only the steps the decoder needs, with the same decoded bits', () => {
    const ff = makeNetwork({ layers: [{ ff: [conv1x1()] }, { ff: [conv1x1()] }, { ff: [conv1x1()] }], head: linearHead, wiring: 'delays' });
    // Under delays the logits at T−1 read layer 3 at T−2, layer 2 at T−3, layer 1 at T−4.
    const need = neededSteps(ff, 5);
    expect(need.map((row) => row.map(Number))).toEqual([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]);
    const std = makeNetwork({ layers: [{ ff: [conv1x1()] }, { ff: [conv1x1()] }], head: linearHead, wiring: 'standard' });
    expect(neededSteps(std, 3).map((row) => row.map(Number))).toEqual([[0, 0], [0, 0], [1, 1]]);
    const net = makeNetwork({ layers: [{ ff: [conv1x1()], cell: { kind: 'gru' } }, { ff: [conv1x1()] }], head: linearHead, decoder: { kind: 'threshold' } });
    // A decoder reading every step reads layer 2 at steps 0, 1 (the head reads it one step late); layer 1 feeds it
    // at 0. Layer 2 does not run at step 0: the stimulus reaches it at step 1, and before that it is at rest.
    expect(neededSteps(net, 3).map((row) => row.map(Number))).toEqual([[1, 0], [0, 1], [0, 0]]);
    for (const n of [ff, std, net]) {
      const x = steps([1, 2, 3, 4, 5], [2, 2, 2, 1]);
      const p = n.init(key(8), x[0].shape);
      const a = unroll(n, p, x, 5).decoded.logits.toArray();
      const b = unrollDecoded(n, p, x, 5).decoded.logits.toArray();
      expect(Array.from(b)).toEqual(Array.from(a));
    }
  });

  it('gradients through a cell and two feedback edges over T = 3 match finite differences', () => {
    const net = makeNetwork({
      layers: [
        { ff: [{ kind: 'conv', channels: 2, kernelSize: 3 }], cell: { kind: 'rgc' }, post: [{ kind: 'tanh' }] },
        { ff: [{ kind: 'conv', channels: 3, kernelSize: 3 }], post: [{ kind: 'elu' }, { kind: 'avgPool', size: 2 }] },
      ],
      feedback: [{ from: 2, to: 1, at: 'input' }, { from: 2, to: 1, at: 'output' }],
      wiring: 'standard',
      head: { kind: 'linear', classes: 3 },
    });
    const x = randn(key(9), [2, 4, 4, 2], 0.5);
    const labels = new Int32Array([0, 2]);
    const p = net.init(key(10), x.shape);
    const c1 = p.layers[0].ff[0] as { w: Tensor; b: Tensor };
    const cell = p.layers[0].cell as { wsh: { w: Tensor }; wss: { w: Tensor }; whh: { w: Tensor }; whs: { w: Tensor } };
    const c2 = p.layers[1].ff[0] as { w: Tensor; b: Tensor };
    const head = p.head as { w: Tensor; b: Tensor };
    const f = (a: Tensor, b: Tensor, c: Tensor, d: Tensor, e: Tensor, g: Tensor): Tensor => {
      const q: NetworkParams = {
        layers: [
          { ...p.layers[0], ff: [{ w: a, b: c1.b }], cell: { ...cell, wsh: { w: b }, whh: { w: c } }, fbOutput: { w: d } },
          { ...p.layers[1], ff: [{ w: e, b: c2.b }] },
        ],
        head: { w: g, b: head.b },
        decoder: {},
      };
      return softmaxCrossEntropy(unroll(net, q, x, 3).decoded.logits, labels);
    };
    const report = scope(() => checkGrad(f, [c1.w, cell.wsh.w, cell.whh.w, p.layers[0].fbOutput!.w, c2.w, head.w], { maxElements: 12 }));
    expect(report.checked).toBeGreaterThan(40);
  });
});

describe('validation', () => {
  const base = () => ({
    layers: [{ ff: [{ kind: 'conv', channels: 2, kernelSize: 3 }] }, { ff: [{ kind: 'conv', channels: 2, kernelSize: 3 }], cell: { kind: 'gru' } }],
    head: { kind: 'linear', classes: 3 },
  });
  const bad = (patch: (c: Record<string, any>) => void, pattern: RegExp) => {
    const c: Record<string, any> = base();
    patch(c);
    expect(() => makeNetwork(c)).toThrow(ConfigError);
    expect(() => makeNetwork(c)).toThrow(pattern);
  };

  it('invalid network configs throw ConfigError naming the field', () => {
    expect(() => makeNetwork(base())).not.toThrow();
    bad((c) => (c.feedback = [{ from: 3, to: 1 }]), /config\.feedback\[0\]\.from must be an integer in \[1, 2\], got 3/);
    bad((c) => (c.feedback = [{ from: 2, to: 0 }]), /config\.feedback\[0\]\.to/);
    bad((c) => (c.feedback = [{ from: 1, to: 2 }]), /config\.feedback\[0\]\.from must be a layer above/);
    bad((c) => (c.feedback = [{ from: 2, to: 1, at: 'cell' }]), /config\.feedback\[0\]\.at must be one of 'input', 'state', 'output'/);
    bad((c) => (c.feedback = [{ from: 2, to: 1 }, { from: 2, to: 1, at: 'input' }]), /config\.feedback\[1\] repeats config\.feedback\[0\]/);
    bad((c) => (c.layers[1].cell = { kind: 'convLstm' }), /config\.layers\[1\]\.cell: .*kind must be one of 'timeDecay', .*'rgc'.*got "convLstm"/);
    bad((c) => (c.layers[1].cell = { kind: 'gru', kernelSize: 0 }), /config\.layers\[1\]\.cell: gru: config\.kernelSize/);
    bad((c) => (c.layers[0].bogus = 1), /unknown key config\.layers\[0\]\.bogus/);
    bad((c) => (c.extra = true), /unknown key config\.extra/);
    bad((c) => (c.layers[0].ff[0].kind = 'dense'), /config\.layers\[0\]\.ff\[0\]\.kind/);
    bad((c) => (c.layers[0].ff[0].channels = 0), /config\.layers\[0\]\.ff\[0\]\.channels/);
    bad((c) => (c.layers = []), /config\.layers must be a non-empty array/);
    bad((c) => (c.wiring = 'async'), /config\.wiring/);
    bad((c) => delete c.head, /config\.head must be an object/);
    bad((c) => (c.head.classes = 0), /config\.head\.classes/);
    bad((c) => (c.decoder = { kind: 'vote' }), /config\.decoder\.kind/);
    bad((c) => (c.decoder = { kind: 'last', threshold: 0.5 }), /unknown key config\.decoder\.threshold/);
    bad((c) => {
      c.layers[0].ff = [{ kind: 'elu' }];
      c.feedback = [{ from: 2, to: 1, at: 'input' }];
    }, /config\.feedback\[0\]\.at/);
    const tooSmall = makeNetwork({ layers: [{ ff: [{ kind: 'conv', channels: 1, kernelSize: 5, padding: 'valid' }] }], head: linearHead });
    expect(() => tooSmall.shapes([1, 4, 4, 1])).toThrow(ShapeError);
  });

  it('invalid model configs: T, imageOff, classes, inputSize, unknown keys', () => {
    const model = (patch: Record<string, unknown>) => ({ network: base(), T: 4, ...patch });
    expect(readModelConfig(model({})).config.imageOff).toBe(4);
    for (const [patch, pattern] of [
      [{ T: -1 }, /config\.T must be a positive integer, got -1/],
      [{ T: 0 }, /config\.T/],
      [{ T: 2.5 }, /config\.T/],
      [{ imageOff: 5 }, /config\.imageOff must be an integer in \[0, 4\], got 5/],
      [{ imageOff: -1 }, /config\.imageOff/],
      [{ gray: 'mid' }, /config\.gray/],
      [{ steps: 3 }, /unknown key config\.steps/],
      [{ network: { ...base(), feedback: [{ from: 9, to: 1 }] } }, /config\.network\.feedback\[0\]\.from/],
    ] as const) {
      expect(() => readModelConfig(model(patch as Record<string, unknown>))).toThrow(ConfigError);
      expect(() => readModelConfig(model(patch as Record<string, unknown>))).toThrow(pattern);
    }
    expect(() => buildModel(model({}), { inputShape: [8, 8, 1], classes: 4 })).toThrow(/config\.network\.head\.classes must be 4/);
    expect(() => buildModel(model({ inputSize: 16 }), { inputShape: [8, 8, 1], classes: 3 })).toThrow(/config\.inputSize/);
    const noClasses = { network: { ...base(), head: { kind: 'linear' } }, T: 2 };
    expect(buildModel(noClasses, { inputShape: [8, 8, 1], classes: 5 }).config.network.head.classes).toBe(5);
  });

  it('unroll: T must be a positive integer; the stimulus one tensor or T of them', () => {
    const net = makeNetwork(base());
    const x = randn(key(11), [1, 4, 4, 1]);
    const p = net.init(key(12), x.shape);
    for (const T of [0, -3, 1.5]) {
      expect(() => unroll(net, p, x, T)).toThrow(ValueError);
      expect(() => unroll(net, p, x, T)).toThrow(/unroll: T \(the number of steps\) must be a positive integer/);
    }
    expect(() => unroll(net, p, [x, x], 3)).toThrow(/stimulus must hold T = 3 tensors/);
    expect(() => unroll(net, p, x, 2, { t0: -1 })).toThrow(/opts\.t0/);
    expect(() => stimulusSchedule(x, { T: 3, imageOff: 4 })).toThrow(/schedule\.imageOff/);
    expect(() => minimalUnroll({} as Network)).toThrow(ValueError);
  });

  it('stimulusSchedule: the images up to imageOff, then one mean-gray tensor (per channel) at every later step', () => {
    scope(() => {
      const x = randn(key(13), [2, 3, 5, 3]);
      const s = stimulusSchedule(x, { T: 5, imageOff: 2, gray: [0.25, -1.5, 2] });
      expect(s).toHaveLength(5);
      expect(s[0]).toBe(x);
      expect(s[1]).toBe(x);
      expect(s[3]).toBe(s[2]);
      expect(s[4]).toBe(s[2]);
      expect(s[2].shape).toEqual([2, 3, 5, 3]);
      const g = s[2].toArray();
      for (let i = 0; i < g.length; i++) expect(g[i]).toBe([0.25, -1.5, 2][i % 3]);
      expect(Array.from(stimulusSchedule(x, { T: 2, imageOff: 1 })[1].toArray()).every((v) => v === 0.5)).toBe(true);
      expect(stimulusSchedule(x, { T: 3, imageOff: 3 })).toEqual([x, x, x]);
    });
  });
});
