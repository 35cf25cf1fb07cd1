// The supervisor thread owns the Piscina pool of kernel workers. The calling
// thread blocks in Atomics.wait while a job runs, so it cannot see a worker
// exit; this thread's event loop can: it starts a replacement and, when the
// worker died inside a job, flags the death in the control block and wakes the caller.
import { workerData } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ERROR, ERROR_SLOT, BUSY, LINE, DONE, EXIT, GEN } from './channel.js';

const { module, memory, channel, workers } = workerData;
const ch = new Int32Array(channel);
const pool = new Piscina({
  filename: new URL('./worker.js', import.meta.url).href,
  minThreads: workers,
  maxThreads: workers,
  idleTimeout: 2 ** 31 - 1,
  concurrentTasksPerWorker: 1,
});

function start(slot) {
  pool.run({ module, memory, channel, slot }).then(
    () => {},
    () => {
      if (Atomics.load(ch, EXIT) === 1) return;
      // A worker that died between jobs held no shard: replace it, fail nothing.
      if (Atomics.exchange(ch, BUSY + slot * LINE, 0) === 1) {
        Atomics.store(ch, ERROR_SLOT, slot);
        Atomics.store(ch, ERROR, 1);
        Atomics.notify(ch, DONE);
      }
      start(slot);
    },
  );
}

for (let slot = 1; slot <= workers; slot++) start(slot);

// Stop when asked: EXIT is set and GEN bumped by the calling thread.
const stop = setInterval(() => {
  if (Atomics.load(ch, EXIT) === 1) {
    clearInterval(stop);
    Atomics.add(ch, GEN, 1);
    Atomics.notify(ch, GEN);
    pool.destroy();
  }
}, 20);
