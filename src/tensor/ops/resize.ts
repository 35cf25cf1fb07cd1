/**
 * Bilinear resize, NHWC, any input size to any output size (up or down), with
 * TensorFlow's conventions, computed in float32 as TensorFlow does:
 *
 *   scale = in / out, or (in - 1) / (out - 1) with alignCorners (out > 1)
 *   src   = (dst + 0.5) * scale - 0.5        halfPixelCenters (the default:
 *                                            TF2 `tf.image.resize`, no antialias)
 *   src   = dst * scale                      otherwise (TF1 `resize_bilinear`,
 *                                            alignCorners or the legacy mode)
 *   lower = max(floor(src), 0), upper = min(ceil(src), in - 1), lerp = src - floor(src)
 *
 * so a source point left of the first pixel center (src < 0) clamps to the
 * first pixel, and one right of the last to the last. The value is
 * top + (bottom - top) * ylerp with top = x[ly, lx] + (x[ly, ux] - x[ly, lx]) * xlerp
 * (bottom likewise on row uy).
 *
 * Options as TF1: halfPixelCenters defaults to true unless alignCorners is set;
 * both true is an error (TensorFlow refuses it too).
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';

export interface ResizeOptions {
  /** Sample at pixel centers (TF2 default). Default: true, or false when alignCorners is true. */
  halfPixelCenters?: boolean;
  /** Map the corner pixels of input and output onto each other (TF1 align_corners). Default false. */
  alignCorners?: boolean;
}

/** Kernel mode numbers (assembly/resize.ts). */
const LEGACY = 0;
const HALF_PIXEL = 1;
const ALIGN = 2;

interface Params {
  N: number;
  H: number;
  W: number;
  C: number;
  OH: number;
  OW: number;
  mode: number;
}

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** Bilinear resize of x [N, H, W, C] to [N, outH, outW, C]. */
export function resizeBilinear(x: Tensor, size: [number, number], opts: ResizeOptions = {}): Tensor {
  const fn = 'resizeBilinear';
  checkTensor(fn, 'x', x);
  if (x.rank !== 4) throw new ShapeError(`${fn}: x must be rank 4 [N, H, W, C], got shape ${fmt(x)}`);
  if (x.size === 0) throw new ShapeError(`${fn}: x must have no zero-sized dimension, got shape ${fmt(x)}`);
  if (!Array.isArray(size) || size.length !== 2 || !size.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ValueError(`${fn}: size must be [outH, outW] of positive integers, got ${describe(size)}`);
  }
  if (opts === null || typeof opts !== 'object') throw new ValueError(`${fn}: options must be an object, got ${describe(opts)}`);
  const { alignCorners = false } = opts;
  const { halfPixelCenters = !alignCorners } = opts;
  if (typeof alignCorners !== 'boolean') throw new ValueError(`${fn}: alignCorners must be a boolean, got ${describe(alignCorners)}`);
  if (typeof halfPixelCenters !== 'boolean') {
    throw new ValueError(`${fn}: halfPixelCenters must be a boolean, got ${describe(halfPixelCenters)}`);
  }
  if (alignCorners && halfPixelCenters) throw new ValueError(`${fn}: alignCorners and halfPixelCenters cannot both be true`);
  const [N, H, W, C] = x.shape;
  const mode = alignCorners ? ALIGN : halfPixelCenters ? HALF_PIXEL : LEGACY;
  return apply(resizeRule, [x], { N, H, W, C, OH: size[0], OW: size[1], mode });
}

/** The transpose of the resize: gradient with respect to x of <resizeBilinear(x), g>. */
function resizeBackward(g: Tensor, p: Params): Tensor {
  const dx = empty([p.N, p.H, p.W, p.C]);
  const cost = 4 * p.C * p.OW * Math.max(1, Math.ceil((2 * p.OH) / p.H));
  parallel('resize_bilinear_backward', [g.ptr, dx.ptr, p.N, p.H, p.W, p.C, p.OH, p.OW, p.mode], p.N * p.H, { cost });
  return dx;
}

const resizeRule = defineRule<Params>('resizeBilinear', {
  forward([x], p) {
    const out = empty([p.N, p.OH, p.OW, p.C]);
    // Scratch: two input rows interpolated along x (reused by consecutive output rows).
    parallel('resize_bilinear_forward', [x.ptr, out.ptr, p.N, p.H, p.W, p.C, p.OH, p.OW, p.mode], p.N * p.OH, {
      cost: 6 * p.OW * p.C,
      scratchBytes: 8 * p.OW * p.C,
    });
    return out;
  },
  vjp(g, _inputs, _out, p) {
    return [resizeBackward(g, p)];
  },
});

export const rules = { resizeBilinear: resizeRule };
