// Kernels of this area are added here.
export const depthwise_area: i32 = 0;
