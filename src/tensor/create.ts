/** Creating tensors: from data, constants, and keyed random draws. */
import { heapF32 } from './heap.js';
import { Tensor, empty, sizeOf, checkShape } from './tensor.js';
import { ShapeError, ValueError, describe } from './errors.js';
import { Key, normalFloats, uniformFloats } from './random.js';

/** A tensor holding a copy of `data` (row-major) with the given shape (default: 1-D). */
export function tensor(data: ArrayLike<number>, shape?: readonly number[]): Tensor {
  if (data === null || typeof data !== 'object' || typeof (data as ArrayLike<number>).length !== 'number') {
    throw new ValueError(`tensor: data must be an array or typed array of numbers, got ${describe(data)}`);
  }
  const s = shape ?? [data.length];
  checkShape('tensor', 'shape', s);
  if (sizeOf(s) !== data.length) {
    throw new ShapeError(`tensor: shape [${s.join(', ')}] holds ${sizeOf(s)} elements, data has ${data.length}`);
  }
  const t = empty(s);
  heapF32().set(data, t.ptr >>> 2);
  return t;
}

/** A 0-d tensor. */
export function scalar(value: number): Tensor {
  return tensor([value], []);
}

/**
 * A tensor filled with `value`; an array of values is repeated along the last
 * axis (one per channel: `full([N, H, W, 3], [r, g, b])`).
 */
export function full(shape: readonly number[], value: number | readonly number[]): Tensor {
  checkShape('full', 'shape', shape);
  const last = shape.length === 0 ? 1 : shape[shape.length - 1];
  if (Array.isArray(value)) {
    if (value.length !== last || !value.every((v) => typeof v === 'number')) {
      throw new ValueError(`full: value must be a number or ${last} numbers (one per index of the last axis of [${shape.join(', ')}]), got ${describe(value)}`);
    }
  } else if (typeof value !== 'number') {
    throw new ValueError(`full: value must be a number or an array of numbers, got ${describe(value)}`);
  }
  const t = empty(shape);
  const p = t.ptr >>> 2;
  const heap = heapF32();
  if (!Array.isArray(value)) {
    heap.fill(value as number, p, p + t.size);
  } else if (t.size > 0) {
    // The first row, then doubling copies of what is written.
    heap.set(value, p);
    for (let n = last; n < t.size; n *= 2) heap.copyWithin(p + n, p, p + Math.min(n, t.size - n));
  }
  return t;
}

export function zeros(shape: readonly number[]): Tensor {
  return full(shape, 0);
}

export function ones(shape: readonly number[]): Tensor {
  return full(shape, 1);
}

function checkKeyArg(fn: string, k: unknown): asserts k is Key {
  if (!(k instanceof Key)) throw new ValueError(`${fn}: key must be a Key (from key(seed) or split), got ${describe(k)}`);
}

/** Standard normal draws scaled by `std`; element i depends only on (key, i). */
export function randn(k: Key, shape: readonly number[], std = 1): Tensor {
  checkKeyArg('randn', k);
  checkShape('randn', 'shape', shape);
  if (!Number.isFinite(std)) throw new ValueError(`randn: std must be finite, got ${describe(std)}`);
  const z = normalFloats(k, sizeOf(shape));
  if (std !== 1) for (let i = 0; i < z.length; i++) z[i] *= std;
  return tensor(z, shape);
}

/** Uniform draws in [lo, hi); element i depends only on (key, i). */
export function uniform(k: Key, shape: readonly number[], lo = 0, hi = 1): Tensor {
  checkKeyArg('uniform', k);
  checkShape('uniform', 'shape', shape);
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo <= hi)) {
    throw new ValueError(`uniform: expected finite lo <= hi, got lo=${describe(lo)} hi=${describe(hi)}`);
  }
  const u = uniformFloats(k, sizeOf(shape));
  for (let i = 0; i < u.length; i++) u[i] = lo + (hi - lo) * u[i];
  return tensor(u, shape);
}
