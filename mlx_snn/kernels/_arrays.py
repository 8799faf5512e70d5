"""Shape helpers shared by the kernel wrappers (time-major [T, N] views, per-feature params)."""

from __future__ import annotations

import math

import mlx.core as mx

from .._checks import check_broadcastable_to_features, check_float_array


def check_sequence(name: str, x: object, min_ndim: int = 2) -> mx.array:
    """A floating ``[T, ...]`` array with ``T >= 1``."""
    check_float_array(name, x, min_ndim=min_ndim)
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one time step; got shape {tuple(x.shape)}")
    return x


def lanes(shape) -> int:
    """Number of neurons (lanes) ``N`` of a ``[T, ...]`` shape: the product after time."""
    return math.prod(shape[1:])


def per_feature(name: str, value, feature_shape: tuple[int, ...]) -> mx.array:
    """A float or an array broadcastable to ``feature_shape`` as a float32 ``[F]`` array."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = mx.array(float(value), dtype=mx.float32)
    elif isinstance(value, mx.array):
        check_float_array(name, value)
        check_broadcastable_to_features(name, tuple(value.shape), feature_shape)
    else:
        raise TypeError(f"{name} must be a float or an mx.array; got {type(value).__name__}")
    size = math.prod(feature_shape)
    return mx.broadcast_to(value.astype(mx.float32), feature_shape).reshape(size)


def sum_to_shape(g: mx.array, shape: tuple[int, ...]) -> mx.array:
    """Sum a gradient over the leading and the broadcast axes down to ``shape``."""
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def spike_dtype(value, x_dtype: mx.Dtype) -> mx.Dtype:
    """``None`` (the input's dtype), the input's dtype, or ``mx.uint8``."""
    if value is None or value == x_dtype:
        return x_dtype
    if value == mx.uint8:
        return mx.uint8
    raise ValueError(f"spike_dtype must be None, the input's dtype or mx.uint8; got {value}")
