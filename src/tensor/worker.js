// A kernel worker: instantiates the kernels on the shared memory, then waits
// for jobs on the control block and claims shards until told to exit. It runs
// as one long Piscina task; the task ends only when the pool shuts down.
import { GEN, EXIT, KILL, READY, SPIN, ARGS_BYTE_OFFSET, MAX_ARGS, TRACE_BYTE_OFFSET, MAX_SHARDS, kernelNames, runShards } from './channel.js';

export default function kernelWorker({ module, memory, channel, slot }) {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const fns = kernelNames(module).map((name) => instance.exports[name]);
  const ch = new Int32Array(channel);
  const args = new Float64Array(channel, ARGS_BYTE_OFFSET, MAX_ARGS);
  const trace = new Float64Array(channel, TRACE_BYTE_OFFSET, 3 * MAX_SHARDS);
  let seen = Atomics.load(ch, GEN);
  Atomics.add(ch, READY, 1);
  for (;;) {
    // Spin briefly (a wake-up from sleep costs 6-14 us; a spinning worker sees a job in < 1 us), then sleep.
    const spin = ch[SPIN];
    let i = 0;
    while (Atomics.load(ch, GEN) === seen && i < spin) i++;
    if (Atomics.load(ch, GEN) === seen) Atomics.wait(ch, GEN, seen);
    seen = Atomics.load(ch, GEN);
    if (Atomics.load(ch, EXIT) === 1) return 'exit';
    if (Atomics.load(ch, KILL) === 2 && Atomics.compareExchange(ch, KILL, 2, 0) === 2) process.exit(70);
    runShards(ch, args, fns, trace, slot, seen);
  }
}
