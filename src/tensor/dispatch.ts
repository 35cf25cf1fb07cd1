/**
 * How ops call kernels. A kernel that can be split over threads takes, after
 * its own arguments, a range [begin, end) of its outermost output dimension
 * and a scratch pointer (per-thread workspace, 0 when it needs none):
 *
 *     kernel(...args, begin, end, scratch)
 *
 * and must produce the same bits for any split of [0, total) into ranges: each
 * output element is written by exactly one range, and every sum is taken in
 * one fixed order whatever the range. `parallel` is the one place that decides
 * how to split; it is where worker threads plug in.
 */
import { K, type Kernels } from './kernels.js';
import { getThreads, runSharded, runDirect, scratchFor } from './threads.js';

type RangeKernel = {
  [N in keyof Kernels]: Kernels[N] extends (...a: infer A) => void ? (A extends [...number[]] ? N : never) : never;
}[keyof Kernels];

/** The calling thread's scratch block of at least `bytes`, reused across calls. */
export function scratch(bytes: number): number {
  return scratchFor(0, bytes);
}

/**
 * Work below which a kernel stays on the calling thread: waking workers and
 * claiming shards costs a few microseconds, which ~1 MFLOP of SIMD work repays.
 */
export const PARALLEL_MIN_FLOPS = 1e6;

/**
 * The cost to give each element of a memory-bound elementwise op or copy (a
 * few loads and a store, next to no arithmetic). Counted by its flops (about 1
 * per element) such an op stayed on one thread below a million elements, yet
 * splitting it over 2 threads pays from about 64K elements: measured, an add
 * of 65,536 floats 12.5 -> 10.0 µs, of 262,144 43 -> 28 µs; a negation 10.3 ->
 * 8.1 µs and 29 -> 19 µs.
 */
export const ELEMENTWISE_COST = 16;

export interface ParallelOptions {
  /** Approximate floating-point operations per unit of the range (decides whether splitting pays). */
  cost: number;
  /** Shards are multiples of this many units (a micro-kernel's tile), except the last. */
  grain?: number;
  /** Workspace bytes each participating thread needs. */
  scratchBytes?: number;
}

/** The threads a job of `flops` would run on: 1 below the parallel threshold. */
export function threadsFor(flops: number): number {
  return flops >= PARALLEL_MIN_FLOPS ? getThreads() : 1;
}

/** Run `kernel(...args, begin, end, scratch)` over [0, total), split over threads when it pays. */
export function parallel(kernel: RangeKernel, args: readonly number[], total: number, opts: ParallelOptions): void {
  if (total <= 0) return;
  const grain = opts.grain ?? 1;
  const bytes = opts.scratchBytes ?? 0;
  if (total > grain && threadsFor(total * opts.cost) > 1) {
    runSharded(kernel, args, total, grain, bytes);
    return;
  }
  runDirect(kernel, K[kernel] as unknown as (...a: number[]) => void, args, total, scratch(bytes));
}
