/**
 * Timing as ../shared/WORKLOADS.md defines it: at least 7 timed runs after 2
 * warm-ups; short workloads repeat until 0.5 s have passed (at most 200 runs).
 * One JSON line per measurement on stdout.
 */
import { performance } from 'node:perf_hooks';
import { resourceUsage, cpuUsage } from 'node:process';
import { loadavg } from 'node:os';

export interface Measurement {
  median_ms: number;
  min_ms: number;
  max_ms: number;
  runs: number;
  /** CPU time over wall time of the timed runs: about the thread count when every thread had a core (the machine is shared). */
  cpu_util: number;
}

export function time(fn: () => void, opts: { runs?: number; warmup?: number; minSeconds?: number; maxRuns?: number } = {}): Measurement {
  const { runs = 7, warmup = 2, minSeconds = 0.5, maxRuns = 200 } = opts;
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  const start = performance.now();
  const cpu0 = cpuUsage();
  while (ts.length < runs || (performance.now() - start < minSeconds * 1000 && ts.length < maxRuns)) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  const cpu = cpuUsage(cpu0);
  const cpuUtil = (cpu.user + cpu.system) / 1000 / (performance.now() - start);
  const sorted = [...ts].sort((a, b) => a - b);
  return {
    median_ms: round(median(ts)), min_ms: round(sorted[0]), max_ms: round(sorted[sorted.length - 1]), runs: ts.length, cpu_util: round(cpuUtil, 2),
  };
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Peak resident set size of this process so far, in MB. */
export function maxRssMb(): number {
  return round(resourceUsage().maxRSS / 1024, 1);
}

/** One JSON line: the record, the peak RSS so far and the load average (the machine is shared). */
export function emit(record: Record<string, unknown>): void {
  const load = loadavg().map((l) => round(l, 2));
  process.stdout.write(JSON.stringify({ ...record, maxrss_mb: maxRssMb(), loadavg: load }) + '\n');
}

/** A rate field: GFLOP/s for `flops`, GB/s for `bytes`. */
export function rate(m: Measurement, work: { flops?: number; bytes?: number }): Record<string, number> {
  const s = m.median_ms / 1000;
  if (work.flops !== undefined) return { gflops: round(work.flops / s / 1e9, 2) };
  if (work.bytes !== undefined) return { gbps: round(work.bytes / s / 1e9, 2) };
  return {};
}
