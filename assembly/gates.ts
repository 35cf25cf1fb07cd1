// Kernels of this area are added here.
export const gates_area: i32 = 0;
