r"""TAC and TAC-TP: one per-frame layer call per group of frames (Collapse-or-Preserve).

Both wrap a per-frame layer ``f`` (``nn.Conv2d``, ``nn.Linear``, or a small
``nn.Sequential`` of per-frame layers) applied to a ``[T, B, ...]`` sequence.
Instead of ``f`` on all ``T*B`` frames, each group of ``g`` frames is reduced to
its decay-weighted mean :math:`\bar A_k = A_k / S_k` (see
:mod:`mlx_snn.functional.tac`), and ``f`` runs once, batched, on the ``G*B``
aggregated frames (``G = ceil(T/g)``).
"""

from __future__ import annotations

import mlx.core as mx

from .._checks import check_bool, check_float_array, check_int
from .._params import check_unit_or_none
from ..functional.tac import tac_aggregate, tac_weight_sums
from .lif import LIF
from .temporal import TemporalModule, find_temporal

__all__ = ["TAC", "TACTP"]


def _check_layer(layer) -> None:
    """Reject things that are not per-frame layers (anything that acts over time)."""
    if not callable(layer):
        raise TypeError(f"layer must be a callable per-frame module; got {type(layer).__name__}")
    temporal = find_temporal(layer)
    if temporal is not None:
        raise ValueError(
            f"layer must act on each frame independently ([N, ...] -> [N, ...]); "
            f"it contains {type(temporal).__name__}, which works across time"
        )


def _apply_grouped(layer, x: mx.array, group: int, beta: float) -> mx.array:
    """``layer`` on the normalised aggregates of ``x [T, B, ...]`` -> ``[G, B, ...]``."""
    check_float_array("x", x, min_ndim=3)
    agg = tac_aggregate(x, group, beta, normalize=True)
    n_groups, b = agg.shape[:2]
    y = layer(agg.reshape(n_groups * b, *agg.shape[2:]))
    if not isinstance(y, mx.array) or y.ndim < 1 or y.shape[0] != n_groups * b:
        got = tuple(y.shape) if isinstance(y, mx.array) else type(y).__name__
        raise ValueError(
            f"layer must map [N, ...] frames to [N, ...] outputs (per frame); it was given "
            f"{n_groups * b} frames of shape {tuple(agg.shape[2:])} and returned {got}"
        )
    return y.reshape(n_groups, b, *y.shape[1:])


class TAC(TemporalModule):
    r"""Temporal Aggregated Convolution (collapse): ``[T, B, ...] -> [G, B, ...]``.

    .. math::

        Y_k = S_k \, f(A_k / S_k),\qquad A_k = \sum_j w_{kj} X_{kg+j},
        \ w_{kj} = \beta^{\,n_k-1-j},\ S_k = \sum_j w_{kj},\ G = \lceil T/g \rceil.

    For any affine ``f(X) = L X + b`` (Conv2d, Linear, with or without bias)
    this is exactly :math:`\sum_j w_{kj} f(X_{kg+j})`, the decay-weighted sum of
    the per-frame outputs: the bias is counted once per frame with its weight
    (:math:`S_k b`). The short last group uses weights of its own length (its
    newest frame weighs 1); ``group > T`` acts as ``group = T``. The next neuron
    then runs ``G`` steps. ``f`` is called once per forward, on ``G*B`` frames.

    Args:
        layer (nn.Module or callable): per-frame layer ``[N, ...] -> [N, ...]``.
        group (int): frames per group ``g >= 1``. Default 4.
        beta (float or None): aggregation decay in ``[0, 1]``; ``None`` means 1.0
            (plain sum). The paper's networks pass the LIF decay.

    Raises ``ValueError`` for ``group < 1``, a ``layer`` that contains a module acting
    over time (a :class:`~mlx_snn.nn.TemporalModule` or MLX's RNN/GRU/LSTM; at
    construction), a layer whose output batch differs from its input's, or
    ``x`` of rank < 3 (at call).

    **Saved for the backward:** what ``layer`` saves, on ``G*B`` aggregated frames
    instead of ``T*B`` (the aggregation itself saves nothing: its weights are
    constants). Runs in chunks of time whose length is a multiple of ``group``
    (``chunking = "groups"``). Half precision: the aggregation sums in float32.
    """

    chunking = "groups"

    def __init__(self, layer, group: int = 4, beta: float | None = None):
        super().__init__()
        _check_layer(layer)
        self.layer = layer
        self.group = check_int("group", group, minimum=1)
        self.beta = check_unit_or_none("beta", beta)

    def _extra_repr(self):
        return f"group={self.group}, beta={self.beta}"

    def __call__(self, x: mx.array) -> mx.array:
        y = _apply_grouped(self.layer, x, self.group, self.beta)
        s = tac_weight_sums(x.shape[0], self.group, self.beta).astype(y.dtype)
        return y * s.reshape(-1, *([1] * (y.ndim - 1)))


class TACTP(TemporalModule):
    r"""TAC with Temporal Preservation: ``[T, B, ...] -> spikes [T, B, ...]``.

    .. math::

        Y_k = f(\bar A_k),\quad \bar A_k = A_k / S_k,\qquad
        s = \mathrm{neuron}(U),\ U_t = Y_{\lfloor t/g \rfloor},\ t = 0..T-1.

    The aggregate is normalised by its weight sum so that each of the group's
    steps receives a per-frame-scale drive (bias counted once, as per frame);
    without it each step would get about ``g`` times the drive. ``Y_k`` is
    broadcast to each step of its group (the short last group only to its own
    steps) and the neuron runs all ``T`` steps. ``f`` is called once per forward
    on ``G*B`` frames.

    Args:
        layer (nn.Module or callable): per-frame layer ``[N, ...] -> [N, ...]``.
        group (int): frames per group ``g >= 1``; ``g > T`` acts as ``T``. Default 4.
        neuron (nn.Module or callable): sequence neuron ``[T, B, ...] -> [T, B, ...]``.
            Default ``LIF()``.
        beta (float or None): aggregation decay in ``[0, 1]``; ``None`` means 1.0.

    Call: ``tactp(x, state=None, return_state=False)``; ``state``/``return_state``
    are passed to the neuron when given (e.g. ``LIF`` returns ``(spikes, LIFOutput)``).

    **Saved for the backward:** what ``layer`` saves on the ``G*B`` aggregated frames,
    and what the neuron saves on its ``T`` steps (for ``LIF``, its membrane).
    """

    chunking = "state"

    def __init__(self, layer, group: int = 4, neuron=None, beta: float | None = None):
        super().__init__()
        _check_layer(layer)
        neuron = LIF() if neuron is None else neuron
        if not callable(neuron):
            raise TypeError(f"neuron must be callable (e.g. snn.LIF); got {type(neuron).__name__}")
        self.layer = layer
        self.neuron = neuron
        self.group = check_int("group", group, minimum=1)
        self.beta = check_unit_or_none("beta", beta)

    def _extra_repr(self):
        return f"group={self.group}, beta={self.beta}"

    def __call__(self, x: mx.array, state: mx.array | None = None, return_state: bool = False):
        check_bool("return_state", return_state)
        y = _apply_grouped(self.layer, x, self.group, self.beta)
        t = x.shape[0]
        drive = mx.repeat(y, min(self.group, t), axis=0)[:t]
        if state is None and not return_state:
            return self.neuron(drive)
        return self.neuron(drive, state=state, return_state=return_state)
