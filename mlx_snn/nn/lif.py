"""The LIF neuron as an ``nn.Module`` (parameters only; the math is in functional)."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .. import backends
from .. import surrogate as _surrogate
from .._checks import check_choice
from ..functional.lif import _lif_sequence, _resolve_options, lif_step
from ..functional.parallel_lif import (
    DEFAULT_CHUNK,
    _parallel_lif_sequence,
    check_parallel_mode,
    choose_algorithm,
)

__all__ = ["ALGORITHMS", "LIF", "LIFOutput"]

MIN_THRESHOLD = 1e-6
ALGORITHMS = ("auto", "loop", "parallel")


class LIFOutput(NamedTuple):
    """Extra outputs of a neuron call.

    Attributes:
        mem: ``[T, B, ...]`` membrane compared with the threshold (before reset).
        state: ``[B, ...]`` state after the last step; pass as ``state=`` to continue.
    """

    mem: mx.array
    state: mx.array


def _param(name, value, *, unit_interval):
    """Validate a fixed or initial beta/threshold; return a float or an mx.array."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a float or an array; got bool")
    if isinstance(value, (int, float)):
        arr = np.asarray(float(value))
    elif isinstance(value, (mx.array, np.ndarray, list, tuple)):
        arr = np.asarray(value, dtype=np.float64)
    else:
        raise TypeError(f"{name} must be a float or an array; got {type(value).__name__}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if unit_interval and not np.all((arr >= 0) & (arr <= 1)):
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}")
    if not unit_interval and not np.all(arr > 0):
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return float(arr) if arr.ndim == 0 and isinstance(value, (int, float)) else arr


class LIF(nn.Module):
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
        surrogate (str or Surrogate): backward surrogate. Default ``"fast_sigmoid"``.
        detach_reset (bool or None): no gradient through the reset's spike.
            ``None``: ``False`` (immediate) / ``True`` (delayed).
        learn_beta (bool): make ``beta`` a trainable parameter, clipped to ``[0, 1]``
            in the forward pass (the stored value is unconstrained).
        learn_threshold (bool): make ``threshold`` trainable, clamped to
            ``>= 1e-6`` in the forward pass.
        reset_timing (str): ``"immediate"`` | ``"delayed"``.
        backend (str): ``"auto"`` (the fastest available), ``"mlx"`` (pure MLX,
            everywhere) or ``"metal"`` / ``"cuda"`` (custom kernels: only where that device
            and its kernels are present, see :func:`mlx_snn.backends.available`).
        algorithm (str): ``"loop"`` (compiled step loop, every mode), ``"parallel"``
            (exact-reset parallel scans, :func:`mlx_snn.functional.parallel_lif_sequence`;
            subtract/zero reset with immediate timing only) or ``"auto"`` (default):
            the parallel path where it is faster by a shape rule (few neurons,
            long sequences), the loop elsewhere. Results agree up to fp32 rounding
            of exact threshold ties.

    Call: ``lif(x, state=None, return_state=False)`` returns spikes ``[T, B, ...]``,
    or ``(spikes, LIFOutput(mem, state))`` with ``return_state=True``.
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
        algorithm: str = "auto",
    ):
        super().__init__()
        surrogate, detach_reset = _resolve_options(reset, reset_timing, surrogate, detach_reset)
        backends.resolve(backend)
        check_choice("algorithm", algorithm, ALGORITHMS)
        if algorithm == "parallel":
            check_parallel_mode(reset, reset_timing)
        self.algorithm = algorithm
        self.chunk = DEFAULT_CHUNK
        beta = _param("beta", beta, unit_interval=True)
        threshold = _param("threshold", threshold, unit_interval=False)
        self.reset = reset
        self.reset_timing = reset_timing
        self.surrogate = surrogate
        self.detach_reset = detach_reset
        self.backend = backend
        self.learn_beta = bool(learn_beta)
        self.learn_threshold = bool(learn_threshold)
        frozen = []
        for name, value, learn in (
            ("beta", beta, learn_beta),
            ("threshold", threshold, learn_threshold),
        ):
            if learn or not isinstance(value, float):
                setattr(self, name, mx.array(value, dtype=mx.float32))
                if not learn:
                    frozen.append(name)
            else:
                setattr(self, name, value)
        if frozen:
            self.freeze(keys=frozen, strict=True)

    def _extra_repr(self):
        def show(v):
            return f"{v}" if isinstance(v, float) else f"array{tuple(v.shape)}"

        return (
            f"beta={show(self.beta)}, threshold={show(self.threshold)}, "
            f"reset={self.reset!r}, reset_timing={self.reset_timing!r}, "
            f"surrogate={self.surrogate}, detach_reset={self.detach_reset}, "
            f"learn_beta={self.learn_beta}, learn_threshold={self.learn_threshold}, "
            f"algorithm={self.algorithm!r}"
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
        beta, threshold = self._params()
        algorithm = self.algorithm
        if algorithm == "auto":
            shape = tuple(getattr(x, "shape", ()))
            algorithm = choose_algorithm(shape, self.reset, self.reset_timing)
        run = _lif_sequence
        extra = (self.reset_timing,)
        if algorithm == "parallel":
            run, extra = _parallel_lif_sequence, (self.chunk,)
        out = run(
            x,
            beta,
            threshold,
            self.reset,
            self.surrogate,
            self.detach_reset,
            state,
            self.backend,
            *extra,
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
