"""The LIF neuron as an ``nn.Module`` (parameters only; the math is in functional)."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx

from .. import backends
from .. import surrogate as _surrogate
from .._checks import check_bool, check_choice, check_float_array
from .._params import (
    POSITIVE,
    UNIT,
    check_module_state,
    check_state,
    module_param,
    param_repr,
    store_param,
)
from ..functional.lif import ALGORITHMS, kernel_limit, lif_options, lif_sequence, lif_step
from ..functional.parallel_lif import check_parallel_mode
from .temporal import TemporalModule

__all__ = ["ALGORITHMS", "LIF", "LIFOutput"]

MIN_THRESHOLD = 1e-6


class LIFOutput(NamedTuple):
    """Extra outputs of a neuron call.

    Attributes:
        mem: ``[T, B, ...]`` membrane compared with the threshold (before reset).
        state: ``[B, ...]`` state after the last step; pass as ``state=`` to continue.
    """

    mem: mx.array
    state: mx.array


class LIF(TemporalModule):
    r"""Leaky integrate-and-fire neuron over a time-major sequence.

    Input ``x`` is ``[T, B, ...]`` (any trailing feature shape). With
    ``reset_timing="immediate"``:

    .. math::

        h_t = \beta v_{t-1} + x_t,\quad s_t = \Theta(h_t - \theta),\quad
        v_t = h_t - \theta s_t \ (\text{subtract}) \mid h_t(1 - s_t)\ (\text{zero})
        \mid h_t\ (\text{none})

    ``reset_timing="delayed"`` is snnTorch's ``Leaky`` (see
    :func:`mlx_snn.functional.lif_sequence`). SpikingJelly's
    ``LIFNode(tau, decay_input=False, v_reset=None)`` is ``beta = 1 - 1/tau`` with
    subtract reset; ``v_reset=0.0`` is ``reset="zero"``.

    Args:
        beta (float or array): decay in ``[0, 1]``; an array gives one decay per
            feature (broadcast to ``x.shape[2:]``). Default ``0.9``.
        threshold (float or array): firing threshold ``> 0``. Default ``1.0``.
        reset (str): ``"subtract"`` | ``"zero"`` | ``"none"``. Default ``"subtract"``.
        surrogate (str or Surrogate): backward surrogate. Default
            :data:`mlx_snn.surrogate.DEFAULT` (``"fast_sigmoid"``).
        detach_reset (bool or None): no gradient through the reset's spike.
            ``None``: ``False`` (immediate) / ``True`` (delayed).
        learn_beta (bool): make ``beta`` a trainable parameter, clipped to ``[0, 1]``
            in the forward pass (the stored value is unconstrained).
        learn_threshold (bool): make ``threshold`` trainable, clamped to
            ``>= 1e-6`` in the forward pass.
        reset_timing (str): ``"immediate"`` | ``"delayed"``.
        backend (str): ``"auto"`` | ``"mlx"`` | ``"metal"`` | ``"cuda"``; ``"metal"`` and
            ``"cuda"`` run the fused LIF kernels, available only where that device and the
            kernel sources are present (``mlx-snn info`` and
            :func:`mlx_snn.backends.available` list them). ``"auto"`` (default) picks
            ``"metal"`` > ``"cuda"`` > ``"mlx"`` and stays on MLX where the kernels do not
            run a call (``algorithm="parallel"``, a surrogate without a kernel-side
            derivative); naming a kernel backend for such a call raises ``ValueError`` here.
            See :func:`mlx_snn.functional.lif_sequence`.
        algorithm (str): ``"loop"`` (compiled step loop), ``"parallel"``
            (exact-reset parallel scans, :func:`mlx_snn.functional.parallel_lif_sequence`)
            or ``"auto"`` (default), each for every reset and timing:
            the parallel path where it is faster by a shape rule (few neurons,
            long sequences), the loop elsewhere. Results agree up to fp32 rounding
            of exact threshold ties. On a kernel backend ``"loop"`` and ``"auto"``
            run the kernel's fused time loop; ``"parallel"`` is MLX-only.

    Call: ``lif(x, state=None, return_state=False)`` returns spikes ``[T, B, ...]``,
    or ``(spikes, LIFOutput(mem, state))`` with ``return_state=True``; one call of
    :func:`mlx_snn.functional.lif_sequence`. An empty batch gives empty outputs.

    **Saved for the backward** (both algorithms): the membrane ``mem`` ``[T, B, ...]``
    in the input's dtype, and the spikes, which are the output the next layer keeps
    anyway (no second copy); not the input ``x``. The backward's temporaries are a
    zero cotangent for an unused ``mem`` (MLX materialises it) and the stacked input
    gradient, each ``[T, B, ...]``. For sequences too long for that, run the neuron
    in chunks (``state=``) with :mod:`mlx_snn.training` (checkpointing, TBPTT).
    """

    chunking = "state"

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
        algorithm: str = "auto",
    ):
        super().__init__()
        surrogate, detach_reset = lif_options(reset, reset_timing, surrogate, detach_reset)
        check_choice("algorithm", algorithm, ALGORITHMS)
        if algorithm == "parallel":
            check_parallel_mode(reset, reset_timing)
        backends.resolve(backend, kernel_limit(algorithm, surrogate))
        self.algorithm = algorithm
        self.chunk = None  # the parallel algorithm's default (ParallelLIF sets one)
        self.reset = reset
        self.reset_timing = reset_timing
        self.surrogate = surrogate
        self.detach_reset = detach_reset
        self.backend = backend
        self.learn_beta = check_bool("learn_beta", learn_beta)
        self.learn_threshold = check_bool("learn_threshold", learn_threshold)
        store_param(self, "beta", module_param("beta", beta, UNIT), learn_beta)
        store_param(
            self, "threshold", module_param("threshold", threshold, POSITIVE), learn_threshold
        )

    def _extra_repr(self):
        return (
            f"beta={param_repr(self.beta)}, threshold={param_repr(self.threshold)}, "
            f"reset={self.reset!r}, reset_timing={self.reset_timing!r}, "
            f"surrogate={self.surrogate}, detach_reset={self.detach_reset}, "
            f"learn_beta={self.learn_beta}, learn_threshold={self.learn_threshold}, "
            f"algorithm={self.algorithm!r}, backend={self.backend!r}"
        )

    def _params(self):
        beta, threshold = self.beta, self.threshold
        if self.learn_beta:
            beta = mx.clip(beta, 0.0, 1.0)
        if self.learn_threshold:
            threshold = mx.maximum(threshold, MIN_THRESHOLD)
        return beta, threshold

    def __call__(
        self,
        x: mx.array,
        state: mx.array | None = None,
        return_state: bool = False,
    ):
        check_bool("return_state", return_state)
        check_module_state(x, state)
        beta, threshold = self._params()
        out = lif_sequence(
            x,
            beta,
            threshold,
            self.reset,
            self.surrogate,
            self.detach_reset,
            state,
            self.backend,
            self.reset_timing,
            algorithm=self.algorithm,
            chunk=self.chunk,
            beta_grad=self.learn_beta,
            threshold_grad=self.learn_threshold,
        )
        if return_state:
            return out.spikes, LIFOutput(out.mem, out.state)
        return out.spikes

    def step(self, x_t: mx.array, v_prev: mx.array | None = None) -> tuple[mx.array, mx.array]:
        """One step: ``x_t [B, ...]``, state ``v_prev [B, ...]`` or ``None`` (zeros).

        Returns ``(s_t, v_t)``; autograd differentiates through it.
        """
        if v_prev is not None:  # checked here to name the argument the caller wrote
            check_float_array("x_t", x_t, min_ndim=1)
            check_state("v_prev", v_prev, x_t.shape, x_t.dtype)
        beta, threshold = self._params()
        s, _, v = lif_step(
            x_t,
            v_prev,
            beta,
            threshold,
            self.reset,
            self.surrogate,
            self.detach_reset,
            self.reset_timing,
        )
        return s, v
