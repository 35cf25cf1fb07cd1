// Kernels of this area are added here.
export const resize_area: i32 = 0;
