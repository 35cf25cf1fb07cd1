/**
 * convrnn: convolutional recurrent networks of the ventral visual stream,
 * built, trained and analysed on the CPU.
 */
export * from './tensor/index.js';
export * from './autodiff/index.js';
export * as nn from './nn/index.js';
export * from './convrnn/index.js';
