"""What export and load share: the lazy ``nir`` import, layouts, metadata keys."""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

INSTALL_HINT = 'pip install "mlx-snn[nir]"'

# Every metadata key mlx-snn writes starts with this prefix (flat keys: NIR's HDF5
# reader in ``nir.serialization.read_node`` only reads one level of metadata).
PREFIX = "mlx_snn."

# Discrete input gains r*dt/tau this close to 1 are taken as exactly 1: exporters
# that compute r = tau/dt in float32 (snnTorch) are off by a few ulps.
GAIN_RTOL = 1e-6

# The Threshold that follows a SumPool2d for an exported max pooling of spikes.
MAXPOOL_THRESHOLD = 0.5


def require_nir() -> ModuleType:
    """Import the ``nir`` package, or raise ImportError saying how to install it."""
    try:
        return importlib.import_module("nir")
    except ImportError as err:
        raise ImportError(
            f"mlx_snn.nir needs the 'nir' package, an optional extra: {INSTALL_HINT}"
        ) from err


def key(name: str) -> str:
    return PREFIX + name


def nir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """mlx-snn's channels-last feature shape ``(..., C)`` -> NIR's ``(C, ...)``."""
    return tuple(shape) if len(shape) < 2 else (shape[-1], *shape[:-1])


def ours_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """NIR's channels-first feature shape ``(C, ...)`` -> mlx-snn's ``(..., C)``."""
    return tuple(shape) if len(shape) < 2 else (*shape[1:], shape[0])


def flatten_order(shape: tuple[int, ...]) -> np.ndarray | None:
    """Where each element of NIR's flattened ``nir_shape(shape)`` sits in ours.

    ``order[k]`` is the channels-last flat index of the element at channels-first
    flat index ``k`` (``None`` when the two orders agree).
    """
    if len(shape) < 2:
        return None
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    order = np.moveaxis(idx, -1, 0).ravel()
    return None if np.array_equal(order, idx.ravel()) else order


def to_nir_layout(arr: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """A per-feature array in our layout -> NIR's (channels first, or flat reordered)."""
    if order is not None:
        return arr[order]
    return np.moveaxis(arr, -1, 0) if arr.ndim >= 2 else arr


def from_nir_layout(arr: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`to_nir_layout`."""
    if order is not None:
        out = np.empty_like(arr)
        out[order] = arr
        return out
    return np.moveaxis(arr, 0, -1) if arr.ndim >= 2 else arr


def pair(value) -> tuple[int, int]:
    """An int or a pair (tuple, list, array) -> a tuple of two ints."""
    if np.ndim(value) == 0:
        return (int(value), int(value))
    values = tuple(int(v) for v in np.ravel(value))
    if len(values) != 2:
        raise ValueError(f"expected an int or a pair of ints; got {value!r}")
    return values
