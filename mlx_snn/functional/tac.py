r"""Temporal aggregation for TAC / TAC-TP (Collapse-or-Preserve paper, section 4).

The ``T`` input frames are split into ``G = ceil(T / g)`` groups of ``g``
consecutive frames; group ``k`` holds frames ``kg .. kg + n_k - 1`` where
``n_k = g`` except for the last group, which holds the ``T - (G-1) g`` remaining
frames. Inside a group the frames are summed with LIF-like decay weights, the
most recent frame weighing 1:

.. math::

    A_k = \sum_{j=0}^{n_k-1} w_{kj} X_{kg+j},\qquad w_{kj} = \beta^{\,n_k-1-j},
    \qquad S_k = \sum_j w_{kj}.

The short last group therefore uses weights of its own length (its newest frame
weighs 1, as in a full group). ``S_k`` (:func:`tac_weight_sums`) is what a bias
must be multiplied by so that it counts once per frame with that frame's weight.
A group larger than ``T`` is clamped to ``T`` (one group holding every frame):
cascaded TAC layers reach that case (e.g. 16 steps, ``g = 2``, five layers).
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from .._checks import check_bool, check_float_array, check_int
from .._params import check_unit_or_none
from .._precision import to_carry, to_dtype

__all__ = ["tac_aggregate", "tac_group_weights", "tac_weight_sums"]


def tac_group_weights(num_steps: int, group: int, beta: float | None = 1.0) -> np.ndarray:
    """Weights ``w [G, g]`` of every group (zeros pad the short last group).

    Args:
        num_steps (int): ``T``, the number of input frames (>= 1).
        group (int): frames per group ``g`` (>= 1; values > ``T`` act as ``T``).
        beta (float or None): decay in ``[0, 1]``; ``None`` means 1.0 (plain sum).

    Returns:
        float64 numpy array ``[G, min(g, T)]`` with ``w[k, j] = beta**(n_k - 1 - j)``
        for ``j < n_k`` and 0 beyond.
    """
    t = check_int("num_steps", num_steps, minimum=1)
    g = min(check_int("group", group, minimum=1), t)
    beta = check_unit_or_none("beta", beta)
    n_groups = math.ceil(t / g)
    w = np.zeros((n_groups, g))
    for k in range(n_groups):
        n = min(g, t - k * g)
        w[k, :n] = [1.0 if e == 0 else beta**e for e in range(n - 1, -1, -1)]
    return w


def tac_weight_sums(num_steps: int, group: int, beta: float | None = 1.0) -> mx.array:
    """Per-group weight sums ``S [G]`` (float32): the factor a bias is counted with."""
    return mx.array(tac_group_weights(num_steps, group, beta).sum(axis=1), dtype=mx.float32)


def tac_aggregate(
    x: mx.array, group: int, beta: float | None = 1.0, normalize: bool = False
) -> mx.array:
    r"""Decay-weighted sum of each group of ``group`` frames: ``[T, B, ...] -> [G, B, ...]``.

    ``A_k = sum_j w_kj X_{kg+j}`` (see the module docstring for the weights and
    the short last group); with ``normalize=True`` it returns ``A_k / S_k``
    instead (a weighted mean, on the scale of one frame). Computed as one
    batched contraction over a zero-padded ``[G, g, ...]`` view, no loop over
    groups; differentiable in ``x``.

    Args:
        x: ``[T, B, ...]`` floating-point frames.
        group (int): frames per group ``g >= 1``; ``g > T`` is clamped to ``T``.
        beta (float or None): decay in ``[0, 1]``; ``None`` means 1.0.
        normalize (bool): divide each group's aggregate by its weight sum.

    Returns:
        ``[ceil(T / g), B, ...]`` in the dtype of ``x`` (weights and sums in float32
        for half-precision ``x``).

    Raises:
        TypeError: ``x`` not a float array, ``group`` not an int, non-bool ``normalize``.
        ValueError: ``x`` of rank < 2, ``group < 1``, ``beta`` outside ``[0, 1]``.
    """
    check_float_array("x", x, min_ndim=2)
    check_bool("normalize", normalize)
    t = x.shape[0]
    w = tac_group_weights(t, group, beta)
    if normalize:
        w = w / w.sum(axis=1, keepdims=True)
    n_groups, g = w.shape
    pad = n_groups * g - t
    if pad:
        x = mx.concatenate([x, mx.zeros((pad, *x.shape[1:]), dtype=x.dtype)], axis=0)
    # weights and sums in float32 (half-precision rule), the result in x's dtype
    frames = to_carry(x).reshape(n_groups, g, -1)
    out = mx.matmul(mx.array(w[:, None, :], dtype=frames.dtype), frames)
    return to_dtype(out.reshape(n_groups, *x.shape[1:]), x.dtype)
