"""Float64 reference for the parallel LIF: the same function as the step loop.

``functional.lif_sequence(..., algorithm="parallel")`` and ``snn.ParallelLIF``
compute exactly the LIF of :mod:`reference.lif` (same spikes, membrane, state and
gradients), so their oracle is that loop; this module names it for the parallel
neuron so that each neuron's math, module and oracle share one file name.
"""

from .lif import lif_backward, lif_forward

__all__ = ["lif_backward", "lif_forward"]
