"""Neuron and layer modules (thin wrappers holding parameters)."""

from .layers import SeqToBatch, VotingLayer
from .lif import LIF, LIFOutput

__all__ = ["LIF", "LIFOutput", "SeqToBatch", "VotingLayer"]
