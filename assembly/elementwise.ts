// Kernels of this area are added here.
export const elementwise_area: i32 = 0;
