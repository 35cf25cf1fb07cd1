// The kernels module: every export takes byte offsets into the shared heap and
// plain integer sizes. Kernels never allocate; scratch space is passed in.
export function heapBase(): usize {
  return __heap_base;
}

export * from './memory';
export * from './gemm';
export * from './conv';
export * from './depthwise';
export * from './pool';
export * from './resize';
export * from './elementwise';
export * from './reduce';
export * from './softmax';
export * from './layout';
export * from './gates';
export * from './winograd';
export * from './probe';
