"""Pure functions on ``mx.array``: the math behind every module."""

from .associative import associative_scan, associative_scan_log
from .lif import RESETS, TIMINGS, LIFSequence, lif_sequence, lif_step
from .scan import linear_scan
from .tac import tac_aggregate, tac_group_weights, tac_weight_sums

__all__ = [
    "RESETS",
    "TIMINGS",
    "LIFSequence",
    "associative_scan",
    "associative_scan_log",
    "lif_sequence",
    "lif_step",
    "linear_scan",
    "tac_aggregate",
    "tac_group_weights",
    "tac_weight_sums",
]
