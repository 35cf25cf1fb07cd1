// Layout of the shared control block between the calling thread and the kernel
// workers (an Int32Array over a SharedArrayBuffer, plus float64 kernel args).
// Plain JavaScript: worker threads load it without a TypeScript step.
// Words written by different threads while a job runs sit on different 64-byte
// cache lines: the job's fields (written by the caller before GEN, then only
// read), CLAIM (every claim), DONE (every finished shard) and each slot's BUSY.
// Packed on one line, a worker's claim or finish had to take the line from
// every worker spinning on GEN. Measured on a 16-core machine, W7 steps in 4
// alternating processes per layout (median of their medians): 8 threads 183
// against 203 ms, 16 threads 145 against 175 ms; 2 and 4 threads within the
// noise.
export const LINE = 16; // int32s per cache line
export const GEN = 0; // job generation; workers sleep on it
export const SHARDS = 1; // shard count of this job (<= MAX_SHARDS)
export const KERNEL = 2; // index of the kernel among the module's function exports
export const ARGC = 3; // number of kernel arguments
export const TOTAL = 4; // the range [0, TOTAL) is cut into UNITS units of GRAIN (the last may be short),
export const GRAIN = 5; // and the units as evenly as can be into SHARDS shards
export const UNITS = 6;
export const EXIT = 7; // set to 1 to stop every worker
export const SPIN = 8; // spin iterations before a worker sleeps
export const TRACE = 9; // 1: each shard records [slot, start, end] (µs) at TRACE_BYTE_OFFSET + 24 * shard
export const CLAIM = LINE; // claimWord(generation, shards of the job not yet claimed)
export const DONE = 2 * LINE; // bumped whenever a shard finishes: the caller sleeps on it
export const ERROR = 3 * LINE; // 0 none, 1 a worker died, 2 a kernel threw
export const ERROR_SLOT = 3 * LINE + 1;
export const READY = 3 * LINE + 2; // workers started and waiting
export const KILL = 3 * LINE + 3; // test hook: 1, the next worker to claim a shard exits; 2, the next to wake for a job
export const MAX_SLOTS = 64;
export const BUSY = 4 * LINE; // BUSY + slot * LINE: 1 while that slot claims or runs shards of a job
export const SCRATCH = BUSY + MAX_SLOTS * LINE; // SCRATCH + slot: that slot's scratch pointer
export const ARGS_BYTE_OFFSET = (SCRATCH + MAX_SLOTS) * 4;
export const MAX_ARGS = 48;
export const MAX_SHARDS = 4095; // CLAIM counts a job's unclaimed shards in 12 bits
// FINISHED + s: the generation whose shard s last finished. The caller waits for
// its own generation in every slot, so a count that went astray (or a shard run
// twice) can neither end a job early nor make the caller wait forever.
export const FINISHED = (ARGS_BYTE_OFFSET + MAX_ARGS * 8) / 4;
export const TRACE_BYTE_OFFSET = Math.ceil(((FINISHED + MAX_SHARDS) * 4) / 8) * 8;
export const CHANNEL_BYTES = TRACE_BYTE_OFFSET + MAX_SHARDS * 24;
export const CLAIM_SHIFT = 12;
export const GEN_MASK = 0x7ffff;

/**
 * The CLAIM word: the job's generation (mod 2^19) over the count of its shards
 * not yet claimed. Claims count it down, so a claim that succeeds took a shard
 * of a job that cannot have ended: the job's fields are still its own. (Counting
 * up to SHARDS instead, a worker a whole job late could compare its stale count
 * with the next job's larger SHARDS while the caller writes that job's fields,
 * and claim a shard of neither.)
 */
export function claimWord(gen, left) {
  return ((gen & GEN_MASK) << CLAIM_SHIFT) | left;
}

/** Microseconds on the monotonic clock that every thread of the process reads alike. */
export function clockUs() {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}

/** The module's function exports in a fixed order: a kernel's index on every thread. */
export function kernelNames(module) {
  return WebAssembly.Module.exports(module)
    .filter((e) => e.kind === 'function')
    .map((e) => e.name);
}

/** The range of shard s: units [floor(s U / S), floor((s + 1) U / S)) of the current job. */
export function shardRange(ch, s) {
  const grain = ch[GRAIN];
  const units = ch[UNITS];
  const shards = ch[SHARDS];
  const begin = Math.floor((s * units) / shards) * grain;
  const end = Math.min(ch[TOTAL], Math.floor(((s + 1) * units) / shards) * grain);
  return { begin, end };
}

/**
 * Claim and run shards of the current job until none is left. Returns normally;
 * a kernel exception is recorded in ERROR (the caller reports it). `trace` is
 * the Float64Array at TRACE_BYTE_OFFSET, written when TRACE is 1.
 */
export function runShards(ch, args, fns, trace, slot, gen) {
  const tag = claimWord(gen, 0);
  const busy = BUSY + slot * LINE;
  // Raised before the first claim, so a caller that closes CLAIM after a failure
  // and then sees BUSY down knows that no claim of this thread is still running.
  Atomics.store(ch, busy, 1);
  try {
    for (;;) {
      const v = Atomics.load(ch, CLAIM);
      if ((v & ~0xfff) !== tag) return;
      const left = v & 0xfff;
      if (left === 0) return;
      if (Atomics.compareExchange(ch, CLAIM, v, v - 1) !== v) continue;
      // The shard was unclaimed until now, so the job is running: its fields below are this generation's.
      const s = ch[SHARDS] - left;
      if (slot !== 0 && Atomics.compareExchange(ch, KILL, 1, 0) === 1) process.exit(70);
      const { begin, end } = shardRange(ch, s);
      const argc = ch[ARGC];
      const a = new Array(argc + 3);
      for (let i = 0; i < argc; i++) a[i] = args[i];
      a[argc] = begin;
      a[argc + 1] = end;
      a[argc + 2] = ch[SCRATCH + slot];
      const start = ch[TRACE] === 1 ? clockUs() : 0;
      try {
        fns[ch[KERNEL]](...a);
      } catch {
        Atomics.store(ch, ERROR_SLOT, slot);
        Atomics.store(ch, ERROR, 2);
      }
      if (start !== 0) {
        trace[3 * s] = slot;
        trace[3 * s + 1] = start;
        trace[3 * s + 2] = clockUs();
      }
      Atomics.store(ch, FINISHED + s, gen);
      Atomics.add(ch, DONE, 1);
      Atomics.notify(ch, DONE);
    }
  } finally {
    Atomics.store(ch, busy, 0);
  }
}
