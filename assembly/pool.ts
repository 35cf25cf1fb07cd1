// Kernels of this area are added here.
export const pool_area: i32 = 0;
