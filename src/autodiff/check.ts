/**
 * Gradient checking: every input's vjp gradient against central finite
 * differences. The function runs in float32; the perturbations and
 * differences are taken in float64 on the float32 values actually used.
 */
import { Tensor, scope, checkTensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { ConvrnnError, ValueError } from '../tensor/errors.js';
import { grad } from './tape.js';

export class GradCheckError extends ConvrnnError {}

export interface CheckGradOptions {
  /** Step, relative to max(1, |x|). */
  eps?: number;
  rtol?: number;
  /** Absolute tolerance, relative to max(1, the largest finite-difference derivative of that input). */
  atol?: number;
  /** At most this many elements per input are checked (spread evenly over the tensor). */
  maxElements?: number;
}

export interface GradCheckReport {
  checked: number;
  maxAbsError: number;
}

/** Compare the gradients of scalar-valued `f` at `args` with finite differences; throw GradCheckError on mismatch. */
export function checkGrad(f: (...args: Tensor[]) => Tensor, args: readonly Tensor[], opts: CheckGradOptions = {}): GradCheckReport {
  const { eps = 1e-2, rtol = 2e-2, atol = 2e-3, maxElements = 48 } = opts;
  if (!(eps > 0)) throw new ValueError(`checkGrad: eps must be positive, got ${eps}`);
  args.forEach((a, i) => checkTensor('checkGrad', `args[${i}]`, a));
  const nums = args.map((_, i) => i);
  const analytic = grad((...xs: Tensor[]) => f(...xs), nums)(...args) as Tensor[];
  const gs = analytic.map((g) => g.toArray());
  analytic.forEach((g) => g.dispose());

  const evalWith = (i: number, data: Float32Array): number =>
    scope(() => {
      const xs = args.slice();
      xs[i] = tensor(data, args[i].shape);
      return f(...xs).item();
    });

  let checked = 0;
  let maxAbsError = 0;
  const failures: string[] = [];
  args.forEach((arg, i) => {
    const x = arg.toArray();
    const n = x.length;
    const count = Math.min(n, maxElements);
    const numeric: [number, number][] = [];
    for (let c = 0; c < count; c++) {
      const idx = count === n ? c : Math.floor(((c + 0.5) * n) / count);
      const x0 = x[idx];
      const h = eps * Math.max(1, Math.abs(x0));
      const xp = Math.fround(x0 + h);
      const xm = Math.fround(x0 - h);
      x[idx] = xp;
      const fp = evalWith(i, x);
      x[idx] = xm;
      const fm = evalWith(i, x);
      x[idx] = x0;
      numeric.push([idx, (fp - fm) / (xp - xm)]);
    }
    const scale = Math.max(1, ...numeric.map(([, d]) => Math.abs(d)));
    for (const [idx, num] of numeric) {
      const ana = gs[i][idx];
      const err = Math.abs(ana - num);
      maxAbsError = Math.max(maxAbsError, err);
      checked++;
      if (!(err <= atol * scale + rtol * Math.abs(num))) {
        failures.push(`args[${i}][${idx}]: vjp ${ana.toPrecision(6)} vs finite difference ${num.toPrecision(6)}`);
      }
    }
  });
  if (failures.length > 0) {
    throw new GradCheckError(
      `checkGrad: ${failures.length} of ${checked} derivatives disagree: ${failures.slice(0, 6).join('; ')}${failures.length > 6 ? '; …' : ''}`,
    );
  }
  return { checked, maxAbsError };
}
