/**
 * Checkpoints: the tensors in a safetensors file at `path` (params under
 * `params.<name>`, optimizer state under `opt.<name>`, names as in tree.ts),
 * everything else in a JSON sidecar at `path + '.json'`: the step, the PRNG
 * key, the config, any extra JSON, the trees' structure, a manifest of every
 * tensor's shape and stored layout, and the SHA-256 of the weights file.
 * Both files are written atomically, the sidecar last, so a sidecar always
 * describes a complete weights file; `load` checks the hash, so a weights
 * file from another save (an interrupted one) is refused.
 *
 * Layouts. 'native' (default) stores tensors as they are: conv filters HWIO,
 * linear weights [in, out], activations (not stored) NHWC. 'pytorch' stores
 * weights the way PyTorch modules hold them, for PyTorch and numpy tools:
 *   conv       HWIO [KH, KW, I, O]  -> OIHW [O, I, KH, KW]
 *   depthwise  [KH, KW, C, M]       -> [C·M, 1, KH, KW] (Conv2d with groups = C)
 *   linear     [in, out]            -> [out, in]
 * Each tensor's kind comes from `opts.kind(name, shape)` (name with its
 * `params.` / `opt.` prefix), by default rank 4 -> 'conv', rank 2 ->
 * 'linear', anything else 'none'; say 'depthwise' (or 'none') where that
 * guess is wrong. Optimizer slots get the same kind as their parameter under
 * the default. Activations are NHWC here and NCHW in PyTorch: a model
 * rebuilt there must permute its inputs (x.permute(0, 3, 1, 2)). The kinds
 * are recorded in the sidecar, so `load` restores the native layout exactly
 * (the transposes move bits, they never round).
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { Tensor, checkTensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { Key } from '../tensor/random.js';
import { ConfigError, DataError, ValueError, describe } from '../tensor/errors.js';
import { encodeSafetensors, parseSafetensors } from './io/safetensors.js';
import { writeFilesAtomic } from './io/atomic.js';
import { flattenParams } from './tree.js';

export type Layout = 'native' | 'pytorch';
export type TensorKind = 'conv' | 'depthwise' | 'linear' | 'none';

export interface CheckpointData<P = unknown, S = unknown> {
  params: P;
  /** Optimizer state (any tree of tensors); default {}. */
  optState?: S;
  key: Key;
  /** The number of updates applied so far. */
  step: number;
  /** The model / training config (JSON). */
  config: unknown;
  /** Anything else to keep (JSON): metrics, dataset position. */
  extra?: unknown;
}

export interface LoadedCheckpoint<P = unknown, S = unknown> {
  params: P;
  optState: S;
  key: Key;
  step: number;
  config: unknown;
  extra: unknown;
  layout: Layout;
}

export interface SaveOptions {
  /** Default 'native'. */
  layout?: Layout;
  /** The kind of each stored tensor under the 'pytorch' layout (see the module comment). */
  kind?: (name: string, shape: readonly number[]) => TensorKind;
}

interface ManifestEntry {
  /** Shape in this library's layout. */
  shape: number[];
  /** Shape as stored in the weights file. */
  stored: number[];
  kind: TensorKind;
}

interface Sidecar {
  format: string;
  version: number;
  layout: Layout;
  step: number;
  key: [number, number];
  config: unknown;
  extra: unknown;
  trees: { params: unknown; optState: unknown };
  tensors: Record<string, ManifestEntry>;
  weightsSha256: string;
}

const FORMAT = 'convrnn-checkpoint';
const VERSION = 1;
const MARK = '$tensor';

/** The JSON sidecar's path for a checkpoint at `path`. */
export function sidecarPath(path: string): string {
  return `${path}.json`;
}

export function defaultKind(_name: string, shape: readonly number[]): TensorKind {
  return shape.length === 4 ? 'conv' : shape.length === 2 ? 'linear' : 'none';
}

// ---- layout transforms (pure data moves) ----------------------------------------------

/** `data` of `shape` with its axes permuted: out axis j is in axis perm[j]. */
function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const rank = shape.length;
  const strides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  const outShape = perm.map((p) => shape[p]);
  const outStrides = perm.map((p) => strides[p]);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let j = 0; j < rank; j++) src += idx[j] * outStrides[j];
    out[o] = data[src];
    for (let j = rank - 1; j >= 0; j--) {
      if (++idx[j] < outShape[j]) break;
      idx[j] = 0;
    }
  }
  return out;
}

