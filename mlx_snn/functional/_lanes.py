"""Independent lanes of a step loop, split into parts that run on their own CPU streams.

A step loop over ``[T, B, ...features]`` treats every element of ``[B, ...]`` as an
independent lane. :class:`Lanes` views the lanes as ``[B, F]`` (``F`` the product
of the feature axes), splits them into parts (batch rows; features when ``B = 1``)
and gives each part a CPU stream (:func:`mlx_snn._runtime.split_count` decides how
many). Each part computes exactly what the whole would compute for its elements,
so the results do not depend on the split. Internal module.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import mlx.core as mx

from .._runtime import lane_streams, split_count

__all__ = ["Lanes"]


class Part(NamedTuple):
    stream: mx.Stream
    rows: slice
    cols: slice


def _bounds(n: int, k: int) -> list[slice]:
    edges = [n * j // k for j in range(k + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


class Lanes:
    """The lanes ``[B, ...features]`` of ``shape`` as ``[B, F]``, split into :attr:`parts`."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.features = self.shape[1:]
        self.B, self.F = self.shape[0], math.prod(self.features)
        by_rows = self.B > 1
        n, per_lane = (self.B, self.F) if by_rows else (self.F, 1)
        k = split_count(n, per_lane)
        streams = lane_streams(k) if k > 1 else [mx.default_stream(mx.default_device())]
        whole = slice(None)
        self.axis = 1 if by_rows else 2  # the split axis of a [T, B, F] array
        self.parts = [
            Part(s, b, whole) if by_rows else Part(s, whole, b)
            for s, b in zip(streams, _bounds(n, k), strict=True)
        ]
        self.equal = n % k == 0

    def __len__(self) -> int:
        return len(self.parts)

    def sequence(self, a: mx.array) -> mx.array:
        """``[T, B, ...]`` -> ``[T, B, F]`` (a free reshape of a contiguous array)."""
        return a.reshape(a.shape[0], self.B, self.F)

    def state(self, v: mx.array) -> list[mx.array]:
        """``[B, ...]`` -> one ``[b, f]`` slice per part."""
        v = v.reshape(self.B, self.F)
        return [v[p.rows, p.cols] for p in self.parts]

    def param(self, p: mx.array) -> list[mx.array]:
        """A parameter broadcastable to the features (or, with more dimensions than
        the features, to ``[B, ...]``) -> one per part, broadcastable to ``[b, f]``."""
        if p.size == 1:
            return [p.reshape(())] * len(self.parts)
        if p.ndim > len(self.features):
            lanes = mx.broadcast_to(p, self.shape).reshape(self.B, self.F)
            return [lanes[q.rows, q.cols] for q in self.parts]
        flat = mx.broadcast_to(p, self.features).reshape(self.F)
        return [flat[q.cols] for q in self.parts]

    def join_state(self, parts: list[mx.array]) -> mx.array:
        """One ``[b, f]`` array per part -> ``[B, ...]``."""
        joined = parts[0] if len(parts) == 1 else mx.concatenate(parts, axis=self.axis - 1)
        return joined.reshape(self.shape)

    def join_sequence(self, pieces: list[list[mx.array]], stream: mx.Stream) -> mx.array:
        """``pieces[t][j]`` (step ``t``, part ``j``, each ``[b, f]``) -> ``[T, B, ...]``.

        One copy: equal parts are stacked step-major, part-minor, which is the
        ``[T, B, F]`` layout after a free reshape.
        """
        T = len(pieces)
        with mx.stream(stream):
            if len(self.parts) == 1 or self.equal:
                out = mx.stack([q for step in pieces for q in step])
            else:
                per_part = [mx.stack([step[j] for step in pieces]) for j in range(len(self.parts))]
                out = mx.concatenate(per_part, axis=self.axis)
            return out.reshape(T, *self.shape)
