r"""Time-to-first-spike networks of AMOS neurons with the PTTFS temporal selector decoder.

PTTFS (Che et al., "Parallel Training Time-to-First-Spike Spiking Neural Networks")
trains networks whose every neuron fires at most once, decodes with the temporal selector
(the membrane of the output layer read at the first output spike :math:`t_{1st}`) and
grows the number of time steps during training
(:func:`mlx_snn.training.incremental_time_steps`). This module holds the networks;
``examples/ttfs_mnist.py`` holds the recipe.

**Layers.** Every hidden layer is synapse -> BatchNorm -> AMOS LIF (:class:`mlx_snn.AMOS`,
:math:`h_t = (1 - 1/\tau) h_{t-1} + I_t/\tau`, one spike at the first
:math:`h_t \ge \theta`). Two choices of ours, where the paper's text says nothing:

- *Step-current synapses.* A layer does not see its inputs' spikes :math:`s_t` but their
  firing masks :math:`F_t = \sum_{t' \le t} s_{t'}` (1 from the spike on): a spike opens a
  current that stays on, as in the TTFS networks of Mostafa (2017) and S4NN (Kheradpisheh
  and Masquelier 2020, the paper's AMOS reference). With one-step spikes into leaky
  neurons (:math:`\tau = 2`) a spike is forgotten within a few steps, every layer decides
  at :math:`t = 0` and, at ``T = 8``, the decoder's membranes at :math:`T - 1` have decayed
  to almost nothing (in a short MNIST probe, an AMOS MLP with 400 hidden neurons fell
  from about 88% test accuracy at ``T = 4`` to 23-34% at ``T = 8``; the same probe with
  masks went from 90.7% to 90.5% and used steps 0-7). Masks also make max pooling exact:
  the pooled mask is the mask of the window's earliest spike, while max-pooling one-step
  spikes would pass several spikes per window. The spikes, and their count, stay one
  per neuron: the masks are how the next layer integrates them.
- *No forced last-step spike* (``force_last=False``, the default). The paper's eq. 7 makes
  a neuron that never crosses its threshold fire at :math:`T-1`. At ``T = 1`` that fires
  every neuron at step 0 whatever its input, so the network passes no information and the
  first stage of the incremental schedule (``T = 1``, which the paper says equals a rate
  decoder) cannot learn. Here such a neuron stays silent: each AMOS layer runs one extra
  step with zero input and drops it, so the forced spike lands outside the window (its
  gradient is then the exact gradient of the unforced recurrence: the dropped step's
  cotangent is zero). ``force_last=True`` keeps eq. 7: exactly one spike per neuron.

**Decoder.** :class:`mlx_snn.TemporalSelectorDecoder` on the last hidden layer's masks:
linear synapse, per-class AMOS membranes with learnable time constants, logits
:math:`h_{t_{1st}}`; ``decoder_threshold`` is the paper's confidence parameter
:math:`V_{th}`. At ``T = 1`` the logits are the membranes at step 0 (the paper's P1).

**Architectures.** The paper's MNIST network ("SCNN¹" in its Table 1) is defined only in
its supplementary material, which we do not have. :class:`TTFSConvNet` is our choice: the
small two-conv layout of the MNIST nets we already ship (``mnist_convnet``), padded and
without conv bias (BatchNorm follows). :class:`TTFSMLP` is an AMOS MLP with the same
decoder, for machines where convolutions are slow.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn

from .._checks import check_bool, check_choice, check_int
from .._params import POSITIVE, Interval, check_scalar
from ..functional.amos import METHODS
from ..nn.amos import AMOS, TemporalSelectorDecoder
from ..nn.layers import SeqToBatch
from ..nn.temporal import TemporalModule
from ._common import check_frames

__all__ = ["ARCHS", "TTFSMLP", "TTFSConvNet", "TTFSNet", "TTFSOutput", "ttfs_convnet"]

ARCHS = ("conv", "mlp")
TIME_CONSTANT = Interval(
    "be a finite number > 1 (the decay is 1 - 1/tau)",
    "be > 1 and finite everywhere",
    lambda v: (v > 1) & (v < math.inf),
)


class TTFSOutput(NamedTuple):
    """What a TTFS network returns with ``return_spikes=True``.

    Attributes:
        logits: ``[B, num_classes]`` decoder membranes at ``t_first``.
        t_first: ``[B]`` ``int32`` decision step :math:`t_{1st}` (``T - 1`` when no class fires).
        spikes: one ``[T, B, ...]`` array per hidden AMOS layer, one-hot in time
            (at most one 1 per neuron; exactly one with ``force_last=True``).
    """

    logits: mx.array
    t_first: mx.array
    spikes: tuple[mx.array, ...]


def _check_steps_tuple(name: str, values: Sequence[int]) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of ints; got {type(values).__name__}")
    if not values:
        raise ValueError(f"{name} must hold at least one layer width; got {tuple(values)}")
    return tuple(check_int(f"{name}[{i}]", v) for i, v in enumerate(values))


class AMOSLayer(TemporalModule):
    """AMOS neuron over ``[T, B, ...]`` returning ``(spikes, firing masks)``.

    ``spikes`` is one-hot in time; ``masks = cumsum(spikes)`` is what the next layer
    sees (module docstring). With ``force_last=False`` the neuron runs ``T + 1`` steps,
    the last with zero input, and the last step is dropped: a neuron that never crosses
    its threshold stays silent instead of firing at ``T - 1``.
    """

    def __init__(self, tau: float, threshold: float, force_last: bool, method: str):
        super().__init__()
        self.amos = AMOS(tau=tau, threshold=threshold, method=method)
        self.force_last = force_last

    def _extra_repr(self):
        return f"force_last={self.force_last}"

    def __call__(self, current: mx.array) -> tuple[mx.array, mx.array]:
        if self.force_last:
            spikes = self.amos(current)
        else:
            silent = mx.zeros((1, *current.shape[1:]), current.dtype)
            spikes = self.amos(mx.concatenate([current, silent]))[:-1]
        return spikes, mx.cumsum(spikes, axis=0)


class TTFSNet(TemporalModule):
    """Base of :class:`TTFSMLP` and :class:`TTFSConvNet`: the constructor checks, the
    fully connected AMOS stack and the decoder call (subclasses add ``_features``)."""

    def __init__(
        self,
        num_classes: int,
        tau: float,
        threshold: float,
        decoder_threshold: float,
        decoder_tau: float,
        force_last: bool,
        method: str,
    ):
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes)
        self.tau = check_scalar("tau", tau, TIME_CONSTANT)
        self.threshold = check_scalar("threshold", threshold, POSITIVE)
        self.decoder_threshold = check_scalar("decoder_threshold", decoder_threshold, POSITIVE)
        self.decoder_tau = check_scalar("decoder_tau", decoder_tau, TIME_CONSTANT)
        self.force_last = check_bool("force_last", force_last)
        self.method = check_choice("method", method, METHODS)

    def _neuron(self) -> AMOSLayer:
        return AMOSLayer(self.tau, self.threshold, self.force_last, self.method)

    def _build_dense(self, in_features: int) -> None:
        """Linear -> BatchNorm -> AMOS for each width of ``self.hidden``, then the decoder."""
        widths = (in_features, *self.hidden)
        self.fc = [SeqToBatch(nn.Linear(a, b, bias=False)) for a, b in itertools.pairwise(widths)]
        self.bn = [SeqToBatch(nn.BatchNorm(b)) for b in self.hidden]
        self.neurons = [self._neuron() for _ in self.hidden]
        self.decoder = TemporalSelectorDecoder(
            self.hidden[-1], self.num_classes, self.decoder_threshold, tau=self.decoder_tau
        )

    def _dense(self, masks: mx.array, spikes: list[mx.array]) -> mx.array:
        """Run the fully connected AMOS layers on ``[T, B, F]`` masks; append their spikes."""
        for fc, bn, neuron in zip(self.fc, self.bn, self.neurons, strict=True):
            s, masks = neuron(bn(fc(masks)))
            spikes.append(s)
        return masks

    def set_decoder_threshold(self, value: float) -> None:
        """Change the confidence threshold :math:`V_{th}` (e.g. to sweep it at evaluation)."""
        self.decoder_threshold = check_scalar("decoder_threshold", value, POSITIVE)
        self.decoder.threshold = self.decoder_threshold

    def _features(self, masks: mx.array) -> tuple[mx.array, list[mx.array]]:
        raise NotImplementedError

    def __call__(self, x: mx.array, return_spikes: bool = False):
        """``x [T, B, *input_shape]`` input spikes (e.g. :func:`mlx_snn.encode.ttfs`).

        Returns logits ``[B, num_classes]``, or :class:`TTFSOutput` with
        ``return_spikes=True``.
        """
        check_bool("return_spikes", return_spikes)
        check_frames(x, self.input_shape)
        masks, spikes = self._features(mx.cumsum(x, axis=0))
        logits, t_first = self.decoder(masks, return_time=True)
        if return_spikes:
            return TTFSOutput(logits, t_first, tuple(spikes))
        return logits


class TTFSMLP(TTFSNet):
    r"""AMOS MLP with the temporal selector decoder.

    Layer by layer, for ``x [T, B, *input_shape]`` (input spikes; the first layer sees
    their masks, module docstring), ``hidden=(h_1, ..., h_k)``:

    1. flatten to ``[T, B, prod(input_shape)]``;
    2. for each width ``h_i``: Linear (no bias) -> BatchNorm1d over the ``T*B`` rows
       -> AMOS LIF (``tau``, ``threshold``) -> firing masks;
    3. :class:`mlx_snn.TemporalSelectorDecoder` (``h_k -> num_classes``).

    Args: as :func:`ttfs_convnet` (``arch="mlp"``); ``hidden`` defaults to ``(800,)``
    (FC800, the widest single hidden layer among the MNIST MLPs of the paper's Table 1).
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: Sequence[int] = (28, 28, 1),
        hidden: Sequence[int] = (800,),
        tau: float = 2.0,
        threshold: float = 1.0,
        decoder_threshold: float = 1.0,
        decoder_tau: float = 2.0,
        force_last: bool = False,
        method: str = "parallel",
    ):
        super().__init__(
            num_classes, tau, threshold, decoder_threshold, decoder_tau, force_last, method
        )
        self.input_shape = _check_steps_tuple("input_shape", input_shape)
        self.hidden = _check_steps_tuple("hidden", hidden)
        self._build_dense(math.prod(self.input_shape))

    def _extra_repr(self):
        return f"hidden={self.hidden}, force_last={self.force_last}, method={self.method!r}"

    def _features(self, masks):
        spikes = []
        masks = self._dense(masks.reshape(*masks.shape[:2], math.prod(self.input_shape)), spikes)
        return masks, spikes


