"""Shared helpers for the test suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(
    os.environ.get("MLX_SNN_SHARED_MNIST", ROOT.parent / "shared" / "data" / "mnist")
)


def to_np(a: mx.array) -> np.ndarray:
    return np.array(a.astype(mx.float32), dtype=np.float64)


def assert_close(actual, expected, rtol, name=""):
    """fp32-vs-fp64 check: max|a - e| <= rtol * max(1, max|e|)."""
    actual = to_np(actual) if isinstance(actual, mx.array) else np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    assert np.all(np.isfinite(actual)), f"{name}: non-finite values"
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= rtol * scale, f"{name}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"


@pytest.fixture
def mnist_dir() -> Path:
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(
            f"real MNIST not found at {SHARED_MNIST} (the ../shared checkout); "
            "set MLX_SNN_SHARED_MNIST to its folder to run this test"
        )
    return SHARED_MNIST


@pytest.fixture
def shim_metal(monkeypatch):
    """mlx_snn.kernels with backend="metal" run on the CPU shim (tests/kernel_shim.py)."""
    from kernel_shim import install

    yield from install(monkeypatch)
