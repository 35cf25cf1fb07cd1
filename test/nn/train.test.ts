import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Tensor, dispose, memory } from '../../src/tensor/tensor.js';
import { ones, tensor, zeros } from '../../src/tensor/create.js';
import { key, uniformFloats } from '../../src/tensor/random.js';
import { ConfigError } from '../../src/tensor/errors.js';
import { add, mul } from '../../src/tensor/ops/binary.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { treeEqual } from '../../src/nn/tree.js';
import type { Model } from '../../src/nn/model.js';
import type { Dataset } from '../../src/nn/data/dataset.js';
import {
  train, loadTrainState, checkpointPath, isWeight, NonFiniteError,
  type TrainEvent, type TrainOptions, type TrainState,
} from '../../src/nn/train.js';
import { tinyModel, type TinyBuffers, type TinyParams } from './tiny-model.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'convrnn-train-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
let runs = 0;
const freshDir = (): string => fs.mkdtempSync(join(dir, `run${runs++}-`));

/** n 6x6x2 images: channel 0 is +0.5 for class 1 and -0.5 for class 0, plus uniform noise in [-0.5, 0.5). */
function easyData(n: number, seed: number): Dataset {
  const per = 6 * 6 * 2;
  const noise = uniformFloats(key(seed), n * per);
  const images = new Float32Array(n * per);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n * per; i++) {
    const example = Math.floor(i / per);
    const signal = i % 2 === 0 ? (labels[example] === 1 ? 0.5 : -0.5) : 0;
    images[i] = signal + noise[i] - 0.5;
  }
  return { images, labels, shape: [n, 6, 6, 2] };
}

const model = (cfg = {}) => tinyModel(cfg, { inputShape: [6, 6, 2], classes: 2 });

/** Events without wall-clock fields. */
function record(events: TrainEvent[]): (e: TrainEvent) => void {
  return (e) => {
    if (e.type === 'step') {
      const { examplesPerSec, ...rest } = e;
      expect(examplesPerSec).toBeGreaterThanOrEqual(0);
      events.push(rest as TrainEvent);
    } else events.push(e);
  };
}

function disposeState(s: TrainState): void {
  dispose([s.params, s.buffers, s.optState]);
}