class AMOSConvBlock(TemporalModule):
    """Conv(3x3, pad 1, no bias) -> BatchNorm -> AMOS -> masks -> MaxPool(2) on ``[T, B, H, W, C]``.

    Returns ``(spikes [T, B, H, W, C_out], pooled masks [T, B, H/2, W/2, C_out])``.
    """

    def __init__(self, in_channels: int, out_channels: int, neuron: AMOSLayer):
        super().__init__()
        self.conv = SeqToBatch(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False))
        self.bn = SeqToBatch(nn.BatchNorm(out_channels))
        self.neuron = neuron
        self.pool = SeqToBatch(nn.MaxPool2d(2))

    def __call__(self, masks: mx.array) -> tuple[mx.array, mx.array]:
        spikes, fired = self.neuron(self.bn(self.conv(masks)))
        return spikes, self.pool(fired)


class TTFSConvNet(TTFSNet):
    r"""Spiking conv net of AMOS neurons with the temporal selector decoder.

    Layer by layer, for ``x [T, B, H, W, C]`` (input spikes, channels-last; the first
    layer sees their masks), ``channels=(c_1, c_2)`` and ``hidden=(h,)``:

    1. ConvBlock ``C -> c_1``: Conv 3x3 pad 1 (no bias) -> BatchNorm2d over the ``T*B``
       frames -> AMOS LIF -> firing masks -> MaxPool 2x2 (on masks: the window's
       earliest spike);
    2. ConvBlock ``c_1 -> c_2``, the same;
    3. flatten -> Linear (no bias) ``(H/4)(W/4)c_2 -> h`` -> BatchNorm1d -> AMOS LIF;
    4. :class:`mlx_snn.TemporalSelectorDecoder` (``h -> num_classes``).

    Defaults ``channels=(32, 64)``, ``hidden=(256,)``: 28x28x1 -> 14x14x32 -> 7x7x64
    -> 256 -> 10. This is our choice (module docstring): the paper's "SCNN¹" is
    specified only in its unavailable supplementary material.

    Args: as :func:`ttfs_convnet` (``arch="conv"``).
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: Sequence[int] = (28, 28, 1),
        channels: Sequence[int] = (32, 64),
        hidden: Sequence[int] = (256,),
        tau: float = 2.0,
        threshold: float = 1.0,
        decoder_threshold: float = 1.0,
        decoder_tau: float = 2.0,
        force_last: bool = False,
        method: str = "parallel",
    ):
        super().__init__(
            num_classes, tau, threshold, decoder_threshold, decoder_tau, force_last, method
        )
        self.input_shape = _check_steps_tuple("input_shape", input_shape)
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C) for arch='conv'; got {input_shape}")
        self.channels = _check_steps_tuple("channels", channels)
        self.hidden = _check_steps_tuple("hidden", hidden)
        H, W, C = self.input_shape
        scale = 2 ** len(self.channels)
        if H % scale or W % scale:
            raise ValueError(
                f"input_shape H and W must be divisible by 2**len(channels) = {scale}; "
                f"got {self.input_shape}"
            )
        ins = (C, *self.channels)
        self.blocks = [AMOSConvBlock(a, b, self._neuron()) for a, b in itertools.pairwise(ins)]
        self._build_dense((H // scale) * (W // scale) * self.channels[-1])

    def _extra_repr(self):
        return (
            f"channels={self.channels}, hidden={self.hidden}, force_last={self.force_last}, "
            f"method={self.method!r}"
        )

    def _features(self, masks):
        spikes = []
        for block in self.blocks:
            s, masks = block(masks)
            spikes.append(s)
        masks = self._dense(masks.reshape(*masks.shape[:2], math.prod(masks.shape[2:])), spikes)
        return masks, spikes


def ttfs_convnet(
    arch: str = "conv",
    num_classes: int = 10,
    input_shape: Sequence[int] = (28, 28, 1),
    channels: Sequence[int] = (32, 64),
    hidden: Sequence[int] | None = None,
    tau: float = 2.0,
    threshold: float = 1.0,
    decoder_threshold: float = 1.0,
    decoder_tau: float = 2.0,
    force_last: bool = False,
    method: str = "parallel",
) -> TTFSConvNet | TTFSMLP:
    r"""A PTTFS network: AMOS layers and the temporal selector decoder (module docstring).

    Call it on input spikes ``x [T, B, *input_shape]`` (e.g. ``snn.encode.ttfs(images, T,
    force_last=False)``): ``model(x)`` gives logits ``[B, num_classes]`` for cross-entropy;
    ``model(x, return_spikes=True)`` gives :class:`TTFSOutput` ``(logits, t_first [B],
    spikes)``. ``t_first`` is the early-exit step: the logits depend on steps
    ``<= t_first`` only.

    Args:
        arch: ``"conv"`` (:class:`TTFSConvNet`) | ``"mlp"`` (:class:`TTFSMLP`).
        num_classes: output classes.
        input_shape: one frame, ``(H, W, C)`` channels-last (the MLP flattens it).
        channels: conv widths, one ConvBlock (with 2x2 pooling) each (``arch="conv"`` only).
        hidden: fully connected AMOS widths; default ``(256,)`` for conv, ``(800,)`` for mlp.
        tau: hidden AMOS membrane time constant ``> 1``.
        threshold: hidden AMOS threshold ``> 0``.
        decoder_threshold: the decoder's confidence threshold :math:`V_{th} > 0`:
            higher means later, surer decisions.
        decoder_tau: initial per-class decoder time constant ``> 1`` (learned).
        force_last: the paper's forced spike at ``T - 1`` for neurons that never cross
            (exactly one spike per neuron). Default ``False``: such neurons stay silent
            (at most one spike), which ``T = 1`` training needs (module docstring).
        method: AMOS algorithm, ``"parallel"`` (the paper's) | ``"sequential"`` (step loop).

    Raises:
        ValueError: unknown ``arch`` or ``method``, thresholds ``<= 0`` or not finite,
            time constants ``<= 1``, empty or non-positive widths, a frame the conv
            pooling cannot halve.
        TypeError: non-numeric thresholds or time constants, non-int widths,
            non-bool ``force_last``.
    """
    check_choice("arch", arch, ARCHS)
    common = {
        "num_classes": num_classes,
        "input_shape": input_shape,
        "tau": tau,
        "threshold": threshold,
        "decoder_threshold": decoder_threshold,
        "decoder_tau": decoder_tau,
        "force_last": force_last,
        "method": method,
    }
    if arch == "mlp":
        return TTFSMLP(hidden=(800,) if hidden is None else hidden, **common)
    return TTFSConvNet(channels=channels, hidden=(256,) if hidden is None else hidden, **common)
