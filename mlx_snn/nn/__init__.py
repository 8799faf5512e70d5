"""Neuron and layer modules (thin wrappers holding parameters)."""

from .amos import AMOS, AMOSOutput, TemporalSelectorDecoder
from .associative import AssociativeLeaky
from .layers import SeqToBatch, VotingLayer
from .lif import LIF, LIFOutput
from .parallel_lif import ParallelLIF
from .state_leaky import StateLeaky
from .tac import TAC, TACTP
from .temporal import TemporalModule

__all__ = [
    "AMOS",
    "LIF",
    "TAC",
    "TACTP",
    "AMOSOutput",
    "AssociativeLeaky",
    "LIFOutput",
    "ParallelLIF",
    "SeqToBatch",
    "StateLeaky",
    "TemporalModule",
    "TemporalSelectorDecoder",
    "VotingLayer",
]
