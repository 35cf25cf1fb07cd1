/**
 * `convrnn train`: train a model from a JSON config (config.ts) into a run
 * folder, or continue one from its checkpoint.
 *
 * The folder holds config.json (the resolved config: defaults filled in, data
 * paths absolute, the measured normalisation), metrics.jsonl (one JSON line
 * per step and per epoch, as the trainer's events) and checkpoint.safetensors
 * with its .json sidecar. `--resume dir` reads the config saved in the
 * checkpoint, cuts metrics.jsonl back to the checkpoint's step and continues
 * exactly as the uninterrupted run would have.
 *
 * Ctrl-C (SIGINT) finishes the current step, saves a checkpoint and exits
 * with code 130; a second Ctrl-C quits at once without saving.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { ConvrnnError, DataError, ValueError } from '../tensor/errors.js';
import { key, split } from '../tensor/random.js';
import { dispose } from '../tensor/tensor.js';
import { setThreads } from '../tensor/threads.js';
import type { Model } from '../nn/model.js';
import { writeFileAtomic } from '../nn/io/atomic.js';
import { readNpy } from '../nn/io/npy.js';
import { splitDataset, type Dataset } from '../nn/data/dataset.js';
import { channelStats, normalizeImages, proceduralDataset } from '../nn/data/procedural.js';
import { loadImageFolder } from '../nn/data/imagefolder.js';
import { NonFiniteError, checkpointPath, loadTrainState, train, type TrainEvent, type TrainState } from '../nn/train.js';
import { readConfigFile, readTrainConfig, type DataConfig, type TrainConfig } from './config.js';
import { Progress } from './progress.js';
import { EXIT, UsageError, parseArgsError, type CliIO } from './io.js';

export type BuildModel = (
  config: unknown,
  data: { inputShape: [number, number, number]; classes: number; normalize?: { mean: number[]; std: number[] } },
) => Model | Promise<Model>;

export interface TrainDeps {
  /** Default: buildModel of src/convrnn/model.ts. */
  buildModel?: BuildModel;
}

export const TRAIN_SUMMARY = 'train a model from a JSON config, or resume a run';

export const TRAIN_USAGE = `Usage: convrnn train --config <file.json> --out <dir> [--threads <n>]
       convrnn train --resume <dir> [--threads <n>]

Train a model from a JSON config. The run folder gets config.json (the
resolved config), metrics.jsonl (a JSON line per step and per epoch) and
checkpoint.safetensors (+ .json) every checkpointEvery steps and at the end.

Options:
  --config <file>   the run's config (below)
  --out <dir>       the run folder (created; must not hold another run)
  --resume <dir>    continue the run in <dir> from its checkpoint, with its saved config
  --threads <n>     worker threads (overrides "threads"; results never depend on it)
  -h, --help        show this help

Config (JSON; defaults in brackets; unknown keys are errors):
  model             the model config, passed to buildModel (required)
  data              {"kind": "procedural", "count" [1000], "size" [32], "variation" ["medium"],
                     "classes" [8], "channels" [3], "background" ["clutter"], "seed" [0]}
                  | {"kind": "folder", "path", "size"?, "channels" [3], "classes"?}
                  | {"kind": "npy", "images", "labels", "classes"?}
                    each with "normalize" [true]: per-channel mean/std of the training split
  validation        fraction held out for validation [0.1]
  optimizer         {"kind": "sgd", "lr" [0.01], "momentum" [0.9], "nesterov" [true]}
                  | {"kind": "adam", "lr" [0.001], "beta1" [0.9], "beta2" [0.999], "eps" [1e-8]}
  schedule          {"kind": "constant"} | {"kind": "stepDecay", "factor" [0.1], "epochs" [[30, 60, 80]]}
                  | {"kind": "cosine", "warmupSteps" [0], "finalLr" [0]}
  weightDecay       L2 on weights (names ending in .w) [1e-4]     clipValue  [0.7]   clipNorm  [0]
  seed [0]   epochs [1]   batch [32]   threads [CPUs available]   checkpointEvery (steps; 0: at the end) [100]

Exit codes: 0 done, 1 training failed (NaN/Inf), 2 bad usage or config,
130 interrupted by Ctrl-C (after saving a checkpoint).`;

