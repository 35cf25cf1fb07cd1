/**
 * `convrnn compare`: the main job. Trains a reciprocal-gated ConvRNN
 * (BaseNet-6 with RGC cells in layers 3–5, nayebi2022 §A.2.1/§A.3), its
 * parameter-matched feedforward control (FF Wider, §A.1.2 control 1) and the
 * feedforward BaseNet-6 it is built on, on the built-in procedural dataset
 * with the same data, optimizer and seed, then prints and saves their
 * held-out accuracy, parameter and unit counts side by side. Each model is an
 * ordinary `convrnn train` run in its own folder.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConvrnnError } from '../tensor/errors.js';
import { writeFileAtomic } from '../nn/io/atomic.js';
import { baseNet6, matchFeedforward } from '../convrnn/zoo.js';
import { buildModel, countUnits, modelParamCount, type ModelConfig } from '../convrnn/model.js';
import { trainCommand } from './train.js';
import { EXIT, UsageError, parseArgsError, type CliIO } from './io.js';

export const COMPARE_SUMMARY = 'train an RGC ConvRNN, its parameter-matched feedforward control and its backbone; compare';

export const COMPARE_USAGE = `Usage: convrnn compare [--out <dir>] [--epochs <n>] [--count <n>] [--size <px>] [--threads <n>] [--seed <n>]

Train a small reciprocal-gated ConvRNN (BaseNet-6 at 1/8 width with RGC cells
in layers 3-5, T = 16 steps, image off after 12, conduction delays) and the
feedforward FF Wider BaseNet whose parameter count is closest to it, and the
plain BaseNet-6 the ConvRNN is built on, on the built-in procedural shapes (10 classes, medium variation, cluttered
backgrounds), with the same data, optimizer (Adam) and seed. Prints held-out
accuracy, parameter and unit counts side by side and writes them to
<dir>/compare.json; each model's run folder (config, metrics.jsonl,
checkpoint) is <dir>/rgc, <dir>/ff and <dir>/base.

Options:
  --out <dir>      results folder [runs/compare-<date>]; must not hold a comparison
  --epochs <n>     training epochs for each model [6]
  --count <n>      images drawn (10% held out for validation) [4000]
  --size <px>      image height and width [32]
  --threads <n>    worker threads (results never depend on it) [CPUs available]
  --seed <n>       seed of the data, the weights and the shuffling [0]
  -h, --help       show this help`;

const FLAGS = ['--out', '--epochs', '--count', '--size', '--threads', '--seed', '--help'];
const CLASSES = 10;

interface Args {
  out: string;
  epochs: number;
  count: number;
  size: number;
  seed: number;
  threads?: number;
}

function parse(args: string[]): Args | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        out: { type: 'string' },
        epochs: { type: 'string' },
        count: { type: 'string' },
        size: { type: 'string' },
        threads: { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw parseArgsError(err, 'convrnn compare', FLAGS);
  }
  if (values.help) return 'help';
  const int = (flag: string, v: string | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`convrnn compare: --${flag} must be an integer >= ${min}, got '${v}'`);
    return Number(v);
  };
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return {
    out: values.out ?? join('runs', `compare-${stamp}`),
    epochs: int('epochs', values.epochs, 6, 1),
    count: int('count', values.count, 4000, 20),
    size: int('size', values.size, 32, 8),
    seed: int('seed', values.seed, 0, 0),
    threads: values.threads === undefined ? undefined : int('threads', values.threads, 1, 1),
  };
}

interface Entry {
  name: string;
  description: string;
  config: ModelConfig;
}

/** The models: the ConvRNN, its parameter-matched feedforward control, its feedforward backbone. */
function models(size: number): Entry[] {
  const data = { inputShape: [size, size, 3] as [number, number, number], classes: CLASSES };
  const rgc = baseNet6({ cell: 'rgc', width: 1 / 8, inputSize: size, classes: CLASSES });
  const ff = matchFeedforward(rgc, data, 'wider');
  return [
    { name: 'rgc', description: 'BaseNet-6 + RGC cells (layers 3-5)', config: rgc },
    { name: 'ff', description: `FF Wider x${ff.width.toFixed(3)} (matched)`, config: ff.config },
    { name: 'base', description: 'BaseNet-6 (no cells)', config: baseNet6({ width: 1 / 8, inputSize: size, classes: CLASSES }) },
  ];
}

