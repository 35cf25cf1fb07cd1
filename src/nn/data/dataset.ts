/**
 * In-memory image datasets (NHWC float32 images, int32 labels) and the
 * deterministic, keyed batching that training loops consume.
 */
import { DataError, ShapeError, ValueError, describe } from '../../tensor/errors.js';
import { Key, foldIn, permutation } from '../../tensor/random.js';

/** N images of H x W x C float32 pixels, stored NHWC, with one integer label each. */
export interface Dataset {
  images: Float32Array;
  labels: Int32Array;
  /** [N, H, W, C]. */
  shape: [number, number, number, number];
  /** Label i names classNames[i]; when present, every label is below classNames.length. */
  classNames?: string[];
}

/** One mini-batch: b images in NHWC order, their labels, and (when known) their indices in the dataset. */
export interface Batch {
  images: Float32Array;
  labels: Int32Array;
  /** [b, H, W, C]. */
  shape: [number, number, number, number];
  indices?: Int32Array;
}

/** A batch cut from an in-memory dataset: it always knows which examples it holds. */
export interface IndexedBatch extends Batch {
  indices: Int32Array;
}

/**
 * Where batches come from: an in-memory dataset (shuffled and cut by `batches`), or a function
 * that streams the batches of one epoch itself (it then does its own shuffling and batching).
 */
export type BatchSource = Dataset | ((epoch: number) => Iterable<Batch>);

export interface BatchOptions {
  /** Examples per batch, a positive integer. */
  batchSize: number;
  /** Shuffle with permutation(key, N); without a key the batches follow dataset order. */
  key?: Key;
  /** Skip a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

const MAX_U32 = 0xffffffff;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks that `shape` is [N, H, W, C] with N >= 0 and H, W, C >= 1 integers. */
function checkShape(shape: unknown, what: string): asserts shape is [number, number, number, number] {
  if (
    !Array.isArray(shape) ||
    shape.length !== 4 ||
    !shape.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= 0) ||
    shape.slice(1).some((s) => s === 0)
  ) {
    throw new ShapeError(`${what}.shape must be [N, H, W, C] (N >= 0, H, W, C >= 1 integers), got ${describe(shape)}`);
  }
}

/**
 * Throws unless `d` is a well-formed Dataset: typed arrays of the right kinds, images.length =
 * N*H*W*C, labels.length = N, finite pixel values, labels in [0, numClasses). numClasses defaults
 * to classNames.length when classNames is given; with neither, labels need only be >= 0.
 */
export function validateDataset(d: unknown, argName = 'dataset', numClasses?: number): asserts d is Dataset {
  if (!isPlainObject(d)) throw new ValueError(`${argName} must be a dataset object { images, labels, shape }, got ${describe(d)}`);
  if (!(d.images instanceof Float32Array)) {
    throw new ValueError(`${argName}.images must be a Float32Array, got ${describe(d.images)}`);
  }
  if (!(d.labels instanceof Int32Array)) {
    throw new ValueError(`${argName}.labels must be an Int32Array, got ${describe(d.labels)}`);
  }
  checkShape(d.shape, argName);
  const [n, h, w, c] = d.shape;
  if (d.images.length !== n * h * w * c) {
    throw new ShapeError(
      `${argName}.images must have N*H*W*C = ${n * h * w * c} elements for shape [${d.shape.join(', ')}], got ${d.images.length}`,
    );
  }
  if (d.labels.length !== n) {
    throw new ShapeError(`${argName}.labels must have N = ${n} elements, got ${d.labels.length}`);
  }
  if (d.classNames !== undefined) {
    if (!Array.isArray(d.classNames) || !d.classNames.every((s) => typeof s === 'string')) {
      throw new ValueError(`${argName}.classNames must be an array of strings, got ${describe(d.classNames)}`);
    }
  }
  if (numClasses !== undefined && (!Number.isInteger(numClasses) || numClasses < 1)) {
    throw new ValueError(`validateDataset: numClasses must be a positive integer, got ${describe(numClasses)}`);
  }
  const limit = numClasses ?? (d.classNames as string[] | undefined)?.length ?? Infinity;
  for (let i = 0; i < n; i++) {
    const l = d.labels[i];
    if (l < 0 || l >= limit) {
      const range = limit === Infinity ? '>= 0' : `in [0, ${limit})`;
      throw new DataError(`${argName}.labels[${i}] must be ${range}, got ${l}`);
    }
  }
  const px = d.images;
  for (let i = 0; i < px.length; i++) {
    // x - x is NaN exactly when x is NaN or infinite.
    if (px[i] - px[i] !== 0) throw new DataError(`${argName}.images[${i}] must be finite, got ${describe(px[i])}`);
  }
}

