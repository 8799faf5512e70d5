"""The CUDA preamble: the Metal names used by the bodies in ``metal/``, in CUDA.

``mx.fast.cuda_kernel`` pastes ``header`` after its own includes
(``mlx/backend/cuda/device/utils.cuh``, which brings ``cuda_fp16.h``,
``cuda_bf16.h`` and ``cuda::std``) and before ``namespace mlx::core::cu {
__global__ void custom_kernel_<name>(...) { <body> } }``; template values become
``constexpr`` constants and ``using`` aliases at the top of the body. This
preamble goes first in the header, so the same body and ``common.h`` compile there.
Only the names the bodies use are mapped; ``tests/test_kernels_nvcc.py`` compiles
every kernel through it with ``nvcc``.
"""

from __future__ import annotations

__all__ = ["PREAMBLE"]

PREAMBLE = r"""
#ifndef MLX_SNN_CUDA_PREAMBLE
#define MLX_SNN_CUDA_PREAMBLE
typedef unsigned int uint;
// Metal's threadgroup memory is CUDA's shared memory. The bodies use no other
// address-space qualifier (MLX writes those into the Metal signature only), and
// "device" / "constant" must stay undefined: CUDA's __device__ expands to them.
#define threadgroup __shared__
#define METAL_FUNC __device__ __forceinline__
#define threadgroup_barrier(flags) __syncthreads()
// Metal's thread attributes from CUDA's block and thread indices
#define thread_position_in_grid                                   \
  make_uint3(blockIdx.x * blockDim.x + threadIdx.x,               \
             blockIdx.y * blockDim.y + threadIdx.y,               \
             blockIdx.z * blockDim.z + threadIdx.z)
#define thread_position_in_threadgroup threadIdx
#define threadgroup_position_in_grid blockIdx
namespace metal {
__device__ __forceinline__ float abs(float x) { return fabsf(x); }
__device__ __forceinline__ float exp(float x) { return expf(x); }
__device__ __forceinline__ float max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ float min(float a, float b) { return fminf(a, b); }
}  // namespace metal
#endif
"""
