/**
 * `npm run bench [-- --workloads W1,W7 --threads 1,2]`: the workloads of
 * ../shared/WORKLOADS.md, one JSON line per (workload, threads); BN6D/BN6S
 * (bench/convrnn.ts) are ConvRNN training steps of the model zoo; DISPATCH
 * (bench/dispatch.ts) prints one line per case; PEAK is the f32x4 multiply
 * and add rate one core of this machine sustains, the ceiling of the others'
 * GFLOP/s per thread (separate multiply and add, as every kernel here).
 * `npm run bench -- --profile [--threads 1,2]`: where one W7 step spends its
 * time (bench/profile.ts), each thread count in a fresh process so that its
 * peak RSS is its own.
 * `npm run bench -- --scaling [--rounds 7] --workloads W1,W7 --threads 1,2`:
 * speedups over the first thread count, one JSON line per workload (see scaling).
 * `npm run bench -- --trace --threads 1,2`: each kernel of one W7 step, its
 * threads' work and idle time (bench/trace.ts).
 * `npm run bench -- --bits --threads 1,2,16`: a SHA-256 of one W7 step's loss
 * and gradients at each thread count, to check on any machine that they are
 * the same bytes (the tests check 1, 2 and 3 threads); exits 1 if not.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  conv2d, conv2dBackpropInput, conv2dBackpropFilter, depthwiseConv2d, gateBlend, add, valueAndGrad, grad,
  randn, tensor, scope, split, key, setThreads, startThreads, dispose, sum, mul, leaves, type Tensor,
} from '../src/index.js';
import { K } from '../src/tensor/kernels.js';
import { time, emit, rate, round, median } from './harness.js';
import { w7Init, w7Loss, w7Logits, w7Flops, w7Training } from './w7.js';
import { dispatchBench } from './dispatch.js';
import { baseNetStep } from './convrnn.js';
import { w7Setup, profileW7, printProfile } from './profile.js';
import { traceW7, printTraces, type StepTrace } from './trace.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const ALL = ['PEAK', 'W1', 'W2', 'W3', 'W4', 'W5a', 'W5b', 'W5c', 'W6', 'W7', 'W7f', 'BN6D', 'BN6S', 'OP', 'DISPATCH'];
const workloads = arg('workloads', ALL.join(',')).split(',');
const threadCounts = arg('threads', '1').split(',').map(Number);
const [k1, k2, k3, k4, k5] = split(key(0), 5);

const conv3 = { padding: 'same' as const };
const W1 = { flops: 2 * 16 * 32 * 32 * 64 * 64 * 9 };

type Workload = (threads: number) => Record<string, unknown> | Promise<Record<string, unknown>[]>;
const defs: Record<string, Workload> = {
  // One core whatever the thread count: 6 multiply and 6 add chains in registers (assembly/probe.ts).
  PEAK: () => {
    const steps = 2_000_000;
    const m = time(() => void K.simd_peak(steps, 0.9999999, 1e-7));
    return { ...m, ...rate(m, { flops: 48 * steps }) };
  },
  W1: () => {
    const x = randn(k1, [16, 32, 32, 64]), w = randn(k2, [3, 3, 64, 64]);
    const m = time(() => scope(() => void conv2d(x, w, conv3)));
    dispose([x, w]);
    return { ...m, ...rate(m, W1) };
  },
  W2: () => {
    const x = randn(k1, [16, 64, 64, 3]), w = randn(k2, [7, 7, 3, 32]);
    const m = time(() => scope(() => void conv2d(x, w, { stride: 2, padding: 'same' })));
    dispose([x, w]);
    return { ...m, ...rate(m, { flops: 2 * 16 * 32 * 32 * 32 * 3 * 49 }) };
  },
  W3: () => {
    const x = randn(k1, [16, 32, 32, 128]), w = randn(k2, [3, 3, 128, 1]);
    const m = time(() => scope(() => void depthwiseConv2d(x, w, conv3)));
    dispose([x, w]);
    return { ...m, ...rate(m, { flops: 2 * 16 * 32 * 32 * 128 * 9 }) };
  },
  W4: () => {
    const x = randn(k1, [16, 16, 16, 256]), w = randn(k2, [1, 1, 256, 256]);
    const m = time(() => scope(() => void conv2d(x, w, conv3)));
    dispose([x, w]);
    return { ...m, ...rate(m, { flops: 2 * 16 * 16 * 16 * 256 * 256 }) };
  },
  W5a: () => {
    const dy = randn(k1, [16, 32, 32, 64]), w = randn(k2, [3, 3, 64, 64]);
    const m = time(() => scope(() => void conv2dBackpropInput(dy, w, [16, 32, 32, 64], conv3)));
    dispose([dy, w]);
    return { ...m, ...rate(m, W1) };
  },
  W5b: () => {
    const x = randn(k1, [16, 32, 32, 64]), dy = randn(k2, [16, 32, 32, 64]);
    const m = time(() => scope(() => void conv2dBackpropFilter(x, dy, [3, 3, 64, 64], conv3)));
    dispose([x, dy]);
    return { ...m, ...rate(m, W1) };
  },
  W5c: () => {
    const x = randn(k1, [16, 32, 32, 64]), w = randn(k2, [3, 3, 64, 64]), r = randn(k3, [16, 32, 32, 64]);
    // Forward and both gradients: the loss <conv(x, w), r> has dy = r.
    const f = (x: Tensor, w: Tensor) => sum(mul(conv2d(x, w, conv3), r));
    const m = time(() => scope(() => void grad(f, [0, 1])(x, w)));
    dispose([x, w, r]);
    return { ...m, ...rate(m, { flops: 3 * W1.flops }) };
  },
  W6: () => {
    const n = 4_194_304;
    const [a, b, c, d] = [k1, k2, k3, k4].map((k) => randn(k, [n]));
    const m = time(() => scope(() => void gateBlend(a, b, c, d)));
    dispose([a, b, c, d]);
    return { ...m, ...rate(m, { bytes: 5 * 4 * n }) };
  },
  W7: () => {
    const { params, x, labels, B, T } = w7Setup();
    const training = w7Training(params, x, labels, T);
    const losses: number[] = [];
    const m = time(() => void losses.push(training.step()), { minSeconds: 0 });
    training.dispose();
    x.dispose();
    return { ...m, ...rate(m, { flops: w7Flops(B, T).train }), conv_train_gflop: round(w7Flops(B, T).train / 1e9, 3),
      loss_first: round(losses[0], 4), loss_last: round(losses[losses.length - 1], 4) };
  },
  W7f: () => {
    const B = 32, T = 8;
    const p = w7Init(k5);
    const x = randn(k1, [B, 32, 32, 3]);
    const m = time(() => scope(() => void w7Logits(p, x, T)), { minSeconds: 0 });
    dispose([p, x]);
    return { ...m, ...rate(m, { flops: w7Flops(B, T).forward }) };
  },
  // BaseNet-6 (1/8 width) with RGC cells, T = 16, batch 32, 64x64: conduction delays and standard unrolling.
  BN6D: () => baseNetStep('delays'),
  BN6S: () => baseNetStep('standard'),
  // Per-op overhead of the TypeScript layer: tensor creation + tape record on tiny tensors.
  OP: () => {
    const a = tensor([1, 2, 3, 4]), b = tensor([5, 6, 7, 8]);
    const n = 2000;
    const plain = time(() => scope(() => { for (let i = 0; i < n; i++) add(a, b); }));
    const traced = time(() => void grad((a: Tensor) => { let s = a; for (let i = 0; i < n; i++) s = add(s, b); return sum(s); })(a));
    dispose([a, b]);
    return { ...plain, us_per_op: round((plain.median_ms * 1000) / n, 3),
      us_per_op_recorded_plus_its_backward: round((traced.median_ms * 1000) / n, 3) };
  },
  DISPATCH: (threads) => dispatchBench(threads),
};

if (process.argv.includes('--profile')) {
  for (const t of threadCounts) {
    if (threadCounts.length === 1) {
      setThreads(t);
      printProfile(profileW7());
    } else {
      const r = spawnSync(process.execPath, [process.argv[1], '--profile', '--threads', String(t)], { stdio: 'inherit' });
      if (r.status !== 0) process.exit(r.status ?? 1);
    }
  }
  process.exit(0);
}

/**
 * Speedups measured so that a shared host's drifting load cancels: every round
 * runs the workload at each thread count in turn, and each round's speedups are
 * taken against that round's own time at the first thread count; the line
 * reports the median over rounds (and every round's), and the ratios of the
 * best rounds (another tenant's load only ever slows a round down). Measured
 * one after the other, minutes apart, the same 2-thread ratio swung between
 * 1.0x and 2.0x here.
 */
