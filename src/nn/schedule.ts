/**
 * Learning-rate schedules: plain functions from the step (0 for the first
 * update) to a learning rate. Arguments are validated when the schedule is
 * made (ConfigError naming the field) and the step when it is called.
 *
 * - constant(lr): lr.
 * - stepDecay({ lr, factor, epochs, stepsPerEpoch }): lr · factor^k, k = the
 *   number of boundaries e in `epochs` with step >= e · stepsPerEpoch. The
 *   ResNet schedule is factor 0.1 at epochs [30, 60, 80]: the first step of
 *   epoch 30 (step 30 · stepsPerEpoch) already uses lr · 0.1.
 * - cosine({ lr, totalSteps, warmup = 0, final = 0 }): for step < warmup a
 *   linear ramp lr · (step + 1) / warmup (the last warmup step reaches lr);
 *   then final + (lr - final) · ½(1 + cos(π · p)), p = (step - warmup) /
 *   (totalSteps - warmup), clamped to 1, so steps >= totalSteps give final.
 */
import { ConfigError, ValueError, describe } from '../tensor/errors.js';

export type Schedule = (step: number) => number;

function nonNeg(fn: string, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`${fn}: ${field} must be a non-negative finite number, got ${describe(v)}`);
  return v;
}

function count(fn: string, field: string, v: unknown, min: number): number {
  if (!Number.isInteger(v) || (v as number) < min) throw new ConfigError(`${fn}: ${field} must be an integer >= ${min}, got ${describe(v)}`);
  return v as number;
}

function checkStep(fn: string, step: unknown): number {
  if (!Number.isInteger(step) || (step as number) < 0) throw new ValueError(`${fn}: step must be a non-negative integer, got ${describe(step)}`);
  return step as number;
}

function checkOpts(fn: string, opts: unknown): Record<string, unknown> {
  if (typeof opts !== 'object' || opts === null) throw new ConfigError(`${fn}: options must be an object, got ${describe(opts)}`);
  return opts as Record<string, unknown>;
}

/** The same learning rate at every step. */
export function constant(lr: number): Schedule {
  nonNeg('constant', 'lr', lr);
  return (step) => {
    checkStep('constant', step);
    return lr;
  };
}

export interface StepDecayOptions {
  lr: number;
  /** Multiplier at each boundary, in (0, 1]; the ResNet schedule uses 0.1. */
  factor: number;
  /** Epochs at which to decay, strictly increasing, e.g. [30, 60, 80]. */
  epochs: readonly number[];
  stepsPerEpoch: number;
}

/** lr · factor^(boundaries passed); see the module comment. */
export function stepDecay(opts: StepDecayOptions): Schedule {
  const fn = 'stepDecay';
  const o = checkOpts(fn, opts);
  const lr = nonNeg(fn, 'lr', o.lr);
  const factor = o.factor;
  if (typeof factor !== 'number' || !(factor > 0 && factor <= 1)) throw new ConfigError(`${fn}: factor must be a number in (0, 1], got ${describe(factor)}`);
  const spe = count(fn, 'stepsPerEpoch', o.stepsPerEpoch, 1);
  const epochs = o.epochs;
  if (!Array.isArray(epochs)) throw new ConfigError(`${fn}: epochs must be an array of increasing positive integers, got ${describe(epochs)}`);
  epochs.forEach((e, i) => {
    if (!Number.isInteger(e) || e < 1 || (i > 0 && e <= epochs[i - 1])) {
      throw new ConfigError(`${fn}: epochs must be strictly increasing positive integers, got ${describe(epochs)} (epochs[${i}])`);
    }
  });
  const boundaries = epochs.map((e: number) => e * spe);
  return (step) => {
    checkStep(fn, step);
    let v = lr;
    for (const b of boundaries) if (step >= b) v *= factor;
    return v;
  };
}

export interface CosineOptions {
  lr: number;
  totalSteps: number;
  /** Linear warmup steps; default 0. */
  warmup?: number;
  /** The learning rate at the end; default 0. */
  final?: number;
}

/** Cosine decay from lr to final over totalSteps, after an optional linear warmup; see the module comment. */
export function cosine(opts: CosineOptions): Schedule {
  const fn = 'cosine';
  const o = checkOpts(fn, opts);
  const lr = nonNeg(fn, 'lr', o.lr);
  const total = count(fn, 'totalSteps', o.totalSteps, 1);
  const warmup = o.warmup === undefined ? 0 : count(fn, 'warmup', o.warmup, 0);
  const final = o.final === undefined ? 0 : nonNeg(fn, 'final', o.final);
  if (warmup >= total) throw new ConfigError(`${fn}: warmup (${warmup}) must be less than totalSteps (${total})`);
  return (step) => {
    checkStep(fn, step);
    if (step < warmup) return (lr * (step + 1)) / warmup;
    const p = Math.min(1, (step - warmup) / (total - warmup));
    return final + (lr - final) * 0.5 * (1 + Math.cos(Math.PI * p));
  };
}
