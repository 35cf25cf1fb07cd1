/**
 * nn: layers, norms, initialisers, losses, optimizers, schedules, pytrees,
 * checkpoints, data and file formats, and the trainer. Exported from the
 * package as the `nn` namespace (its pooling layers share names with ops).
 */
export * from './layers.js';
export * from './norm.js';
export * from './init.js';
export * from './losses.js';
export * from './optim.js';
export * from './schedule.js';
export * from './tree.js';
export * from './readout.js';
export * from './config.js';
export * from './checkpoint.js';
export * from './model.js';
export * from './train.js';
export * from './data/dataset.js';
export * from './data/procedural.js';
export { loadImageFolder, type ImageFolderOptions } from './data/imagefolder.js';
export * from './io/npy.js';
export * from './io/safetensors.js';
export { writeFileAtomic } from './io/atomic.js';
