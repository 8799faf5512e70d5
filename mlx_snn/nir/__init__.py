r"""Export to and load from NIR, the Neuromorphic Intermediate Representation.

NIR (https://neuroir.org, ``pip install "mlx-snn[nir]"``) is the exchange format of
snnTorch, Norse, SpikingJelly, Sinabs, Lava and several neuromorphic chips. A NIR
graph describes one time step of a network in continuous time, with channels-first
shapes and no batch axis; mlx-snn runs it on ``[T, B, ...]`` arrays with
channels-last images. ``import mlx_snn`` works without the ``nir`` package; calling
:func:`export` or :func:`load` without it raises ImportError with the install line.

**Time step.** mlx-snn's LIF is discrete, NIR's continuous:
:math:`\tau \dot v = (v_{leak} - v) + R I`. The two meet by forward Euler with step
``dt``: :math:`v_t = (1 - dt/\tau) v_{t-1} + (R\,dt/\tau) I_t`. Export writes
``tau = dt / (1 - beta)``, ``r = tau / dt`` (input gain ``r*dt/tau = 1``),
``v_leak = 0``, ``v_reset = 0``; load computes ``beta = 1 - dt/tau`` and, where
the gain ``r*dt/tau`` is not 1 (within 1e-6), puts a :class:`~mlx_snn.nir.layers.Scale`
in front of the neuron. snnTorch's exporter and importer use the same convention
with ``dt = 1e-4``, so its graphs load with that ``dt``.

**Reset.** NIR's LIF/IF reset to ``v_reset`` ("zero" reset); it has no subtract
reset, no "no reset" LIF, and no notion of reset timing (in continuous time they
coincide). Every mlx-snn neuron node therefore carries metadata that
:func:`load` restores: ``mlx_snn.reset`` (``"subtract" | "zero" | "none"``),
``mlx_snn.reset_timing`` (``"immediate" | "delayed"``), ``mlx_snn.dt``, and the
training options (``detach_reset``, ``surrogate`` and its parameters,
``learn_beta``, ``learn_threshold``, ``algorithm``). Other tools read the NIR fields
only, so they see a subtract-reset neuron as a zero-reset one. ``reset="none"`` is
written as ``LI`` + ``Threshold``, which says exactly that in NIR's own nodes.
:func:`load` takes ``reset=`` and ``reset_timing=`` to state what a foreign graph
means (snnTorch's ``Leaky`` is ``reset_timing="delayed"``); without them and
without metadata, a LIF resets to zero, immediately.

Mapping (mlx-snn on ``[T, B, ...]``, channels last -> NIR node per step, channels first):

- ``nn.Linear`` -> ``Affine`` (``Linear`` when it has no bias).
- ``nn.Conv2d`` (in :class:`~mlx_snn.SeqToBatch`) -> ``Conv2d``; weight
  ``(O, kH, kW, I)`` <-> ``(O, I, kH, kW)``, ``input_shape = (H, W)``.
- ``nn.BatchNorm`` right after a conv or linear layer -> folded into it
  (running statistics, i.e. eval mode).
- ``nn.AvgPool2d`` -> ``AvgPool2d``.
- ``nn.MaxPool2d`` after a spiking layer -> ``SumPool2d`` + ``Threshold(0.5)``,
  which equals max pooling on 0/1 spikes (metadata marks the pair; load restores
  ``nn.MaxPool2d``).
- flattening (``x.reshape(T, B, -1)``) -> ``Flatten``; our flatten is channels
  last, NIR's channels first, so the columns of the next ``Affine``/``Linear``
  (and the parameters of neurons in between) are reordered, or a permutation
  ``Linear`` is appended where the flattened vector is the output.
- :class:`~mlx_snn.LIF`, :class:`~mlx_snn.ParallelLIF` -> ``LIF`` (``beta < 1``)
  or ``IF`` (``beta = 1``); with ``reset="none"``, and
  :class:`~mlx_snn.StateLeaky`, -> ``LI`` (or ``I``) + ``Threshold``.
- :class:`~mlx_snn.VotingLayer` -> ``Linear`` (averaging matrix; load restores it).
- ``nn.Dropout``, ``nn.Identity`` -> nothing (identities in eval mode).
- :mod:`mlx_snn.nir.layers` (what :func:`load` builds where nothing closer
  exists) -> ``Scale``, ``Threshold``, ``SumPool2d``, ``LI``/``I``, ``Flatten``,
  ``Linear`` (``Permute``).

Export raises ValueError naming the module for anything else: ``TAC``/``TACTP``
(they merge time steps; NIR graphs run once per step), ``AMOS``,
``TemporalSelectorDecoder``, ``AssociativeLeaky``, recurrent and activation layers,
max pooling of non-spikes, a BatchNorm that follows no conv/linear, a beta of 1 for
some neurons of a layer and below 1 for others, conv kernels that are not square
(the ``nir`` package, 1.0.8, infers their shapes wrongly), and models whose
``__call__`` does more than chain layers and flatten. Load raises for NIR nodes
without an equivalent (``CubaLIF``, ``CubaLI``, ``Delay``, ``Conv1d``, nested
graphs), graphs that are not one path from input to output, and ``v_leak`` or
``v_reset`` other than 0.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from . import layers
from ._common import INSTALL_HINT
from ._export import export as _export
from ._load import load as _load

__all__ = ["INSTALL_HINT", "export", "layers", "load"]


def export(model: nn.Module, sample_input: mx.array, dt: float = 1.0):
    """Describe ``model`` as a ``nir.NIRGraph``.

    The model runs once on ``sample_input`` (in eval mode; its training flag is
    restored) while its layer calls are recorded; they must form a chain, which
    is checked by re-running them one after another and comparing the output bit
    for bit. Write the graph with ``nir.write(path, graph)``.

    Args:
        model (nn.Module): a chain of the layers in the table above: an
            ``nn.Sequential``, a paper model (``snn.models.mnist_convnet()`` in
            baseline mode), or any module whose ``__call__`` calls its layers in
            sequence, flattening in between.
        sample_input (mx.array): ``[T, B, ...]`` input, channels-last images
            (only its shapes matter for the graph).
        dt (float): time step, in the units of the exported time constants:
            ``tau = dt / (1 - beta)``, ``r = tau / dt``. Default ``1.0``; snnTorch's
            ``import_from_nir`` assumes ``1e-4``.

    Returns:
        ``nir.NIRGraph`` with one node per layer (see the module docstring), the
        input shape channels-first, and ``mlx_snn.*`` metadata on neurons and graph.

    Raises:
        ImportError: the ``nir`` package is not installed.
        TypeError: ``model`` not an ``nn.Module``, a non-float ``sample_input``, a
            model that returns something other than one array.
        ValueError: a module or arrangement NIR cannot express (module docstring),
            ``sample_input`` with fewer than 3 dimensions, ``dt <= 0``.
    """
    return _export(model, sample_input, dt)


def load(graph, *, dt=None, reset=None, reset_timing=None) -> nn.Sequential:
    """Build an ``nn.Sequential`` that runs a NIR graph on ``[T, B, ...]`` arrays.

    Image inputs and outputs are channels-last (``[T, B, H, W, C]``), as in the
    rest of mlx-snn. Layers come from the table in the module docstring:
    per-frame layers wrapped in :class:`mlx_snn.SeqToBatch`, neurons as
    :class:`mlx_snn.LIF` (or the class named in the metadata), and the small
    modules of :mod:`mlx_snn.nir.layers` where nothing closer exists. A graph
    written by :func:`export` loads back to the same computation: spikes equal,
    membranes equal to fp32 rounding (BatchNorm was folded into the conv).

    Args:
        graph: a ``nir.NIRGraph``, or the path of a ``.nir`` file.
        dt (float or None): time step for the graph's time constants
            (``beta = 1 - dt/tau``). ``None``: the ``mlx_snn.dt`` metadata that
            :func:`export` writes; graphs from other tools need it (snnTorch: 1e-4).
        reset (str or None): ``"subtract" | "zero" | "none"`` for every neuron;
            ``None``: the metadata, else NIR's meaning (zero for LIF/IF, none for
            LI + Threshold).
        reset_timing (str or None): ``"immediate" | "delayed"``; ``None``: the
            metadata, else ``"immediate"``. snnTorch's ``Leaky`` is ``"delayed"``.

    Raises:
        ImportError: the ``nir`` package is not installed.
        TypeError: ``graph`` neither a ``nir.NIRGraph`` nor a path.
        ValueError: a node without an mlx-snn equivalent, a graph that is not a
            chain, no ``dt`` for a neuron, ``dt`` larger than a ``tau``, unknown
            ``reset``/``reset_timing``.
    """
    return _load(graph, dt=dt, reset=reset, reset_timing=reset_timing)