const inverse = (perm: readonly number[]): number[] => {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
};

const PERMS: Record<Exclude<TensorKind, 'none'>, number[]> = {
  conv: [3, 2, 0, 1],
  depthwise: [2, 3, 0, 1],
  linear: [1, 0],
};

function storedShape(kind: TensorKind, shape: readonly number[]): number[] {
  if (kind === 'none') return shape.slice();
  if (kind === 'depthwise') return [shape[2] * shape[3], 1, shape[0], shape[1]];
  return PERMS[kind].map((p) => shape[p]);
}

function toStored(kind: TensorKind, data: Float32Array, shape: readonly number[]): Float32Array {
  return kind === 'none' ? data : permute(data, shape, PERMS[kind]);
}

function fromStored(kind: TensorKind, data: Float32Array, shape: readonly number[]): Float32Array {
  if (kind === 'none') return data;
  const permuted = PERMS[kind].map((p) => shape[p]); // the stored data before any reshape
  return permute(data, permuted, inverse(PERMS[kind]));
}

function checkKind(name: string, shape: readonly number[], kind: unknown): TensorKind {
  const need: Record<TensorKind, number | null> = { conv: 4, depthwise: 4, linear: 2, none: null };
  if (typeof kind !== 'string' || !(kind in need)) {
    throw new ConfigError(`save: kind(${JSON.stringify(name)}) must be 'conv', 'depthwise', 'linear' or 'none', got ${describe(kind)}`);
  }
  const rank = need[kind as TensorKind];
  if (rank !== null && shape.length !== rank) {
    throw new ConfigError(`save: tensor ${JSON.stringify(name)} of shape [${shape.join(', ')}] cannot be stored as '${kind}' (needs rank ${rank})`);
  }
  return kind as TensorKind;
}

// ---- save -------------------------------------------------------------------------------

/** The tree's structure as JSON, each tensor replaced by { "$tensor": its stored name }. */
function skeleton(tree: unknown, prefix: string): unknown {
  if (tree instanceof Tensor) return { [MARK]: prefix };
  if (Array.isArray(tree)) return tree.map((x, i) => skeleton(x, `${prefix}.${i}`));
  if (typeof tree === 'object' && tree !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(tree)) if (v !== undefined) out[k] = skeleton(v, `${prefix}.${k}`);
    return out;
  }
  return tree;
}

