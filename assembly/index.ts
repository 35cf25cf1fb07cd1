// The kernels module: every export takes byte offsets into the shared heap and
// plain integer sizes. Kernels never allocate; scratch space is passed in.
export function heapBase(): usize {
  return __heap_base;
}
