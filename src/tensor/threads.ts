/**
 * Kernel shards over worker threads, on the one shared heap.
 *
 * A job is a kernel, its arguments and a range [0, total) cut into shards.
 * The calling thread publishes the job in a shared control block, wakes the
 * workers, and claims shards itself like any worker; it returns when every
 * shard is done. Because a kernel gives the same bits for any split of its
 * range (see dispatch.ts), who runs which shard never changes a result: 1 and
 * N threads agree to the bit, and the caller simply does all the work while
 * workers are still starting.
 *
 * Dispatch cost decides the design: Piscina's own task round trip is 16-25 us
 * here, a sleeping worker woken by Atomics.notify 6-14 us, a spinning one
 * under 1 us. So Piscina owns the threads (spawn, errors, teardown), but jobs
 * go through the Atomics control block to long-lived worker loops that spin
 * briefly before sleeping.
 */
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { memory, alloc, free } from './heap.js';
import { kernelModule, K } from './kernels.js';
import { ConvrnnError, ValueError, describe } from './errors.js';
import * as C from './channel.js';
import { availableCpus } from './cpus.js';

/** A worker thread died or a kernel failed while a job ran. */
export class WorkerError extends ConvrnnError {}

const names: string[] = C.kernelNames(kernelModule);
const index = new Map(names.map((n, i) => [n, i]));
const fns = names.map((n) => (K as unknown as Record<string, (...a: number[]) => void>)[n]);

let threads = defaultThreads();
let supervisor: Worker | null = null;
let ch = new Int32Array(new SharedArrayBuffer(C.CHANNEL_BYTES));
let argv = new Float64Array(ch.buffer, C.ARGS_BYTE_OFFSET, C.MAX_ARGS);
let shardTimes = new Float64Array(ch.buffer, C.TRACE_BYTE_OFFSET, 3 * C.MAX_SHARDS);
let gen = 0;
let jobs = 0;
/** Time the caller spent waiting for workers' shards after its own, and the jobs in which it slept. */
let waitMs = 0;
let sleptJobs = 0;
/** Spin iterations of a worker before it sleeps (~100 us). */
const SPIN = 20000;
/**
 * Shards per thread. More shards balance threads that start or run unevenly,
 * but each costs something fixed (about 10 us a shard in a W7 step; cutting
 * Winograd shards at whole tile blocks did not remove it). Measured at 2
 * threads, 2 against 3 per thread, interleaved: a W7 step 284 against 294 ms,
 * W5a 6.35 against 6.59 ms, W3 1.02 against 1.07 ms, W1 -2%, W5b, W4, W6 even;
 * 1 per thread was no better on W7 and 5% worse on W3.
 */
const SHARDS_PER_THREAD = 2;
/**
 * Polls of the caller for its workers' last shards before it sleeps (~75 us at
 * 25 ns a poll). The other threads' last shards end a few to a few hundred
 * microseconds after the caller's (2 threads, W7: median 8-30 us, 90th
 * percentile 56-280 us), and waking from Atomics.wait took about 50 us in a
 * virtual machine. Traced, 2-thread W7 steps in three runs of interleaved
 * steps: the time from the last shard's end to the caller going on fell from
 * 7.2-9.9 ms a step with 200 polls to 3.9-5.3 ms with 3000.
 */
const POLLS = 3000;

function defaultThreads(): number {
  const env = process.env.CONVRNN_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > C.MAX_SLOTS) {
      throw new ValueError(`CONVRNN_THREADS must be an integer in [1, ${C.MAX_SLOTS}], got ${describe(env)}`);
    }
    return n;
  }
  return Math.min(availableCpus(), C.MAX_SLOTS);
}

/** Use `n` threads (the caller plus n-1 workers) for large kernels. */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > C.MAX_SLOTS) {
    throw new ValueError(`setThreads: n must be an integer in [1, ${C.MAX_SLOTS}], got ${describe(n)}`);
  }
  if (n !== threads) stopPool();
  threads = n;
}

export function getThreads(): number {
  return threads;
}

