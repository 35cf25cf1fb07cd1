/**
 * A primitive is one forward kernel call plus its vector-Jacobian product,
 * defined side by side in its op file (src/tensor/ops/*.ts). The type makes a
 * primitive without a vjp a compile error. `apply` runs the forward and lets
 * an observer (the autodiff tape) see the application; this layer itself knows
 * nothing about tapes.
 */
import type { Tensor } from './tensor.js';

export interface Rule<P = void> {
  readonly name: string;
  /** Compute the output from already-validated inputs: one kernel call. */
  forward(inputs: readonly Tensor[], params: P): Tensor;
  /**
   * Cotangents of the inputs given the output's cotangent `g`; null where an
   * input takes no gradient (integer labels, a mask). `needs[i]` is false when
   * nothing downstream wants input i's cotangent (a constant, the image): a
   * rule may return null there and skip the work.
   */
  vjp(g: Tensor, inputs: readonly Tensor[], out: Tensor, params: P, needs: readonly boolean[]): readonly (Tensor | null)[];
}

export type Observer = (rule: Rule<any>, inputs: readonly Tensor[], params: unknown, out: Tensor) => void;

let observer: Observer | null = null;

/** Install an observer of primitive applications; returns the previous one. */
export function observe(next: Observer | null): Observer | null {
  const prev = observer;
  observer = next;
  return prev;
}

/** Run a primitive's forward on validated inputs and report it to the observer. */
export function apply<P>(rule: Rule<P>, inputs: readonly Tensor[], params: P): Tensor {
  const out = rule.forward(inputs, params);
  if (observer !== null) observer(rule, inputs, params, out);
  return out;
}

/** Define a rule (gives it its name and checks its type). */
export function defineRule<P = void>(name: string, rule: Omit<Rule<P>, 'name'>): Rule<P> {
  return { name, ...rule };
}
