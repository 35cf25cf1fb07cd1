/**
 * Loads build/kernels.wasm (compiled from assembly/) synchronously onto the
 * shared heap. Node compiles modules of any size synchronously, so the library
 * needs no async initialisation.
 */
import { readFileSync, existsSync } from 'node:fs';
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

export const kernelsPath = wasmPath();
/** The compiled module, shared with worker threads (each instantiates it on `memory`). */
export const kernelModule = new WebAssembly.Module(readFileSync(kernelsPath));
const instance = new WebAssembly.Instance(kernelModule, { env: { memory } });
/** The kernels, called with byte offsets into the shared heap. */
export const K = instance.exports as unknown as Kernels;
initHeap(K.heapBase());