describe('train', () => {
  it('the loss decreases and validation accuracy rises on an easy task', async () => {
    const events: TrainEvent[] = [];
    const res = await train({
      model: model(), train: easyData(32, 1), validation: easyData(16, 2), key: key(0),
      optimizer: { kind: 'adam', lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, epochs: 4, batchSize: 8, onEvent: record(events),
    });
    expect(res.status).toBe('completed');
    expect(res.state.step).toBe(16);
    const epochs = events.filter((e) => e.type === 'epoch');
    expect(epochs.map((e) => [e.epoch, e.step])).toEqual([[1, 4], [2, 8], [3, 12], [4, 16]]);
    expect(epochs[3].trainLoss).toBeLessThan(0.6 * epochs[0].trainLoss);
    expect(epochs[3].validationAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(epochs[3].validationLoss).toBeLessThan(epochs[0].validationLoss!);
    expect(events[0]).toMatchObject({ type: 'start', step: 0, totalSteps: 16, stepsPerEpoch: 4, epochs: 4, resumed: false });
    expect(events.at(-1)).toEqual({ type: 'done', step: 16 });
    // The epoch's train loss is the mean of its steps' losses (equal batches).
    const steps = events.filter((e) => e.type === 'step');
    const first = steps.slice(0, 4).reduce((a, e) => a + e.loss, 0) / 4;
    expect(epochs[0].trainLoss).toBeCloseTo(first, 12);
    disposeState(res.state);
  });

  it('resuming from the checkpoint of step 3 gives the bits of 6 uninterrupted steps (params, buffers, optimizer state, metrics)', async () => {
    const base = (): TrainOptions<TinyParams, TinyBuffers> => ({
      model: model({ dropout: 0.25 }), train: easyData(8, 3), validation: easyData(4, 4), key: key(7),
      optimizer: { kind: 'adam', lr: 0.02, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, schedule: { kind: 'cosine', warmupSteps: 2, finalLr: 0.001 },
      epochs: 3, batchSize: 3, weightDecay: 1e-3, clipValue: 0.7, clipNorm: 5,
    });
    // 8 examples in batches of 3: 2 steps per epoch, so step 3 is the middle of epoch 2.
    const straightEvents: TrainEvent[] = [];
    const straight = await train({ ...base(), onEvent: record(straightEvents) });
    expect(straight.state.step).toBe(6);
    // The buffers (batch-norm running statistics) really moved from their init, mean 0 and variance 1.
    const initial = { bn: { mean: zeros([4]), var: ones([4]) } };
    expect(treeEqual(straight.state.buffers, initial)).toBe(false);
    dispose(initial);

    const out = freshDir();
    const firstEvents: TrainEvent[] = [];
    const ac = new AbortController();
    const first = await train({
      ...base(), outDir: out, signal: ac.signal,
      onEvent: (e) => {
        record(firstEvents)(e);
        if (e.type === 'step' && e.step === 3) ac.abort();
      },
    });
    expect(first.status).toBe('aborted');
    expect(first.state.step).toBe(3);
    disposeState(first.state);

    const saved = loadTrainState<TinyParams, TinyBuffers>(checkpointPath(out));
    expect(saved.step).toBe(3);
    expect(saved.metrics.seen).toBe(3); // one batch of epoch 2 so far
    const restEvents: TrainEvent[] = [];
    const rest = await train({ ...base(), outDir: out, resume: saved, onEvent: record(restEvents) });
    expect(rest.status).toBe('completed');

    expect(treeEqual(rest.state.params, straight.state.params)).toBe(true);
    expect(treeEqual(rest.state.buffers, straight.state.buffers)).toBe(true);
    expect(treeEqual(rest.state.optState, straight.state.optState)).toBe(true);
    expect(rest.state.metrics).toEqual(straight.state.metrics);
    const progress = (es: TrainEvent[]) => es.filter((e) => e.type === 'step' || e.type === 'epoch');
    const straightProgress = progress(straightEvents);
    expect([...progress(firstEvents), ...progress(restEvents)]).toEqual(straightProgress);
    expect(straightProgress.filter((e) => e.type === 'epoch')).toHaveLength(3);
    expect(restEvents[0]).toMatchObject({ type: 'start', step: 3, resumed: true });
    // The final checkpoint holds the final state.
    const end = loadTrainState<TinyParams, TinyBuffers>(checkpointPath(out));
    expect(end.step).toBe(6);
    expect(treeEqual(end.params, straight.state.params)).toBe(true);
    expect(treeEqual(end.buffers, straight.state.buffers)).toBe(true);
    disposeState(end);
    disposeState(rest.state);
    disposeState(straight.state);
  });

  it('a NaN loss at step 3 stops with an error and event naming step 3; the checkpoint of step 2 is kept; nothing leaks', async () => {
    const inner = model();
    let calls = 0;
    const nanAt3: Model<TinyParams, TinyBuffers> = {
      ...inner,
      loss(p, b, x, y, ctx) {
        const out = inner.loss(p, b, x, y, ctx);
        if (ctx.training && ++calls === 3) return { ...out, loss: mul(out.loss, NaN) };
        return out;
      },
    };
    const out = freshDir();
    const events: TrainEvent[] = [];
    const before = memory();
    const run = train({
      model: nanAt3, train: easyData(8, 5), key: key(1), optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true },
      epochs: 3, batchSize: 2, checkpointEvery: 1, outDir: out, onEvent: record(events),
    });
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect((err as NonFiniteError).step).toBe(3);
    expect((err as Error).message).toMatch(/loss is NaN at step 3/);
    expect(events.at(-1)).toMatchObject({ type: 'stopped', step: 3, reason: 'nonfinite' });
    expect(events.filter((e) => e.type === 'checkpoint').map((e) => e.step)).toEqual([1, 2]);
    expect(memory()).toEqual(before);
    const kept = loadTrainState(checkpointPath(out));
    expect(kept.step).toBe(2);
    disposeState(kept);
  });

  it('an abort finishes the current step, saves a checkpoint of it and returns; an already-aborted signal saves step 0', async () => {
    const out = join(freshDir(), 'made', 'by', 'train');
    const events: TrainEvent[] = [];
    const ac = new AbortController();
    const res = await train({
      model: model(), train: easyData(8, 6), key: key(2), optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, nesterov: false },
      epochs: 5, batchSize: 2, outDir: out, signal: ac.signal,
      onEvent: (e) => {
        record(events)(e);
        if (e.type === 'step' && e.step === 2) ac.abort(new Error('interrupted'));
      },
    });
    expect(res.status).toBe('aborted');
    expect(res.state.step).toBe(2);
    expect(events.slice(-2)).toEqual([
      { type: 'checkpoint', step: 2, path: checkpointPath(out) },
      { type: 'stopped', step: 2, reason: 'aborted', message: 'train: stopped after step 2 (interrupted)' },
    ]);
    const saved = loadTrainState(checkpointPath(out));
    expect(saved.step).toBe(2);
    expect(treeEqual(saved.params, res.state.params)).toBe(true);
    expect(treeEqual(saved.buffers, res.state.buffers)).toBe(true);
    disposeState(saved);
    disposeState(res.state);

    const out0 = freshDir();
    const ac0 = new AbortController();
    ac0.abort();
    const res0 = await train({ model: model(), train: easyData(8, 6), key: key(2), optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, nesterov: false }, epochs: 1, batchSize: 2, outDir: out0, signal: ac0.signal });
    expect(res0.status).toBe('aborted');
    expect(res0.state.step).toBe(0);
    const saved0 = loadTrainState(checkpointPath(out0));
    expect(saved0.step).toBe(0);
    disposeState(saved0);
    disposeState(res0.state);
  });

  it('no leak: the live tensor count is the same after every one of 30 steps, and train leaves only its result', async () => {
    const before = memory();
    const counts: number[] = [];
    const res = await train({
      model: model({ dropout: 0.1 }), train: easyData(12, 7), validation: easyData(5, 8), key: key(3),
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true }, epochs: 10, batchSize: 4, weightDecay: 1e-4, clipValue: 0.7,
      onEvent: (e) => {
        if (e.type === 'step' || e.type === 'epoch') counts.push(memory().tensors);
      },
    });
    expect(res.state.step).toBe(30);
    expect(counts.length).toBe(40);
    expect(new Set(counts).size).toBe(1);
    disposeState(res.state);
    expect(memory()).toEqual(before);
  });
});

