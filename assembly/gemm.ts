// Kernels of this area are added here.
export const gemm_area: i32 = 0;
