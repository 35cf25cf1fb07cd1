import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/tensor/errors.js';
import { readConfigFile, readTrainConfig } from '../../src/cli/config.js';

const base = { model: { zoo: 'basenet6' }, data: { kind: 'procedural' } };
const read = (patch: Record<string, unknown>) => readTrainConfig({ ...base, ...patch }, '/runs');

describe('train config', () => {
  it('fills in every default (the papers\' recipe) and passes the model config through untouched', () => {
    const model = { zoo: 'basenet6', cell: 'rgc', width: 0.125, anything: { nested: [1, 2] } };
    expect(readTrainConfig({ model, data: { kind: 'procedural' } }, '/runs')).toEqual({
      model,
      data: { kind: 'procedural', count: 1000, size: 32, variation: 'medium', classes: 8, channels: 3, background: 'clutter', seed: 0, normalize: true },
      validation: 0.1,
      optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, nesterov: true },
      schedule: { kind: 'constant' },
      weightDecay: 1e-4,
      clipValue: 0.7,
      clipNorm: 0,
      seed: 0,
      epochs: 1,
      batch: 32,
      checkpointEvery: 100,
    });
  });

  it('keeps given values; resolves data paths against the config folder; threads only when given', () => {
    const c = read({
      data: { kind: 'npy', images: 'x.npy', labels: '/abs/y.npy', classes: 10, normalize: { mean: [0.5], std: [0.25] } },
      optimizer: { kind: 'adam', lr: 0.003 },
      schedule: { kind: 'stepDecay', epochs: [2, 4] },
      threads: 2,
      validation: 0,
    });
    expect(c.data).toEqual({ kind: 'npy', images: '/runs/x.npy', labels: '/abs/y.npy', classes: 10, normalize: { mean: [0.5], std: [0.25] } });
    expect(c.optimizer).toEqual({ kind: 'adam', lr: 0.003, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    expect(c.schedule).toEqual({ kind: 'stepDecay', factor: 0.1, epochs: [2, 4] });
    expect(c.threads).toBe(2);
    expect(read({ data: { kind: 'folder', path: 'imgs', size: 16 } }).data).toEqual({ kind: 'folder', path: '/runs/imgs', size: [16, 16], channels: 3, normalize: true });
    // The resolved config reads back as itself.
    expect(readTrainConfig(JSON.parse(JSON.stringify(c)), '/elsewhere')).toEqual(c);
  });

  it('an unknown key at any depth is an error naming its path and the allowed keys', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ lr: 0.1 }, /unknown key config\.lr; allowed keys: model, data, validation, optimizer, schedule, weightDecay, clipValue, clipNorm, seed, epochs, batch, threads, checkpointEvery/],
      [{ optimizer: { kind: 'sgd', momentom: 0.9 } }, /unknown key config\.optimizer\.momentom; allowed keys: kind, lr, momentum, nesterov/],
      [{ optimizer: { kind: 'adam', nesterov: true } }, /unknown key config\.optimizer\.nesterov; allowed keys: kind, lr, beta1, beta2, eps/],
      [{ schedule: { kind: 'stepDecay', factr: 0.5 } }, /unknown key config\.schedule\.factr; allowed keys: kind, factor, epochs/],
      [{ schedule: { kind: 'constant', lr: 1 } }, /unknown key config\.schedule\.lr; allowed keys: kind/],
      [{ data: { kind: 'procedural', sizee: 16 } }, /unknown key config\.data\.sizee; allowed keys: kind, count, size, variation, classes, channels, background, seed, normalize/],
      [{ data: { kind: 'npy', images: 'a', labels: 'b', path: 'c' } }, /unknown key config\.data\.path; allowed keys: kind, images, labels, classes, normalize/],
      [{ data: { kind: 'procedural', normalize: { mean: [0], std: [1], eps: 1 } } }, /unknown key config\.data\.normalize\.eps; allowed keys: mean, std/],
    ];
    for (const [patch, re] of cases) {
      expect(() => read(patch)).toThrow(ConfigError);
      expect(() => read(patch)).toThrow(re);
    }
  });

  it('an invalid value is an error naming its path, what is allowed and what came', () => {
    const cases: [unknown, RegExp][] = [
      [{ data: base.data }, /config\.model must be an object .*got undefined/],
      [{ model: [1], data: base.data }, /config\.model must be an object, got \[1\]/],
      [{ model: {} }, /config\.data must be an object .*'procedural'/],
      [{ ...base, epochs: 0 }, /config\.epochs must be an integer >= 1, got 0/],
      [{ ...base, batch: 'big' }, /config\.batch must be an integer >= 1, got "big"/],
      [{ ...base, validation: 1 }, /config\.validation must be a number in \[0, 1\), got 1/],
      [{ ...base, weightDecay: -1e-4 }, /config\.weightDecay must be .*, got -0\.0001/],
      [{ ...base, seed: 1.5 }, /config\.seed must be an integer in \[0, \d+\], got 1\.5/],
      [{ ...base, threads: 0 }, /config\.threads must be an integer >= 1, got 0/],
      [{ ...base, optimizer: { kind: 'rmsprop' } }, /config\.optimizer\.kind must be one of 'sgd', 'adam', got "rmsprop"/],
      [{ ...base, optimizer: { momentum: 1 } }, /config\.optimizer\.momentum must be a number in \[0, 1\), got 1/],
      [{ ...base, optimizer: { momentum: 0, nesterov: true } }, /config\.optimizer\.nesterov must be false when momentum is 0/],
      [{ ...base, optimizer: { kind: 'adam', eps: 0 } }, /config\.optimizer\.eps must be a positive number, got 0/],
      [{ ...base, schedule: { kind: 'exp' } }, /config\.schedule\.kind must be one of 'constant', 'stepDecay', 'cosine', got "exp"/],
      [{ ...base, schedule: { kind: 'stepDecay', epochs: [30, 30] } }, /config\.schedule\.epochs must be an array of strictly increasing positive integers/],
      [{ ...base, data: { kind: 'mnist' } }, /config\.data\.kind must be one of 'procedural', 'folder', 'npy', got "mnist"/],
      [{ ...base, data: { kind: 'procedural', variation: 'extreme' } }, /config\.data\.variation must be one of 'low', 'medium', 'high', got "extreme"/],
      [{ ...base, data: { kind: 'procedural', classes: 13 } }, /config\.data\.classes must be an integer in \[2, 12\], got 13/],
      [{ ...base, data: { kind: 'procedural', channels: 2 } }, /config\.data\.channels must be 1 or 3, got 2/],
      [{ ...base, data: { kind: 'procedural', normalize: 'yes' } }, /config\.data\.normalize must be true, false or \{ mean/],
      [{ ...base, data: { kind: 'procedural', normalize: { mean: [0, 0], std: [1] } } }, /config\.data\.normalize\.std must be an array as long as mean \(2\)/],
      [{ ...base, data: { kind: 'procedural', normalize: { mean: [0], std: [0] } } }, /config\.data\.normalize\.std must be a non-empty array of positive numbers/],
      [{ ...base, data: { kind: 'folder' } }, /config\.data\.path must be a string, got undefined/],
      [{ ...base, data: { kind: 'folder', path: 'x', size: [0, 4] } }, /config\.data\.size must be a positive integer or \[h, w\]/],
      [{ ...base, data: { kind: 'folder', path: 'x', classes: ['a', 'a'] } }, /config\.data\.classes must be a non-empty array of distinct folder names/],
      [{ ...base, data: { kind: 'npy', images: 'x.npy' } }, /config\.data\.labels must be a string, got undefined/],
      [[], /config must be an object, got \[\]/],
    ];
    for (const [value, re] of cases) expect(() => readTrainConfig(value, '/runs'), String(re)).toThrow(re);
  });
});

describe('config files', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(join(os.tmpdir(), 'convrnn-config-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads a file, resolving paths against its folder; a missing file or bad JSON is a ConfigError naming the file', () => {
    const file = join(dir, 'run.json');
    fs.writeFileSync(file, JSON.stringify({ ...base, data: { kind: 'folder', path: 'pictures' } }));
    expect(readConfigFile(file).data).toMatchObject({ kind: 'folder', path: join(dir, 'pictures') });
    expect(() => readConfigFile(join(dir, 'nope.json'))).toThrow(/cannot read the config file .*nope\.json/);
    fs.writeFileSync(join(dir, 'bad.json'), '{ "model": ');
    expect(() => readConfigFile(join(dir, 'bad.json'))).toThrow(/the config file .*bad\.json is not valid JSON/);
  });
});
