"""Neurons computed with parallel scans: ``ParallelLIF`` and ``StateLeaky``."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .. import surrogate as _surrogate
from .._checks import check_int
from ..functional.leaky import state_leaky
from ..functional.parallel_lif import DEFAULT_CHUNK
from .lif import LIF, LIFOutput, _param

__all__ = ["ParallelLIF", "StateLeaky"]


class ParallelLIF(LIF):
    r"""LIF with exact reset computed by parallel scans (same results as :class:`LIF`).

    Same arguments, call (``lif(x, state=None, return_state=False)``) and ``step``
    as :class:`LIF`, for ``reset="subtract"`` or ``"zero"`` with
    ``reset_timing="immediate"``:

    .. math::

        h_t = \beta v_{t-1} + x_t,\quad s_t = \Theta(h_t - \theta),\quad
        v_t = h_t - \theta s_t \mid h_t (1 - s_t)

    The forward pass resolves chunks of ``chunk`` steps by speculate-and-restart
    rounds (one round per spike of the busiest neuron in the chunk, plus one) and the
    backward pass is a reverse linear scan; see
    :func:`mlx_snn.functional.parallel_lif_sequence`. Spikes equal :class:`LIF`'s except
    where fp32 rounding differs on an exact threshold tie. It pays off for few
    neurons and long sequences at moderate firing rates; ``snn.LIF(algorithm="auto")``
    picks it by shape.

    ``beta``, ``threshold``, ``reset``, ``surrogate``, ``detach_reset``, ``learn_beta``,
    ``learn_threshold``, ``reset_timing`` and ``backend`` are as in :class:`LIF`.

    Args:
        chunk (int): steps resolved per chunk. Default ``64``.

    Raises:
        ValueError: ``reset="none"`` or ``reset_timing="delayed"`` (use :class:`LIF`),
            and every error of :class:`LIF`.
    """

    def __init__(
        self,
        beta: float | mx.array = 0.9,
        threshold: float | mx.array = 1.0,
        reset: str = "subtract",
        surrogate: str | _surrogate.Surrogate = "fast_sigmoid",
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


class StateLeaky(nn.Module):
    r"""No-reset leaky integrator with spike read-out, computed by a linear scan.

    .. math::

        h_t = \beta h_{t-1} + x_t, \qquad s_t = \Theta(h_t - \theta)

    Spikes do not feed back (no reset). snnTorch's ``StateLeaky`` decays by
    :math:`e^{-(1-\beta)}` per step; this module decays by :math:`\beta` (as
    :class:`LIF`). See :func:`mlx_snn.functional.state_leaky`.

    Args:
        beta (float or array): decay in ``[0, 1]`` (array: one per feature).
        threshold (float or array): read-out threshold ``> 0``.
        surrogate (str or Surrogate): backward surrogate. Default ``"fast_sigmoid"``.
        learn_beta (bool): train ``beta`` (clipped to ``[0, 1]`` in the forward pass).

    Call: ``leaky(x, state=None, return_state=False)`` with ``x [T, B, ...]`` returns
    spikes ``[T, B, ...]``, or ``(spikes, LIFOutput(mem, state))``; ``state [B, ...]``
    is ``h_{T-1}``, to pass as ``state=`` to continue the sequence.
    """

    def __init__(
        self,
        beta: float | mx.array = 0.9,
        threshold: float | mx.array = 1.0,
        surrogate: str | _surrogate.Surrogate = "fast_sigmoid",
        learn_beta: bool = False,
    ):
        super().__init__()
        self.surrogate = _surrogate.get(surrogate)
        beta = _param("beta", beta, unit_interval=True)
        threshold = _param("threshold", threshold, unit_interval=False)
        self.learn_beta = bool(learn_beta)
        self.threshold = threshold if isinstance(threshold, float) else mx.array(threshold)
        if learn_beta or not isinstance(beta, float):
            self.beta = mx.array(beta, dtype=mx.float32)
        else:
            self.beta = beta
        frozen = [k for k, v in (("beta", not learn_beta), ("threshold", True)) if v]
        frozen = [k for k in frozen if isinstance(getattr(self, k), mx.array)]
        if frozen:
            self.freeze(keys=frozen, strict=True)

    def _extra_repr(self):
        def show(v):
            return f"{v}" if isinstance(v, float) else f"array{tuple(v.shape)}"

        return (
            f"beta={show(self.beta)}, threshold={show(self.threshold)}, "
            f"surrogate={self.surrogate}, learn_beta={self.learn_beta}"
        )

    def __call__(self, x: mx.array, state: mx.array | None = None, return_state: bool = False):
        beta = mx.clip(self.beta, 0.0, 1.0) if self.learn_beta else self.beta
        out = state_leaky(x, beta, self.threshold, self.surrogate, state)
        if return_state:
            return out.spikes, LIFOutput(out.mem, out.state)
        return out.spikes
