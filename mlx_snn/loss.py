r"""Losses on output spike trains ``[T, B, C]``.

Labels are class indices in ``[0, C)``. Outside ``mx.compile`` / ``mx.vmap`` a label out of that
range raises ``ValueError`` (one host read of the labels' min and max per call). Under
``mx.compile`` the labels are placeholders without values and are not checked; an out-of-range
label never indexes memory: its sample is masked, which makes the loss NaN and gives that
sample a zero gradient. An empty batch (``B = 0``) gives a NaN loss, the mean over no samples.

Half-precision spikes are summed and the loss computed in float32 (spike counts stay exact
beyond bfloat16's 256); the loss is returned in the spikes' dtype.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ._checks import check_float_array
from ._precision import to_carry, to_dtype
from ._tracing import host_values

__all__ = ["ce_count", "mse_rate"]


def _check(spikes: mx.array, labels: mx.array) -> None:
    check_float_array("spikes", spikes, min_ndim=3)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must be [T, B, C]; got shape {spikes.shape}")
    if spikes.shape[0] < 1 or spikes.shape[2] < 1:
        raise ValueError(
            f"spikes must have at least one time step and one class; got shape {spikes.shape}"
        )
    if not isinstance(labels, mx.array) or not mx.issubdtype(labels.dtype, mx.integer):
        raise TypeError("labels must be an integer mx.array of class indices [B]")
    if labels.shape != (spikes.shape[1],):
        raise ValueError(
            f"labels must have shape ({spikes.shape[1]},) to match spikes "
            f"{spikes.shape}; got {labels.shape}"
        )
    if labels.size == 0:
        return
    values = host_values(mx.min(labels), mx.max(labels))
    if values is None:  # traced by mx.compile / mx.vmap: _valid_labels masks instead
        return
    lo, hi = values
    num_classes = spikes.shape[2]
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"labels must be class indices in [0, {num_classes}) for spikes with "
            f"C = {num_classes} classes; got {lo if lo < 0 else hi}"
        )


def _valid_labels(labels: mx.array, num_classes: int) -> tuple[mx.array, mx.array]:
    """``(labels with out-of-range entries set to 0, in-range mask)``, both ``[B]``.

    Compared as int64 so that no dtype wraps (uint8 labels against C > 255, int64 labels
    beyond the int32 range); uint64 labels >= 2**63 turn negative and so count as out of range.
    """
    wide = labels.astype(mx.int64)
    valid = (wide >= 0) & (wide < num_classes)
    return mx.where(valid, wide, 0), valid


def ce_count(spikes: mx.array, labels: mx.array) -> mx.array:
    r"""Cross-entropy on spike counts: :math:`\mathrm{CE}(\sum_t s_t, y)`, batch mean.

    Args:
        spikes: output spikes ``[T, B, C]`` (``T, C >= 1``).
        labels: class indices ``[B]`` (integer) in ``[0, C)``.

    Returns:
        Scalar loss of the spikes' dtype; NaN for an empty batch (``B = 0``).

    Raises:
        ValueError: a label outside ``[0, C)`` (the message names it), wrong shapes.
        TypeError: non-floating spikes, non-integer labels.

    Under ``mx.compile`` (or ``mx.vmap``) labels are not checked: an out-of-range label
    makes the loss NaN (its sample gets no gradient); it never reads outside the counts.
    """
    _check(spikes, labels)
    counts = to_carry(spikes).sum(axis=0)  # float32: exact counts for any T
    if counts.shape[0] == 0:  # logsumexp rejects empty arrays; the mean over nothing is NaN
        return to_dtype(mx.mean(counts), spikes.dtype)
    safe, valid = _valid_labels(labels, counts.shape[1])
    per_sample = nn.losses.cross_entropy(counts, safe, reduction="none")
    return to_dtype(mx.mean(mx.where(valid, per_sample, float("nan"))), spikes.dtype)


def mse_rate(spikes: mx.array, labels: mx.array, on: float = 1.0, off: float = 0.0) -> mx.array:
    r"""Mean squared error between firing rates and targets.

    :math:`\frac{1}{BC}\sum_{b,c} (\bar s_{bc} - y_{bc})^2` with
    :math:`\bar s = \frac{1}{T}\sum_t s_t` and targets ``on`` for the true class and
    ``off`` elsewhere.

    Args:
        spikes: output spikes ``[T, B, C]`` (``T, C >= 1``).
        labels: class indices ``[B]`` (integer) in ``[0, C)``.
        on, off: target rates for the true and the other classes.

    Returns:
        Scalar loss of the spikes' dtype; NaN for an empty batch (``B = 0``).

    Raises:
        ValueError: a label outside ``[0, C)`` (the message names it), wrong shapes.
        TypeError: non-floating spikes, non-integer labels.

    Under ``mx.compile`` (or ``mx.vmap``) labels are not checked: an out-of-range label
    makes the loss NaN (its sample gets no gradient).
    """
    _check(spikes, labels)
    safe, valid = _valid_labels(labels, spikes.shape[-1])
    target = mx.where(mx.arange(spikes.shape[-1])[None, :] == safe[:, None], on, off)
    rates = to_carry(spikes).mean(axis=0)
    per_sample = mx.mean(mx.square(rates - target.astype(rates.dtype)), axis=-1)
    return to_dtype(mx.mean(mx.where(valid, per_sample, float("nan"))), spikes.dtype)
