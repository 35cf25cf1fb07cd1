import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { transpileSources } from '../util/transpile.js';
import { kernelsPath } from '../../src/tensor/kernels.js';
import { setThreads, getThreads, startThreads, runSharded, startTrace, stopTrace, WorkerError, _testing } from '../../src/tensor/threads.js';
import { parallel } from '../../src/tensor/dispatch.js';
import { empty, type Tensor } from '../../src/tensor/tensor.js';
import { ValueError } from '../../src/tensor/errors.js';
import * as C from '../../src/tensor/channel.js';

async function untilWorkersReady(n: number): Promise<void> {
  for (let i = 0; i < 500 && _testing.readyWorkers() < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(_testing.readyWorkers()).toBeGreaterThanOrEqual(n);
}

/** `threads` threads with every worker started, and a tensor of n floats for fill jobs. */
async function readyPool(threads: number, n: number): Promise<Tensor> {
  setThreads(threads);
  const t = empty([n]);
  runSharded('fill', [t.ptr, 0], n, 4, 0); // starts the pool
  await untilWorkersReady(threads - 1);
  return t;
}

describe('thread pool', () => {
  it('setThreads validates its argument', () => {
    expect(() => setThreads(0)).toThrow(ValueError);
    expect(() => setThreads(2.5)).toThrow(/integer/);
    setThreads(3);
    expect(getThreads()).toBe(3);
  });

  it('startThreads resolves once every worker waits for work', async () => {
    setThreads(1);
    await startThreads(); // nothing to start
    setThreads(3);
    await startThreads();
    expect(_testing.readyWorkers()).toBe(2);
  });

  it('a sharded kernel covers its whole range exactly once, on workers too', async () => {
    const n = 100_003;
    const t = await readyPool(3, n);
    for (const value of [1.5, -2, 7]) {
      runSharded('fill', [t.ptr, value], n, 4, 0);
      expect(t.toArray().every((v) => v === value)).toBe(true);
    }
    t.dispose();
  });

  it('shards cut the range at whole grains, in order, as evenly as the grain allows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 200 }), (total, grain, want) => {
        const units = Math.ceil(total / grain);
        const shards = Math.min(units, want);
        const ch = new Int32Array(32);
        [ch[C.TOTAL], ch[C.GRAIN], ch[C.UNITS], ch[C.SHARDS]] = [total, grain, units, shards];
        let next = 0;
        const sizes: number[] = [];
        for (let s = 0; s < shards; s++) {
          const { begin, end } = C.shardRange(ch, s);
          expect(begin).toBe(next);
          expect(begin % grain).toBe(0);
          expect(end).toBeGreaterThan(begin);
          sizes.push(Math.ceil((end - begin) / grain));
          next = end;
        }
        expect(next).toBe(total);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('the control block keeps each word that threads write during a job on a cache line of its own, and no regions overlap', () => {
    const line = (i: number) => Math.floor(i / C.LINE);
    const job = [C.GEN, C.SHARDS, C.KERNEL, C.ARGC, C.TOTAL, C.GRAIN, C.UNITS, C.EXIT, C.SPIN, C.TRACE];
    const rare = [C.ERROR, C.ERROR_SLOT, C.READY, C.KILL];
    expect(new Set([...job, ...rare]).size).toBe(job.length + rare.length);
    const busy = Array.from({ length: C.MAX_SLOTS }, (_, s) => C.BUSY + s * C.LINE);
    const lines = [line(C.GEN), line(C.CLAIM), line(C.DONE), line(C.ERROR), ...busy.map(line)];
    expect(new Set(lines).size).toBe(lines.length);
    for (const i of job) expect(line(i)).toBe(line(C.GEN));
    for (const i of rare) expect(line(i)).toBe(line(C.ERROR));
    expect(C.CLAIM % C.LINE).toBe(0);
    expect(C.DONE % C.LINE).toBe(0);
    // regions in order: scalars, BUSY, SCRATCH, the float64 args, FINISHED, the shard trace
    expect(Math.max(...job, ...rare, C.CLAIM, C.DONE)).toBeLessThan(C.BUSY);
    expect(busy[busy.length - 1]).toBeLessThan(C.SCRATCH);
    expect((C.SCRATCH + C.MAX_SLOTS) * 4).toBeLessThanOrEqual(C.ARGS_BYTE_OFFSET);
    expect(C.ARGS_BYTE_OFFSET % 8).toBe(0);
    expect(C.ARGS_BYTE_OFFSET + C.MAX_ARGS * 8).toBeLessThanOrEqual(C.FINISHED * 4);
    expect(C.TRACE_BYTE_OFFSET % 8).toBe(0);
    expect(C.TRACE_BYTE_OFFSET).toBeGreaterThanOrEqual((C.FINISHED + C.MAX_SHARDS) * 4);
    expect(C.CHANNEL_BYTES).toBe(C.TRACE_BYTE_OFFSET + C.MAX_SHARDS * 24);
  });

  it('claims take each shard of a live job once, in order, and nothing from a worker a job late', () => {
    const ch = new Int32Array(new SharedArrayBuffer(C.CHANNEL_BYTES));
    const args = new Float64Array(ch.buffer, C.ARGS_BYTE_OFFSET, C.MAX_ARGS);
    const trace = new Float64Array(ch.buffer, C.TRACE_BYTE_OFFSET, 3 * C.MAX_SHARDS);
    const ran: number[][] = [];
    const fns = [(...a: number[]) => ran.push(a)];
    const publish = (gen: number, shards: number) => {
      [ch[C.KERNEL], ch[C.ARGC], args[0], ch[C.TOTAL], ch[C.GRAIN], ch[C.UNITS], ch[C.SHARDS]] = [0, 1, 7, 10 * shards, 10, shards, shards];
      Atomics.store(ch, C.CLAIM, C.claimWord(gen, shards));
    };
    publish(5, 3);
    C.runShards(ch, args, fns, trace, 1, 5);
    expect(ran).toEqual([[7, 0, 10, 0], [7, 10, 20, 0], [7, 20, 30, 0]]);
    expect([0, 1, 2].map((s) => ch[C.FINISHED + s])).toEqual([5, 5, 5]);
    expect(ch[C.DONE]).toBe(3);
    // Job 5 is done. While the caller writes job 6's fields (its CLAIM word not
    // yet stored), a worker still on generation 5 must not take a shard of it.
    ran.length = 0;
    [ch[C.KERNEL], ch[C.SHARDS], ch[C.UNITS], ch[C.TOTAL]] = [0, 8, 8, 80];
    C.runShards(ch, args, fns, trace, 2, 5);
    expect(ran).toEqual([]);
    publish(6, 8);
    C.runShards(ch, args, fns, trace, 2, 5); // nor once it is published
    expect(ran).toEqual([]);
    C.runShards(ch, args, fns, trace, 2, 6);
    expect(ran.map((a) => a[1])).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
    // Generations wrap at 2^19 inside the claim word and stay apart from their neighbours.
    for (const gen of [C.GEN_MASK, C.GEN_MASK + 1, -1]) {
      expect(C.claimWord(gen, 0)).toBeGreaterThanOrEqual(0);
      expect(C.claimWord(gen, 0)).not.toBe(C.claimWord(gen + 1, 0));
    }
    expect(C.claimWord(3, C.MAX_SHARDS) & 0xfff).toBe(C.MAX_SHARDS);
  });

  it('a job ends when each of its shards has finished, whatever the completion count says', async () => {
    const n = 1 << 18;
    const t = await readyPool(2, n);
    for (const stray of [1, 2, 6, 100]) {
      // Completions that belong to no shard end no job early and stall none: the caller waits for each shard.
      _testing.strayCompletions(stray);
      runSharded('fill', [t.ptr, stray], n, 4, 0);
      expect(t.toArray().every((v) => v === stray)).toBe(true);
    }
    t.dispose();
  });

  it('a worker killed mid-job fails that job with a clear error; the pool recovers', async () => {
    const n = 1 << 20;
    const t = await readyPool(2, n);
    _testing.killWorkerOnNextShard();
    // The worker may miss this job (the caller can claim every shard first); repeat until it takes one.
    let error: unknown = null;
    for (let i = 0; i < 200 && error === null; i++) {
      try {
        runSharded('fill', [t.ptr, 1], n, 4, 0);
      } catch (e) {
        error = e;
      }
    }
    expect(error).toBeInstanceOf(WorkerError);
    expect((error as Error).message).toMatch(/worker thread 1 exited while running kernel fill/);
    await untilWorkersReady(2); // the replacement has started
    runSharded('fill', [t.ptr, 3], n, 4, 0);
    expect(t.toArray().every((v) => v === 3)).toBe(true);
    t.dispose();
  });

  it('a trace records each shard once, on a slot of the pool, inside its job, and a direct call as one shard of the caller', async () => {
    const n = 1 << 20;
    const t = await readyPool(3, n);
    startTrace();
    runSharded('fill', [t.ptr, 1], n, 4, 0);
    parallel('fill', [t.ptr, 2], 64, { cost: 1 }); // far below the threshold: the caller alone
    const calls = stopTrace();
    expect(t.toArray().every((v, i) => v === (i < 64 ? 2 : 1))).toBe(true);
    runSharded('fill', [t.ptr, 3], n, 4, 0);
    expect(stopTrace()).toEqual([]);
    expect(calls.map((c) => [c.kernel, c.total, c.threads, c.shards.length])).toEqual([['fill', n, 3, 6], ['fill', 64, 1, 1]]);
    const [job, direct] = calls;
    for (const [slot, start, end] of job.shards) {
      expect([0, 1, 2]).toContain(slot);
      expect(start).toBeGreaterThanOrEqual(job.publish);
      expect(end).toBeGreaterThanOrEqual(start);
      expect(job.done).toBeGreaterThanOrEqual(end);
    }
    // No thread runs two shards at once.
    for (const slot of [0, 1, 2]) {
      const own = job.shards.filter((x) => x[0] === slot).sort((a, b) => a[1] - b[1]);
      for (let i = 1; i < own.length; i++) expect(own[i][1]).toBeGreaterThanOrEqual(own[i - 1][2]);
    }
    expect(direct.shards).toEqual([[0, direct.publish, direct.done]]);
    t.dispose();
  });

  it('a worker that dies outside a job fails nothing; it is replaced', async () => {
    const n = 1 << 20;
    const t = await readyPool(2, n);
    const started = _testing.readyWorkers();
    _testing.killWorkerOnNextWake();
    // The worker dies on waking for one of these jobs, holding no shard: every job completes, none throws.
    for (let i = 0; i < 50; i++) {
      runSharded('fill', [t.ptr, i], n, 4, 0);
      expect(t.toArray().every((v) => v === i)).toBe(true);
      if (!_testing.killPending()) await new Promise((r) => setTimeout(r, 5)); // let the supervisor see the exit
    }
    expect(_testing.killPending()).toBe(false);
    await untilWorkersReady(started + 1); // the replacement has started
    runSharded('fill', [t.ptr, 9], n, 4, 0);
    expect(t.toArray().every((v) => v === 9)).toBe(true);
    t.dispose();
  });

  it('the default thread count is CONVRNN_THREADS when set, else the CPUs available; a bad value is a clear error', () => {
    const dir = transpileSources();
    const script = `
      import { getThreads } from ${JSON.stringify(join(dir, 'src/tensor/threads.js'))};
      import { availableCpus } from ${JSON.stringify(join(dir, 'src/tensor/cpus.js'))};
      console.log(JSON.stringify([getThreads(), availableCpus()]));
    `;
    const run = (threads: string | undefined) => {
      const env: NodeJS.ProcessEnv = { ...process.env, CONVRNN_WASM: kernelsPath };
      delete env.CONVRNN_THREADS;
      if (threads !== undefined) env.CONVRNN_THREADS = threads;
      return spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000, encoding: 'utf8', env });
    };
    const [byDefault, cpus] = JSON.parse(run(undefined).stdout);
    expect(byDefault).toBe(Math.min(cpus, C.MAX_SLOTS));
    expect(JSON.parse(run('3').stdout)[0]).toBe(3);
    for (const bad of ['0', '2.5', 'many', String(C.MAX_SLOTS + 1)]) {
      const r = run(bad);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`CONVRNN_THREADS must be an integer in \\[1, ${C.MAX_SLOTS}\\], got`));
    }
  });

  it('the process exits promptly when its work is done (workers never keep it alive)', () => {
    const dir = transpileSources();
    const script = `
      import { setThreads, runSharded } from ${JSON.stringify(join(dir, 'src/tensor/threads.js'))};
      import { empty } from ${JSON.stringify(join(dir, 'src/tensor/tensor.js'))};
      setThreads(2);
      const t = empty([1 << 20]);
      runSharded('fill', [t.ptr, 1], 1 << 20, 4, 0);
      setTimeout(() => { runSharded('fill', [t.ptr, 2], 1 << 20, 4, 0); console.log('done'); }, 300);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 30_000,
      encoding: 'utf8',
      env: { ...process.env, CONVRNN_WASM: kernelsPath },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('done');
    expect(r.status).toBe(0);
  });
});
