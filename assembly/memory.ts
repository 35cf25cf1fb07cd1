// Bulk fill and copy: the heap's memset/memcpy, shardable over elements.

/** out[i] = value for i in [begin, end). */
export function fill(out: usize, value: f32, begin: i32, end: i32, scratch: usize): void {
  const v = f32x4.splat(value);
  let i = begin;
  for (; i < end && (i & 3) !== 0; i++) store<f32>(out + (<usize>i << 2), value);
  for (; i + 4 <= end; i += 4) v128.store(out + (<usize>i << 2), v);
  for (; i < end; i++) store<f32>(out + (<usize>i << 2), value);
}

/** dst[i] = src[i] for i in [begin, end). */
export function copy(src: usize, dst: usize, begin: i32, end: i32, scratch: usize): void {
  memory.copy(dst + (<usize>begin << 2), src + (<usize>begin << 2), <usize>(end - begin) << 2);
}
