/**
 * Loads build/kernels.wasm (compiled from assembly/) synchronously onto the
 * shared heap. Node compiles modules of any size synchronously, so the library
 * needs no async initialisation.
 *
 * Every kernel is optimized from the start. By default V8 compiles each wasm
 * function on its first call with its baseline tier (Liftoff, 2-6x slower on
 * these kernels) and optimizes it (TurboFan) only once it has run hot for a
 * while, so the first several calls of each kernel (the first training steps)
 * ran slowly. Here the module is compiled with dynamic tiering and lazy
 * compilation off: every function gets baseline code at once (a few ms) and
 * V8 starts optimizing all of them on its background threads right away
 * (~0.1-0.2 s of CPU); calls in that window run baseline code. The flags are
 * process-wide, so they are set for this one compile and put back to Node's
 * defaults; a user who sets any of them on the command line keeps them. Worker
 * threads receive the compiled module and share its optimized code.
 */
import { readFileSync, existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { instantiate } from '../../build/kernels.js';
import { memory, initHeap } from './heap.js';

export type Kernels = Awaited<ReturnType<typeof instantiate>>;

/** The package root: the nearest ancestor of this file that holds build/kernels.wasm. */
function wasmPath(): string {
  if (process.env.CONVRNN_WASM) return process.env.CONVRNN_WASM;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'build', 'kernels.wasm');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('convrnn: build/kernels.wasm not found; run `npm run build:wasm`');
    dir = parent;
  }
}

/** Compile `bytes` with every function optimized in the background from the start (see above). */
function compileEager(bytes: BufferSource): WebAssembly.Module {
  const userFlags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/liftoff|wasm-lazy-compilation|wasm-dynamic-tiering|wasm-tier/.test(userFlags)) return new WebAssembly.Module(bytes);
  setFlagsFromString('--no-wasm-dynamic-tiering');
  setFlagsFromString('--no-wasm-lazy-compilation');
  try {
    return new WebAssembly.Module(bytes);
  } finally {
    setFlagsFromString('--wasm-dynamic-tiering');
    setFlagsFromString('--wasm-lazy-compilation');
  }
}

export const kernelsPath = wasmPath();
/** The compiled module, shared with worker threads (each instantiates it on `memory`). */
export const kernelModule = compileEager(readFileSync(kernelsPath));
const instance = new WebAssembly.Instance(kernelModule, { env: { memory } });
/** The kernels, called with byte offsets into the shared heap. */
export const K = instance.exports as unknown as Kernels;
initHeap(K.heapBase());
