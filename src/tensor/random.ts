/**
 * Counter-based, splittable PRNG: Threefry-2x32 with 20 rounds (Salmon et al.,
 * "Parallel random numbers: as easy as 1, 2, 3", SC 2011), used the way JAX
 * uses it. A key is two 32-bit words; the numbers drawn from a key depend only
 * on the key and the element's index, never on what ran before or on how many
 * threads there are.
 */
import { ValueError, describe } from './errors.js';

/** An immutable PRNG key. Derive new keys with `split` or `foldIn`; never reuse one for two purposes. */
export class Key {
  constructor(readonly k0: number, readonly k1: number) {}
  toJSON(): [number, number] {
    return [this.k0, this.k1];
  }
  toString(): string {
    return `Key(${this.k0}, ${this.k1})`;
  }
}

const ROT_A = [13, 15, 26, 6];
const ROT_B = [17, 29, 16, 24];

/** Threefry-2x32-20 of counter (c0, c1) under key (k0, k1); writes two words to out[at], out[at+1]. */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number, out: Uint32Array, at: number): void {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0;
  let x1 = (c1 + ks[1]) >>> 0;
  for (let group = 0; group < 5; group++) {
    const rot = group % 2 === 0 ? ROT_A : ROT_B;
    for (let r = 0; r < 4; r++) {
      x0 = (x0 + x1) >>> 0;
      x1 = ((x1 << rot[r]) | (x1 >>> (32 - rot[r]))) >>> 0;
      x1 = (x1 ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(group + 1) % 3]) >>> 0;
    x1 = (x1 + ks[(group + 2) % 3] + group + 1) >>> 0;
  }
  out[at] = x0;
  out[at + 1] = x1;
}

// Counter spaces: random bits use (hi(index), lo(index)) with index < 2^53 / 2, so
// c0 stays tiny; derived keys use c1 = 0xffffffff / 0xfffffffe, which bit streams
// would reach only past 2^32 pairs.
const SPLIT_TAG = 0xffffffff;
const FOLD_TAG = 0xfffffffe;

/** A key from an integer seed in [0, 2^53). */
export function key(seed: number): Key {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new ValueError(`key: seed must be an integer in [0, 2^53), got ${describe(seed)}`);
  }
  return new Key(Math.floor(seed / 4294967296) >>> 0, seed >>> 0);
}

function checkKey(fn: string, k: unknown): asserts k is Key {
  if (!(k instanceof Key)) throw new ValueError(`${fn}: key must be a Key (from key(seed) or split), got ${describe(k)}`);
}

/** n independent keys derived from `k`. */
export function split(k: Key, n = 2): Key[] {
  checkKey('split', k);
  if (!Number.isInteger(n) || n < 1) throw new ValueError(`split: n must be a positive integer, got ${describe(n)}`);
  const out = new Uint32Array(2);
  const keys: Key[] = [];
  for (let i = 0; i < n; i++) {
    threefry2x32(k.k0, k.k1, i, SPLIT_TAG, out, 0);
    keys.push(new Key(out[0], out[1]));
  }
  return keys;
}

/** A key derived from `k` and an integer (a step number, a layer index). */
export function foldIn(k: Key, data: number): Key {
  checkKey('foldIn', k);
  if (!Number.isInteger(data) || data < 0 || data > 0xffffffff) {
    throw new ValueError(`foldIn: data must be an integer in [0, 2^32), got ${describe(data)}`);
  }
  const out = new Uint32Array(2);
  threefry2x32(k.k0, k.k1, data, FOLD_TAG, out, 0);
  return new Key(out[0], out[1]);
}

/** n uniformly random 32-bit words; word i depends only on (k, i). */
export function randomBits(k: Key, n: number): Uint32Array {
  checkKey('randomBits', k);
  const out = new Uint32Array(n + (n & 1));
  for (let j = 0; 2 * j < n; j++) threefry2x32(k.k0, k.k1, Math.floor(j / 4294967296), j >>> 0, out, 2 * j);
  return n & 1 ? out.subarray(0, n) : out;
}

/** n floats uniform in [0, 1), 24 random bits each, as float64 (exactly representable in float32). */
export function uniformFloats(k: Key, n: number): Float64Array {
  const bits = randomBits(k, n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (bits[i] >>> 8) * 5.960464477539063e-8;
  return out;
}

/** n standard normal floats (Box–Muller over pairs of words), as float64. */
export function normalFloats(k: Key, n: number): Float64Array {
  const bits = randomBits(k, n + (n & 1));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = ((bits[i] >>> 8) + 0.5) * 5.960464477539063e-8; // in (0, 1): log is finite
    const u2 = (bits[i + 1] >>> 8) * 5.960464477539063e-8;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** A permutation of 0..n-1 (Fisher–Yates driven by the key's bits). */
export function permutation(k: Key, n: number): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new ValueError(`permutation: n must be a non-negative integer, got ${describe(n)}`);
  const bits = randomBits(k, Math.max(n, 1));
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    // Multiply-shift maps 32 bits to [0, i]; the bias is below 2^-32 * n, far under any statistical test.
    const j = Math.floor((bits[i] / 4294967296) * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
