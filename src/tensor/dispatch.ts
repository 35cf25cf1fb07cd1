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
import { alloc, free } from './heap.js';

type RangeKernel = {
  [N in keyof Kernels]: Kernels[N] extends (...a: infer A) => void ? (A extends [...number[]] ? N : never) : never;
}[keyof Kernels];

let scratchPtr = 0;
let scratchBytes = 0;

/** A scratch block of at least `bytes` for the calling thread, reused across calls. */
export function scratch(bytes: number): number {
  if (bytes <= 0) return 0;
  if (bytes > scratchBytes) {
    if (scratchPtr !== 0) free(scratchPtr);
    scratchBytes = Math.max(bytes, scratchBytes * 2);
    scratchPtr = alloc(scratchBytes);
  }
  return scratchPtr;
}

export interface ParallelOptions {
  /** Approximate floating-point operations per unit of the range (decides whether splitting pays). */
  cost: number;
  /** Workspace bytes each participating thread needs. */
  scratchBytes?: number;
}

/** Run `kernel(...args, begin, end, scratch)` over [0, total). */
export function parallel(kernel: RangeKernel, args: readonly number[], total: number, opts: ParallelOptions): void {
  if (total <= 0) return;
  const fn = K[kernel] as unknown as (...a: number[]) => void;
  fn(...args, 0, total, scratch(opts.scratchBytes ?? 0));
}
