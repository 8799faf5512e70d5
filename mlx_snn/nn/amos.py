"""AMOS neuron and the PTTFS temporal selector decoder as ``nn.Module``s."""

from __future__ import annotations

import math
from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn

from .. import backends
from .. import surrogate as _surrogate
from .._checks import check_bool, check_choice, check_float_array, check_int
from .._params import POSITIVE, check_scalar, check_tau, module_param, param_repr, store_param
from .._precision import to_carry, to_dtype
from ..functional.amos import METHODS, amos, kernel_limit, temporal_selector
from ..functional.scan import linear_scan
from .temporal import TemporalModule

__all__ = ["AMOS", "AMOSOutput", "TemporalSelectorDecoder"]


class AMOSOutput(NamedTuple):
    """Extra outputs of :class:`AMOS`.

    Attributes:
        mem: ``[T, B, ...]`` membrane ``h`` (no reset).
        t_first: ``[B, ...]`` ``int32`` firing step of each neuron.
    """

    mem: mx.array
    t_first: mx.array


class AMOS(TemporalModule):
    r"""At-most-one-spike LIF neuron (PTTFS): every neuron fires exactly once.

    Input ``x`` is ``[T, B, ...]``. With :math:`\alpha = 1 - 1/\tau`, :math:`h_{-1} = 0`:

    .. math::

        h_t = \alpha h_{t-1} + x_t / \tau,\qquad
        t_f = \min\{t : h_t \ge \theta \text{ or } t = T-1\},\qquad
        s_t = [t = t_f]

    A neuron that never crosses the threshold is forced to fire at ``T - 1``.
    The backward pass uses the paper's second-fake-spike rule, exact autodiff of
    the sequential recurrence (see :mod:`mlx_snn.functional.amos`).

    Args:
        tau (float): membrane time constant ``> 1``. Default ``2.0``.
        threshold (float or array): threshold ``> 0`` (fixed; an array is stored as a
            frozen float32 parameter). Default ``1.0``.
        surrogate (str or Surrogate): backward surrogate. Default
            :data:`mlx_snn.surrogate.AMOS_DEFAULT` (``"atan"``, the PTTFS setup).
        method (str): ``"auto"`` | ``"parallel"`` | ``"sequential"``. Default
            ``"auto"``: the fused kernel on a kernel backend, else ``"parallel"``;
            the other two name MLX algorithms.
        backend (str): as in :func:`mlx_snn.functional.amos` (``"auto"`` runs the
            AMOS kernels where a kernel backend is available and the call allows).
            Default ``"auto"``.

    Call: ``amos(x, return_mem=False)`` returns spikes ``[T, B, ...]`` (one-hot in
    time), or ``(spikes, AMOSOutput(mem, t_first))`` with ``return_mem=True``; one
    call of :func:`mlx_snn.functional.amos`. An empty batch gives empty outputs.

    **Saved for the backward** (``method="parallel"``): the membrane ``mem``
    ``[T, B, ...]`` (input dtype), the spikes (the output the next layer keeps anyway)
    and the ``int32`` steps ``t_first``, ``t_second`` ``[B, ...]``; not the input.
    ``method="sequential"`` is autograd through the step loop and keeps every step's
    membrane, fake spike and firing mask. It depends on the whole sequence (the forced
    last-step spike), so it cannot run in chunks of time (``chunking = "whole"``).
    """

    chunking = "whole"

    def __init__(
        self,
        tau: float = 2.0,
        threshold: float | mx.array = 1.0,
        surrogate: str | _surrogate.Surrogate = _surrogate.AMOS_DEFAULT,
        method: str = "auto",
        backend: str = "auto",
    ):
        super().__init__()
        self.method = check_choice("method", method, METHODS)
        self.surrogate = _surrogate.get(surrogate)
        backends.resolve(backend, kernel_limit(self.method, self.surrogate))
        self.backend = backend
        self.tau = check_tau(tau)
        store_param(self, "threshold", module_param("threshold", threshold, POSITIVE), False)

    def _extra_repr(self):
        return (
            f"tau={self.tau}, threshold={param_repr(self.threshold)}, "
            f"surrogate={self.surrogate}, method={self.method!r}, backend={self.backend!r}"
        )

    def __call__(self, x: mx.array, return_mem: bool = False):
        check_bool("return_mem", return_mem)
        out = amos(x, self.tau, self.threshold, self.surrogate, self.method, self.backend)
        if return_mem:
            return out.spikes, AMOSOutput(out.mem, out.t_first)
        return out.spikes


