r"""StateLeaky: a leaky integrator without reset, computed by a linear scan.

.. math::

    h_t = \beta h_{t-1} + x_t, \qquad s_t = \Theta(h_t - \theta), \qquad h_{-1} = h_0

The spikes are read out and do not feed back, so the membrane of all steps is one
:func:`mlx_snn.functional.linear_scan` (stable for any ``T``). The backward pass of
:math:`\Theta` is the surrogate derivative :math:`\sigma'(h_t - \theta)`.

snnTorch's ``StateLeaky`` decays with :math:`e^{-(1-\beta)}` per step; here the
decay is :math:`\beta` itself, as in :class:`mlx_snn.LIF`.
"""

from __future__ import annotations

import mlx.core as mx

from .. import surrogate as _surrogate
from .._checks import check_sequence
from .._params import POSITIVE, UNIT, check_state, functional_param
from .lif import LIFSequence
from .scan import linear_scan

__all__ = ["state_leaky"]


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
        x: input current ``[T, B, ...]`` (floating point, ``T >= 1``; an empty batch
            gives empty outputs).
        beta: decay in ``[0, 1]``, float or array broadcastable to the feature shape
            ``x.shape[2:]`` (differentiated when an array).
        threshold: read-out threshold, finite and ``> 0``, float or array like ``beta``.
            Array values are checked with one host read per call, skipped inside
            ``mx.compile`` (where they are used as given).
        surrogate: name or :class:`mlx_snn.surrogate.Surrogate` for the backward.
            Default :data:`mlx_snn.surrogate.DEFAULT`.
        h0: initial membrane ``[B, ...]`` (default zeros).
        backend: as in :func:`mlx_snn.functional.linear_scan` (the membrane scan; the
            read-out is MLX).

    Returns:
        :class:`~mlx_snn.functional.LIFSequence` ``(spikes [T, B, ...], mem [T, B, ...],
        state [B, ...])`` with ``mem = h`` and ``state = h_{T-1}`` (pass as ``h0``).

    Raises:
        ValueError: beta outside ``[0, 1]``, threshold ``<= 0`` or not finite (arrays
            too), fewer than 2 input
            dimensions, no time steps, mismatched ``h0``, unknown surrogate, a
            backend :func:`~mlx_snn.functional.linear_scan` refuses.
        TypeError: non-floating input, state or parameters.
    """
    spike = _surrogate.get(surrogate)
    check_sequence("x", x)
    feature_shape = tuple(x.shape[2:])
    beta = functional_param("beta", beta, feature_shape, x.dtype, UNIT)
    threshold = functional_param("threshold", threshold, feature_shape, x.dtype, POSITIVE)
    h0 = check_state("h0", h0, x.shape[1:], x.dtype)
    h = linear_scan(beta, x, h0, backend=backend)
    return LIFSequence(spike(h - threshold), h, h[-1])