describe('train: weight decay and clipping', () => {
  // loss = Σ w·C + Σ b·D: the task gradient is (C, D), so one SGD step is easy to write out.
  const W0 = [1, -2, 3, 0.5];
  const B0 = [0.3, -0.4];
  const C = [0.1, 0.9, -0.8, 0.2];
  const D = [2, -0.1];
  type P = { lin: { w: Tensor; b: Tensor } };
  const linear: Model<P, Record<string, never>> = {
    config: {},
    inputShape: [1, 1, 1],
    classes: 2,
    init: () => ({ params: { lin: { w: tensor(W0), b: tensor(B0) } }, buffers: {} }),
    loss: (p, buffers, images) => ({
      loss: add(sum(mul(p.lin.w, tensor(C))), sum(mul(p.lin.b, tensor(D)))),
      logits: zeros([images.shape[0], 2]),
      buffers,
    }),
  };
  const data: Dataset = { images: new Float32Array([0, 1]), labels: Int32Array.from([0, 1]), shape: [2, 1, 1, 1] };
  const lr = 0.5;
  const wd = 0.2;

  async function oneStep(opts: { weightDecay?: number; clipValue?: number; clipNorm?: number }) {
    const events: TrainEvent[] = [];
    const res = await train({ model: linear, train: data, key: key(0), optimizer: { kind: 'sgd', lr, momentum: 0, nesterov: false }, epochs: 1, batchSize: 2, onEvent: record(events), ...opts });
    const got = { w: Array.from(res.state.params.lin.w.toArray()), b: Array.from(res.state.params.lin.b.toArray()) };
    disposeState(res.state);
    const step = events.find((e) => e.type === 'step')!;
    return { got, gradNorm: step.type === 'step' ? step.gradNorm : NaN };
  }

  /** One SGD step from the hand-computed gradient g = (C + wd·w, D), clipped by value, then by global norm. */
  function expected(opts: { weightDecay?: number; clipValue?: number; clipNorm?: number }) {
    const d = opts.weightDecay ?? 0;
    let gw = W0.map((w, i) => C[i] + d * w);
    let gb = D.slice();
    const rawNorm = Math.hypot(...gw, ...gb);
    if (opts.clipValue) {
      const c = opts.clipValue;
      gw = gw.map((g) => Math.min(c, Math.max(-c, g)));
      gb = gb.map((g) => Math.min(c, Math.max(-c, g)));
    }
    if (opts.clipNorm) {
      const s = opts.clipNorm / Math.max(opts.clipNorm, Math.hypot(...gw, ...gb));
      gw = gw.map((g) => g * s);
      gb = gb.map((g) => g * s);
    }
    return { w: W0.map((w, i) => w - lr * gw[i]), b: B0.map((b, i) => b - lr * gb[i]), rawNorm };
  }

  const close = (got: number[], want: number[]) => got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 6));

  for (const opts of [{}, { weightDecay: wd }, { clipValue: 0.7 }, { weightDecay: wd, clipValue: 0.7 }, { weightDecay: wd, clipNorm: 1 }, { weightDecay: wd, clipValue: 0.7, clipNorm: 0.5 }]) {
    it(`one SGD step with ${JSON.stringify(opts)} moves the params as written out by hand`, async () => {
      const { got, gradNorm } = await oneStep(opts);
      const want = expected(opts);
      close(got.w, want.w);
      close(got.b, want.b);
      expect(gradNorm).toBeCloseTo(want.rawNorm, 5);
    });
  }

  it('weight decay reaches exactly the tensors whose names end in w', () => {
    expect(['w', 'conv.w', 'cell.sh.pointwise.w', 'layers.0.w'].every(isWeight)).toBe(true);
    expect(['b', 'conv.b', 'bn.gamma', 'bn.beta', 'cell.tau', 'w.b', 'conv.w0', 'cw'].some(isWeight)).toBe(false);
  });
});

