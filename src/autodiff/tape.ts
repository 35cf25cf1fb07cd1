/**
 * Reverse-mode autodiff as function transformations over pure functions of
 * pytrees. While a function runs under `grad`, every primitive application
 * with a traced input is recorded on a tape; the backward pass walks the tape
 * once in reverse, calling each primitive's vjp. Backpropagation through time
 * is nothing special: an unrolled loop is recorded like any other code.
 *
 * Memory: cotangents are reference-counted during the backward pass and freed
 * as soon as nothing needs them. So are the forward values the traced function
 * made and did not return: each is freed once no tape node that is still to be
 * processed lists it as an input or output, so the backward pass frees the
 * activations of late steps while it makes the cotangents of earlier ones.
 * Arguments, tensors made before the trace and everything f returns are never
 * freed here; a view shares its block by reference count, so freeing a tensor
 * never frees the memory of a view that is still in use.
 */
import { observe, type Rule } from '../tensor/primitive.js';
import { Tensor, scope, nextTensorId, checkTensor } from '../tensor/tensor.js';
import { leaves, unflatten } from '../tensor/tree.js';
import { ValueError, ShapeError, describe } from '../tensor/errors.js';
import { ones, zeros } from '../tensor/create.js';
import { add } from '../tensor/ops/binary.js';

interface Node {
  readonly rule: Rule<any>;
  readonly inputs: readonly Tensor[];
  readonly params: unknown;
  readonly out: Tensor;
}

class Tape {
  readonly nodes: Node[] = [];
  readonly traced = new Set<Tensor>();
  /** Tensors with ids in [firstId, endId) were made while the function ran. */
  readonly firstId = nextTensorId();
  endId = 0; // set when the function returns
}

let tracing = false;

/** Run `fn` recording every primitive that reads a traced tensor. */
function trace<T>(fn: () => T, inputs: readonly Tensor[], caller: string): [T, Tape] {
  if (tracing) {
    throw new ValueError(
      `${caller}: nested differentiation (a gradient inside a function being differentiated, e.g. grad(grad(f))) is not supported`,
    );
  }
  const tape = new Tape();
  for (const t of inputs) tape.traced.add(t);
  const prev = observe((rule, ins, params, out) => {
    for (const t of ins) {
      if (tape.traced.has(t)) {
        tape.nodes.push({ rule, inputs: ins, params, out });
        tape.traced.add(out);
        return;
      }
    }
  });
  tracing = true;
  try {
    return [fn(), tape];
  } finally {
    tape.endId = nextTensorId();
    tracing = false;
    observe(prev);
  }
}

/**
 * For each tensor the traced function made (indexed by id − firstId), the
 * number of tape nodes that list it as an input or output; −1 for those in
 * `keep` (f's results), which are never freed.
 */
function forwardUses(tape: Tape, keep: ReadonlySet<Tensor>): Int32Array {
  const uses = new Int32Array(tape.endId - tape.firstId);
  const count = (t: Tensor): void => {
    if (t.id >= tape.firstId && t.id < tape.endId) uses[t.id - tape.firstId]++;
  };
  for (const node of tape.nodes) {
    for (const x of node.inputs) count(x);
    count(node.out);
  }
  for (const t of keep) if (t.id >= tape.firstId && t.id < tape.endId) uses[t.id - tape.firstId] = -1;
  return uses;
}

/**
 * Cotangents of `wrt` given cotangents `seeds` of `outs`; zeros where a tensor
 * does not reach the outputs. Frees the forward values the function made as
 * soon as no remaining node needs them, except those in `keep` (f's results).
 */
