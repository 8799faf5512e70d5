"""Run mlx_snn.kernels on the CPU shim in place of the Metal device (the
``shim_metal`` fixture in conftest.py)."""

from __future__ import annotations

import mlx.core as mx
from shim.harness import ShimKernel

from mlx_snn.kernels import registry


def install(monkeypatch):
    """Make ``backend="metal"`` build :class:`ShimKernel` objects from the registry's
    specs (the same name, input/output names, body and header MLX would get), and
    report a Metal device (only: CUDA stays absent), so that ``backend="auto"`` and
    ``mlx_snn.backends`` see "metal" as available."""
    monkeypatch.setattr(registry, "device_present", lambda backend: backend == "metal")
    monkeypatch.setattr(mx.fast, "metal_kernel", ShimKernel)
    registry.kernel.cache_clear()
    yield ShimKernel
    ShimKernel.semantics = "metal"
    registry.kernel.cache_clear()