const FLAGS = ['--config', '--out', '--resume', '--threads', '--help'];
const METRICS = 'metrics.jsonl';
const CONFIG = 'config.json';

// ---- data -------------------------------------------------------------------------------

/** The examples a data config names, and the number of classes. */
function loadData(d: DataConfig): { dataset: Dataset; classes: number } {
  switch (d.kind) {
    case 'procedural': {
      const { count, size, variation, classes, channels, background, seed } = d;
      return { dataset: proceduralDataset({ count, size, variation, classes, channels, background, seed }), classes };
    }
    case 'folder': {
      const dataset = loadImageFolder(d.path, { size: d.size, channels: d.channels, classes: d.classes });
      return { dataset, classes: dataset.classNames!.length };
    }
    case 'npy':
      return loadNpyData(d.images, d.labels, d.classes);
  }
}

function loadNpyData(imagesPath: string, labelsPath: string, classes?: number): { dataset: Dataset; classes: number } {
  const x = readNpy(imagesPath);
  const y = readNpy(labelsPath);
  if (x.shape.length !== 4 && x.shape.length !== 3) {
    throw new DataError(`${imagesPath}: images must be [N, H, W, C] or [N, H, W], got shape [${x.shape.join(', ')}]`);
  }
  const [n, h, w, c = 1] = x.shape;
  let images: Float32Array;
  if (x.dtype === 'float32') images = x.data as Float32Array;
  else if (x.dtype === 'float64') images = Float32Array.from(x.data as Float64Array);
  else if (x.dtype === 'uint8') images = Float32Array.from(x.data as Uint8Array, (v) => v / 255);
  else throw new DataError(`${imagesPath}: images must be float32, float64 or uint8 (scaled to [0, 1]), got ${x.dtype}`);
  if (y.shape.length !== 1 || y.shape[0] !== n) throw new DataError(`${labelsPath}: labels must be [N] with N = ${n} (the images'), got shape [${y.shape.join(', ')}]`);
  if (y.dtype === 'float32' || y.dtype === 'float64' || y.dtype === 'bool') throw new DataError(`${labelsPath}: labels must be integers, got ${y.dtype}`);
  const labels = Int32Array.from(y.data as ArrayLike<number | bigint>, (v) => Number(v));
  let max = -1;
  for (const l of labels) max = Math.max(max, l);
  return { dataset: { images, labels, shape: [n, h, w, c] }, classes: classes ?? max + 1 };
}

// ---- the command ----------------------------------------------------------------------

interface Args {
  config?: string;
  out?: string;
  resume?: string;
  threads?: number;
  help: boolean;
}

function parse(args: string[]): Args {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        out: { type: 'string' },
        resume: { type: 'string' },
        threads: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw parseArgsError(err, 'convrnn train', FLAGS);
  }
  const help = values.help ?? false;
  if (help) return { help };
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!/^\d+$/.test(values.threads) || threads < 1) throw new UsageError(`convrnn train: --threads must be a positive integer, got '${values.threads}'`);
  }
  if (values.resume !== undefined) {
    if (values.config !== undefined || values.out !== undefined) {
      throw new UsageError('convrnn train: --resume <dir> continues a run with its saved config in its own folder; it takes no --config or --out');
    }
  } else if (values.config === undefined || values.out === undefined) {
    throw new UsageError(`convrnn train: ${values.config === undefined ? '--config <file>' : '--out <dir>'} is required (or --resume <dir>); see convrnn train --help`);
  }
  return { config: values.config, out: values.out, resume: values.resume, threads, help };
}

