"""AssociativeLeaky: a spiking layer over a decaying key-value matrix memory."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from .. import surrogate as _surrogate
from .._checks import check_bool, check_float_array, check_int, check_positive
from .._params import POSITIVE, check_scalar
from .._precision import to_carry, to_dtype
from ..functional.associative import DEFAULT_CHUNK, associative_scan_log, check_state
from .lif import LIFOutput
from .temporal import TemporalModule

__all__ = ["AssociativeLeaky"]


class AssociativeLeaky(TemporalModule):
    r"""Matrix-state spiking layer with input-dependent decay (snnTorch's "generation 2").

    Input ``x`` is ``[T, B, dim]``. Per step, with learned linear maps:

    .. math::

        q_t = W_q x_t,\quad k_t = W_k x_t,\quad v_t = W_v x_t,\quad
        a_t = \mathrm{sigmoid}(W_a x_t + b_a) \in (0, 1)^{d_k}

        S_t = \operatorname{diag}(a_t)\, S_{t-1} + k_t v_t^\top, \qquad
        m_t = S_t^\top q_t, \qquad s_t = \Theta(m_t - \theta)

    ``S_t`` is ``[B, key_dim, value_dim]``, the membrane ``m_t`` and spikes ``s_t``
    are ``[B, value_dim]``. The spike has a surrogate gradient and no reset: the
    memory ``S`` is the neuron state and a reset on its readout would make the
    recurrence sequential again (the same relaxation as StateLeaky). The sequence
    is computed by :func:`mlx_snn.functional.associative_scan_log` (chunked scan,
    accurate in fp32 for any ``T``; the decays enter as ``log_sigmoid``, so decays
    too small for fp32 stay accurate). :meth:`step` runs one step for event-driven
    inference; both give the same values.

    Args:
        dim (int): input features.
        key_dim (int): key/query size ``d_k`` (rows of the memory, one decay each).
        value_dim (int or None): value size ``d_v`` and output features; ``None``
            means ``dim``.
        threshold (float): firing threshold ``> 0`` on the readout. Default ``1.0``.
        surrogate (str or Surrogate): backward surrogate. Default
            :data:`mlx_snn.surrogate.DEFAULT` (``"fast_sigmoid"``).
        bias (bool): biases on the query, key and value maps. Default ``False``
            (the decay map always has a bias).
        decay_init (float): decay at ``x = 0``, in ``(0, 1)``: the decay bias starts
            at ``logit(decay_init)``. Default ``0.9``.
        chunk (int): time steps per chunk of the scan (memory/speed trade-off, see
            :func:`mlx_snn.functional.associative_scan_log`). Default ``16``.

    Call: ``layer(x, state=None, return_state=False)`` returns spikes
    ``[T, B, value_dim]``, or ``(spikes, LIFOutput(mem, state))`` with
    ``return_state=True``: ``mem`` the readouts ``[T, B, value_dim]``, ``state`` the
    memory after the last step ``[B, key_dim, value_dim]``. Passing that state back
    continues the sequence exactly (two halves equal one call).

    **Saved for the backward:** autograd through the chunked scan keeps its
    intermediates (the pairwise decay factors, about ``B*T*chunk*key_dim`` floats, and
    the chunk states; see :mod:`mlx_snn.functional.associative`), the projections'
    input ``x``, and ``mem - threshold`` for the surrogate. Half precision: the
    projections compute in the parameters' dtype, the scan, the memory ``S`` (the
    returned state) and the threshold test in float32; spikes and ``mem`` come back in
    the projections' dtype.
    """

    chunking = "state"

    def __init__(
        self,
        dim: int,
        key_dim: int,
        value_dim: int | None = None,
        threshold: float = 1.0,
        surrogate: str | _surrogate.Surrogate = _surrogate.DEFAULT,
        bias: bool = False,
        decay_init: float = 0.9,
        chunk: int = DEFAULT_CHUNK,
    ):
        super().__init__()
        check_int("dim", dim)
        check_int("key_dim", key_dim)
        value_dim = dim if value_dim is None else check_int("value_dim", value_dim)
        check_int("chunk", chunk)
        check_bool("bias", bias)
        check_positive("decay_init", decay_init)
        if not decay_init < 1:
            raise ValueError(f"decay_init must lie in (0, 1); got {decay_init!r}")
        self.dim, self.key_dim, self.value_dim = dim, key_dim, value_dim
        self.threshold = check_scalar("threshold", threshold, POSITIVE)
        self.surrogate = _surrogate.get(surrogate)
        self.chunk = chunk
        self.q_proj = nn.Linear(dim, key_dim, bias=bias)
        self.k_proj = nn.Linear(dim, key_dim, bias=bias)
        self.v_proj = nn.Linear(dim, value_dim, bias=bias)
        self.decay_proj = nn.Linear(dim, key_dim, bias=True)
        logit = math.log(decay_init / (1.0 - decay_init))
        self.decay_proj.bias = mx.full((key_dim,), logit, dtype=mx.float32)

    def _extra_repr(self):
        return (
            f"dim={self.dim}, key_dim={self.key_dim}, value_dim={self.value_dim}, "
            f"threshold={self.threshold}, surrogate={self.surrogate}, chunk={self.chunk}"
        )

    def _check_x(self, x, ndim, layout):
        check_float_array("x", x)
        if x.ndim != ndim or x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have shape {layout} with dim = {self.dim}; got shape {tuple(x.shape)}"
            )
        if ndim == 3 and x.shape[0] < 1:
            raise ValueError(f"x must have at least one time step; got shape {tuple(x.shape)}")

    def _project(self, x):
        """``(q, k, v, log a)`` in float32 (the carry), and the dtype of the outputs."""
        z = self.decay_proj(x)
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        dtype = mx.result_type(q, k, v, z)
        return (*(to_carry(a) for a in (q, k, v, nn.log_sigmoid(to_carry(z)))), dtype)

    def __call__(self, x: mx.array, state: mx.array | None = None, return_state: bool = False):
        check_bool("return_state", return_state)
        self._check_x(x, 3, "[T, B, dim]")
        if state is not None:
            check_state("state", state, (x.shape[1], self.key_dim, self.value_dim))
        q, k, v, log_a, dtype = self._project(x)
        mem, S = associative_scan_log(q, k, v, log_a, state, self.chunk)
        spikes = to_dtype(self.surrogate(mem - self.threshold), dtype)
        if return_state:
            return spikes, LIFOutput(to_dtype(mem, dtype), S)
        return spikes

    def step(self, x_t: mx.array, state: mx.array | None = None) -> tuple[mx.array, mx.array]:
        """One step: ``x_t [B, dim]``, ``state [B, key_dim, value_dim]`` or ``None`` (zeros).

        Returns ``(s_t [B, value_dim], S_t)``; autograd differentiates through it.
        """
        self._check_x(x_t, 2, "[B, dim]")
        if state is not None:
            check_state("state", state, (x_t.shape[0], self.key_dim, self.value_dim))
        q, k, v, log_a, dtype = self._project(x_t)
        S = k[:, :, None] * v[:, None, :]
        if state is not None:
            S = mx.exp(log_a)[:, :, None] * to_carry(state) + S
        mem = (q[:, None, :] @ S)[:, 0, :]
        return to_dtype(self.surrogate(mem - self.threshold), dtype), S
