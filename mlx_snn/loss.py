r"""Losses on output spike trains ``[T, B, C]``."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ._checks import check_float_array

__all__ = ["ce_count", "mse_rate"]


def _check(spikes: mx.array, labels: mx.array) -> None:
    check_float_array("spikes", spikes, min_ndim=3)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must be [T, B, C]; got shape {spikes.shape}")
    if not isinstance(labels, mx.array) or not mx.issubdtype(labels.dtype, mx.integer):
        raise TypeError("labels must be an integer mx.array of class indices [B]")
    if labels.shape != (spikes.shape[1],):
        raise ValueError(
            f"labels must have shape ({spikes.shape[1]},) to match spikes "
            f"{spikes.shape}; got {labels.shape}"
        )


def ce_count(spikes: mx.array, labels: mx.array) -> mx.array:
    r"""Cross-entropy on spike counts: :math:`\mathrm{CE}(\sum_t s_t, y)`, batch mean.

    Args:
        spikes: output spikes ``[T, B, C]``.
        labels: class indices ``[B]`` (integer).
    """
    _check(spikes, labels)
    return nn.losses.cross_entropy(spikes.sum(axis=0), labels, reduction="mean")


def mse_rate(spikes: mx.array, labels: mx.array, on: float = 1.0, off: float = 0.0) -> mx.array:
    r"""Mean squared error between firing rates and targets.

    :math:`\frac{1}{BC}\sum_{b,c} (\bar s_{bc} - y_{bc})^2` with
    :math:`\bar s = \frac{1}{T}\sum_t s_t` and targets ``on`` for the true class and
    ``off`` elsewhere.

    Args:
        spikes: output spikes ``[T, B, C]``.
        labels: class indices ``[B]`` (integer).
        on, off: target rates for the true and the other classes.
    """
    _check(spikes, labels)
    target = mx.where(mx.arange(spikes.shape[-1])[None, :] == labels[:, None], on, off).astype(
        spikes.dtype
    )
    return mx.mean(mx.square(spikes.mean(axis=0) - target))