function checkBatchOptions(fn: string, options: unknown): { batchSize: number; key?: Key; dropLast: boolean } {
  if (!isPlainObject(options)) throw new ValueError(`${fn}: options must be an object { batchSize, key?, dropLast? }, got ${describe(options)}`);
  for (const k of Object.keys(options)) {
    if (k !== 'batchSize' && k !== 'key' && k !== 'dropLast') {
      throw new ValueError(`${fn}: options may only have batchSize, key, dropLast, got unknown option ${describe(k)}`);
    }
  }
  const { batchSize, key, dropLast } = options;
  if (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize < 1) {
    throw new ValueError(`${fn}: options.batchSize must be a positive integer, got ${describe(batchSize)}`);
  }
  if (key !== undefined && !(key instanceof Key)) {
    throw new ValueError(`${fn}: options.key must be a Key or undefined, got ${describe(key)}`);
  }
  if (dropLast !== undefined && typeof dropLast !== 'boolean') {
    throw new ValueError(`${fn}: options.dropLast must be a boolean, got ${describe(dropLast)}`);
  }
  return { batchSize, key, dropLast: dropLast ?? false };
}

/** Copies the examples at `idx` (already range-checked) out of `d`. */
function gather(d: Dataset, idx: Int32Array): { images: Float32Array; labels: Int32Array } {
  const per = d.shape[1] * d.shape[2] * d.shape[3];
  const images = new Float32Array(idx.length * per);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    images.set(d.images.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = d.labels[j];
  }
  return { images, labels };
}

/**
 * The batches of one epoch. With a key, examples are visited in the order permutation(key, N),
 * so the same key gives the same batches on every run; without one, in dataset order. Every
 * example appears exactly once, except those of a short last batch when dropLast is set.
 * Arguments are checked when `batches` is called, not at the first `next()`.
 */
export function batches(dataset: Dataset, options: BatchOptions): Generator<IndexedBatch, void, undefined> {
  return makeBatches('batches', dataset, options);
}

function makeBatches(fn: string, dataset: Dataset, options: unknown): Generator<IndexedBatch, void, undefined> {
  validateDataset(dataset, `${fn}: dataset`);
  const { batchSize, key, dropLast } = checkBatchOptions(fn, options);
  const [n, h, w, c] = dataset.shape;
  let order: Int32Array;
  if (key !== undefined) order = permutation(key, n);
  else {
    order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
  }
  const end = dropLast ? n - (n % batchSize) : n;
  return (function* () {
    for (let start = 0; start < end; start += batchSize) {
      const indices = order.slice(start, Math.min(start + batchSize, end));
      const { images, labels } = gather(dataset, indices);
      yield { images, labels, shape: [indices.length, h, w, c], indices };
    }
  })();
}

/** The shuffle key of one epoch: foldIn(key, epoch), so any epoch can be replayed on its own. */
export function epochKey(key: Key, epoch: number): Key {
  if (!(key instanceof Key)) throw new ValueError(`epochKey: key must be a Key, got ${describe(key)}`);
  if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0 || epoch > MAX_U32) {
    throw new ValueError(`epochKey: epoch must be an integer in [0, 2^32), got ${describe(epoch)}`);
  }
  return foldIn(key, epoch);
}

