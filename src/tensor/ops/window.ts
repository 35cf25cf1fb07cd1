/**
 * The geometry of sliding-window ops (conv2d, depthwise conv, pooling), with
 * TensorFlow's padding rules: 'same' pads so that out = ceil(size / stride),
 * the odd pixel after; 'valid' pads nothing; a number pads every side by it;
 * [[top, bottom], [left, right]] pads as given.
 */
import { ShapeError, ValueError, describe } from '../errors.js';

export type Conv2dPadding = 'same' | 'valid' | number | [[number, number], [number, number]];

/** A positive integer n (meaning [n, n]) or [h, w] of them; `dflt` when absent. */
export function pair(fn: string, arg: string, v: unknown, dflt?: number): [number, number] {
  const p = v === undefined && dflt !== undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ValueError(`${fn}: ${arg} must be a positive integer or [h, w] of positive integers, got ${describe(v)}`);
  }
  return [p[0], p[1]];
}

/** Padding before, and the output size, along one axis. */
function axis(fn: string, name: string, size: number, k: number, s: number, d: number, pad: Conv2dPadding, lo: number, hi: number): [number, number] {
  const span = (k - 1) * d + 1;
  if (pad === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max((out - 1) * s + span - size, 0);
    return [Math.floor(total / 2), out];
  }
  const padded = size + lo + hi;
  if (padded < span) {
    const what = pad === 'valid' ? `the input has ${size}` : `the padded input has ${padded}`;
    throw new ShapeError(`${fn}: the filter spans ${span} ${name} (size ${k}, dilation ${d}) but ${what}`);
  }
  return [lo, Math.floor((padded - span) / s) + 1];
}

/**
 * Top and left padding and the output size of a KH x KW window with the given
 * stride and dilation over H x W; a padding that fits no output is a ShapeError.
 */
export function windowGeometry(
  fn: string,
  [H, W]: readonly [number, number],
  [KH, KW]: readonly [number, number],
  [sh, sw]: readonly [number, number],
  [dh, dw]: readonly [number, number],
  padding: unknown,
): { pt: number; pl: number; OH: number; OW: number } {
  let lo: [number, number] = [0, 0];
  let hi: [number, number] = [0, 0];
  const bad = () =>
    new ValueError(`${fn}: padding must be 'same', 'valid', a non-negative integer or [[top, bottom], [left, right]], got ${describe(padding)}`);
  if (typeof padding === 'number') {
    if (!Number.isInteger(padding) || padding < 0) throw bad();
    lo = [padding, padding];
    hi = [padding, padding];
  } else if (Array.isArray(padding)) {
    const ok =
      padding.length === 2 &&
      padding.every((p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v >= 0));
    if (!ok) throw bad();
    lo = [padding[0][0], padding[1][0]];
    hi = [padding[0][1], padding[1][1]];
  } else if (padding !== 'same' && padding !== 'valid') {
    throw bad();
  }
  const pad = padding as Conv2dPadding;
  const [pt, OH] = axis(fn, 'rows', H, KH, sh, dh, pad, lo[0], hi[0]);
  const [pl, OW] = axis(fn, 'columns', W, KW, sw, dw, pad, lo[1], hi[1]);
  return { pt, pl, OH, OW };
}
