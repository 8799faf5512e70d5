"""``StateLeaky``: a no-reset leaky integrator with spike read-out (linear scan)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .. import surrogate as _surrogate
from ..functional.state_leaky import state_leaky
from .lif import LIFOutput, _param

__all__ = ["StateLeaky"]


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
