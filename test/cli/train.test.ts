import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { join } from 'node:path';
import { dispose } from '../../src/tensor/tensor.js';
import { treeEqual } from '../../src/nn/tree.js';
import { checkpointPath, loadTrainState, type TrainState } from '../../src/nn/train.js';
import { baseNet6 } from '../../src/convrnn/zoo.js';
import { makeLaunchers, runSync, start, type Launchers } from './child.js';

let l: Launchers;
beforeAll(() => {
  l = makeLaunchers();
});
afterAll(() => {
  fs.rmSync(l.dir, { recursive: true, force: true });
});

const writeConfig = (name: string, config: unknown): string => {
  const file = join(l.dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
};

const metrics = (dir: string) =>
  fs.readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
const withoutSpeed = (lines: Record<string, unknown>[]) => lines.map(({ examplesPerSec, ...rest }) => rest);
const disposeState = (s: TrainState) => dispose([s.params, s.buffers, s.optState]);

const tinyData = { kind: 'procedural', count: 24, size: 8, classes: 2, variation: 'low', background: 'gray', seed: 3 };

describe('convrnn train (in a child process)', () => {
  it('trains end to end: metrics.jsonl (a line per step and per epoch), config.json (resolved) and a loadable checkpoint', () => {
    const out = join(l.dir, 'e2e');
    const config = writeConfig('e2e', {
      model: { filters: 3 }, data: tinyData, validation: 0.25, epochs: 2, batch: 4, checkpointEvery: 3,
      optimizer: { kind: 'adam', lr: 0.01 },
    });
    const r = runSync(l.tiny, ['--config', config, '--out', out, '--threads', '2']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^training: 8 steps \(2 epochs of 4\), \d+ parameters\n/);
    expect(r.stdout).toMatch(/epoch 2\/2 done at step 8: train loss \d\.\d{4} accuracy [\d.]+%; validation loss \d\.\d{4} accuracy [\d.]+%/);
    expect(r.stdout).toMatch(/checkpoint at step 3: .*checkpoint\.safetensors/);
    expect(r.stdout).toMatch(/done: 8 steps; checkpoint .*checkpoint\.safetensors, metrics .*metrics\.jsonl\n$/);

    const lines = metrics(out);
    expect(lines.filter((m) => m.type === 'step').map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(lines.filter((m) => m.type === 'epoch').map((m) => [m.epoch, m.step])).toEqual([[1, 4], [2, 8]]);
    for (const m of lines.filter((x) => x.type === 'step')) {
      expect(Object.keys(m).sort()).toEqual(['accuracy', 'epoch', 'examplesPerSec', 'gradNorm', 'loss', 'lr', 'step', 'type']);
      expect(m.lr).toBe(0.01);
    }
    expect(typeof lines.find((m) => m.type === 'epoch')!.validationAccuracy).toBe('number');

    const saved = JSON.parse(fs.readFileSync(join(out, 'config.json'), 'utf8'));
    expect(saved).toMatchObject({ model: { filters: 3 }, weightDecay: 1e-4, clipValue: 0.7, optimizer: { kind: 'adam', lr: 0.01, beta1: 0.9 }, data: { ...tinyData, channels: 3 } });
    expect(saved.data.normalize.mean).toHaveLength(3);
    expect(saved.data.normalize.std).toHaveLength(3);

    const state = loadTrainState(checkpointPath(out));
    expect(state.step).toBe(8);
    expect(state.config).toEqual(saved);
    expect((state.params as { conv: { w: { shape: number[] } } }).conv.w.shape).toEqual([3, 3, 3, 3]);
    disposeState(state);

    // The folder now holds a run: a fresh start there is refused.
    const again = runSync(l.tiny, ['--config', config, '--out', out]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already holds a run .*continue it with --resume/);
  });

  it('Ctrl-C saves a checkpoint and exits 130 with a message; --resume then ends with the bits and metrics of an uninterrupted run', async () => {
    // 40 steps of at least 20 ms each: the interrupt lands mid-run.
    const config = writeConfig('sigint', {
      model: { filters: 3, delayMs: 20, dropout: 0.2 }, data: { ...tinyData, count: 40 }, validation: 0, epochs: 2, batch: 2, checkpointEvery: 0,
      optimizer: { kind: 'sgd', lr: 0.05 }, schedule: { kind: 'cosine', warmupSteps: 3 },
    });
    const cut = join(l.dir, 'interrupted');
    const run = start(l.tiny, ['--config', config, '--out', cut]);
    const metricsFile = join(cut, 'metrics.jsonl');
    for (let i = 0; i < 1500; i++) {
      if (fs.existsSync(metricsFile) && fs.readFileSync(metricsFile, 'utf8').split('\n').length > 2) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.status).toBe(130);
    expect(r.stderr).toMatch(/interrupt: finishing the current step and saving a checkpoint/);
    const m = /interrupted: saved a checkpoint at step (\d+) to .*checkpoint\.safetensors; continue with: convrnn train --resume /.exec(r.stderr);
    expect(m).not.toBeNull();
    const k = Number(m![1]);
    expect(k).toBeGreaterThanOrEqual(2);
    expect(k).toBeLessThan(40);
    const mid = loadTrainState(checkpointPath(cut));
    expect(mid.step).toBe(k);
    disposeState(mid);

    const resumed = runSync(l.tiny, ['--resume', cut]);
    expect(resumed.stderr).toBe('');
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`^resuming at step ${k} of 40 steps`));

    const whole = join(l.dir, 'whole');
    const straight = runSync(l.tiny, ['--config', config, '--out', whole]);
    expect(straight.status).toBe(0);

    const a = loadTrainState(checkpointPath(cut));
    const b = loadTrainState(checkpointPath(whole));
    expect(a.step).toBe(40);
    expect(treeEqual(a.params, b.params)).toBe(true);
    expect(treeEqual(a.buffers, b.buffers)).toBe(true);
    expect(treeEqual(a.optState, b.optState)).toBe(true);
    disposeState(a);
    disposeState(b);
    const cutLines = withoutSpeed(metrics(cut));
    expect(cutLines.filter((x) => x.type === 'step').map((x) => x.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(cutLines).toEqual(withoutSpeed(metrics(whole)));
  });

  it('--resume refuses a run whose config.json was edited after it started', () => {
    const out = join(l.dir, 'edited');
    const config = writeConfig('edited', { model: { filters: 2 }, data: tinyData, validation: 0, epochs: 1, batch: 4 });
    expect(runSync(l.tiny, ['--config', config, '--out', out]).status).toBe(0);
    const file = join(out, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), epochs: 5 }));
    const r = runSync(l.tiny, ['--resume', out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/config\.json differs from the config saved in the checkpoint/);
  });
});

