/**
 * What it costs to split a kernel over threads (the DISPATCH workload).
 *
 * - channel_*: the raw control-block round trip. This file plays the calling
 *   thread's side of src/tensor/threads.ts (publish a job, wait for DONE)
 *   against real kernel workers (src/tensor/worker.js) on a channel of its
 *   own, with a job of ONE trivial shard that the caller does not claim: the
 *   time is the hand-over to a worker and the completion coming back.
 *   `wait` waits as runSharded does (Atomics.wait at once); `spin` first
 *   polls DONE for a few microseconds; `cold` gives the worker time to fall
 *   asleep between jobs (Atomics.notify has to wake it).
 * - runSharded: the library's own path with a trivial kernel (6 tiny shards).
 * - direct: the same kernel called on the calling thread (what 1 thread pays).
 * - conv2d / sigmoidGate: ops just above PARALLEL_MIN_FLOPS, per call, with
 *   how many of their kernel calls were split (sharded_jobs_per_call).
 *
 * Each case: at least 2000 round trips after a warm-up; p50 and p99 in µs.
 */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import * as C from '../src/tensor/channel.js';
import { kernelModule, K } from '../src/tensor/kernels.js';
import { memory, alloc, free } from '../src/tensor/heap.js';
import { runSharded, _testing } from '../src/tensor/threads.js';
import { conv2d, sigmoidGate, randn, scope, split, key, dispose } from '../src/index.js';
import { round } from './harness.js';

const ROUNDS = 4000;
const WARMUP = 500;
/** Worker spin before sleeping, as threads.ts sets it. */
const SPIN = 20000;
/** Polls of DONE before the caller sleeps, in the `spin` variant (~10-20 µs). */
const CALLER_SPIN = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** p50 / p99 / min / max of durations in ms, as µs, plus median_ms for the common line format. */
export function latency(ms: number[]): Record<string, number> {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))];
  const us = (x: number) => round(x * 1000, 2);
  return {
    p50_us: us(at(0.5)), p90_us: us(at(0.9)), p99_us: us(at(0.99)), min_us: us(s[0]), max_us: us(s[s.length - 1]),
    mean_us: us(ms.reduce((a, b) => a + b, 0) / ms.length), median_ms: round(at(0.5), 6), runs: ms.length,
  };
}

/** Time `fn` ROUNDS times after WARMUP calls, each call on its own. */
function sample(fn: () => void, between?: () => void): number[] {
  for (let i = 0; i < WARMUP; i++) {
    between?.();
    fn();
  }
  const ms = new Array<number>(ROUNDS);
  for (let i = 0; i < ROUNDS; i++) {
    between?.();
    const t0 = performance.now();
    fn();
    ms[i] = performance.now() - t0;
  }
  return ms;
}

// ---- the raw channel --------------------------------------------------------------

interface Channel {
  ch: Int32Array;
  argv: Float64Array;
  workers: Worker[];
  gen: number;
}

async function openChannel(workers: number): Promise<Channel> {
  const buffer = new SharedArrayBuffer(C.CHANNEL_BYTES);
  const ch = new Int32Array(buffer);
  ch[C.SPIN] = SPIN;
  const url = new URL('../src/tensor/worker.js', import.meta.url).href;
  const code = `import(${JSON.stringify(url)}).then((m) => m.default(require('node:worker_threads').workerData))`;
  const ws = Array.from({ length: workers }, (_, i) => {
    const w = new Worker(code, { eval: true, workerData: { module: kernelModule, memory, channel: buffer, slot: i + 1 } });
    w.unref();
    return w;
  });
  for (let i = 0; i < 1000 && Atomics.load(ch, C.READY) < workers; i++) await sleep(5);
  if (Atomics.load(ch, C.READY) < workers) throw new Error('dispatch bench: kernel workers did not start');
  return { ch, argv: new Float64Array(buffer, C.ARGS_BYTE_OFFSET, C.MAX_ARGS), workers: ws, gen: 0 };
}

async function closeChannel(c: Channel): Promise<void> {
  Atomics.store(c.ch, C.EXIT, 1);
  Atomics.add(c.ch, C.GEN, 1);
  Atomics.notify(c.ch, C.GEN);
  await Promise.all(c.workers.map((w) => w.terminate()));
}

