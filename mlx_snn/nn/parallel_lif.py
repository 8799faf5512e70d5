"""``ParallelLIF``: the LIF neuron with its sequence computed by parallel scans."""

from __future__ import annotations

import mlx.core as mx

from .. import surrogate as _surrogate
from .._checks import check_int
from ..functional.parallel_lif import DEFAULT_CHUNK
from .lif import LIF

__all__ = ["ParallelLIF"]


class ParallelLIF(LIF):
    r"""LIF with exact reset computed by parallel scans (same results as :class:`LIF`).

    Same arguments, call (``lif(x, state=None, return_state=False)``) and ``step``
    as :class:`LIF`, for every reset and timing. With ``reset_timing="immediate"``:

    .. math::

        h_t = \beta v_{t-1} + x_t,\quad s_t = \Theta(h_t - \theta),\quad
        v_t = h_t - \theta s_t \mid h_t (1 - s_t) \mid h_t

    and ``reset_timing="delayed"`` is snnTorch's ``Leaky`` (see :class:`LIF`).

    The forward pass resolves chunks of ``chunk`` steps by speculate-and-restart
    rounds (one round per spike of the busiest neuron in the chunk, plus one;
    ``reset="none"`` needs none: it is one linear scan) and the backward pass is a
    reverse linear scan; see :func:`mlx_snn.functional.parallel_lif_sequence`. Spikes equal
    :class:`LIF`'s except where fp32 rounding differs on a near-tie at the
    threshold. It pays off for few neurons and long sequences at moderate firing
    rates; ``snn.LIF(algorithm="auto")`` picks it by shape.

    ``beta``, ``threshold``, ``reset``, ``surrogate``, ``detach_reset``, ``learn_beta``,
    ``learn_threshold`` and ``reset_timing`` are as in :class:`LIF`. ``backend``: as in
    :class:`LIF`, but the parallel algorithm runs on MLX: ``backend="auto"`` resolves
    to ``"mlx"`` and a kernel backend raises ``ValueError`` (``LIF(backend="metal")``
    runs the fused kernel loop).

    Saves the same for the backward as :class:`LIF` (its membrane). Half-precision
    inputs: the rounds, scans and threshold tests run in float32, the state returned
    is float32, spikes and ``mem`` are in the input dtype.

    Args:
        chunk (int): steps resolved per chunk. Default ``64``.

    Raises:
        ValueError: ``chunk < 1`` and every error of :class:`LIF`.
    """

    def __init__(
        self,
        beta: float | mx.array = 0.9,
        threshold: float | mx.array = 1.0,
        reset: str = "subtract",
        surrogate: str | _surrogate.Surrogate = _surrogate.DEFAULT,
        detach_reset: bool | None = None,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        reset_timing: str = "immediate",
        backend: str = "auto",
        chunk: int = DEFAULT_CHUNK,
    ):
        super().__init__(
            beta,
            threshold,
            reset,
            surrogate,
            detach_reset,
            learn_beta,
            learn_threshold,
            reset_timing,
            backend,
            algorithm="parallel",
        )
        self.chunk = check_int("chunk", chunk, minimum=1)