function jsonValue(field: string, v: unknown): unknown {
  if (v === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch (err) {
    throw new ValueError(`save: ${field} must be JSON-serialisable (${(err as Error).message})`);
  }
  if (text === undefined) throw new ValueError(`save: ${field} must be JSON-serialisable, got ${describe(v)}`);
  return JSON.parse(text);
}

const prefixed = (prefix: string, name: string): string => (name === '' ? prefix : `${prefix}.${name}`);

/**
 * Write a checkpoint: weights to `path` (safetensors), the rest to
 * `path + '.json'`, both atomically, the sidecar last.
 */
export function save(path: string, data: CheckpointData, opts: SaveOptions = {}): void {
  if (typeof path !== 'string' || path.length === 0) throw new ValueError(`save: path must be a non-empty string, got ${describe(path)}`);
  if (typeof data !== 'object' || data === null) throw new ValueError(`save: data must be { params, optState?, key, step, config, extra? }, got ${describe(data)}`);
  if (typeof opts !== 'object' || opts === null) throw new ConfigError(`save: options must be an object, got ${describe(opts)}`);
  const layout = opts.layout ?? 'native';
  if (layout !== 'native' && layout !== 'pytorch') throw new ConfigError(`save: layout must be 'native' or 'pytorch', got ${describe(opts.layout)}`);
  const kindOf = opts.kind ?? defaultKind;
  if (typeof kindOf !== 'function') throw new ConfigError(`save: kind must be a function (name, shape) => kind, got ${describe(opts.kind)}`);
  if (!(data.key instanceof Key)) throw new ValueError(`save: key must be a Key, got ${describe(data.key)}`);
  if (!Number.isSafeInteger(data.step) || data.step < 0) throw new ValueError(`save: step must be a non-negative integer, got ${describe(data.step)}`);

  const named = new Map<string, Tensor>();
  const trees: Record<string, unknown> = {};
  for (const [prefix, field, tree] of [['params', 'params', data.params], ['opt', 'optState', data.optState ?? {}]] as const) {
    for (const [name, t] of flattenParams(tree)) {
      const full = prefixed(prefix, name);
      checkTensor('save', full, t);
      named.set(full, t);
    }
    // Each tensor is referred to by its own path (a tensor under two paths is stored twice).
    trees[field] = skeleton(tree, prefix);
  }

  const tensors: Record<string, { data: Float32Array; shape: number[] }> = {};
  const manifest: Record<string, ManifestEntry> = {};
  for (const [name, t] of named) {
    const kind = layout === 'native' ? 'none' : checkKind(name, t.shape, kindOf(name, t.shape));
    const stored = storedShape(kind, t.shape);
    tensors[name] = { data: toStored(kind, t.toArray(), t.shape), shape: stored };
    manifest[name] = { shape: t.shape.slice(), stored, kind };
  }
  const metadata: Record<string, string> = { 'convrnn.layout': layout };
  if (layout === 'pytorch') metadata.format = 'pt';
  const bytes = encodeSafetensors(tensors, metadata);
  const sidecar: Sidecar = {
    format: FORMAT,
    version: VERSION,
    layout,
    step: data.step,
    key: [data.key.k0, data.key.k1],
    config: jsonValue('config', data.config),
    extra: jsonValue('extra', data.extra),
    trees: trees as Sidecar['trees'],
    tensors: manifest,
    weightsSha256: createHash('sha256').update(bytes).digest('hex'),
  };
  writeFilesAtomic([
    [path, bytes],
    [sidecarPath(path), `${JSON.stringify(sidecar, null, 1)}\n`],
  ]);
}

// ---- load -------------------------------------------------------------------------------

function readFile(path: string, what: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(`load: the checkpoint's ${what} ${path} does not exist`);
    throw new DataError(`load: cannot read the checkpoint's ${what} ${path} (${(err as Error).message})`);
  }
}

const isShape = (s: unknown): s is number[] => Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d >= 0);
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

