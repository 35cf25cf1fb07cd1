/**
 * Where the threads spend a W7 step, kernel by kernel
 * (`npm run bench -- --trace --threads 1,2`).
 *
 * Every kernel call of one step is traced (src/tensor/threads.ts: startTrace):
 * when the caller published the job (or began a call it runs alone), when each
 * shard ran and on which thread, and when the caller saw the job done. Of three
 * traced steps the fastest is kept (the machine is shared). Per kernel:
 *   wall  the sum of publish -> done: what the step waits for;
 *   work  the sum of the shards' run times over every thread;
 * and, for the calls split over threads, the threads' idle time
 * (threads x wall - work) taken apart:
 *   start   before a thread's first shard (waking, or the caller's head start);
 *   tail    after a thread's last shard, until the caller saw the job done;
 *   absent  whole calls of threads that ran none of their shards;
 *   gaps    the rest: between a thread's shards.
 * With several thread counts, "work / first" compares each kernel's work with
 * the first count's: above 1, the same shards took longer per thread (shared
 * caches and memory, repeated work such as a filter gradient's transforms).
 */
import { loadavg } from 'node:os';
import { setThreads, startThreads } from '../src/index.js';
import { startTrace, stopTrace, type TracedCall } from '../src/tensor/threads.js';
import { w7Training } from './w7.js';
import { w7Setup } from './profile.js';
import { emit, round } from './harness.js';

export interface KernelTrace {
  calls: number;
  /** Calls split over threads. */
  sharded: number;
  wall_ms: number;
  work_ms: number;
  /** Idle thread time in the split calls, by cause (ms). */
  idle_ms: { start: number; tail: number; absent: number; gaps: number };
}

export interface StepTrace {
  threads: number;
  step_ms: number;
  /** The step less its kernels' wall time: JavaScript between kernels, allocation. */
  outside_kernels_ms: number;
  kernels: Record<string, KernelTrace>;
}

/** Trace one W7 step (the fastest of three) at `threads` threads. */
export async function traceW7(threads: number): Promise<StepTrace> {
  setThreads(threads);
  await startThreads();
  const { params, x, labels, T } = w7Setup();
  const training = w7Training(params, x, labels, T);
  const step = (): number => {
    const t0 = performance.now();
    training.step();
    return performance.now() - t0;
  };
  step();
  step();
  let best: { ms: number; calls: TracedCall[] } | null = null;
  for (let i = 0; i < 3; i++) {
    startTrace();
    const ms = step();
    const calls = stopTrace();
    if (best === null || ms < best.ms) best = { ms, calls };
  }
  training.dispose();
  x.dispose();
  return summarize(best!.ms, best!.calls, threads);
}

export function summarize(stepMs: number, calls: readonly TracedCall[], threads: number): StepTrace {
  const kernels: Record<string, KernelTrace> = {};
  let wallAll = 0;
  for (const c of calls) {
    const k = (kernels[c.kernel] ??= { calls: 0, sharded: 0, wall_ms: 0, work_ms: 0, idle_ms: { start: 0, tail: 0, absent: 0, gaps: 0 } });
    const wall = (c.done - c.publish) / 1000;
    const work = c.shards.reduce((s, [, a, b]) => s + (b - a), 0) / 1000;
    k.calls++;
    k.wall_ms += wall;
    k.work_ms += work;
    wallAll += wall;
    if (c.threads === 1) continue;
    k.sharded++;
    let start = 0, tail = 0, absent = 0;
    for (let slot = 0; slot < c.threads; slot++) {
      const own = c.shards.filter((s) => s[0] === slot);
      if (own.length === 0) {
        absent += wall;
        continue;
      }
      start += (Math.min(...own.map((s) => s[1])) - c.publish) / 1000;
      tail += (c.done - Math.max(...own.map((s) => s[2]))) / 1000;
    }
    const idle = c.threads * wall - work;
    k.idle_ms.start += start;
    k.idle_ms.tail += tail;
    k.idle_ms.absent += absent;
    k.idle_ms.gaps += idle - start - tail - absent;
  }
  return { threads, step_ms: stepMs, outside_kernels_ms: stepMs - wallAll, kernels };
}

/** Every kernel of a step taken together. */
function total(t: StepTrace): KernelTrace {
  const all: KernelTrace = { calls: 0, sharded: 0, wall_ms: 0, work_ms: 0, idle_ms: { start: 0, tail: 0, absent: 0, gaps: 0 } };
  for (const k of Object.values(t.kernels)) {
    all.calls += k.calls;
    all.sharded += k.sharded;
    all.wall_ms += k.wall_ms;
    all.work_ms += k.work_ms;
    for (const n of ['start', 'tail', 'absent', 'gaps'] as const) all.idle_ms[n] += k.idle_ms[n];
  }
  return all;
}

/** Tables on stderr (each count against the first), one JSON line per thread count on stdout. */
export function printTraces(traces: readonly StepTrace[]): void {
  const first = traces[0];
  const f = (x: number) => x.toFixed(2).padStart(8);
  let s = '';
  for (const t of traces) {
    s += `W7 trace, ${t.threads} thread(s): step ${t.step_ms.toFixed(1)} ms, ${t.outside_kernels_ms.toFixed(1)} ms outside kernels; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`;
    s += `  ${'kernel'.padEnd(28)}${'calls'.padStart(6)}${'split'.padStart(6)}${'wall'.padStart(8)}${'work'.padStart(8)}${'/first'.padStart(8)}` +
      `${'start'.padStart(8)}${'tail'.padStart(8)}${'absent'.padStart(8)}${'gaps'.padStart(8)}  (ms)\n`;
    const rows = Object.entries(t.kernels).sort((a, b) => b[1].wall_ms - a[1].wall_ms);
    const row = (name: string, k: KernelTrace, base: number | undefined) =>
      `  ${name.padEnd(28)}${String(k.calls).padStart(6)}${String(k.sharded).padStart(6)}${f(k.wall_ms)}${f(k.work_ms)}` +
      `${base === undefined || t === first ? '        ' : (k.work_ms / base).toFixed(2).padStart(8)}` +
      `${f(k.idle_ms.start)}${f(k.idle_ms.tail)}${f(k.idle_ms.absent)}${f(k.idle_ms.gaps)}\n`;
    for (const [name, k] of rows) s += row(name, k, first.kernels[name]?.work_ms);
    s += row('all', total(t), total(first).work_ms);
  }
  process.stderr.write(s);
  const r = (k: KernelTrace) => ({
    ...k, wall_ms: round(k.wall_ms, 3), work_ms: round(k.work_ms, 3),
    idle_ms: Object.fromEntries(Object.entries(k.idle_ms).map(([n, v]) => [n, round(v, 3)])),
  });
  for (const t of traces) {
    emit({
      workload: 'W7trace', threads: t.threads, step_ms: round(t.step_ms, 2), outside_kernels_ms: round(t.outside_kernels_ms, 2),
      kernels: Object.fromEntries(Object.entries(t.kernels).map(([n, k]) => [n, r(k)])),
    });
  }
}
