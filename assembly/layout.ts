// Kernels of this area are added here.
export const layout_area: i32 = 0;
