"""The Collapse-or-Preserve paper's MNIST / Fashion-MNIST convolutional SNN."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from .. import surrogate
from .._checks import check_int
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

__all__ = ["MNISTConvNet", "mnist_convnet"]

STATE_LAYERS = ("block1", "block2", "lif1", "lif2")


def _lif() -> LIF:
    return LIF(beta=0.9, threshold=1.0, reset="subtract", surrogate=surrogate.fast_sigmoid(25.0))


class MNISTConvNet(TemporalModule):
    """Conv(1->32,3) BN LIF Pool2, Conv(32->64,3) BN LIF Pool2, FC(1600->128) LIF, FC(128->10) LIF.

    Input ``x [T, B, 28, 28, 1]`` (rate-coded frames), output spikes ``[T_out, B, 10]``
    for :func:`mlx_snn.loss.ce_count`. LIF: beta 0.9, threshold 1, subtract reset,
    fast-sigmoid surrogate (slope 25) (the paper's Appendix E). BatchNorm is per
    frame over the merged ``T*B`` (or ``G*B``) frames. Convs have no padding.

    Modes (where the paper's operators go): TAC / TAC-TP wrap *every* conv layer
    (the paper cascades them: "Let a network have L layers, each applying TAC"),
    aggregating with the LIF decay 0.9; the FC layers run per step on whatever
    steps reach them.

    - ``"baseline"``: every layer sees ``T`` steps; ``T_out = T``.
    - ``"tac"``: conv1 sees ``G1 = ceil(T/g)`` aggregated frames and passes ``G1``
      steps on; conv2 aggregates those into ``G2 = ceil(G1/g)``; ``T_out = G2``
      (T=25: g=4 -> 7, 2; g=8 -> 4, 1; g=16 -> 2, 1).
    - ``"tactp"``: each conv sees ``ceil(T/g)`` frames, its LIF runs ``T`` steps;
      ``T_out = T``.

    Attributes: ``mode``, ``group``, ``num_steps``; ``conv_steps(T)`` gives the
    frames per sample reaching each conv layer, ``conv_frames(T, B)`` their total.

    Call: ``net(x, state=None, return_state=False)``; with ``return_state=True`` it
    returns ``(spikes, state)``, ``state`` a list of the four LIF states (block1,
    block2, fc1, fc2), to pass back as ``state=`` to continue the sequence: the
    network runs in chunks of time with :mod:`mlx_snn.training` (see there for
    BatchNorm in training mode and the chunk lengths TAC needs).

    Half precision: ``net.set_dtype(mx.bfloat16)`` (or float16) with input frames of
    that dtype runs the convolutions, BatchNorm and Linear layers in it, the neurons'
    membranes and scans in float32 (:mod:`mlx_snn._precision`); spikes come out in
    the frames' dtype.
    """

    chunking = "state"

    def __init__(self, mode: str = "baseline", group: int = 4, num_steps: int = 25, tac=None):
        super().__init__()
        self.mode, self.group = resolve_mode(mode, group, tac)
        self.num_steps = check_int("num_steps", num_steps, minimum=1)
        self.block1 = ConvBlock(nn.Conv2d(1, 32, 3), 32, _lif(), self.mode, self.group)
        self.block2 = ConvBlock(nn.Conv2d(32, 64, 3), 64, _lif(), self.mode, self.group)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.lif1 = _lif()
        self.fc2 = nn.Linear(128, 10)
        self.lif2 = _lif()

    def _extra_repr(self):
        return f"mode={self.mode!r}, group={self.group}, num_steps={self.num_steps}"

    def conv_steps(self, num_steps: int | None = None) -> tuple[int, int]:
        """Frames per sample reaching conv1 and conv2 for ``num_steps`` (default the model's)."""
        return conv_steps(
            self.num_steps if num_steps is None else num_steps, self.group, self.mode, 2
        )

    def conv_frames(self, num_steps: int | None = None, batch_size: int = 1) -> int:
        """Total frames through the conv layers in one forward of ``batch_size`` samples."""
        return sum(self.conv_steps(num_steps)) * batch_size

    def __call__(self, x: mx.array, state: list | None = None, return_state: bool = False):
        check_frames(x, (28, 28, 1))
        s = layer_states(state, STATE_LAYERS, return_state)
        h, s[0] = run_neuron(self.block1, x, s[0], return_state)
        h, s[1] = run_neuron(self.block2, h, s[1], return_state)
        h = h.reshape(*h.shape[:2], math.prod(h.shape[2:]))
        h, s[2] = run_neuron(self.lif1, self.fc1(h), s[2], return_state)
        y, s[3] = run_neuron(self.lif2, self.fc2(h), s[3], return_state)
        return (y, s) if return_state else y


def mnist_convnet(
    mode: str = "baseline", group: int = 4, num_steps: int = 25, tac=None
) -> MNISTConvNet:
    """The paper's MNIST network (see :class:`MNISTConvNet`).

    Args:
        mode (str): ``"baseline"`` | ``"tac"`` | ``"tactp"``.
        group (int): TAC group size ``g >= 1`` (ignored for ``"baseline"``).
        num_steps (int): ``T`` the model is used with (for ``conv_steps``). Default 25.
        tac: ``None | ("tac", g) | ("tactp", g)``: api.md's form; overrides ``mode``/``group``.
    """
    return MNISTConvNet(mode=mode, group=group, num_steps=num_steps, tac=tac)
