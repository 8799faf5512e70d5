"""What the step loops (LIF forward and backward, linear scan) share: lanes, blocks, dtype.

A step loop over ``[T, B, ...features]`` treats every element of ``[B, ...]`` as an
independent lane. :class:`Lanes` splits them into parts, by batch rows (axis 1
of the sequence, no copy), or by features when ``B = 1`` (the features
flattened), and gives each part a CPU stream (:func:`mlx_snn._runtime.split_count`
decides how many). Each part computes exactly what the whole would compute for
its elements, so the results do not depend on the split. The loops run
:data:`BLOCK` steps per compiled call and compute in :func:`~mlx_snn._precision.carry_dtype`.
Internal module.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import mlx.core as mx

from .._runtime import lane_streams, split_count

__all__ = ["BLOCK", "Lanes", "at", "steps_per_call"]

# Time steps per compiled call. MLX fuses a call's elementwise ops into one C++
# loop, and g++ vectorises that loop only with a single output, few pointers and
# no bool-to-float cast: a block of several steps runs as scalar code but pays
# Python's and MLX's per-call cost once. Measured here (bench/lif_profile.py,
# float32, one stream): blocks of BLOCK steps win below WIDE_PART elements per
# part and step in the forward pass, below WIDE_PART_BACKWARD in the backward pass
# (whose blocks have one output per step and more arithmetic).
BLOCK = 8
WIDE_PART = 1 << 15
WIDE_PART_BACKWARD = 1 << 11


def at(a: mx.array, j: int) -> mx.array:
    """``a[j]`` as a slice and a reshape, for use inside a compiled block: MLX's fused
    CPU loop reads that input faster than the integer index's result (measured by
    ``bench/lif_profile.py``, ``step_variants``: "one output, index" vs "slice")."""
    return a[j : j + 1].reshape(a.shape[1:])


def steps_per_call(part_elements: int, backward: bool = False) -> int:
    """Time steps per compiled call for parts of ``part_elements`` elements per step."""
    wide = WIDE_PART_BACKWARD if backward else WIDE_PART
    return 1 if part_elements >= wide else BLOCK


class Part(NamedTuple):
    stream: mx.Stream
    lanes: slice  # batch rows, or flat features when split by features


def _bounds(n: int, k: int) -> list[slice]:
    edges = [n * j // k for j in range(k + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


class Lanes:
    """The lanes ``[B, ...features]`` of ``shape``, split into :attr:`parts`.

    Arrays handed to the methods are per-step (``[B, ...]``-like) or sequences
    (``[T, B, ...]``-like); both may broadcast (size-1 axes) against ``shape``.
    """

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.features = self.shape[1:]
        self.B, self.F = self.shape[0], math.prod(self.features)
        self.flat = self.B == 1
        n, per_lane = (self.F, 1) if self.flat else (self.B, self.F)
        k = split_count(n, per_lane)
        self.flat = self.flat and k > 1
        streams = lane_streams(k) if k > 1 else [mx.default_stream(mx.default_device())]
        self.parts = [Part(s, b) for s, b in zip(streams, _bounds(n, k), strict=True)]
        self.equal = n % k == 0
        self.part_elements = max(1, self.B * self.F // k)

    def __len__(self) -> int:
        return len(self.parts)

    def _split(self, a: mx.array, lead: int) -> list[mx.array]:
        """``a`` with ``lead`` leading axes before the lane axes -> one piece per part."""
        if len(self.parts) == 1:
            return [a] * 1
        lane_ndim = len(self.shape)
        if a.ndim < lead + lane_ndim or a.size == math.prod(a.shape[:lead]):
            return [a] * len(self.parts)  # constant over the lanes
        if self.flat:
            a = mx.broadcast_to(a, (*a.shape[:lead], *self.shape))
            a = a.reshape(*a.shape[:lead], 1, self.F)
            return [a[(slice(None),) * (lead + 1) + (p.lanes,)] for p in self.parts]
        if a.shape[lead] == 1:
            return [a] * len(self.parts)  # broadcast along the batch
        return [a[(slice(None),) * lead + (p.lanes,)] for p in self.parts]

    def state(self, v: mx.array) -> list[mx.array]:
        """A per-step array ``[B, ...]`` (or broadcastable) -> one piece per part."""
        return self._split(v, 0)

    def param(self, p: mx.array) -> list[mx.array]:
        """A parameter broadcastable to the features, or to ``[B, ...]`` -> one per part."""
        if p.size == 1:
            # 0-d: MLX's fused kernels take a scalar without falling back to
            # strided indexing (a (1, 1) array would be a broadcast input)
            return [p.reshape(())] * len(self.parts)
        if p.ndim <= len(self.features):
            p = p.reshape((1,) * (len(self.shape) - p.ndim) + tuple(p.shape))
        return self._split(p, 0)

    def sequence(self, a: mx.array) -> list[mx.array]:
        """A sequence ``[T, B, ...]`` (or broadcastable) -> one ``[T, b, ...]`` view per part."""
        return self._split(a, 1)

    def join_state(self, parts: list[mx.array]) -> mx.array:
        """One per-step piece per part -> ``[B, ...]``."""
        if len(parts) == 1:
            return parts[0]
        return mx.concatenate(parts, axis=1 if self.flat else 0).reshape(self.shape)

    def join_sequence(self, pieces: list[list[mx.array]], stream: mx.Stream) -> mx.array:
        """``pieces[t][j]`` (step ``t``, part ``j``) -> ``[T, B, ...]``, on ``stream``.

        One copy: equal parts are stacked step-major, part-minor, which is the
        ``[T, B, ...]`` layout after a free reshape.
        """
        T = len(pieces)
        with mx.stream(stream):
            if len(self.parts) == 1 or self.equal:
                out = mx.stack([q for step in pieces for q in step])
            else:
                k = len(self.parts)
                per_part = [mx.stack([step[j] for step in pieces]) for j in range(k)]
                out = mx.concatenate(per_part, axis=2 if self.flat else 1)
            return out.reshape(T, *self.shape)
