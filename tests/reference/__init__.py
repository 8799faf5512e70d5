"""Float64 numpy reference for mlx_snn: the oracle of the parity suite.

Written as plainly as possible: explicit Python loops over time, one update per
line, and backward passes derived step by step with the chain rule (no
vectorised shortcuts, nothing shared with the library). Never imported by
library code. One module per topic (``lif``, ``scan``, ...); the LIF and scan
names are re-exported here so tests can write ``import reference as ref``.
Newer topics are imported by module: ``from reference import amos``.
"""

from .lif import heaviside, lif_backward, lif_forward, surrogate_derivative
from .scan import linear_scan, linear_scan_backward

__all__ = [
    "heaviside",
    "lif_backward",
    "lif_forward",
    "linear_scan",
    "linear_scan_backward",
    "surrogate_derivative",
]
