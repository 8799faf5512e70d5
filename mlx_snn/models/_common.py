"""Shared pieces of the paper networks: mode parsing and the conv block per mode."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from .._checks import check_bool, check_choice, check_int
from ..nn.layers import SeqToBatch
from ..nn.lif import LIF, LIFOutput
from ..nn.tac import TAC, TACTP
from ..nn.temporal import TemporalModule

MODES = ("baseline", "tac", "tactp")


def resolve_mode(mode: str, group: int, tac) -> tuple[str, int]:
    """Return ``(mode, group)``; ``tac=None | ("tac", g) | ("tactp", g)`` overrides both."""
    if tac is not None:
        if not (isinstance(tac, (tuple, list)) and len(tac) == 2):
            raise ValueError(f'tac must be None, ("tac", g) or ("tactp", g); got {tac!r}')
        mode, group = tac
        if mode == "baseline":
            raise ValueError(f'tac must be None, ("tac", g) or ("tactp", g); got {tac!r}')
    check_choice("mode", mode, MODES)
    return mode, check_int("group", group, minimum=1)


def steps_after(num_steps: int, group: int, mode: str) -> int:
    """Time steps a TAC block passes on (``ceil(T/g)`` in "tac" mode, ``T`` otherwise)."""
    return math.ceil(num_steps / min(group, num_steps)) if mode == "tac" else num_steps


def conv_steps(num_steps: int, group: int, mode: str, n_conv: int) -> tuple[int, ...]:
    """Frames per sample that reach each conv layer, for ``num_steps`` input steps."""
    steps, t = [], check_int("num_steps", num_steps, minimum=1)
    for _ in range(n_conv):
        steps.append(t if mode == "baseline" else math.ceil(t / min(group, t)))
        t = steps_after(t, group, mode)
    return tuple(steps)


class ConvBlock(TemporalModule):
    """Conv -> BatchNorm -> LIF -> MaxPool(2) on ``[T, B, H, W, C]``, in one of three modes.

    baseline: conv and BN on all ``T*B`` frames (one merged call each), LIF over ``T``.
    tac: ``TAC(conv)`` -> ``[ceil(T/g), B, ...]``, BN on those frames, LIF over ``ceil(T/g)``.
    tactp: ``TACTP(Sequential(conv, BN), neuron=LIF)``: conv+BN on ``ceil(T/g)*B``
    frames, LIF over ``T`` steps.

    Call: ``block(x, state=None, return_state=False)``; ``state`` is the LIF's
    ``[B, ...]`` state, and ``return_state=True`` returns ``(y, state)``.
    """

    chunking = "state"

    def __init__(self, conv: nn.Module, channels: int, lif: LIF, mode: str, group: int):
        super().__init__()
        self.mode = mode
        bn = nn.BatchNorm(channels)
        if mode == "baseline":
            self.conv, self.bn, self.lif = SeqToBatch(conv), SeqToBatch(bn), lif
        elif mode == "tac":
            self.conv, self.bn, self.lif = TAC(conv, group, beta=lif.beta), SeqToBatch(bn), lif
        else:
            self.conv = TACTP(nn.Sequential(conv, bn), group, neuron=lif, beta=lif.beta)
        self.pool = SeqToBatch(nn.MaxPool2d(2))

    def __call__(self, x: mx.array, state: mx.array | None = None, return_state: bool = False):
        if self.mode == "tactp":
            y, state = run_neuron(self.conv, x, state, return_state)
        else:
            y, state = run_neuron(self.lif, self.bn(self.conv(x)), state, return_state)
        y = self.pool(y)
        return (y, state) if return_state else y


def run_neuron(neuron, x: mx.array, state, return_state: bool) -> tuple[mx.array, object]:
    """``(neuron(x), new state or None)``: a plain call unless a state goes in or must
    come out (so that tools which trace plain calls, like NIR export, see one)."""
    if not return_state:
        return (neuron(x) if state is None else neuron(x, state=state)), None
    y, out = neuron(x, state=state, return_state=True)
    return y, (out.state if isinstance(out, LIFOutput) else out)


def layer_states(state: list | None, names: tuple[str, ...], return_state: bool) -> list:
    """A paper network's ``state``: ``None`` (every neuron from zeros) or one entry per
    stateful layer, in the order of ``names``."""
    check_bool("return_state", return_state)
    if state is None:
        return [None] * len(names)
    if not isinstance(state, (list, tuple)) or len(state) != len(names):
        got = f"{len(state)} entries" if isinstance(state, (list, tuple)) else type(state).__name__
        raise ValueError(
            f"state must be None or a list of {len(names)} layer states ({', '.join(names)}); "
            f"got {got}"
        )
    return list(state)


def check_frames(x: mx.array, frame_shape: tuple[int, ...]) -> None:
    """``x`` must be a float ``[T, B, *frame_shape]`` array."""
    if not isinstance(x, mx.array):
        raise TypeError(f"x must be an mx.array; got {type(x).__name__}")
    if x.ndim != 2 + len(frame_shape) or tuple(x.shape[2:]) != frame_shape:
        want = ", ".join(str(d) for d in frame_shape)
        raise ValueError(f"x must have shape [T, B, {want}]; got {tuple(x.shape)}")
    if not mx.issubdtype(x.dtype, mx.floating):
        raise TypeError(f"x must have a floating dtype; got {x.dtype}")
