// Kernels of this area are added here.
export const softmax_area: i32 = 0;