describe('convrnn train with the model zoo (in a child process)', () => {
  it('a small conv net learns the built-in shapes: 4 classes, medium variation, >= 60% held-out accuracy (chance 25%) in 6 epochs', () => {
    // The feedforward BaseNet-6 at 1/8 width, 32x32, 1,200 training and 400 validation images, Adam 3e-3: 6 s on one
    // core. Results are bit-identical on every run and thread count; this run reaches 69.8% (train 80.7%). 60% is
    // far above chance yet leaves room for changes to kernels' rounding (e.g. another conv algorithm) that move the bits.
    const out = join(l.dir, 'learns');
    const config = writeConfig('learns', {
      model: baseNet6({ width: 0.125, inputSize: 32, classes: 4 }),
      data: { kind: 'procedural', count: 1600, size: 32, classes: 4, variation: 'medium' },
      validation: 0.25, epochs: 6, batch: 32, checkpointEvery: 0, optimizer: { kind: 'adam', lr: 0.003 },
    });
    const r = runSync(l.main, ['train', '--config', config, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const epochs = metrics(out).filter((x) => x.type === 'epoch');
    expect(epochs).toHaveLength(6);
    expect(epochs[5].validationAccuracy).toBeGreaterThanOrEqual(0.6);
    expect(epochs[5].trainLoss).toBeLessThan(0.5 * (epochs[0].trainLoss as number));
  }, 120_000);

  it('trains a small reciprocal-gated BaseNet-6 end to end through the real buildModel', () => {
    const out = join(l.dir, 'zoo');
    const model = baseNet6({ cell: 'rgc', width: 0.125, inputSize: 32, classes: 2, T: 6, imageOff: 4 });
    const config = writeConfig('zoo', {
      model,
      data: { kind: 'procedural', count: 8, size: 32, classes: 2, variation: 'low', background: 'gray' },
      validation: 0.25, epochs: 1, batch: 2, checkpointEvery: 0,
    });
    const r = runSync(l.main, ['train', '--config', config, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(metrics(out).filter((x) => x.type === 'step')).toHaveLength(3);
    const state = loadTrainState(checkpointPath(out));
    expect(state.step).toBe(3);
    expect(state.config).toMatchObject({ model: JSON.parse(JSON.stringify(model)) });
    disposeState(state);
  });
});
