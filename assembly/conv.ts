// Kernels of this area are added here.
export const conv_area: i32 = 0;
