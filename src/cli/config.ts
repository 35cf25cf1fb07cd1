/**
 * The JSON config of `convrnn train`. Every key is checked: an unknown key or
 * an invalid value is a ConfigError naming its path (config.optimizer.lr) and
 * what is allowed. Defaults follow the papers' training recipe where they
 * state one. Paths in `data` are resolved against the config file's folder
 * and stored absolute, so a saved config works from anywhere.
 *
 * {
 *   "model": { ... },                 required; passed untouched to buildModel (src/convrnn/model.ts)
 *   "data": { "kind": "procedural", "count": 1000, "size": 32, "variation": "medium",
 *             "classes": 8, "channels": 3, "background": "clutter", "seed": 0, "normalize": true }
 *         | { "kind": "folder", "path": "imgs/", "size": [h, w]?, "channels": 3, "classes": [names]?, "normalize": true }
 *         | { "kind": "npy", "images": "x.npy", "labels": "y.npy", "classes": n?, "normalize": true },
 *   "validation": 0.1,                fraction of the examples held out (0: none)
 *   "optimizer": { "kind": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": true }   (nayebi2018 supp. §6.4)
 *              | { "kind": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8 },
 *   "schedule": { "kind": "constant" } | { "kind": "stepDecay", "factor": 0.1, "epochs": [30, 60, 80] }
 *             | { "kind": "cosine", "warmupSteps": 0, "finalLr": 0 },
 *   "weightDecay": 1e-4,              L2 on weights (nayebi2022 §A.1.3); 0: none
 *   "clipValue": 0.7,                 elementwise gradient clip (nayebi2018 supp. §6.4); 0: none
 *   "clipNorm": 0,                    global-norm gradient clip; 0: none
 *   "seed": 0, "epochs": 1, "batch": 32,
 *   "threads": n?,                    worker threads (default: CONVRNN_THREADS, else the CPUs available); never changes results
 *   "checkpointEvery": 100            steps between checkpoints; 0: only at the end
 * }
 *
 * normalize: true measures each channel's mean and standard deviation on the
 * training split; the resolved config then holds them as { mean, std }, which
 * may also be given by hand; false leaves pixels as loaded.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigReader } from '../nn/config.js';
import { ConfigError } from '../tensor/errors.js';
import { readOptimizerSpec, readScheduleSpec, type OptimizerSpec, type ScheduleSpec } from '../nn/train.js';
import { SHAPE_NAMES, type Variation } from '../nn/data/procedural.js';

const FN = 'convrnn train';

export type Normalize = boolean | { mean: number[]; std: number[] };

export interface ProceduralData {
  kind: 'procedural';
  count: number;
  size: number;
  variation: Variation;
  classes: number;
  channels: 1 | 3;
  background: 'gray' | 'clutter';
  seed: number;
  normalize: Normalize;
}

export interface FolderData {
  kind: 'folder';
  path: string;
  size?: [number, number];
  channels: 1 | 3;
  classes?: string[];
  normalize: Normalize;
}

export interface NpyData {
  kind: 'npy';
  images: string;
  labels: string;
  classes?: number;
  normalize: Normalize;
}

export type DataConfig = ProceduralData | FolderData | NpyData;

export interface TrainConfig {
  model: Record<string, unknown>;
  data: DataConfig;
  validation: number;
  optimizer: OptimizerSpec;
  schedule: ScheduleSpec;
  weightDecay: number;
  clipValue: number;
  clipNorm: number;
  seed: number;
  epochs: number;
  batch: number;
  threads?: number;
  checkpointEvery: number;
}

const TOP_KEYS = ['model', 'data', 'validation', 'optimizer', 'schedule', 'weightDecay', 'clipValue', 'clipNorm', 'seed', 'epochs', 'batch', 'threads', 'checkpointEvery'];

function readNormalize(r: ConfigReader): Normalize {
  const v = r.obj.normalize ?? true;
  if (typeof v === 'boolean') return v;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) r.fail('normalize', 'true, false or { mean: [...], std: [...] } (one number per channel)');
  const n = r.sub('normalize').only(['mean', 'std']);
  const list = (field: 'mean' | 'std'): number[] => {
    const a = n.array(field);
    const ok = a.length > 0 && a.every((x) => typeof x === 'number' && Number.isFinite(x) && (field === 'mean' || x > 0));
    if (!ok) n.fail(field, field === 'mean' ? 'a non-empty array of finite numbers' : 'a non-empty array of positive numbers');
    return a as number[];
  };
  const mean = list('mean');
  const std = list('std');
  if (mean.length !== std.length) n.fail('std', `an array as long as mean (${mean.length})`);
  return { mean, std };
}

function readPath(r: ConfigReader, field: string, baseDir: string): string {
  const p = r.str(field);
  if (p === '') r.fail(field, 'a non-empty path');
  return resolve(baseDir, p);
}

function readData(r: ConfigReader, baseDir: string): DataConfig {
  const kind = r.oneOf('kind', ['procedural', 'folder', 'npy']);
  if (kind === 'procedural') {
    r.only(['kind', 'count', 'size', 'variation', 'classes', 'channels', 'background', 'seed', 'normalize']);
    return {
      kind,
      count: r.int('count', 1000, 1, 0xffffffff),
      size: r.int('size', 32, 8, 1024),
      variation: r.oneOf('variation', ['low', 'medium', 'high'], 'medium'),
      classes: r.int('classes', 8, 2, SHAPE_NAMES.length),
      channels: readChannels(r),
      background: r.oneOf('background', ['gray', 'clutter'], 'clutter'),
      seed: r.int('seed', 0, 0, Number.MAX_SAFE_INTEGER),
      normalize: readNormalize(r),
    };
  }
  if (kind === 'folder') {
    r.only(['kind', 'path', 'size', 'channels', 'classes', 'normalize']);
    const out: FolderData = { kind, path: readPath(r, 'path', baseDir), channels: readChannels(r), normalize: readNormalize(r) };
    if (r.has('size')) out.size = r.pair('size');
    if (r.has('classes')) {
      const c = r.array('classes');
      if (c.length === 0 || !c.every((s) => typeof s === 'string' && s.length > 0) || new Set(c).size !== c.length) {
        r.fail('classes', 'a non-empty array of distinct folder names');
      }
      out.classes = c as string[];
    }
    return out;
  }
  r.only(['kind', 'images', 'labels', 'classes', 'normalize']);
  const out: NpyData = { kind, images: readPath(r, 'images', baseDir), labels: readPath(r, 'labels', baseDir), normalize: readNormalize(r) };
  if (r.has('classes')) out.classes = r.int('classes', undefined, 1);
  return out;
}

function readChannels(r: ConfigReader): 1 | 3 {
  const c = r.obj.channels ?? 3;
  if (c !== 1 && c !== 3) r.fail('channels', '1 or 3');
  return c;
}

/** The validated config with every default filled in; `baseDir` resolves relative data paths. */
export function readTrainConfig(value: unknown, baseDir: string): TrainConfig {
  const r = ConfigReader.of(FN, value, 'config').only(TOP_KEYS);
  if (!r.has('model')) r.fail('model', 'an object (the model config passed to buildModel)');
  const model = ConfigReader.of(FN, r.obj.model, 'config.model').obj;
  if (!r.has('data')) r.fail('data', "an object { kind: 'procedural' | 'folder' | 'npy', ... }");
  const validation = r.num('validation', 0.1, 0, 1);
  if (validation === 1) r.fail('validation', 'a number in [0, 1)');
  const config: TrainConfig = {
    model,
    data: readData(r.sub('data'), baseDir),
    validation,
    optimizer: readOptimizerSpec(r.sub('optimizer')),
    schedule: readScheduleSpec(r.sub('schedule')),
    weightDecay: r.num('weightDecay', 1e-4, 0),
    clipValue: r.num('clipValue', 0.7, 0),
    clipNorm: r.num('clipNorm', 0, 0),
    seed: r.int('seed', 0, 0, Number.MAX_SAFE_INTEGER),
    epochs: r.int('epochs', 1, 1),
    batch: r.int('batch', 32, 1),
    checkpointEvery: r.int('checkpointEvery', 100, 0),
  };
  if (r.has('threads')) config.threads = r.int('threads', undefined, 1);
  return config;
}

/** Read and check a config file (ConfigError naming the file when it cannot be read or parsed). */
export function readConfigFile(path: string): TrainConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${FN}: cannot read the config file ${path} (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${FN}: the config file ${path} is not valid JSON (${(err as Error).message})`);
  }
  return readTrainConfig(json, dirname(resolve(path)));
}