function backward(
  tape: Tape,
  outs: readonly Tensor[],
  seeds: readonly Tensor[],
  wrt: readonly Tensor[],
  keep: ReadonlySet<Tensor>,
): Tensor[] {
  const firstNew = nextTensorId(); // tensors below this id are not cotangents made here
  const ct = new Map<Tensor, Tensor>();
  const holds = new Map<Tensor, number>();
  const hold = (t: Tensor): void => void holds.set(t, (holds.get(t) ?? 0) + 1);
  const release = (t: Tensor): void => {
    const n = (holds.get(t) ?? 0) - 1;
    if (n > 0) return void holds.set(t, n);
    holds.delete(t);
    if (t.id >= firstNew) t.dispose();
  };
  const accumulate = (x: Tensor, g: Tensor): void => {
    const prev = ct.get(x);
    if (prev === undefined) {
      ct.set(x, g);
      hold(g);
      return;
    }
    const sum = add(prev, g);
    ct.set(x, sum);
    hold(sum);
    release(prev);
    hold(g);
    release(g);
  };
  const uses = forwardUses(tape, keep);
  const used = (t: Tensor): void => {
    if (t.id < tape.firstId || t.id >= tape.endId) return;
    // A vjp may hand a forward value on as a cotangent; then the scope frees it.
    if (--uses[t.id - tape.firstId] === 0 && !holds.has(t)) t.dispose();
  };

  outs.forEach((o, i) => tape.traced.has(o) && accumulate(o, seeds[i]));
  for (let i = tape.nodes.length - 1; i >= 0; i--) {
    const node = tape.nodes[i];
    const g = ct.get(node.out);
    if (g !== undefined) {
      ct.delete(node.out);
      const needs = node.inputs.map((x) => tape.traced.has(x));
      const grads = node.rule.vjp(g, node.inputs, node.out, node.params, needs);
      for (let j = 0; j < node.inputs.length; j++) {
        const x = node.inputs[j];
        const gx = grads[j];
        if (gx === null || gx === undefined) continue;
        if (!sameShape(gx.shape, x.shape)) {
          throw new ShapeError(
            `internal: vjp of ${node.rule.name} returned a cotangent of shape [${gx.shape}] for input ${j} of shape [${x.shape}]`,
          );
        }
        if (tape.traced.has(x)) accumulate(x, gx);
        else {
          hold(gx);
          release(gx);
        }
      }
      release(g);
    }
    for (const x of node.inputs) used(x);
    used(node.out);
  }
  // One tensor object per result, so a caller may dispose each independently.
  const seen = new Set<Tensor>();
  return wrt.map((w) => {
    const g = ct.get(w);
    if (g === undefined) return zeros(w.shape);
    if (seen.has(g)) return g.view(g.shape);
    seen.add(g);
    return g;
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkArgs(caller: string, args: readonly unknown[], argnums: readonly number[]): void {
  for (const i of argnums) {
    if (!Number.isInteger(i) || i < 0 || i >= args.length) {
      throw new ValueError(`${caller}: argnums entry ${describe(i)} is out of range for ${args.length} arguments`);
    }
    const ls = leaves(args[i]);
    if (ls.length === 0) throw new ValueError(`${caller}: argument ${i} holds no tensors to differentiate`);
    ls.forEach((t, j) => checkTensor(caller, `argument ${i} (leaf ${j})`, t));
  }
}

function scalarOutput(caller: string, value: unknown): Tensor {
  if (!(value instanceof Tensor) || value.size !== 1) {
    throw new ValueError(`${caller}: f must return a scalar tensor (one element), got ${describe(value)}`);
  }
  return value;
}

export interface GradOptions {
  /** f returns [loss, aux]; aux is returned alongside and not differentiated. */
  hasAux?: boolean;
}

type Grads<A extends unknown[], N> = N extends number ? A[N] : { [K in keyof N]: N[K] extends number ? A[N[K]] : never };

/**
 * `valueAndGrad(f, argnums)(...args)` returns `[value, grads]`: f's scalar value
 * and the gradient with respect to argument `argnums` (a pytree like it), or a
 * tuple of gradients when `argnums` is an array. With `{ hasAux: true }`, f
 * returns `[loss, aux]` and the value is `[loss, aux]`.
 */
export function valueAndGrad<A extends unknown[], N extends number | readonly number[] = 0>(
  f: (...args: A) => unknown,
  argnums: N = 0 as N,
  opts: GradOptions = {},
): (...args: A) => [any, Grads<A, N>] {
  const nums: number[] = typeof argnums === 'number' ? [argnums] : [...(argnums as readonly number[])];
  return (...args: A) => {
    checkArgs('valueAndGrad', args, nums);
    return scope(() => {
      const wrtTrees = nums.map((i) => args[i]);
      const wrt = wrtTrees.flatMap((t) => leaves(t));
      const [result, tape] = trace(() => f(...args), wrt, 'valueAndGrad');
      let loss: Tensor;
      if (opts.hasAux) {
        if (!Array.isArray(result) || result.length !== 2) {
          throw new ValueError(`valueAndGrad: with hasAux, f must return [loss, aux], got ${describe(result)}`);
        }
        loss = scalarOutput('valueAndGrad', result[0]);
      } else loss = scalarOutput('valueAndGrad', result);
      const seed = ones(loss.shape);
      const flat = backward(tape, [loss], [seed], wrt, new Set(leaves(result)));
      let at = 0;
      const trees = wrtTrees.map((t) => {
        const n = leaves(t).length;
        return unflatten(t, flat.slice(at, (at += n)));
      });
      const grads = typeof argnums === 'number' ? trees[0] : trees;
      return [result, grads] as [any, Grads<A, N>];
    });
  };
}

/** `grad(f, argnums)(...args)`: the gradient of scalar-valued f (see valueAndGrad). */
export function grad<A extends unknown[], N extends number | readonly number[] = 0>(
  f: (...args: A) => unknown,
  argnums: N = 0 as N,
  opts: GradOptions = {},
): (...args: A) => Grads<A, N> {
  const vg = valueAndGrad(f, argnums, opts);
  return (...args: A) => {
    const [value, grads] = vg(...args);
    for (const t of leaves(value)) t.dispose();
    return grads;
  };
}

/**
 * `vjp(f, ...args)` returns `[out, pullback]`: f's output (any pytree) and a
 * function from a cotangent pytree shaped like `out` to the cotangents of all
 * arguments. The recorded intermediates stay alive until `pullback` runs (once),
 * which frees them, and the tensors f made that they were computed from, as the
 * backward pass leaves them behind; f's outputs stay. Run both inside a `scope`
 * to free everything else.
 */
export function vjp<A extends unknown[], R>(f: (...args: A) => R, ...args: A): [R, (cotangent: R) => A] {
  checkArgs('vjp', args, args.map((_, i) => i).filter((i) => leaves(args[i]).length > 0));
  const wrt = args.flatMap((a) => leaves(a));
  const [out, tape] = trace(() => f(...args), wrt, 'vjp');
  const outs = leaves(out);
  let used = false;
  const pullback = (cotangent: R): A => {
    if (used) throw new ValueError('vjp: the pullback can be called only once (it frees what it recorded)');
    used = true;
    const seeds = leaves(cotangent);
    if (seeds.length !== outs.length) {
      throw new ShapeError(`vjp: cotangent has ${seeds.length} tensors, the output has ${outs.length}`);
    }
    seeds.forEach((s, i) => {
      checkTensor('vjp', `cotangent leaf ${i}`, s);
      if (!sameShape(s.shape, outs[i].shape)) {
        throw new ShapeError(`vjp: cotangent leaf ${i} has shape [${s.shape}], the output leaf has [${outs[i].shape}]`);
      }
    });
    const keep = new Set(outs);
    const flat = backward(tape, outs, seeds, wrt, keep);
    for (const node of tape.nodes) if (!keep.has(node.out)) node.out.dispose();
    let at = 0;
    return args.map((a) => unflatten(a, flat.slice(at, (at += leaves(a).length)))) as A;
  };
  return [out, pullback];
}

/** The same values, cut off from differentiation (a view; no copy). */
export function stopGradient(x: Tensor): Tensor {
  checkTensor('stopGradient', 'x', x);
  return x.view(x.shape);
}