/** A new dataset holding copies of the examples at `indices`, in that order (repeats allowed). */
export function subset(dataset: Dataset, indices: ArrayLike<number>): Dataset {
  validateDataset(dataset, 'subset: dataset');
  if (typeof indices !== 'object' || indices === null || typeof indices.length !== 'number') {
    throw new ValueError(`subset: indices must be an array of example indices, got ${describe(indices)}`);
  }
  const n = dataset.shape[0];
  const idx = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!Number.isInteger(j) || j < 0 || j >= n) {
      throw new ValueError(`subset: indices[${i}] must be an integer in [0, ${n}), got ${describe(j)}`);
    }
    idx[i] = j;
  }
  const { images, labels } = gather(dataset, idx);
  const out: Dataset = { images, labels, shape: [idx.length, dataset.shape[1], dataset.shape[2], dataset.shape[3]] };
  if (dataset.classNames) out.classNames = dataset.classNames.slice();
  return out;
}

/**
 * Splits off round(validationFraction * N) examples, chosen by permutation(key, N), as a
 * validation set; the rest is the training set. Both keep the original dataset order.
 */
export function splitDataset(dataset: Dataset, validationFraction: number, key: Key): { train: Dataset; validation: Dataset } {
  validateDataset(dataset, 'splitDataset: dataset');
  if (typeof validationFraction !== 'number' || !(validationFraction >= 0 && validationFraction <= 1)) {
    throw new ValueError(`splitDataset: validationFraction must be a number in [0, 1], got ${describe(validationFraction)}`);
  }
  if (!(key instanceof Key)) throw new ValueError(`splitDataset: key must be a Key, got ${describe(key)}`);
  const n = dataset.shape[0];
  const nVal = Math.round(validationFraction * n);
  const perm = permutation(key, n);
  const validation = perm.slice(0, nVal).sort();
  const train = perm.slice(nVal).sort();
  return { train: subset(dataset, train), validation: subset(dataset, validation) };
}

function checkBatch(b: unknown, where: string): asserts b is Batch {
  if (!isPlainObject(b) || !(b.images instanceof Float32Array) || !(b.labels instanceof Int32Array)) {
    throw new DataError(`${where} must be { images: Float32Array, labels: Int32Array, shape }, got ${describe(b)}`);
  }
  if (!Array.isArray(b.shape) || b.shape.length !== 4 || !b.shape.every((s) => Number.isInteger(s) && s >= 1)) {
    throw new DataError(`${where}.shape must be [b, H, W, C] of positive integers, got ${describe(b.shape)}`);
  }
  const [n, h, w, c] = b.shape as number[];
  if (b.images.length !== n * h * w * c || b.labels.length !== n) {
    throw new DataError(
      `${where} has images.length ${b.images.length} and labels.length ${b.labels.length}, expected ${n * h * w * c} and ${n} for shape [${b.shape.join(', ')}]`,
    );
  }
  if (b.indices !== undefined && !(b.indices instanceof Int32Array && b.indices.length === n)) {
    throw new DataError(`${where}.indices must be an Int32Array of ${n} elements or absent, got ${describe(b.indices)}`);
  }
}

/**
 * The batches of epoch `epoch` from either kind of source. A dataset is cut by `batches` with
 * key epochKey(options.key, epoch) (options.batchSize is then required); a function source is
 * called with the epoch and its batches are checked as they stream (batchSize, key and dropLast
 * do not apply to it).
 */
export function iterateBatches(source: BatchSource, options: Partial<BatchOptions>, epoch: number): Iterable<Batch> {
  if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0 || epoch > MAX_U32) {
    throw new ValueError(`iterateBatches: epoch must be an integer in [0, 2^32), got ${describe(epoch)}`);
  }
  if (typeof source === 'function') {
    const it: unknown = source(epoch);
    if (typeof it !== 'object' || it === null || typeof (it as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new ValueError(`iterateBatches: a source function must return an iterable of batches, got ${describe(it)}`);
    }
    return (function* () {
      let i = 0;
      for (const b of it as Iterable<unknown>) {
        checkBatch(b, `iterateBatches: batch ${i} of epoch ${epoch} from the source function`);
        i++;
        yield b;
      }
    })();
  }
  if (!isPlainObject(options)) throw new ValueError(`iterateBatches: options must be an object, got ${describe(options)}`);
  const key = options.key;
  if (key !== undefined && !(key instanceof Key)) {
    throw new ValueError(`iterateBatches: options.key must be a Key or undefined, got ${describe(key)}`);
  }
  return makeBatches('iterateBatches', source, { ...options, key: key === undefined ? undefined : epochKey(key, epoch) });
}
