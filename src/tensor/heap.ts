/**
 * The one shared WebAssembly memory every kernel and every worker thread works
 * on, and the allocator that owns it. The AssemblyScript runtime is not
 * thread-safe, so kernels never allocate: TypeScript hands them byte offsets.
 *
 * Allocation: blocks are 64-byte aligned (a cache line; SIMD needs 16).
 * Freed blocks are kept in bins by exact size, which a training loop hits on
 * every step after the first (the same shapes recur). When the bump region is
 * exhausted, free blocks are coalesced and searched best-fit before the memory
 * grows, so varying shapes do not grow the heap without bound.
 */
import { ValueError } from './errors.js';

const PAGE = 65536;
const ALIGN = 64;
/** wasm32 addresses 4 GiB; CONVRNN_MAX_MEMORY_MB lowers the cap. */
const MAX_PAGES = Math.min(65536, Math.floor((Number(process.env.CONVRNN_MAX_MEMORY_MB) || 4096) * 16));

export const memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });

// The kernels' static region ends below this; set once the module is instantiated.
let base = 0;
let top = 0;
const sizeOf = new Map<number, number>(); // live block -> bytes
const bins = new Map<number, number[]>(); // bytes -> free blocks of exactly that size
let freeBytes = 0;
let liveBytes = 0;
let peakBytes = 0;

/** Called once by the kernel loader with the module's heap base. */
export function initHeap(heapBase: number): void {
  base = top = Math.ceil(heapBase / ALIGN) * ALIGN;
}

let f32 = new Float32Array(memory.buffer);

/** A Float32Array over the whole heap, re-created when the memory has grown. */
export function heapF32(): Float32Array {
  if (f32.length * 4 !== memory.buffer.byteLength) f32 = new Float32Array(memory.buffer);
  return f32;
}

/** Reserve `bytes` (rounded up to 64) and return the block's byte offset. Contents are undefined. */
export function alloc(bytes: number): number {
  if (base === 0) throw new Error('heap used before the kernels module was loaded (import src/tensor/kernels.js first)');
  const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  let ptr = popBin(size);
  if (ptr < 0) ptr = bump(size);
  if (ptr < 0) ptr = bestFit(size); // merging every free block costs more than it saves when a fit exists
  if (ptr < 0) {
    coalesce();
    ptr = bestFit(size);
  }
  if (ptr < 0) {
    grow(top + size);
    ptr = bump(size);
  }
  sizeOf.set(ptr, size);
  liveBytes += size;
  if (liveBytes > peakBytes) peakBytes = liveBytes;
  return ptr;
}

/** Return a block to the allocator. */
export function free(ptr: number): void {
  const size = sizeOf.get(ptr);
  if (size === undefined) throw new ValueError(`free: ${ptr} is not a live heap block (double free?)`);
  sizeOf.delete(ptr);
  liveBytes -= size;
  pushBin(size, ptr);
}

function popBin(size: number): number {
  const bin = bins.get(size);
  if (bin === undefined || bin.length === 0) return -1;
  freeBytes -= size;
  return bin.pop()!;
}

function pushBin(size: number, ptr: number): void {
  let bin = bins.get(size);
  if (bin === undefined) bins.set(size, (bin = []));
  bin.push(ptr);
  freeBytes += size;
}

function bump(size: number): number {
  if (top + size > memory.buffer.byteLength) return -1;
  const ptr = top;
  top += size;
  return ptr;
}

/** Merge adjacent free blocks; give a free run that ends at `top` back to the bump region. */
function coalesce(): void {
  if (freeBytes === 0) return;
  const blocks: [number, number][] = [];
  for (const [size, ptrs] of bins) for (const p of ptrs) blocks.push([p, size]);
  bins.clear();
  freeBytes = 0;
  blocks.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [p, s] of blocks) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last[0] + last[1] === p) last[1] += s;
    else merged.push([p, s]);
  }
  const last = merged[merged.length - 1];
  if (last !== undefined && last[0] + last[1] === top) {
    top = last[0];
    merged.pop();
  }
  for (const [p, s] of merged) pushBin(s, p);
}

function bestFit(size: number): number {
  let best = -1;
  for (const [s, ptrs] of bins) if (s >= size && ptrs.length > 0 && (best < 0 || s < best)) best = s;
  if (best < 0) return -1;
  const ptr = popBin(best);
  if (best > size) pushBin(best - size, ptr + size);
  return ptr;
}

function grow(needBytes: number): void {
  const have = memory.buffer.byteLength;
  // Grow by at least half again, so a growing workload costs few grows.
  const want = Math.max(needBytes, have + (have >>> 1));
  const pages = Math.min(Math.ceil(want / PAGE), MAX_PAGES) - have / PAGE;
  if (have + pages * PAGE < needBytes) {
    throw new ValueError(
      `out of memory: need ${needBytes} bytes of heap, the cap is ${MAX_PAGES * PAGE} bytes (raise CONVRNN_MAX_MEMORY_MB, at most 4096)`,
    );
  }
  memory.grow(pages);
}

/** Allocator statistics in bytes. */
export function heapStats(): { liveBytes: number; peakBytes: number; freeBytes: number; heapBytes: number; blocks: number } {
  return { liveBytes, peakBytes, freeBytes, heapBytes: memory.buffer.byteLength, blocks: sizeOf.size };
}

/** Start a new peak measurement from the current live bytes. */
export function resetPeak(): void {
  peakBytes = liveBytes;
}

/** Heap start, for tests that check blocks stay inside the heap. */
export function heapBase(): number {
  return base;
}
