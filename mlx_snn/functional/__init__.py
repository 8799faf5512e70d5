"""Pure functions on ``mx.array``: the math behind every module."""

from .amos import METHODS as AMOS_METHODS
from .amos import AMOSSequence, FirstSpike, Selection, amos, first_spike, temporal_selector
from .associative import associative_scan, associative_scan_log
from .lif import (
    ALGORITHMS,
    RESETS,
    TIMINGS,
    LIFSequence,
    lif_sequence,
    lif_step,
    parallel_lif_sequence,
)
from .scan import METHODS as SCAN_METHODS
from .scan import linear_scan
from .state_leaky import state_leaky
from .tac import tac_aggregate, tac_group_weights, tac_weight_sums

__all__ = [
    "ALGORITHMS",
    "AMOS_METHODS",
    "RESETS",
    "SCAN_METHODS",
    "TIMINGS",
    "AMOSSequence",
    "FirstSpike",
    "LIFSequence",
    "Selection",
    "amos",
    "associative_scan",
    "associative_scan_log",
    "first_spike",
    "lif_sequence",
    "lif_step",
    "linear_scan",
    "parallel_lif_sequence",
    "state_leaky",
    "tac_aggregate",
    "tac_group_weights",
    "tac_weight_sums",
    "temporal_selector",
]
