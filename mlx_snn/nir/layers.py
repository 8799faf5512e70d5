"""Small modules that NIR graphs need and the rest of mlx-snn does not have.

:func:`mlx_snn.nir.load` builds them for NIR nodes without a closer match, and
:func:`mlx_snn.nir.export` writes them back as the same nodes. All act on
time-major ``[T, B, ...]`` arrays with channels-last images, like every mlx-snn
layer.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .. import functional
from .._checks import check_float_array

__all__ = ["Flatten", "LeakyIntegrator", "Permute", "Scale", "SumPool2d", "Threshold"]


def _constant(name: str, value) -> float | mx.array:
    """A float, or a float32 array for per-feature values."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    arr = np.asarray(value, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return mx.array(arr)


def _show(v) -> str:
    return f"{v}" if isinstance(v, float) else f"array{tuple(v.shape)}"


class Flatten(nn.Module):
    """Flatten the features of ``[T, B, ...]`` to ``[T, B, F]`` (row-major, channels last).

    This is mlx-snn's own flatten order (``x.reshape(T, B, -1)``); NIR's ``Flatten``
    works on channels-first shapes, and :mod:`mlx_snn.nir` converts between the two.
    """

    def __call__(self, x: mx.array) -> mx.array:
        check_float_array("x", x, min_ndim=2)
        return x.reshape(*x.shape[:2], -1)


class Permute(nn.Module):
    """Reorder the last axis: ``y[..., j] = x[..., index[j]]``.

    Loaded NIR graphs end with one where a channels-first flattened vector is the
    graph's output (mlx-snn flattens channels last).

    Args:
        index (sequence of int): a permutation of ``range(F)``.
    """

    def __init__(self, index):
        super().__init__()
        index = np.asarray(index)
        if index.ndim != 1 or not np.array_equal(np.sort(index), np.arange(index.size)):
            raise ValueError(f"index must be a permutation of range(n); got {index!r}")
        self.index = mx.array(index.astype(np.int32))
        self.freeze(keys=["index"])

    def _extra_repr(self):
        return f"features={self.index.size}"

    def __call__(self, x: mx.array) -> mx.array:
        check_float_array("x", x, min_ndim=1)
        if x.shape[-1] != self.index.size:
            raise ValueError(
                f"x must have {self.index.size} features on its last axis; got shape {x.shape}"
            )
        return mx.take(x, self.index, axis=-1)


class Scale(nn.Module):
    """Elementwise gain ``y = x * scale`` (NIR's ``Scale``).

    Args:
        scale (float or array): broadcast to the feature shape (channels last).
    """

    def __init__(self, scale):
        super().__init__()
        self.scale = _constant("scale", scale)
        if isinstance(self.scale, mx.array):
            self.freeze(keys=["scale"])

    def _extra_repr(self):
        return f"scale={_show(self.scale)}"

    def __call__(self, x: mx.array) -> mx.array:
        check_float_array("x", x, min_ndim=2)
        return x * self.scale


class Threshold(nn.Module):
    r"""Heaviside read-out ``y = Θ(x − θ)`` with strict ``>`` (NIR's ``Threshold``).

    Forward only: its gradient is zero (NIR carries no surrogate).

    Args:
        threshold (float or array): ``θ``, broadcast to the feature shape.
    """

    def __init__(self, threshold):
        super().__init__()
        self.threshold = _constant("threshold", threshold)
        if isinstance(self.threshold, mx.array):
            self.freeze(keys=["threshold"])

    def _extra_repr(self):
        return f"threshold={_show(self.threshold)}"

    def __call__(self, x: mx.array) -> mx.array:
        check_float_array("x", x, min_ndim=2)
        return (x > self.threshold).astype(x.dtype)


class SumPool2d(nn.Module):
    """Sum pooling over ``[N, H, W, C]`` frames with zero padding (NIR's ``SumPool2d``).

    Args:
        kernel_size, stride, padding (int or (int, int)): as ``mlx.nn.AvgPool2d``;
            ``stride`` defaults to ``kernel_size``.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size, stride, padding)
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.area = float(math.prod(k))

    def __call__(self, x: mx.array) -> mx.array:
        return self.pool(x) * self.area


class LeakyIntegrator(nn.Module):
    r"""Leaky integrator without spikes (NIR's ``LI``; ``beta = 1`` is NIR's ``I``).

    .. math::

        v_t = \beta v_{t-1} + g\,x_t,\qquad v_{-1} = 0

    Input ``x [T, B, ...]``, output the membrane ``v [T, B, ...]``.

    Args:
        beta (float or array): decay in ``[0, 1]``, broadcast to the feature shape.
        gain (float or array): input gain ``g``. Default ``1.0``.
    """

    def __init__(self, beta, gain=1.0):
        super().__init__()
        self.beta = _constant("beta", beta)
        self.gain = _constant("gain", gain)
        if not np.all((np.asarray(self.beta) >= 0) & (np.asarray(self.beta) <= 1)):
            raise ValueError(f"beta must lie in [0, 1]; got {beta!r}")
        frozen = [k for k in ("beta", "gain") if isinstance(getattr(self, k), mx.array)]
        if frozen:
            self.freeze(keys=frozen)

    def _extra_repr(self):
        return f"beta={_show(self.beta)}, gain={_show(self.gain)}"

    def __call__(self, x: mx.array) -> mx.array:
        check_float_array("x", x, min_ndim=2)
        return functional.linear_scan(self.beta, x * self.gain)
