"""Neuron and layer modules (thin wrappers holding parameters)."""

from .layers import SeqToBatch, VotingLayer
from .lif import LIF, LIFOutput
from .tac import TAC, TACTP

__all__ = ["LIF", "TAC", "TACTP", "LIFOutput", "SeqToBatch", "VotingLayer"]
