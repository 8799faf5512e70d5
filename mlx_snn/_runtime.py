"""Process-wide MLX settings that the library applies once, at import.

MLX's CPU allocator keeps at most 32 MiB of freed buffers for reuse. A spiking
layer's ``[T, B, N]`` arrays are larger than that, so every such array would go
back to the operating system and be page-faulted in again on the next step
(measured here: an elementwise op on a 52 MB array runs about 7x slower). On the
CPU backend, and only while the limit is still MLX's default, ``import mlx_snn``
raises the cache limit to a quarter of MLX's memory limit (at most 4 GiB). Set
``MLX_SNN_KEEP_CACHE_LIMIT=1`` to leave MLX's setting alone; ``mlx-snn info``
reports what is in effect.
"""

from __future__ import annotations

import os

import mlx.core as mx

MLX_CPU_DEFAULT_CACHE_LIMIT = 32 << 20
MAX_CACHE_LIMIT = 4 << 30

cache_limit_raised = False


def raise_cpu_cache_limit() -> bool:
    """Raise MLX's CPU buffer-cache limit if it is still the default; return whether."""
    global cache_limit_raised
    if os.environ.get("MLX_SNN_KEEP_CACHE_LIMIT", "") not in ("", "0"):
        return False
    if mx.default_device() != mx.cpu:
        return False
    target = min(mx.get_memory_limit() // 4, MAX_CACHE_LIMIT)
    previous = mx.set_cache_limit(target)
    if previous != MLX_CPU_DEFAULT_CACHE_LIMIT or target <= previous:
        mx.set_cache_limit(previous)
        return False
    cache_limit_raised = True
    return True
