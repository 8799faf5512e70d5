r"""Spike encoders: turn static inputs into time-major spike trains ``[T, B, ...]``.

Every encoder checks on the host that the images lie in ``[0, 1]`` without NaN (one read of
their min, max and NaN flag per call). Under ``mx.compile`` (or ``mx.vmap``) the images are
placeholders without values and are not checked; the encoders then run on the images clipped
to ``[0, 1]`` (a no-op for checked images), and NaN inputs never cross (silent, except the
forced spike at ``T - 1`` of ``ttfs(force_last=True)``). An empty batch (``B = 0``) gives
empty spikes ``[T, 0, ...]``.

Half-precision images are accepted: the encoders compute probabilities, spike times and
membranes in float32 and return spikes in the images' dtype (0 and 1 are exact in every dtype).
"""

from __future__ import annotations

import mlx.core as mx

from ._checks import check_float_array, check_int, check_positive
from ._params import check_tau as _check_tau
from ._params import check_threshold as _check_threshold
from ._precision import to_carry
from ._tracing import host_values
from .functional.amos import first_spike as _first_spike

__all__ = ["latency", "rate", "ttfs"]


def _check_unit_images(images: mx.array) -> mx.array:
    """Check that ``images`` is floating, in ``[0, 1]``, without NaN; return it clipped.

    The value check is skipped under ``mx.compile`` / ``mx.vmap`` tracing (no values to read);
    the clip to ``[0, 1]`` then defines the result for values outside (NaN stays NaN).
    """
    if isinstance(images, mx.array) and not mx.issubdtype(images.dtype, mx.floating):
        raise TypeError(
            f"images must be floating point with values in [0, 1]; got {images.dtype} "
            "(convert with images.astype(mx.float32) / 255)"
        )
    check_float_array("images", images, min_ndim=1)
    if images.size == 0:
        return images
    values = host_values(mx.any(mx.isnan(images)), mx.min(images), mx.max(images))
    if values is not None:
        nan, lo, hi = values
        if nan:
            raise ValueError("images contain NaN")
        if lo < 0 or hi > 1:
            raise ValueError(f"images must lie in [0, 1]; got values in [{lo}, {hi}]")
    return mx.clip(images, 0.0, 1.0)


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
        gain: finite scale ``g > 0`` applied to the intensities before clipping to 1.

    Returns:
        Spikes ``[T, B, ...]`` of the images' dtype (``[T, 0, ...]`` for an empty batch).

    Raises:
        ValueError: ``num_steps < 1``, ``gain`` not finite and > 0, images outside ``[0, 1]``
            or NaN (not checked under ``mx.compile``: see the module docstring).
        TypeError: non-floating images, non-int ``num_steps``, non-number ``gain``.

    Under ``mx.compile`` pass ``key`` as an input of the compiled function (or compile with
    ``inputs=mx.random.state, outputs=mx.random.state``): with the global RNG captured as a
    constant, every call repeats the same draws.
    """
    check_int("num_steps", num_steps, minimum=1)
    gain = check_positive("gain", gain)
    images = _check_unit_images(images)
    p = mx.minimum(to_carry(images) * gain, 1.0)
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
        threshold: intensities below this stay silent, a number in ``[0, 1]``.

    Returns:
        Spikes ``[T, B, ...]`` (at most one per input) of the images' dtype
        (``[T, 0, ...]`` for an empty batch).

    Raises:
        ValueError: ``num_steps < 1``, ``threshold`` outside ``[0, 1]``, images outside
            ``[0, 1]`` or NaN (not checked under ``mx.compile``: see the module docstring).
        TypeError: non-floating images, non-int ``num_steps``, non-number ``threshold``.
    """
    check_int("num_steps", num_steps, minimum=1)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number in [0, 1]; got {type(threshold).__name__}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1]; got {threshold!r}")
    images = _check_unit_images(images)
    x = to_carry(images)  # float32: step indices beyond 256 are exact
    t_fire = mx.round((1.0 - x) * (num_steps - 1))
    steps = mx.arange(num_steps, dtype=x.dtype).reshape(num_steps, *([1] * images.ndim))
    return ((steps == t_fire) & (x >= threshold)).astype(images.dtype)


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
        (exactly one with ``force_last=True``; ``[T, 0, ...]`` for an empty batch).

    Raises:
        ValueError: ``num_steps < 1``, ``tau <= 1``, ``threshold <= 0``, images
            outside ``[0, 1]`` or NaN (images not checked under ``mx.compile``: see the
            module docstring; pass ``threshold`` as a float there, an array threshold
            that is an input of the compiled function cannot be checked).
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