async function defaultBuildModel(): Promise<BuildModel> {
  // Imported on use: the model zoo is the heaviest module, and only training needs it.
  const where = '../convrnn/model.js';
  let mod: { buildModel?: unknown };
  try {
    mod = (await import(where)) as { buildModel?: unknown };
  } catch (err) {
    throw new Error(`convrnn train: cannot load the model zoo (src/convrnn/model.js): ${(err as Error).message}`);
  }
  if (typeof mod.buildModel !== 'function') throw new Error('convrnn train: src/convrnn/model.js does not export buildModel');
  return mod.buildModel as BuildModel;
}

/** Keep the metrics lines of steps up to `step` (the rest came after the checkpoint). */
function cutMetrics(file: string, step: number): void {
  if (!existsSync(file)) return;
  const kept = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (line.trim() === '') return false;
      try {
        const s = (JSON.parse(line) as { step?: unknown }).step;
        return typeof s === 'number' && s <= step;
      } catch {
        return false; // a line cut short by a crash
      }
    });
  writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
}

function metricsLine(e: TrainEvent): string | undefined {
  if (e.type !== 'step' && e.type !== 'epoch') return undefined;
  return `${JSON.stringify(e)}\n`;
}

/** Run `convrnn train` with `args` (after the subcommand); resolves to the exit code. */
export async function trainCommand(args: string[], io: CliIO, deps: TrainDeps = {}): Promise<number> {
  let parsed: Args;
  let setup: Awaited<ReturnType<typeof prepare>>;
  try {
    parsed = parse(args);
    if (parsed.help) {
      io.stdout.write(`${TRAIN_USAGE}\n`);
      return EXIT.ok;
    }
    setup = await prepare(parsed, deps);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConvrnnError) {
      io.stderr.write(`${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
  return run(setup, io);
}

/** Everything up to the first step: config, threads, data, model, run folder. */
async function prepare(a: Args, deps: TrainDeps) {
  const dir = resolve((a.resume ?? a.out)!);
  let config: TrainConfig;
  let resume: (TrainState & { config: unknown }) | undefined;
  if (a.resume !== undefined) {
    const ck = checkpointPath(dir);
    if (!existsSync(ck)) throw new UsageError(`convrnn train: ${dir} holds no checkpoint (${ck}); nothing to resume`);
    resume = loadTrainState(ck);
    try {
      config = readTrainConfig(resume.config, dir);
      const onDisk = join(dir, CONFIG);
      if (existsSync(onDisk) && !sameJson(readFileSync(onDisk, 'utf8'), resume.config)) {
        throw new UsageError(`convrnn train: ${onDisk} differs from the config saved in the checkpoint; a run continues only with its own config (restore the file, or start a new run)`);
      }
    } catch (err) {
      dispose([resume.params, resume.buffers, resume.optState]);
      throw err;
    }
  } else {
    config = readConfigFile(a.config!);
    for (const f of [CONFIG, METRICS, 'checkpoint.safetensors']) {
      if (existsSync(join(dir, f))) throw new UsageError(`convrnn train: ${dir} already holds a run (${f}); continue it with --resume ${dir}, or choose another --out`);
    }
  }
  try {
    const threads = a.threads ?? config.threads;
    if (threads !== undefined) {
      try {
        setThreads(threads);
      } catch (err) {
        throw new UsageError(`convrnn train: ${a.threads !== undefined ? '--threads' : 'config.threads'}: ${(err as Error).message}`);
      }
    }

    const { dataset, classes } = loadData(config.data);
    const [splitKey, runKey] = split(key(config.seed), 2);
    let trainSet = dataset;
    let validation: Dataset | undefined;
    if (config.validation > 0) {
      const parts = splitDataset(dataset, config.validation, splitKey);
      trainSet = parts.train;
      if (parts.validation.shape[0] > 0) validation = parts.validation;
    }
    const norm = config.data.normalize;
    let resolved = config;
    if (norm !== false) {
      const stats = norm === true ? channelStats(trainSet) : norm;
      const std = stats.std.map((s) => (s > 0 ? s : 1));
      if (stats.mean.length !== trainSet.shape[3]) throw new ValueError(`convrnn train: config.data.normalize has ${stats.mean.length} channels, the images have ${trainSet.shape[3]}`);
      trainSet = { ...trainSet, images: normalizeImages(trainSet, stats.mean, std) };
      if (validation) validation = { ...validation, images: normalizeImages(validation, stats.mean, std) };
      resolved = { ...config, data: { ...config.data, normalize: { mean: stats.mean, std } } };
    }

    const [, h, w, c] = dataset.shape;
    const buildModel = deps.buildModel ?? (await defaultBuildModel());
    const normalize = resolved.data.normalize === false ? undefined : (resolved.data.normalize as { mean: number[]; std: number[] });
    const model = await buildModel(config.model, { inputShape: [h, w, c], classes, normalize });

    mkdirSync(dir, { recursive: true });
    if (resume) cutMetrics(join(dir, METRICS), resume.step);
    else writeFileAtomic(join(dir, CONFIG), configText(resolved));
    return { dir, config: resolved, model, trainSet, validation, runKey, resume };
  } catch (err) {
    if (resume) dispose([resume.params, resume.buffers, resume.optState]);
    throw err;
  }
}

const configText = (config: unknown): string => `${JSON.stringify(config, null, 2)}\n`;

function sameJson(text: string, value: unknown): boolean {
  try {
    return isDeepStrictEqual(JSON.parse(text), value);
  } catch {
    return false;
  }
}

async function run(s: Awaited<ReturnType<typeof prepare>>, io: CliIO): Promise<number> {
  const progress = new Progress(io.stdout);
  const metricsFile = join(s.dir, METRICS);
  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) {
      progress.clear();
      io.stderr.write('interrupted again: quitting without saving\n');
      process.exit(EXIT.interrupted);
    }
    progress.clear();
    io.stderr.write('interrupt: finishing the current step and saving a checkpoint (Ctrl-C again quits without saving)\n');
    ac.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  let lastCheckpoint = s.resume?.step;
  try {
    const result = await train({
      model: s.model,
      train: s.trainSet,
      validation: s.validation,
      optimizer: s.config.optimizer,
      schedule: s.config.schedule,
      epochs: s.config.epochs,
      batchSize: s.config.batch,
      key: s.runKey,
      weightDecay: s.config.weightDecay,
      clipValue: s.config.clipValue,
      clipNorm: s.config.clipNorm,
      checkpointEvery: s.config.checkpointEvery,
      outDir: s.dir,
      config: s.config,
      resume: s.resume,
      signal: ac.signal,
      onEvent: (e) => {
        const line = metricsLine(e);
        if (line !== undefined) appendFileSync(metricsFile, line);
        if (e.type === 'checkpoint') lastCheckpoint = e.step;
        progress.event(e);
      },
    });
    dispose([result.state.params, result.state.buffers, result.state.optState]);
    const ck = checkpointPath(s.dir);
    if (result.status === 'aborted') {
      io.stderr.write(`interrupted: saved a checkpoint at step ${result.state.step} to ${ck}; continue with: convrnn train --resume ${s.dir}\n`);
      return EXIT.interrupted;
    }
    io.stdout.write(`done: ${result.state.step} steps; checkpoint ${ck}, metrics ${metricsFile}\n`);
    return EXIT.ok;
  } catch (err) {
    progress.clear();
    const kept = lastCheckpoint === undefined ? 'no checkpoint was written' : `the last good checkpoint (step ${lastCheckpoint}) is ${checkpointPath(s.dir)}`;
    if (err instanceof NonFiniteError) {
      io.stderr.write(`training failed: ${err.message}; ${kept}\n`);
      return EXIT.failed;
    }
    io.stderr.write(`training failed: ${err instanceof Error ? (err instanceof ConvrnnError ? err.message : err.stack) : String(err)}; ${kept}\n`);
    return EXIT.failed;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
