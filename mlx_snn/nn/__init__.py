"""Neuron and layer modules (thin wrappers holding parameters)."""

from .associative import AssociativeLeaky
from .layers import SeqToBatch, VotingLayer
from .lif import LIF, LIFOutput
from .tac import TAC, TACTP

__all__ = ["LIF", "TAC", "TACTP", "AssociativeLeaky", "LIFOutput", "SeqToBatch", "VotingLayer"]
