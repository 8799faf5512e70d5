"""``StateLeaky``: a no-reset leaky integrator with spike read-out (linear scan)."""

from __future__ import annotations

import mlx.core as mx

from .. import backends
from .. import surrogate as _surrogate
from .._checks import check_bool
from .._params import (
    POSITIVE,
    UNIT,
    check_module_state,
    module_param,
    param_repr,
    store_param,
)
from ..functional.state_leaky import state_leaky
from .lif import LIFOutput
from .temporal import TemporalModule

__all__ = ["StateLeaky"]


class StateLeaky(TemporalModule):
    r"""No-reset leaky integrator with spike read-out, computed by a linear scan.

    .. math::

        h_t = \beta h_{t-1} + x_t, \qquad s_t = \Theta(h_t - \theta)

    Spikes do not feed back (no reset). snnTorch's ``StateLeaky`` decays by
    :math:`e^{-(1-\beta)}` per step; this module decays by :math:`\beta` (as
    :class:`LIF`). See :func:`mlx_snn.functional.state_leaky`.

    Args:
        beta (float or array): decay in ``[0, 1]`` (array: one per feature).
        threshold (float or array): read-out threshold ``> 0``.
        surrogate (str or Surrogate): backward surrogate. Default
            :data:`mlx_snn.surrogate.DEFAULT` (``"fast_sigmoid"``).
        learn_beta (bool): train ``beta`` (clipped to ``[0, 1]`` in the forward pass).
        backend (str): backend of the membrane scan: as in
            :func:`mlx_snn.functional.linear_scan` (``"auto"`` runs the scan kernel
            where a kernel backend is available). Default ``"auto"``.

    Call: ``leaky(x, state=None, return_state=False)`` with ``x [T, B, ...]`` returns
    spikes ``[T, B, ...]``, or ``(spikes, LIFOutput(mem, state))``; ``state [B, ...]``
    is ``h_{T-1}``, to pass as ``state=`` to continue the sequence. An empty batch
    gives empty outputs.

    **Saved for the backward:** the membrane ``mem`` ``[T, B, ...]`` only (input dtype);
    the spikes and the input are not read. Half-precision inputs: the scan and the
    threshold test run in float32, ``state`` is float32.
    """

    chunking = "state"

    def __init__(
        self,
        beta: float | mx.array = 0.9,
        threshold: float | mx.array = 1.0,
        surrogate: str | _surrogate.Surrogate = _surrogate.DEFAULT,
        learn_beta: bool = False,
        backend: str = "auto",
    ):
        super().__init__()
        backends.resolve(backend)
        self.backend = backend
        self.surrogate = _surrogate.get(surrogate)
        self.learn_beta = check_bool("learn_beta", learn_beta)
        store_param(self, "beta", module_param("beta", beta, UNIT), learn_beta)
        store_param(self, "threshold", module_param("threshold", threshold, POSITIVE), False)

    def _extra_repr(self):
        return (
            f"beta={param_repr(self.beta)}, threshold={param_repr(self.threshold)}, "
            f"surrogate={self.surrogate}, learn_beta={self.learn_beta}, "
            f"backend={self.backend!r}"
        )

    def __call__(self, x: mx.array, state: mx.array | None = None, return_state: bool = False):
        check_bool("return_state", return_state)
        check_module_state(x, state)
        beta = mx.clip(self.beta, 0.0, 1.0) if self.learn_beta else self.beta
        out = state_leaky(x, beta, self.threshold, self.surrogate, state, self.backend)
        if return_state:
            return out.spikes, LIFOutput(out.mem, out.state)
        return out.spikes
