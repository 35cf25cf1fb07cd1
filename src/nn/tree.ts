/**
 * Parameter pytrees by name. A params tree (also gradients, optimizer state)
 * is nested plain objects and arrays whose leaves are tensors; each tensor has
 * a stable dotted name built from its path: object keys and array indices
 * joined by '.', e.g. `cell1.sh.w` or `layers.0.b`. Names are what checkpoints
 * store and what optimizers use to pair a parameter with its gradient, so two
 * trees with the same names pair up even when their keys were inserted in a
 * different order.
 *
 * Rules: object keys must be non-empty and contain no '.'; a key whose value
 * is `undefined` counts as absent (an optional bias left out); any other
 * non-tensor leaf (a number, a string, null, a class instance) is an error.
 */
import { Tensor, checkTensor } from '../tensor/tensor.js';
import { ShapeError, ValueError, describe } from '../tensor/errors.js';

/** A pytree of tensors. */
export type ParamTree = Tensor | readonly ParamTree[] | { readonly [name: string]: ParamTree | undefined };

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

const join = (path: string, part: string): string => (path === '' ? part : `${path}.${part}`);
const where = (path: string): string => (path === '' ? 'the root' : JSON.stringify(path));

/** Visit every tensor of `tree` with its dotted name, depth-first, keys in insertion order. */
function walk(fn: string, tree: unknown, visit: (t: Tensor, name: string) => void, path = ''): void {
  if (tree instanceof Tensor) return visit(tree, path);
  if (Array.isArray(tree)) {
    tree.forEach((x, i) => walk(fn, x, visit, join(path, String(i))));
    return;
  }
  if (isPlainObject(tree)) {
    for (const k of Object.keys(tree)) {
      if (k === '' || k.includes('.')) {
        throw new ValueError(`${fn}: key ${JSON.stringify(k)} at ${where(path)} must be non-empty and contain no '.'`);
      }
      if (tree[k] !== undefined) walk(fn, tree[k], visit, join(path, k));
    }
    return;
  }
  throw new ValueError(`${fn}: the leaf at ${where(path)} must be a Tensor (or a nested object or array of them), got ${describe(tree)}`);
}

/**
 * The tensors of `tree` by dotted name, in depth-first order (a bare tensor
 * is named ''). The map holds the same tensor objects: nothing is copied.
 */
export function flattenParams(tree: unknown): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  walk('flattenParams', tree, (t, name) => {
    out.set(name, t);
  });
  return out;
}

/** The dotted names of `tree`'s tensors, in flattenParams order. */
export function paramNames(tree: unknown): string[] {
  return [...flattenParams(tree).keys()];
}

/**
 * A tree shaped like `template` whose tensor at each name is `named`'s tensor
 * of that name (the objects themselves, not copies). Every name of the
 * template must be present with the template tensor's shape, and `named` must
 * hold no other names.
 */
export function unflattenParams<T>(named: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>, template: T): T {
  const fn = 'unflattenParams';
  const map: ReadonlyMap<string, Tensor> = named instanceof Map ? named : new Map(Object.entries(named as Record<string, Tensor>));
  const used = new Set<string>();
  const build = (node: unknown, path: string): unknown => {
    if (node instanceof Tensor) {
      const t = map.get(path);
      if (t === undefined) throw new ValueError(`${fn}: no tensor named ${JSON.stringify(path)} (the template has one of shape [${node.shape.join(', ')}])`);
      checkTensor(fn, `tensor ${JSON.stringify(path)}`, t);
      if (!sameShape(t.shape, node.shape)) {
        throw new ShapeError(`${fn}: tensor ${JSON.stringify(path)} has shape [${t.shape.join(', ')}], the template has [${node.shape.join(', ')}]`);
      }
      used.add(path);
      return t;
    }
    if (Array.isArray(node)) return node.map((x, i) => build(x, join(path, String(i))));
    if (isPlainObject(node)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(node)) {
        if (k === '' || k.includes('.')) {
          throw new ValueError(`${fn}: template key ${JSON.stringify(k)} at ${where(path)} must be non-empty and contain no '.'`);
        }
        out[k] = node[k] === undefined ? undefined : build(node[k], join(path, k));
      }
      return out;
    }
    throw new ValueError(`${fn}: the template leaf at ${where(path)} must be a Tensor, got ${describe(node)}`);
  };
  const out = build(template, '') as T;
  for (const name of map.keys()) {
    if (!used.has(name)) throw new ValueError(`${fn}: tensor ${JSON.stringify(name)} has no place in the template`);
  }
  return out;
}

