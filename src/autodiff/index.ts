export { grad, valueAndGrad, vjp, stopGradient, type GradOptions } from './tape.js';
export { checkGrad, GradCheckError, type CheckGradOptions, type GradCheckReport } from './check.js';
