// Stand-in for MLX's mlx/backend/cuda/device/utils.cuh (not installed without a CUDA
// build of MLX): the includes and the Shape / Strides types a custom kernel's
// generated signature uses, as MLX defines them (config.h: MAX_NDIM 10).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda/std/array>

#define MAX_NDIM 10

namespace mlx::core::cu {

using Shape = cuda::std::array<int32_t, MAX_NDIM>;
using Strides = cuda::std::array<int64_t, MAX_NDIM>;

}  // namespace mlx::core::cu
