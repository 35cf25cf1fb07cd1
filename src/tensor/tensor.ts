/**
 * The immutable Tensor: a shape and a block of float32s in the shared heap.
 * Nothing public writes into an existing tensor; data leaves only as a copy.
 *
 * Lifetime: `scope(fn)` frees every tensor created inside except those `fn`
 * returns. Views (reshape) share a reference-counted block. A
 * FinalizationRegistry frees the block of a tensor that was garbage-collected
 * without being disposed: a backstop, not the mechanism. Only tensors outside
 * every scope join it: registering every tensor an op makes took a small op
 * from 0.8-1.1 to 1.4-1.9 us, and a scope frees the others anyway.
 */
import { alloc, free, heapF32 } from './heap.js';
import { ShapeError, ValueError, describe } from './errors.js';
import { leaves } from './tree.js';
import './kernels.js'; // fixes the heap's base before the first allocation

interface Block {
  readonly ptr: number;
  readonly bytes: number;
  refs: number;
  /** Kernel layouts of this block's data, by key (see Tensor.derived); freed with the block. */
  derived?: Map<string, number>;
}

// The backstop: a tensor collected without dispose() gives back its reference to its block.
const registry = new FinalizationRegistry<Block>((block) => {
  liveTensors--;
  release(block);
});
let liveTensors = 0;
let liveBytes = 0;
let nextId = 0;

function release(block: Block): void {
  if (--block.refs === 0) {
    free(block.ptr);
    liveBytes -= block.bytes;
    for (const ptr of block.derived?.values() ?? []) free(ptr);
    block.derived = undefined;
  }
}

export class Tensor {
  /** Creation order; the autodiff layer uses it to tell forward values from cotangents. */
  readonly id = nextId++;
  readonly size: number;
  #block: Block | null;
  #registered = false;

  /** @internal Use `tensor`, `zeros`, `empty` or an op; a Tensor takes ownership of one reference to `block`. */
  constructor(readonly shape: readonly number[], block: Block) {
    this.size = sizeOf(shape);
    this.#block = block;
    liveTensors++;
    // A tensor made in a scope is freed or kept when the scope ends; it joins the
    // garbage-collection backstop only if it leaves the outermost scope.
    const frame = scopes[scopes.length - 1];
    if (frame !== undefined) frame.push(this);
    else this.escape();
  }

