r"""Spike encoders: turn static inputs into time-major spike trains ``[T, B, ...]``."""

from __future__ import annotations

import mlx.core as mx

from ._checks import check_float_array, check_int
from ._params import check_tau as _check_tau
from ._params import check_threshold as _check_threshold
from .functional.amos import first_spike as _first_spike

__all__ = ["latency", "rate", "ttfs"]


def _check_unit_images(images: mx.array) -> mx.array:
    if isinstance(images, mx.array) and not mx.issubdtype(images.dtype, mx.floating):
        raise TypeError(
            f"images must be floating point with values in [0, 1]; got {images.dtype} "
            "(convert with images.astype(mx.float32) / 255)"
        )
    check_float_array("images", images, min_ndim=1)
    lo, hi, nan = mx.min(images), mx.max(images), mx.any(mx.isnan(images))
    if nan.item():
        raise ValueError("images contain NaN")
    if lo.item() < 0 or hi.item() > 1:
        raise ValueError(f"images must lie in [0, 1]; got values in [{lo.item()}, {hi.item()}]")
    return images


def rate(
    images: mx.array,
    num_steps: int,
    key: mx.array | None = None,
    gain: float = 1.0,
) -> mx.array:
    r"""Bernoulli rate coding: :math:`s_t \sim \mathrm{Bernoulli}(\min(1, g\,x))`.

    Args:
        images: intensities in ``[0, 1]``, shape ``[B, ...]``.
        num_steps: number of time steps ``T >= 1``.
        key: ``mx.random.key`` for reproducible draws (default: global RNG).
        gain: scale ``g > 0`` applied to the intensities before clipping to 1.

    Returns:
        Spikes ``[T, B, ...]`` of the images' dtype.
    """
    check_int("num_steps", num_steps, minimum=1)
    if not gain > 0:
        raise ValueError(f"gain must be > 0; got {gain!r}")
    images = _check_unit_images(images)
    p = mx.minimum(images * gain, 1.0)
    u = mx.random.uniform(shape=(num_steps, *images.shape), key=key)
    return (u < p).astype(images.dtype)


def latency(
    images: mx.array,
    num_steps: int,
    threshold: float = 0.01,
) -> mx.array:
    r"""Time-to-first-spike coding: one spike per input, brighter means earlier.

    An input :math:`x \ge` ``threshold`` fires once at
    :math:`t = \mathrm{round}((1 - x)(T - 1))`; inputs below the threshold never fire.

    Args:
        images: intensities in ``[0, 1]``, shape ``[B, ...]``.
        num_steps: number of time steps ``T >= 1``.
        threshold: intensities below this stay silent.

    Returns:
        Spikes ``[T, B, ...]`` (at most one per input) of the images' dtype.
    """
    check_int("num_steps", num_steps, minimum=1)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1]; got {threshold!r}")
    images = _check_unit_images(images)
    t_fire = mx.round((1.0 - images) * (num_steps - 1))
    steps = mx.arange(num_steps, dtype=images.dtype).reshape(num_steps, *([1] * images.ndim))
    return ((steps == t_fire) & (images >= threshold)).astype(images.dtype)


def ttfs(
    images: mx.array,
    num_steps: int,
    tau: float = 2.0,
    threshold: float = 0.5,
    force_last: bool = True,
) -> mx.array:
    r"""Time-to-first-spike coding by an AMOS neuron driven by the image.

    The PTTFS paper names no separate input encoder: a static image fed as a
    constant current makes its first AMOS layer the time-to-first-spike coder.
    This encoder is such a layer with identity synapses. Each input :math:`x` charges
    :math:`h_t = \alpha h_{t-1} + x/\tau = x\,(1 - \alpha^{t+1})`
    (:math:`\alpha = 1 - 1/\tau`) and fires once, at the first :math:`t` with
    :math:`h_t \ge \theta`: brighter inputs fire earlier, inputs
    :math:`x \le \theta` never cross. With ``force_last=True`` (the AMOS rule) those
    fire at :math:`T-1`; with ``False`` they stay silent. With ``force_last=True``
    the result equals ``snn.AMOS(tau, threshold)`` applied to the image repeated
    ``num_steps`` times (up to fp32 rounding at exact ties).

    Args:
        images: intensities in ``[0, 1]``, shape ``[B, ...]``.
        num_steps: number of time steps ``T >= 1``.
        tau: time constant ``> 1``.
        threshold: the AMOS threshold :math:`\theta > 0`.
        force_last: forced spike at ``T - 1`` for inputs that never cross.

    Returns:
        Spikes ``[T, B, ...]`` of the images' dtype, at most one per input
        (exactly one with ``force_last=True``).

    Raises:
        ValueError: ``num_steps < 1``, ``tau <= 1``, ``threshold <= 0``, images
            outside ``[0, 1]`` or NaN.
        TypeError: non-floating images, non-bool ``force_last``.
    """
    check_int("num_steps", num_steps, minimum=1)
    tau = _check_tau(tau)
    threshold = _check_threshold(threshold, (), mx.float32)
    if not isinstance(force_last, bool):
        raise TypeError(f"force_last must be a bool; got {type(force_last).__name__}")
    images = _check_unit_images(images)
    alpha = 1.0 - 1.0 / tau
    shape = (num_steps, *([1] * images.ndim))
    charge = 1.0 - mx.power(alpha, mx.arange(1, num_steps + 1, dtype=mx.float32))
    mem = images.astype(mx.float32)[None] * charge.reshape(shape)
    first = _first_spike(mem, threshold)
    steps = mx.arange(num_steps).reshape(shape)
    spikes = steps == first.t_first
    if not force_last:
        spikes = spikes & ~first.forced
    return spikes.astype(images.dtype)