function parseSidecar(file: string, text: string): Sidecar {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DataError(`load: ${file} is not valid JSON (${(err as Error).message})`);
  }
  const bad = (what: string): never => {
    throw new DataError(`load: ${file}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('expected a JSON object');
  const s = raw as Record<string, unknown>;
  if (s.format !== FORMAT) bad(`format must be ${JSON.stringify(FORMAT)}, got ${describe(s.format)}`);
  if (s.version !== VERSION) bad(`unsupported version ${describe(s.version)} (this library reads version ${VERSION})`);
  if (s.layout !== 'native' && s.layout !== 'pytorch') bad(`layout must be 'native' or 'pytorch', got ${describe(s.layout)}`);
  if (!Number.isSafeInteger(s.step) || (s.step as number) < 0) bad(`step must be a non-negative integer, got ${describe(s.step)}`);
  const k = s.key;
  if (!Array.isArray(k) || k.length !== 2 || !k.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
    bad(`key must be two 32-bit unsigned integers, got ${describe(k)}`);
  }
  const trees = s.trees as Record<string, unknown> | undefined;
  if (typeof trees !== 'object' || trees === null || !('params' in trees) || !('optState' in trees)) bad('trees must be { params, optState }');
  if (typeof s.tensors !== 'object' || s.tensors === null || Array.isArray(s.tensors)) bad('tensors must be an object (the manifest)');
  for (const [name, e] of Object.entries(s.tensors as Record<string, unknown>)) {
    const entry = e as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || !isShape(entry.shape) || !isShape(entry.stored) || !['conv', 'depthwise', 'linear', 'none'].includes(entry.kind as string)) {
      bad(`manifest entry for tensor ${JSON.stringify(name)} must be { shape, stored, kind }, got ${JSON.stringify(e)}`);
    }
    if (!sameShape(storedShape(entry.kind as TensorKind, entry.shape as number[]), entry.stored as number[])) {
      bad(`manifest entry for tensor ${JSON.stringify(name)}: stored shape [${entry.stored}] does not follow from shape [${entry.shape}] as '${entry.kind}'`);
    }
  }
  if (typeof s.weightsSha256 !== 'string') bad(`weightsSha256 must be a string, got ${describe(s.weightsSha256)}`);
  return s as unknown as Sidecar;
}

/**
 * Read the checkpoint at `path` (and `path + '.json'`): new tensors in this
 * library's layout, owned by the caller. Throws DataError naming the file
 * (and tensor) when a file is missing or malformed, the weights do not match
 * the sidecar, or a tensor is missing, extra or of the wrong shape or dtype.
 */
export function load<P = unknown, S = unknown>(path: string): LoadedCheckpoint<P, S> {
  if (typeof path !== 'string' || path.length === 0) throw new ValueError(`load: path must be a non-empty string, got ${describe(path)}`);
  const side = sidecarPath(path);
  const sidecar = parseSidecar(side, readFile(side, 'sidecar').toString('utf8'));
  const bytes = readFile(path, 'weights file');
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== sidecar.weightsSha256) {
    throw new DataError(`load: ${path} does not match its sidecar ${side} (SHA-256 differs: the weights were replaced or a save was interrupted)`);
  }
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    if (err instanceof DataError) throw new DataError(`load: ${path}: ${err.message}`);
    throw err;
  }
  const stored = parsed.tensors;
  for (const name of Object.keys(stored)) {
    if (!(name in sidecar.tensors)) throw new DataError(`load: ${path}: tensor ${JSON.stringify(name)} is not in the sidecar's manifest (${side})`);
  }
  const tensors = new Map<string, Tensor>();
  const made: Tensor[] = [];
  try {
    for (const [name, entry] of Object.entries(sidecar.tensors)) {
      const t = stored[name];
      if (t === undefined) throw new DataError(`load: ${path}: tensor ${JSON.stringify(name)} is missing (the sidecar lists it with shape [${entry.stored.join(', ')}])`);
      if (t.dtype !== 'F32') throw new DataError(`load: ${path}: tensor ${JSON.stringify(name)} has dtype ${t.dtype}, expected F32`);
      if (!sameShape(t.shape, entry.stored)) {
        throw new DataError(`load: ${path}: tensor ${JSON.stringify(name)} has shape [${t.shape.join(', ')}], the sidecar expects [${entry.stored.join(', ')}]`);
      }
      const x = tensor(fromStored(entry.kind, t.data as Float32Array, entry.shape), entry.shape);
      made.push(x);
      tensors.set(name, x);
    }
    const used = new Set<string>();
    const build = (node: unknown, where: string): unknown => {
      if (Array.isArray(node)) return node.map((x, i) => build(x, `${where}.${i}`));
      if (typeof node === 'object' && node !== null) {
        const obj = node as Record<string, unknown>;
        const keys = Object.keys(obj);
        if (keys.length === 1 && keys[0] === MARK && typeof obj[MARK] === 'string') {
          const name = obj[MARK] as string;
          const t = tensors.get(name);
          if (t === undefined) throw new DataError(`load: ${side}: the tree at ${where} refers to tensor ${JSON.stringify(name)}, which the manifest lacks`);
          used.add(name);
          return t;
        }
        const out: Record<string, unknown> = {};
        for (const k of keys) out[k] = build(obj[k], `${where}.${k}`);
        return out;
      }
      throw new DataError(`load: ${side}: the tree at ${where} holds ${describe(node)}, expected an object, array or tensor reference`);
    };
    const params = build(sidecar.trees.params, 'params') as P;
    const optState = build(sidecar.trees.optState, 'optState') as S;
    for (const name of tensors.keys()) {
      if (!used.has(name)) throw new DataError(`load: ${side}: tensor ${JSON.stringify(name)} is in the manifest but in neither tree`);
    }
    return {
      params,
      optState,
      key: new Key(sidecar.key[0], sidecar.key[1]),
      step: sidecar.step,
      config: sidecar.config,
      extra: sidecar.extra,
      layout: sidecar.layout,
    };
  } catch (err) {
    for (const t of made) t.dispose();
    throw err;
  }
}
