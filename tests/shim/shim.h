// CPU shim: the Metal names used by the bodies in metal/, for g++ (C++20).
//
// Replaces the Metal standard library MLX puts before a custom kernel
// (metal::utils()). Address-space qualifiers are empty, threadgroup variables are
// function statics (threadgroups run one after another, so one instance serves
// each group in turn), threadgroup_barrier waits on the std::barrier of the
// simulated threadgroup (each simulated GPU thread is a std::thread when the body
// uses barriers), and float16_t / bfloat16_t are _Float16 and a rounding struct.
#pragma once
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

typedef unsigned int uint;
using shim_worker = std::thread;  // before "thread" becomes an empty macro

struct uint3 {
  uint x, y, z;
};

typedef _Float16 float16_t;

// bfloat16: the top 16 bits of a float32, rounded to nearest even (as MLX and CUDA)
struct bfloat16_t {
  uint16_t bits;
  bfloat16_t() = default;
  bfloat16_t(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = uint16_t((u >> 16) | 0x40u);  // quiet NaN
    } else {
      bits = uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
  }
  operator float() const {
    uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

#define device
#define constant
#define thread
#define threadgroup static
#define METAL_FUNC inline

namespace metal {
inline float abs(float x) { return std::fabs(x); }
inline float exp(float x) { return std::exp(x); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }
}  // namespace metal

enum class mem_flags { mem_none, mem_device, mem_threadgroup, mem_texture };

inline thread_local std::barrier<>* shim_barrier = nullptr;

inline void threadgroup_barrier(mem_flags) {
  shim_barrier->arrive_and_wait();
}
