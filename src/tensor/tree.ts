/**
 * Pytrees: nested arrays and plain objects whose leaves are tensors (or other
 * values, carried along untouched). Params, optimizer state and gradients are
 * pytrees, so they can be mapped, counted, saved and compared without classes.
 */
import { Tensor } from './tensor.js';

export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** The tensors of a pytree, depth-first, object keys in insertion order. */
export function leaves(tree: unknown, out: Tensor[] = []): Tensor[] {
  if (isTensor(tree)) out.push(tree);
  else if (Array.isArray(tree)) for (const x of tree) leaves(x, out);
  else if (isPlainObject(tree)) for (const k in tree) leaves(tree[k], out);
  return out;
}

/** A pytree of the same structure with every tensor replaced by `fn(tensor, path)`. */
export function mapTree<T>(tree: T, fn: (t: Tensor, path: string) => unknown, path = ''): T {
  if (isTensor(tree)) return fn(tree, path) as T;
  if (Array.isArray(tree)) return tree.map((x, i) => mapTree(x, fn, path === '' ? String(i) : `${path}.${i}`)) as T;
  if (isPlainObject(tree)) {
    const out: Record<string, unknown> = {};
    for (const k in tree) out[k] = mapTree(tree[k], fn, path === '' ? k : `${path}.${k}`);
    return out as T;
  }
  return tree;
}

/** Replace the tensors of `tree`, in `leaves` order, by `values`. */
export function unflatten<T>(tree: T, values: readonly unknown[]): T {
  let i = 0;
  const out = mapTree(tree, () => values[i++]);
  if (i !== values.length) throw new Error(`unflatten: tree has ${i} tensors, got ${values.length} values`);
  return out;
}