/** Publish a one-shard job of `kernel(...args, 0, total, 0)` exactly as runSharded does. */
function publish(c: Channel, kernel: number, args: readonly number[], total: number): void {
  const { ch, argv } = c;
  c.gen = (c.gen + 1) | 0;
  ch[C.KERNEL] = kernel;
  ch[C.ARGC] = args.length;
  for (let i = 0; i < args.length; i++) argv[i] = args[i];
  ch[C.TOTAL] = total;
  ch[C.GRAIN] = total;
  ch[C.UNITS] = 1;
  ch[C.SHARDS] = 1;
  Atomics.store(ch, C.DONE, 0);
  Atomics.store(ch, C.CLAIM, C.claimWord(c.gen, 1));
  Atomics.store(ch, C.GEN, c.gen);
  Atomics.notify(ch, C.GEN);
}

/** Wait for the shard: `spin` polls DONE that many times before sleeping (runSharded: 0). */
function awaitDone(ch: Int32Array, spin: number): void {
  for (let i = 0; i < spin; i++) if (Atomics.load(ch, C.DONE) === 1) return;
  for (;;) {
    const done = Atomics.load(ch, C.DONE);
    if (done === 1) return;
    Atomics.wait(ch, C.DONE, done, 20);
  }
}

/** Block the calling thread for `ms` without spinning (lets the workers fall asleep). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function channelCases(workers: number, block: number): Promise<Record<string, unknown>[]> {
  const c = await openChannel(workers);
  const fill = C.kernelNames(kernelModule).indexOf('fill');
  const job = (spin: number) => () => {
    publish(c, fill, [block, 1], 16);
    awaitDone(c.ch, spin);
  };
  const out: Record<string, unknown>[] = [];
  try {
    out.push({ case: 'channel_hot_wait', ...latency(sample(job(0))) });
    out.push({ case: 'channel_hot_spin', ...latency(sample(job(CALLER_SPIN))) });
    out.push({ case: 'channel_cold_wait', ...latency(sample(job(0), () => pause(1))) });
    // What notify costs when nobody waits (every runSharded pays it while the workers spin).
    const ch = c.ch;
    const t0 = performance.now();
    for (let i = 0; i < 100000; i++) Atomics.notify(ch, C.ERROR);
    out.push({ case: 'notify_no_waiter', mean_us: round(((performance.now() - t0) * 1000) / 100000, 4), runs: 100000 });
  } finally {
    await closeChannel(c);
  }
  return out;
}

// ---- the library's path and ops at the threshold ------------------------------------

async function untilReady(threads: number, block: number): Promise<void> {
  runSharded('fill', [block, 0], 6 * 16, 16, 0); // starts the pool
  for (let i = 0; i < 1000 && _testing.readyWorkers() < threads - 1; i++) await sleep(5);
}

/**
 * The DISPATCH measurements at `threads` threads (the caller has set them).
 * On 1 thread: the direct kernel call and the ops; on more: the channel, runSharded and the ops.
 */
export async function dispatchBench(threads: number): Promise<Record<string, unknown>[]> {
  const block = alloc(4096);
  const out: Record<string, unknown>[] = [];
  const [k1, k2, k3] = split(key(11), 3);
  // conv2d 2x16x16x16 -> 16 channels, 3x3 'same': 2.36 MFLOP direct, which its Winograd kernel counts as
  // 1.05 M (just above PARALLEL_MIN_FLOPS); sigmoidGate on 51200 floats: cost 20 x 51200 = 1.02 M.
  const x = randn(k1, [2, 16, 16, 16]), w = randn(k2, [3, 3, 16, 16]);
  const a = randn(k3, [2, 16, 16, 100]), g = randn(k1, [2, 16, 16, 100]);
  try {
    out.push({ case: 'direct_fill_16', ...latency(sample(() => K.fill(block, 1, 0, 16, 0))) });
    if (threads > 1) {
      out.push(...(await channelCases(threads - 1, block)));
      await untilReady(threads, block);
      const jobs = _testing.jobs();
      out.push({ case: 'runSharded_fill_6x16', ...latency(sample(() => runSharded('fill', [block, 1], 6 * 16, 16, 0))) });
      if (_testing.jobs() - jobs < ROUNDS) throw new Error('dispatch bench: runSharded did not run');
    }
    const op = (name: string, fn: () => void): Record<string, unknown> => {
      const jobs = _testing.jobs();
      const r = latency(sample(fn));
      return { case: name, ...r, sharded_jobs_per_call: round((_testing.jobs() - jobs) / (ROUNDS + WARMUP), 3) };
    };
    out.push(op('conv2d_2x16x16x16_3x3x16x16', () => scope(() => void conv2d(x, w, { padding: 'same' }))));
    out.push(op('sigmoidGate_51200', () => scope(() => void sigmoidGate(a, g))));
  } finally {
    dispose([x, w, a, g]);
    free(block);
  }
  return out;
}