class TemporalSelectorDecoder(TemporalModule):
    r"""PTTFS output decoder: a linear synapse, AMOS membranes with learnable
    per-class time constants, and the temporal selector.

    Input ``x`` is ``[T, B, in_features]`` (spikes of the last hidden layer).

    .. math::

        I_t = W x_t + b,\qquad
        h_t = (1 - 1/\tau_c)\, h_{t-1} + I_t / \tau_c,\qquad
        t_{1st} = \min_c t_f[c],\qquad \text{logits} = h_{t_{1st}}

    with :math:`t_f[c]` the first step where class ``c`` has :math:`h \ge \theta`
    (``T - 1`` if none), so :math:`t_{1st} = T-1` when no class fires. Train with
    cross-entropy on the logits; the threshold is a confidence knob (higher means
    later, surer decisions). At ``T = 1`` the logits are :math:`I_0 / \tau`: a
    membrane decoder. The time constants are stored as ``w`` with
    :math:`1/\tau = \mathrm{sigmoid}(w)`, so :math:`\tau > 1` always (SpikingJelly's
    parametric LIF). Gradients reach ``h`` at :math:`t_{1st}` only (the selection
    itself is piecewise constant).

    Args:
        in_features (int): input features.
        num_classes (int): output neurons (classes).
        threshold (float): confidence threshold ``> 0``. Default ``1.0``.
        tau (float): initial time constant ``> 1`` for every class. Default ``2.0``.
        learn_tau (bool): train the per-class time constants. Default ``True``.
        bias (bool): linear layer with bias. Default ``True``.
        backend (str): backend of the membrane scan and the first-spike search: as
            in :func:`mlx_snn.functional.linear_scan` and
            :func:`mlx_snn.functional.first_spike`. Default ``"auto"``.

    Call: ``decoder(x, return_time=False)`` returns logits ``[B, num_classes]``, or
    ``(logits, t_first [B])`` with ``return_time=True``.

    **Saved for the backward:** the input ``x`` (the linear layer's weight gradient)
    and the float32 membrane ``[T, B, num_classes]`` of the scan (for the gradient of
    the time constants). The membrane scan and the selection run in float32 for
    half-precision inputs; the logits come back in the linear layer's dtype.
    """

    chunking = "whole"

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        threshold: float = 1.0,
        tau: float = 2.0,
        learn_tau: bool = True,
        bias: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        backends.resolve(backend)
        self.backend = backend
        self.in_features = check_int("in_features", in_features)
        self.num_classes = check_int("num_classes", num_classes)
        self.threshold = check_scalar("threshold", threshold, POSITIVE)
        tau = check_tau(tau)
        self.linear = nn.Linear(in_features, num_classes, bias=check_bool("bias", bias))
        self.w = mx.full((num_classes,), -math.log(tau - 1.0))
        self.learn_tau = check_bool("learn_tau", learn_tau)
        if not learn_tau:
            self.freeze(keys=["w"], strict=True)

    @property
    def tau(self) -> mx.array:
        """Per-class time constants ``[num_classes]``, ``1 + exp(-w)``."""
        return 1.0 / mx.sigmoid(self.w)

    def _extra_repr(self):
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, "
            f"threshold={self.threshold}, learn_tau={self.learn_tau}, backend={self.backend!r}"
        )

    def __call__(self, x: mx.array, return_time: bool = False):
        check_bool("return_time", return_time)
        check_float_array("x", x, min_ndim=3)
        if x.ndim != 3 or x.shape[-1] != self.in_features or x.shape[0] < 1:
            raise ValueError(
                f"x must have shape [T, B, {self.in_features}] with T >= 1; got {tuple(x.shape)}"
            )
        # the membrane scan and the selection run in float32 (half-precision rule)
        inv_tau = mx.sigmoid(to_carry(self.w))
        current = self.linear(x)
        mem = linear_scan(1.0 - inv_tau, to_carry(current) * inv_tau, backend=self.backend)
        out = temporal_selector(mem, self.threshold, self.backend)
        logits = to_dtype(out.logits, current.dtype)
        if return_time:
            return logits, out.t_first
        return logits
