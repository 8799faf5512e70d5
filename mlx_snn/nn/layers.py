"""Small sequence helpers: apply per-frame modules over time, vote over output groups."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .._checks import check_float_array, check_int
from .._precision import to_carry, to_dtype
from .temporal import TemporalModule

__all__ = ["SeqToBatch", "VotingLayer"]


class SeqToBatch(TemporalModule):
    """Apply a per-frame module to a ``[T, B, ...]`` sequence by merging T and B.

    ``y = module(x.reshape(T*B, ...)).reshape(T, B, ...)``: one call sees all
    frames, e.g. ``SeqToBatch(nn.Conv2d(1, 32, 3))`` on ``[T, B, H, W, C]``.

    Args:
        module (nn.Module or callable): maps ``[N, ...]`` to ``[N, ...]``.
    """

    chunking = "frames"

    def __init__(self, module):
        super().__init__()
        if not callable(module):
            raise TypeError(f"module must be callable (an nn.Module); got {type(module).__name__}")
        self.module = module

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim < 2:
            raise ValueError(
                f"x must be [T, B, ...] with at least 2 dimensions; got shape {x.shape}"
            )
        t, b = x.shape[:2]
        y = self.module(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])


class VotingLayer(nn.Module):
    """Average each class's ``voters`` consecutive outputs: ``[..., C*V] -> [..., C]``.

    Args:
        voters (int): outputs per class ``V`` (SpikingJelly's ``VotingLayer``).

    The mean is taken in float32 for half-precision ``x``; the result has ``x``'s dtype.
    """

    def __init__(self, voters: int = 10):
        super().__init__()
        self.voters = check_int("voters", voters, minimum=1)

    def _extra_repr(self):
        return f"voters={self.voters}"

    def __call__(self, x: mx.array) -> mx.array:
        check_float_array("x", x, min_ndim=1)
        n = x.shape[-1]
        if n % self.voters:
            raise ValueError(
                f"the last dimension of x ({n}) must be divisible by voters={self.voters}"
            )
        votes = to_carry(x).reshape(*x.shape[:-1], n // self.voters, self.voters)
        return to_dtype(votes.mean(axis=-1), x.dtype)