interface Result {
  model: string;
  description: string;
  params: number;
  units: number;
  T: number;
  validationAccuracy: number;
  trainAccuracy: number;
  steps: number;
  seconds: number;
}

/** The last epoch line of a run's metrics.jsonl. */
function lastEpoch(dir: string): { step: number; trainAccuracy: number; validationAccuracy: number | null } {
  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const e = JSON.parse(lines[i]) as { type: string; step: number; trainAccuracy: number; validationAccuracy: number | null };
    if (e.type === 'epoch') return e;
  }
  throw new ConvrnnError(`${dir}/metrics.jsonl holds no finished epoch`);
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function table(results: Result[]): string {
  const rows = [
    ['model', 'params', 'units', 'T', 'val. accuracy', 'train accuracy', 'time'],
    ...results.map((r) => [r.description, String(r.params), String(r.units), String(r.T), pct(r.validationAccuracy), pct(r.trainAccuracy), `${r.seconds.toFixed(0)} s`]),
  ];
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => row[j].length)));
  return rows.map((row) => row.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]) : cell.padStart(widths[j]))).join('  ')).join('\n');
}

/** Run `convrnn compare` with `args`; resolves to the exit code. */
export async function compareCommand(args: string[], io: CliIO): Promise<number> {
  let a: Args | 'help';
  let entries: Entry[];
  try {
    a = parse(args);
    if (a === 'help') {
      io.stdout.write(`${COMPARE_USAGE}\n`);
      return EXIT.ok;
    }
    entries = models(a.size);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConvrnnError) {
      io.stderr.write(`${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
  const out = resolve(a.out);
  mkdirSync(out, { recursive: true });
  const data = { kind: 'procedural', count: a.count, size: a.size, classes: CLASSES, variation: 'medium', background: 'clutter', seed: a.seed };
  const shape = { inputShape: [a.size, a.size, 3] as [number, number, number], classes: CLASSES };
  const results: Result[] = [];
  for (const e of entries) {
    io.stdout.write(`\n== ${e.name}: ${e.description}, T = ${e.config.T} ==\n`);
    const configFile = join(out, `${e.name}.config.json`);
    writeFileSync(configFile, `${JSON.stringify({ model: e.config, data, optimizer: { kind: 'adam', lr: 0.002 }, epochs: a.epochs, batch: 32, seed: a.seed, checkpointEvery: 0 }, null, 2)}\n`);
    const dir = join(out, e.name);
    const t0 = performance.now();
    const code = await trainCommand(['--config', configFile, '--out', dir, ...(a.threads === undefined ? [] : ['--threads', String(a.threads)])], io);
    if (code !== EXIT.ok) return code;
    const seconds = (performance.now() - t0) / 1000;
    const last = lastEpoch(dir);
    results.push({
      model: e.name,
      description: e.description,
      params: modelParamCount(e.config, shape),
      units: countUnits(buildModel(e.config, shape).network, shape.inputShape),
      T: e.config.T,
      validationAccuracy: last.validationAccuracy ?? Number.NaN,
      trainAccuracy: last.trainAccuracy,
      steps: last.step,
      seconds,
    });
  }
  const summary = { chance: 1 / CLASSES, epochs: a.epochs, images: a.count, size: a.size, seed: a.seed, results };
  writeFileAtomic(join(out, 'compare.json'), `${JSON.stringify(summary, null, 2)}\n`);
  io.stdout.write(`\n${table(results)}\n(chance ${pct(1 / CLASSES)}; validation: 10% of ${a.count} images)\nsaved ${join(out, 'compare.json')}\n`);
  return EXIT.ok;
}
