"""The marker of modules that act over time, and the search for them inside a layer."""

from __future__ import annotations

import mlx.nn as nn

__all__ = ["CHUNKINGS", "TemporalModule", "find_temporal"]

# MLX's own recurrent layers work across time too; they cannot carry our marker
MLX_RECURRENT = (nn.RNN, nn.GRU, nn.LSTM)

# how a module's sequence can be cut into chunks of time (TemporalModule.chunking)
CHUNKINGS = ("state", "frames", "groups", "whole")


class TemporalModule(nn.Module):
    """Base class of every module that acts over the time axis of ``[T, B, ...]``.

    Neurons (state carried from step to step), decoders that read a whole
    sequence, and wrappers that fold time into the batch all derive from it.
    :class:`mlx_snn.TAC` and :class:`mlx_snn.TACTP` call their layer on
    aggregated frames, so they reject any layer that contains one. A new module
    that acts over time derives from this class (a test checks that every public
    module either does or is accepted by TAC as a per-frame layer).

    ``chunking`` says whether a sequence can be run in chunks of time with the
    same result (what :mod:`mlx_snn.training` relies on):

    - ``"state"``: the call takes ``state=`` and ``return_state=``; running the
      chunks one after the other, each from the state the previous one returned,
      equals one call (neurons, TAC-TP, the paper networks);
    - ``"frames"``: each frame on its own (:class:`~mlx_snn.SeqToBatch`);
    - ``"groups"``: frames in groups of ``group`` steps with no state between
      groups (:class:`~mlx_snn.TAC`): chunks must start on a group boundary;
    - ``"whole"`` (the default): the result depends on the whole sequence (the
      AMOS neuron's forced last-step spike, the temporal selector's earliest
      spike); such a module cannot run in chunks.
    """

    chunking: str = "whole"


def find_temporal(layer: object) -> nn.Module | None:
    """The first module inside ``layer`` (itself included) that acts over time, else ``None``."""
    if not isinstance(layer, nn.Module):
        return None
    for module in layer.modules():
        if isinstance(module, (TemporalModule, *MLX_RECURRENT)):
            return module
    return None