describe('train: argument checks', () => {
  const ok = (): TrainOptions<TinyParams, TinyBuffers> => ({
    model: model(), train: easyData(4, 9), key: key(0), optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true }, epochs: 1, batchSize: 2,
  });
  const bad = (patch: Record<string, unknown>) => train({ ...ok(), ...patch } as TrainOptions<TinyParams, TinyBuffers>);

  it('rejects unknown options and invalid values with the option path named', async () => {
    await expect(bad({ epoch: 3 })).rejects.toThrow(/train: unknown key options\.epoch; allowed keys: model, train/);
    await expect(bad({ epochs: 0 })).rejects.toThrow(/train: options\.epochs must be .*, got 0$/);
    await expect(bad({ batchSize: 1.5 })).rejects.toThrow(/options\.batchSize must be .*, got 1\.5$/);
    await expect(bad({ weightDecay: -1 })).rejects.toThrow(/options\.weightDecay must be .*, got -1$/);
    await expect(bad({ optimizer: { kind: 'rmsprop', lr: 1 } })).rejects.toThrow(/options\.optimizer\.kind must be one of 'sgd', 'adam', got "rmsprop"/);
    await expect(bad({ optimizer: { kind: 'adam', lr: 1, momentum: 0.9 } })).rejects.toThrow(/unknown key options\.optimizer\.momentum; allowed keys: kind, lr, beta1, beta2, eps/);
    await expect(bad({ schedule: { kind: 'cosine', warmupSteps: 5, finalLr: 0 } })).rejects.toThrow(/warmupSteps \(5\) must be less than the run's 2 steps/);
    await expect(bad({ schedule: { kind: 'stepDecay', factor: 0.1, epochs: [3, 2] } })).rejects.toThrow(/options\.schedule\.epochs must be an array of strictly increasing positive integers/);
    await expect(bad({ key: 3 })).rejects.toThrow(/options\.key must be a Key/);
    await expect(bad({ batchSize: 5 })).rejects.toThrow(/options\.train has 4 examples, fewer than one batch of 5/);
    await expect(bad({ train: { ...easyData(4, 9), shape: [4, 6, 6, 2], images: new Float32Array(4 * 36 * 2) }, model: tinyModel({}, { inputShape: [5, 5, 2], classes: 2 }) })).rejects.toThrow(
      /options\.train holds 6x6x2 images but the model takes \[5, 5, 2\]/,
    );
    await expect(bad({ train: { ...easyData(4, 9), labels: Int32Array.from([0, 1, 2, 0]) } })).rejects.toThrow(/labels\[2\] must be in \[0, 2\)/);
    await expect(bad({ model: { init: 1 } })).rejects.toThrow(ConfigError);
  });

  it('refuses to resume a state of another run key or another model', async () => {
    const out = freshDir();
    const first = await train({ ...ok(), outDir: out });
    disposeState(first.state);
    const saved = loadTrainState<TinyParams, TinyBuffers>(checkpointPath(out));
    await expect(train({ ...ok(), key: key(1), resume: saved })).rejects.toThrow(/options\.resume was written by a run with key/);
    await expect(train({ ...ok(), model: tinyModel({ filters: 3 }, { inputShape: [6, 6, 2], classes: 2 }), resume: saved })).rejects.toThrow(/options\.resume\.params\.conv\.w has shape \[3, 3, 2, 4\]/);
    disposeState(saved);
  });
});
