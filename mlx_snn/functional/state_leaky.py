r"""StateLeaky: a leaky integrator without reset, computed by a linear scan.

.. math::

    h_t = \beta h_{t-1} + x_t, \qquad s_t = \Theta(h_t - \theta), \qquad h_{-1} = h_0

The spikes are read out and do not feed back, so the membrane of all steps is one
:func:`mlx_snn.functional.linear_scan` (stable for any ``T``). The backward pass of
:math:`\Theta` is the surrogate derivative :math:`\sigma'(h_t - \theta)`.

snnTorch's ``StateLeaky`` decays with :math:`e^{-(1-\beta)}` per step; here the
decay is :math:`\beta` itself, as in :class:`mlx_snn.LIF`.

**Backward.** One ``mx.custom_function``: with :math:`g_s, g_h, g_v` the cotangents of
the spikes, the membrane and the state, :math:`G_t = g_{s,t}\,\sigma'(h_t - \theta)
+ g_{h,t}` (plus :math:`g_v` at :math:`t = T-1`) and the reverse scan
:math:`\bar g_t = G_t + \beta \bar g_{t+1}`, the gradients are
:math:`\partial L/\partial x_t = \bar g_t`, :math:`\partial L/\partial h_0 = \beta \bar g_0`,
:math:`\partial L/\partial \beta = \sum_t \bar g_t h_{t-1}` and
:math:`\partial L/\partial \theta = -\sum_t g_{s,t} \sigma'(h_t - \theta)`.
**Saved for the backward:** the membrane output ``mem`` ``[T, B, ...]`` only (the
spikes and the input are not read); the backward's temporaries are a few
``[T, B, ...]`` float32 arrays.

**Half precision** (:mod:`mlx_snn._precision`): the scan, the threshold test and
the backward run in float32; spikes and ``mem`` come back in the input dtype,
the state in float32.
"""

from __future__ import annotations

import functools

import mlx.core as mx

from .. import surrogate as _surrogate
from .._checks import check_sequence
from .._params import POSITIVE, UNIT, check_state, functional_param
from .._precision import carry_dtype, to_carry, to_dtype
from .lif import LIFSequence
from .scan import linear_scan, sum_to_shape

__all__ = ["state_leaky"]


@functools.cache
def _cotangent_fn(surrogate: _surrogate.Surrogate):
    """``g_s sigma'(h - theta) + g_h`` in float32, fused (one full-size temporary)."""
    return mx.compile(lambda g_s, g_h, h, thr: to_carry(g_s) * surrogate.derivative(h - thr) + g_h)


@functools.cache
def _state_leaky_fn(surrogate: _surrogate.Surrogate, backend: str):
    """The forward scan and the hand-written backward, one ``mx.custom_function``."""

    @mx.custom_function
    def run(x, beta, threshold, h0):
        h = linear_scan(beta, to_carry(x), h0, backend=backend)
        return to_dtype(h >= threshold, x.dtype), to_dtype(h, x.dtype), h[-1]

    @run.vjp
    def run_vjp(primals, cotangents, outputs):
        x, beta, threshold, h0 = primals
        g_s, g_h, g_v = cotangents
        h = outputs[1]  # mem, in x's dtype: the one tensor this backward reads
        g = _cotangent_fn(surrogate)(g_s, g_h, h, threshold)
        g = mx.concatenate([g[:-1], (g[-1] + g_v)[None]])
        g_b = linear_scan(beta, g, reverse=True, backend=backend)
        # parameter gradients: built lazily, computed only when asked for
        h_prev = mx.concatenate([h0[None], h[:-1]])
        g_thr = -to_carry(g_s) * surrogate.derivative(h - threshold)
        return (
            to_dtype(g_b, x.dtype),
            sum_to_shape(g_b * h_prev, beta.shape),
            sum_to_shape(g_thr, threshold.shape),
            beta * g_b[0],
        )

    return run


def state_leaky(
    x: mx.array,
    beta: float | mx.array = 0.9,
    threshold: float | mx.array = 1.0,
    surrogate: str | _surrogate.Surrogate = _surrogate.DEFAULT,
    h0: mx.array | None = None,
    backend: str = "auto",
) -> LIFSequence:
    """Run the no-reset leaky integrator over ``x [T, B, ...]``.

    Args:
        x: input current ``[T, B, ...]`` (float32, float16 or bfloat16, ``T >= 1``;
            an empty batch gives empty outputs).
        beta: decay in ``[0, 1]``, float or array broadcastable to the feature shape
            ``x.shape[2:]`` (differentiated when an array).
        threshold: read-out threshold, finite and ``> 0``, float or array like ``beta``.
            Array values are checked with one host read per call, skipped inside
            ``mx.compile`` (where they are used as given).
        surrogate: name or :class:`mlx_snn.surrogate.Surrogate` for the backward.
            Default :data:`mlx_snn.surrogate.DEFAULT`.
        h0: initial membrane ``[B, ...]`` (default zeros; any float dtype).
        backend: as in :func:`mlx_snn.functional.linear_scan` (the forward and backward
            membrane scans; the read-out is MLX).

    Returns:
        :class:`~mlx_snn.functional.LIFSequence` ``(spikes [T, B, ...], mem [T, B, ...],
        state [B, ...])`` with ``mem = h`` and ``state = h_{T-1}`` (pass as ``h0``).
        Spikes and ``mem`` in the dtype of ``x``; ``state`` in float32 for a
        half-precision ``x`` (the scan's carry), else in the dtype of ``x``.

    Raises:
        ValueError: beta outside ``[0, 1]``, threshold ``<= 0`` or not finite (arrays
            too), fewer than 2 input
            dimensions, no time steps, mismatched ``h0``, unknown surrogate, a
            backend :func:`~mlx_snn.functional.linear_scan` refuses.
        TypeError: non-floating input, state or parameters.
    """
    surrogate = _surrogate.get(surrogate)
    check_sequence("x", x)
    feature_shape = tuple(x.shape[2:])
    carry = carry_dtype(x.dtype)
    beta = functional_param("beta", beta, feature_shape, carry, UNIT)
    threshold = functional_param("threshold", threshold, feature_shape, carry, POSITIVE)
    h0 = check_state("h0", h0, x.shape[1:], carry)
    if x.size == 0:  # empty in, empty out
        return LIFSequence(mx.zeros_like(x), mx.zeros_like(x), h0)
    return LIFSequence(*_state_leaky_fn(surrogate, backend)(x, beta, threshold, h0))