  /** @internal Hand this tensor to the backstop: its block is freed if it is collected undisposed. */
  escape(): void {
    if (this.#registered || this.#block === null) return;
    this.#registered = true;
    registry.register(this, this.#block, this);
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Byte offset of the first element in the shared heap (for kernel calls). */
  get ptr(): number {
    if (this.#block === null) throw new ValueError(`use of a disposed tensor (shape [${this.shape.join(', ')}])`);
    return this.#block.ptr;
  }

  get disposed(): boolean {
    return this.#block === null;
  }

  /** A copy of the data, row-major. */
  toArray(): Float32Array {
    const p = this.ptr >>> 2;
    return heapF32().slice(p, p + this.size);
  }

  /** The single element of a tensor of size 1. */
  item(): number {
    if (this.size !== 1) throw new ShapeError(`item: expected a tensor with one element, got shape [${this.shape.join(', ')}]`);
    return heapF32()[this.ptr >>> 2];
  }

  /** Free this tensor's reference to its block. Idempotent. */
  dispose(): void {
    const block = this.#block;
    if (block === null) return;
    this.#block = null;
    liveTensors--;
    if (this.#registered) registry.unregister(this);
    release(block);
  }

  /**
   * @internal Run `use` on a layout of this tensor's data that a kernel wants (a
   * Winograd-transformed filter, say): a heap block of `bytes` filled by `make`.
   * Tensors never change, so inside a scope the layout is kept under `key` and
   * reused until that scope ends or this tensor's block is freed, whichever comes
   * first: a ConvRNN applies each filter at every time step of a training step.
   * Outside every scope it is made for this one use. Not counted by memory().
   */
  derived<R>(key: string, bytes: number, make: (ptr: number) => void, use: (ptr: number) => R): R {
    const block = this.#block;
    if (block === null) throw new ValueError(`use of a disposed tensor (shape [${this.shape.join(', ')}])`);
    const cached = block.derived?.get(key);
    if (cached !== undefined) return use(cached);
    const ptr = alloc(bytes);
    const cleanups = scopeCleanups[scopeCleanups.length - 1];
    if (cleanups === undefined) {
      try {
        make(ptr);
        return use(ptr);
      } finally {
        free(ptr);
      }
    }
    try {
      make(ptr);
    } catch (e) {
      free(ptr);
      throw e;
    }
    (block.derived ??= new Map()).set(key, ptr);
    cleanups.push(() => {
      if (block.derived?.get(key) !== ptr) return; // freed with the block already
      block.derived.delete(key);
      free(ptr);
    });
    return use(ptr);
  }

  /** @internal A new tensor of another shape on the same block (no copy, no recording). */
  view(shape: readonly number[]): Tensor {
    const block = this.#block;
    if (block === null) throw new ValueError(`use of a disposed tensor (shape [${this.shape.join(', ')}])`);
    block.refs++;
    return new Tensor(shape, block);
  }

  toString(): string {
    return `Tensor([${this.shape.join(', ')}])`;
  }
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Check a shape argument: non-negative integers. */
export function checkShape(fn: string, arg: string, shape: unknown): asserts shape is number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${fn}: ${arg} must be an array of non-negative integers, got ${describe(shape)}`);
  }
}

/** Check that `t` is a live Tensor. */
export function checkTensor(fn: string, arg: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new ValueError(`${fn}: ${arg} must be a Tensor, got ${describe(t)}`);
  if (t.disposed) throw new ValueError(`${fn}: ${arg} was disposed (shape [${t.shape.join(', ')}])`);
}

/** A new tensor with uninitialised contents: for ops whose kernel writes every element. */
export function empty(shape: readonly number[]): Tensor {
  const bytes = sizeOf(shape) * 4;
  const block: Block = { ptr: alloc(bytes), bytes, refs: 1 };
  liveBytes += bytes;
  return new Tensor(shape.slice(), block);
}

// ---- scopes -------------------------------------------------------------

const scopes: Tensor[][] = [];
// Per scope, what to undo when it ends besides freeing tensors (derived layouts).
const scopeCleanups: (() => void)[][] = [];

function endScope(): void {
  scopes.pop();
  for (const cleanup of scopeCleanups.pop()!) cleanup();
}

/**
 * Run `fn` and free every tensor created inside it except those in its result
 * (any pytree). Kept tensors move to the enclosing scope. `fn` must be synchronous.
 */
export function scope<T>(fn: () => T): T {
  const frame: Tensor[] = [];
  scopes.push(frame);
  scopeCleanups.push([]);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope();
    for (const t of frame) t.dispose();
    throw e;
  }
  endScope();
  if (result instanceof Promise) {
    for (const t of frame) t.dispose();
    throw new ValueError('scope: fn must be synchronous; it returned a Promise');
  }
  const kept = new Set(leaves(result));
  const parent = scopes[scopes.length - 1];
  for (const t of frame) {
    if (!kept.has(t)) t.dispose();
    else if (parent === undefined) t.escape();
    else if (!t.disposed) parent.push(t);
  }
  return result;
}

/** Dispose every tensor in a pytree. */
export function dispose(tree: unknown): void {
  for (const t of leaves(tree)) t.dispose();
}

/** The id the next tensor will get: tensors with a smaller id already exist. */
export function nextTensorId(): number {
  return nextId;
}

/** Live tensors and the bytes their blocks hold. */
export function memory(): { tensors: number; bytes: number } {
  return { tensors: liveTensors, bytes: liveBytes };
}