function startPool(): void {
  const buffer = new SharedArrayBuffer(C.CHANNEL_BYTES);
  ch = new Int32Array(buffer);
  argv = new Float64Array(buffer, C.ARGS_BYTE_OFFSET, C.MAX_ARGS);
  shardTimes = new Float64Array(buffer, C.TRACE_BYTE_OFFSET, 3 * C.MAX_SHARDS);
  ch[C.SPIN] = SPIN;
  ch[C.TRACE] = traced === null ? 0 : 1;
  gen = 0;
  const sup = new Worker(new URL('./supervisor.js', import.meta.url), {
    workerData: { module: kernelModule, memory, channel: buffer, workers: threads - 1 },
  });
  sup.unref(); // never keep the process alive
  sup.on('error', () => {
    if (supervisor === sup) supervisor = null;
  });
  sup.on('exit', () => {
    if (supervisor === sup) supervisor = null;
  });
  supervisor = sup;
}

/**
 * Start the workers now rather than on the first large kernel, and resolve
 * once every one waits for work (until then the calling thread does all the
 * shards, so timings taken earlier see fewer threads than were asked for).
 */
export async function startThreads(timeoutMs = 30_000): Promise<void> {
  if (threads === 1) return;
  if (supervisor === null) startPool();
  const until = Date.now() + timeoutMs;
  while (Atomics.load(ch, C.READY) < threads - 1) {
    if (Date.now() > until) throw new WorkerError(`startThreads: ${threads - 1} workers did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Stop the workers (they restart on the next large kernel). */
export function stopPool(): void {
  if (supervisor === null) return;
  Atomics.store(ch, C.EXIT, 1);
  Atomics.add(ch, C.GEN, 1);
  Atomics.notify(ch, C.GEN);
  const sup = supervisor;
  supervisor = null;
  // Let the supervisor destroy its pool, then end it.
  setTimeout(() => void sup.terminate(), 200).unref();
}

// ---- per-thread scratch ----------------------------------------------------

const scratchPtr: number[] = [];
const scratchBytes: number[] = [];

/** Scratch of at least `bytes` for thread slot `slot` (0 is the caller), reused across jobs. */
export function scratchFor(slot: number, bytes: number): number {
  if (bytes <= 0) return 0;
  if (!(bytes <= (scratchBytes[slot] ?? 0))) {
    if (scratchPtr[slot]) free(scratchPtr[slot]);
    scratchBytes[slot] = Math.max(bytes, 2 * (scratchBytes[slot] ?? 0));
    scratchPtr[slot] = alloc(scratchBytes[slot]);
  }
  return scratchPtr[slot];
}

// ---- jobs ------------------------------------------------------------------

/**
 * Run `kernel(...args, begin, end, scratch)` over [0, total) in shards of a
 * multiple of `grain`, on the caller and the workers. Synchronous.
 */
export function runSharded(kernel: string, args: readonly number[], total: number, grain: number, bytes: number): void {
  const k = index.get(kernel);
  if (k === undefined) throw new ValueError(`runSharded: no kernel named ${describe(kernel)}`);
  if (args.length > C.MAX_ARGS) throw new ValueError(`runSharded: ${kernel} has ${args.length} arguments, at most ${C.MAX_ARGS}`);
  if (supervisor === null) startPool();
  const units = Math.ceil(total / grain);
  const shards = Math.min(units, SHARDS_PER_THREAD * threads, C.MAX_SHARDS);
  for (let slot = 0; slot < threads; slot++) ch[C.SCRATCH + slot] = scratchFor(slot, bytes);

  gen = (gen + 1) | 0;
  jobs++;
  ch[C.KERNEL] = k;
  ch[C.ARGC] = args.length;
  for (let i = 0; i < args.length; i++) argv[i] = args[i];
  ch[C.TOTAL] = total;
  ch[C.GRAIN] = grain;
  ch[C.UNITS] = units;
  ch[C.SHARDS] = shards;
  Atomics.store(ch, C.CLAIM, C.claimWord(gen, shards));
  const publish = traced === null ? 0 : C.clockUs();
  Atomics.store(ch, C.GEN, gen);
  Atomics.notify(ch, C.GEN);

  C.runShards(ch, argv, fns, shardTimes, 0, gen);

  // Wait until every shard reports this generation: poll first (see POLLS), then sleep.
  const waitFrom = performance.now();
  const need = ch[C.SHARDS];
  let next = 0;
  for (let polls = 0; ; polls++) {
    const done = Atomics.load(ch, C.DONE);
    while (next < need && Atomics.load(ch, C.FINISHED + next) === gen) next++;
    if (next === need) break;
    if (Atomics.load(ch, C.ERROR) !== 0) break;
    if (polls >= POLLS) {
      if (polls === POLLS) sleptJobs++;
      Atomics.wait(ch, C.DONE, done, 20);
    }
  }
  waitMs += performance.now() - waitFrom;
  const error = Atomics.load(ch, C.ERROR);
  if (error !== 0) failJob(kernel, error);
  if (traced !== null) {
    const done = C.clockUs();
    const times: [number, number, number][] = [];
    for (let s = 0; s < need; s++) times.push([shardTimes[3 * s], shardTimes[3 * s + 1], shardTimes[3 * s + 2]]);
    traced.push({ kernel, total, threads, publish, done, shards: times });
  }
}

// ---- tracing ---------------------------------------------------------------

/** A kernel call as traced: µs on C.clockUs; each shard as [slot, start, end]. */
export interface TracedCall {
  kernel: string;
  total: number;
  /** Threads of the pool (1: the call ran on the calling thread alone). */
  threads: number;
  /** When the job was published (or the direct call began) and when the caller saw it done. */
  publish: number;
  done: number;
  shards: [number, number, number][];
}

let traced: TracedCall[] | null = null;

/** @internal Record every kernel call (bench --trace) until stopTrace. */
export function startTrace(): void {
  traced = [];
  ch[C.TRACE] = 1;
}

/** @internal Stop recording; the calls recorded since startTrace. */
export function stopTrace(): TracedCall[] {
  const calls = traced ?? [];
  traced = null;
  ch[C.TRACE] = 0;
  return calls;
}

/** Run a kernel on the calling thread alone; traced like a one-shard job while tracing. */
export function runDirect(kernel: string, fn: (...a: number[]) => void, args: readonly number[], total: number, scratch: number): void {
  if (traced === null) {
    fn(...args, 0, total, scratch);
    return;
  }
  const start = C.clockUs();
  fn(...args, 0, total, scratch);
  const done = C.clockUs();
  traced.push({ kernel, total, threads: 1, publish: start, done, shards: [[0, start, done]] });
}

/** Stop the job's remaining claims, wait for running shards, and report. */
function failJob(kernel: string, error: number): never {
  const slot = ch[C.ERROR_SLOT];
  Atomics.store(ch, C.CLAIM, C.claimWord(gen, 0));
  for (let s = 1; s < threads; s++) {
    while (Atomics.load(ch, C.BUSY + s * C.LINE) !== 0) Atomics.wait(ch, C.DONE, Atomics.load(ch, C.DONE), 5);
  }
  Atomics.store(ch, C.ERROR, 0);
  throw new WorkerError(
    error === 1
      ? `worker thread ${slot} exited while running kernel ${kernel}; its output is incomplete. A replacement worker was started; the next operation will run normally`
      : `kernel ${kernel} failed in ${slot === 0 ? 'the calling thread' : `worker thread ${slot}`}`,
  );
}

/** @internal Test hooks. */
export const _testing = {
  /** The next worker to claim a shard exits, as if killed. */
  killWorkerOnNextShard(): void {
    Atomics.store(ch, C.KILL, 1);
  },
  /** The next worker to wake for a job exits before it claims a shard. */
  killWorkerOnNextWake(): void {
    Atomics.store(ch, C.KILL, 2);
  },
  killPending(): boolean {
    return Atomics.load(ch, C.KILL) !== 0;
  },
  readyWorkers(): number {
    return Atomics.load(ch, C.READY);
  },
  /** Jobs sharded so far. */
  jobs(): number {
    return jobs;
  },
  /** Time (ms) the caller has waited for workers after its own shards, and the jobs in which it slept. */
  waits(): { ms: number; slept: number } {
    return { ms: waitMs, slept: sleptJobs };
  },
  /** Count `n` completions that belong to no shard, as a stray or repeated completion would. */
  strayCompletions(n: number): void {
    Atomics.add(ch, C.DONE, n);
  },
};
