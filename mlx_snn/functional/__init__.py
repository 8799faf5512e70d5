"""Pure functions on ``mx.array``: the math behind every module."""

from .lif import RESETS, TIMINGS, LIFSequence, lif_sequence, lif_step

__all__ = ["RESETS", "TIMINGS", "LIFSequence", "lif_sequence", "lif_step"]
