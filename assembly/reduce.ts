// Kernels of this area are added here.
export const reduce_area: i32 = 0;
