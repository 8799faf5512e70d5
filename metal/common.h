// Shared by every kernel body in metal/ (passed to MLX as the kernel header).
//
// Written in Metal's dialect. The CUDA preamble (mlx_snn/kernels/cuda.py) and the
// CPU test shim (tests/shim/shim.h) define the Metal names used here and in the
// bodies: METAL_FUNC, metal::abs/exp/max/min, the thread attributes, threadgroup
// memory and threadgroup_barrier. Bodies write no address-space qualifier (MLX
// puts those in the Metal signature it generates).
//
// Layout shared by all kernels: time-major [T, N] arrays (N = B * features,
// row-contiguous), one GPU thread per neuron n, element (t, n) at t * N + n, so
// the threads of a SIMD group read neighbouring addresses at every step.
// Per-feature parameters are [F] float32 arrays (F divides N): feature of n = n % F.
// All arithmetic is float32 whatever the storage type.
#ifndef MLX_SNN_COMMON_H
#define MLX_SNN_COMMON_H

// template int RESET
#define SNN_RESET_SUBTRACT 0
#define SNN_RESET_ZERO 1
#define SNN_RESET_NONE 2

// v_t from the membrane h_t and the spike s_t (immediate reset)
METAL_FUNC float snn_reset(float h, float s, float threshold, int reset) {
  if (reset == SNN_RESET_SUBTRACT) {
    return h - threshold * s;
  }
  if (reset == SNN_RESET_ZERO) {
    return h * (1.0f - s);
  }
  return h;
}

#endif