async function scaling(rounds: number): Promise<void> {
  for (const w of workloads) {
    const def = defs[w];
    if (def === undefined) throw new Error(`unknown workload ${w}; known: ${ALL.join(', ')}`);
    const ms: number[][] = threadCounts.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (const [i, t] of threadCounts.entries()) {
        setThreads(t);
        await startThreads();
        const result = await def(t);
        if (Array.isArray(result)) throw new Error(`--scaling: ${w} reports several cases; pick workloads with one`);
        ms[i].push(result.median_ms as number);
      }
    }
    const perRound = threadCounts.map((_, i) => ms[0].map((first, r) => round(first / ms[i][r], 3)));
    const best = ms.map((m) => Math.min(...m));
    emit({
      workload: w, mode: 'scaling', threads: threadCounts, rounds, median_ms: ms.map((m) => round(median(m))), best_ms: best.map((b) => round(b)),
      speedup: perRound.map((s) => round(median(s), 3)), speedup_of_best: best.map((b) => round(best[0] / b, 3)), speedup_per_round: perRound,
    });
  }
}

/** One W7 step's loss and gradients, hashed at each thread count. */
async function bits(): Promise<boolean> {
  const { params, x, labels, T } = w7Setup();
  const digests: string[] = [];
  for (const t of threadCounts) {
    setThreads(t);
    await startThreads(); // every worker takes part from the first kernel
    const h = createHash('sha256');
    scope(() => {
      const [loss, g] = valueAndGrad((q: typeof params) => w7Loss(q, x, labels, T))(params);
      for (const leaf of leaves([loss, g])) {
        const a = leaf.toArray();
        h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      }
    });
    digests.push(h.digest('hex'));
  }
  const identical = new Set(digests).size === 1;
  emit({ workload: 'W7', mode: 'bits', threads: threadCounts, sha256: digests, identical });
  return identical;
}

if (process.argv.includes('--bits')) process.exit((await bits()) ? 0 : 1);

if (process.argv.includes('--trace')) {
  const traces: StepTrace[] = [];
  for (const t of threadCounts) traces.push(await traceW7(t));
  printTraces(traces);
  process.exit(0);
}

if (process.argv.includes('--scaling')) {
  const rounds = Number(arg('rounds', '7'));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${arg('rounds', '7')}`);
  await scaling(rounds);
  process.exit(0);
}

for (const t of threadCounts) {
  setThreads(t);
  await startThreads(); // measure t threads, not the caller alone while workers start
  for (const w of workloads) {
    const def = defs[w];
    if (def === undefined) throw new Error(`unknown workload ${w}; known: ${ALL.join(', ')}`);
    const result = await def(t);
    for (const record of Array.isArray(result) ? result : [result]) emit({ workload: w, threads: t, ...record });
  }
}
