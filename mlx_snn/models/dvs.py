"""The Collapse-or-Preserve paper's DVS128-Gesture convolutional SNN."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from .. import surrogate
from .._checks import check_int
from ..nn.layers import VotingLayer
from ..nn.lif import LIF
from ..nn.temporal import TemporalModule
from ._common import (
    ConvBlock,
    check_frames,
    conv_steps,
    layer_states,
    resolve_mode,
    run_neuron,
)

__all__ = ["DVSGestureNet", "dvs_gesture_net"]

CLASSES, VOTERS, CHANNELS, BLOCKS = 11, 10, 128, 5
STATE_LAYERS = (*(f"block{i + 1}" for i in range(BLOCKS)), "lif1", "lif2")


def _lif() -> LIF:
    return LIF(
        beta=0.5,
        threshold=1.0,
        reset="subtract",
        surrogate=surrogate.atan(2.0),
        detach_reset=True,
    )


class DVSGestureNet(TemporalModule):
    """5 x {Conv(128, 3x3, pad 1) BN LIF MaxPool2}, FC(512->512) LIF, FC(512->110) LIF, Voting.

    Input ``x [T, B, 64, 64, 2]`` (binned event counts, two polarities), output
    ``[T_out, B, 11]``: the mean of each class's 10 voters' spikes
    (:class:`mlx_snn.VotingLayer`); train with :func:`mlx_snn.loss.mse_rate`.
    LIF: beta 0.5, threshold 1, subtract reset with detached reset spike, atan
    surrogate (alpha 2) (the paper's Appendix E). BatchNorm per frame over the
    merged frames. The paper gives no FC sizes; FC(512->512), FC(512->110)
    reproduces its 914K parameter count. It mentions no dropout; none is used.

    Modes: TAC / TAC-TP wrap every conv layer (aggregation decay 0.5). In
    ``"tac"`` mode the steps cascade, ``T -> ceil(T/g) -> ...`` (T=16, g=2:
    8, 4, 2, 1, 1 frames per conv layer, ``T_out = 1``); in ``"tactp"`` every
    conv sees ``ceil(T/g)`` frames and ``T_out = T``.

    Attributes: ``mode``, ``group``, ``num_steps``, ``conv_steps(T)``, ``conv_frames(T, B)``.

    Call: ``net(x, state=None, return_state=False)``; with ``return_state=True`` it
    returns ``(votes, state)``, ``state`` a list of the seven LIF states (five conv
    blocks, fc1, fc2) that continues the sequence (see :class:`MNISTConvNet`).
    """

    chunking = "state"

    def __init__(self, mode: str = "baseline", group: int = 2, num_steps: int = 16, tac=None):
        super().__init__()
        self.mode, self.group = resolve_mode(mode, group, tac)
        self.num_steps = check_int("num_steps", num_steps, minimum=1)
        self.blocks = [
            ConvBlock(
                nn.Conv2d(2 if i == 0 else CHANNELS, CHANNELS, 3, padding=1),
                CHANNELS,
                _lif(),
                self.mode,
                self.group,
            )
            for i in range(BLOCKS)
        ]
        self.fc1 = nn.Linear(CHANNELS * 2 * 2, 512)
        self.lif1 = _lif()
        self.fc2 = nn.Linear(512, CLASSES * VOTERS)
        self.lif2 = _lif()
        self.vote = VotingLayer(VOTERS)

    def _extra_repr(self):
        return f"mode={self.mode!r}, group={self.group}, num_steps={self.num_steps}"

    def conv_steps(self, num_steps: int | None = None) -> tuple[int, ...]:
        """Frames per sample reaching each conv layer (default ``num_steps``: the model's)."""
        t = self.num_steps if num_steps is None else num_steps
        return conv_steps(t, self.group, self.mode, BLOCKS)

    def conv_frames(self, num_steps: int | None = None, batch_size: int = 1) -> int:
        """Total frames through the conv layers in one forward of ``batch_size`` samples."""
        return sum(self.conv_steps(num_steps)) * batch_size

    def __call__(self, x: mx.array, state: list | None = None, return_state: bool = False):
        check_frames(x, (64, 64, 2))
        s = layer_states(state, STATE_LAYERS, return_state)
        for i, block in enumerate(self.blocks):
            x, s[i] = run_neuron(block, x, s[i], return_state)
        x = x.reshape(*x.shape[:2], math.prod(x.shape[2:]))
        x, s[BLOCKS] = run_neuron(self.lif1, self.fc1(x), s[BLOCKS], return_state)
        x, s[BLOCKS + 1] = run_neuron(self.lif2, self.fc2(x), s[BLOCKS + 1], return_state)
        y = self.vote(x)
        return (y, s) if return_state else y


def dvs_gesture_net(
    mode: str = "baseline", group: int = 2, num_steps: int = 16, tac=None
) -> DVSGestureNet:
    """The paper's DVS128-Gesture network (see :class:`DVSGestureNet`).

    Args:
        mode (str): ``"baseline"`` | ``"tac"`` | ``"tactp"``.
        group (int): TAC group size ``g >= 1`` (ignored for ``"baseline"``). Default 2.
        num_steps (int): ``T`` the model is used with (for ``conv_steps``). Default 16.
        tac: ``None | ("tac", g) | ("tactp", g)``; overrides ``mode``/``group``.
    """
    return DVSGestureNet(mode=mode, group=group, num_steps=num_steps, tac=tac)