/** The number of scalars in all of `tree`'s tensors. */
export function countParams(tree: unknown): number {
  let n = 0;
  walk('countParams', tree, (t) => {
    n += t.size;
  });
  return n;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * True when `a` and `b` hold the same names with tensors of the same shapes
 * and the same bits (compared as 32-bit words: -0 differs from 0, NaNs of
 * different payloads differ). Key order does not matter.
 */
export function treeEqual(a: unknown, b: unknown): boolean {
  const fa = flattenParams(a);
  const fb = flattenParams(b);
  if (fa.size !== fb.size) return false;
  for (const [name, ta] of fa) {
    const tb = fb.get(name);
    if (tb === undefined || !sameShape(ta.shape, tb.shape)) return false;
    checkTensor('treeEqual', `a.${name}`, ta);
    checkTensor('treeEqual', `b.${name}`, tb);
    const xa = new Uint32Array(ta.toArray().buffer);
    const xb = new Uint32Array(tb.toArray().buffer);
    for (let i = 0; i < xa.length; i++) if (xa[i] !== xb[i]) return false;
  }
  return true;
}

/** Throw unless every tree has exactly the names of `trees[0]`, with the same shapes. */
export function checkSameTree(fn: string, trees: readonly unknown[], labels: readonly string[]): Map<string, Tensor>[] {
  const flats = trees.map((t) => flattenParams(t));
  const [first, ...rest] = flats;
  rest.forEach((f, j) => {
    const label = labels[j + 1] ?? `trees[${j + 1}]`;
    const first0 = labels[0] ?? 'trees[0]';
    for (const [name, t] of first) {
      const u = f.get(name);
      if (u === undefined) throw new ValueError(`${fn}: ${label} has no tensor named ${JSON.stringify(name)} (${first0} has one)`);
      if (!sameShape(t.shape, u.shape)) {
        throw new ShapeError(`${fn}: ${label}.${name} has shape [${u.shape.join(', ')}], ${first0}.${name} has [${t.shape.join(', ')}]`);
      }
    }
    for (const name of f.keys()) {
      if (!first.has(name)) throw new ValueError(`${fn}: ${label} has a tensor named ${JSON.stringify(name)} that ${first0} lacks`);
    }
  });
  return flats;
}

/** A tree shaped like `tree` with each tensor replaced by `fn(tensor, name)`. */
export function treeMap<T>(tree: T, fn: (t: Tensor, name: string) => Tensor): T {
  const flat = flattenParams(tree);
  const out = new Map<string, Tensor>();
  for (const [name, t] of flat) out.set(name, fn(t, name));
  return rebuild(tree, out);
}

/**
 * A tree shaped like `trees[0]` whose tensor at each name is
 * `fn([trees[0][name], trees[1][name], ...], name)`. All trees must hold the
 * same names with the same shapes (ValueError / ShapeError naming the tensor).
 */
export function treeZip<T>(trees: readonly T[], fn: (ts: Tensor[], name: string) => Tensor): T {
  if (!Array.isArray(trees) || trees.length === 0) throw new ValueError(`treeZip: trees must be a non-empty array of pytrees, got ${describe(trees)}`);
  const flats = checkSameTree('treeZip', trees, []);
  const out = new Map<string, Tensor>();
  for (const name of flats[0].keys()) out.set(name, fn(flats.map((f) => f.get(name)!), name));
  return rebuild(trees[0], out);
}

/** `template`'s structure with the tensor at each name taken from `values` (no shape checks: values may differ). */
export function rebuild<T>(template: T, values: ReadonlyMap<string, unknown>): T {
  const build = (node: unknown, path: string): unknown => {
    if (node instanceof Tensor) return values.get(path);
    if (Array.isArray(node)) return node.map((x, i) => build(x, join(path, String(i))));
    if (isPlainObject(node)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(node)) out[k] = node[k] === undefined ? undefined : build(node[k], join(path, k));
      return out;
    }
    return node;
  };
  return build(template, '') as T;
}
