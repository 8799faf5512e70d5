"""mlx-snn: spiking neural networks on MLX.

Time-major arrays ``[T, B, ...]``; images channels-last ``[T, B, H, W, C]``.
Math lives in :mod:`mlx_snn.functional`; modules are thin wrappers.
"""

# first: checks the MLX installation and says what to install when it is missing or broken
from mlx_snn import _install  # noqa: F401

from . import (
    _runtime,
    backends,
    data,
    distributed,
    encode,
    functional,
    loss,
    models,
    monitor,
    nir,
    surrogate,
    training,
    viz,
)
from ._runtime import cpu_streams, set_cpu_streams
from .nn import (
    AMOS,
    LIF,
    TAC,
    TACTP,
    AMOSOutput,
    AssociativeLeaky,
    LIFOutput,
    ParallelLIF,
    SeqToBatch,
    StateLeaky,
    TemporalSelectorDecoder,
    VotingLayer,
)

__version__ = "1.0.0.dev0"

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
    "TemporalSelectorDecoder",
    "VotingLayer",
    "__version__",
    "backends",
    "cpu_streams",
    "data",
    "distributed",
    "encode",
    "functional",
    "loss",
    "models",
    "monitor",
    "nir",
    "set_cpu_streams",
    "surrogate",
    "training",
    "viz",
]

_runtime.raise_cpu_cache_limit()
