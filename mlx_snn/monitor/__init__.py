r"""Cost accounting from a real forward pass: spikes, synaptic operations, memory, energy.

Usage::

    mon = snn.monitor.Monitor(model)
    with mon:
        model(x)                      # x [T, B, ...]; any number of forward passes
    report = mon.report()
    print(report.table())             # per sample: activity, operations, bytes, energy
    report.to_json("cost.json")       # every total, per layer
    report.energy(snn.monitor.EnergyCosts(mac_pj=0.2, add_pj=0.03))   # your own figures

**How it records.** MLX has no forward hooks. Inside ``with mon:`` every module of the tree
has its class swapped for a cached subclass of that class whose ``__call__`` reports to the
monitor and then runs the original ``__call__``; ``__exit__`` puts the original classes back,
also when the forward raises. This was chosen over replacing children by proxy modules
because the module tree stays exactly as it is: the same parameter paths, so
``model.parameters()``, ``nn.value_and_grad``, optimizer state and checkpoints see nothing
different; ``isinstance`` still holds; only ``type(m)`` differs while recording. An explicit
wrapper that recomputes each layer would duplicate the model's logic. The recorded arrays
are read with ``stop_gradient`` and evaluated once per forward pass (one host sync), so
outputs and gradients are the model's own. Counting needs values, so a forward traced by
``mx.compile`` or ``mx.vmap`` raises ``RuntimeError``; ``mx.grad`` works. Only ``__call__`` is
seen (a hand loop over ``LIF.step`` is not). A module called at several places is one row
whose totals add up; the non-spiking network counts each layer once per sample. Neurons
are recognised by ``isinstance`` on the public classes (``LIF`` and ``ParallelLIF``,
``StateLeaky``, ``AMOS``, ``AssociativeLeaky``, ``TemporalSelectorDecoder``).

**What is counted** (``B``: samples of a forward, the outermost input's axis 1; ``b_w``,
``b_s``: bytes per weight and per state value, from the dtypes):

- *Synapse* (``nn.Linear``, ``nn.Conv1d/2d/3d``) called on ``N`` frames: every nonzero input
  element is an event; ``SynOps = sum over events of fan_out``, with ``fan_out = out_features``
  (Linear) or, for a conv, ``(C_out/groups) * prod_d taps_d(p_d)``, the kernel taps that read
  input position ``p`` (``o*stride - pad + j*dilation = p``): stride, padding, dilation and
  the edges are exact, taps on the zero padding count nothing. With binary inputs (spikes)
  these are accumulates (AC); with graded inputs (a TAC aggregate, analog pixels) each is a
  MAC. A bias adds ``N * outputs`` ACs. Memory: each operation reads its weight and
  reads and writes its target's accumulator: ``weight_read = ops * b_w``,
  ``state_read = state_write = ops * b_s``. ``dense_mac = N * MACs per frame`` is what a
  dense per-frame run (a GPU) does.
- *Neuron*, ``n = T * B * features`` neuron-steps: LIF / StateLeaky one MAC per step
  (leak and integrate) and, with ``reset="subtract"``, one AC per spike; AMOS also one
  multiply (``x / tau``); TemporalSelectorDecoder one MAC and one multiply per class-step;
  AssociativeLeaky ``2 d_k d_v`` MACs and ``d_k d_v`` multiplies per sample-step on its
  matrix state (its projections are Linear layers, counted as synapses). Memory: the
  membrane and the input current are read and the membrane written, ``state_read = 2 n b_s``,
  ``state_write = n b_s`` (AssociativeLeaky: its ``d_k d_v`` state read and written).
  Threshold comparisons are not counted (neither are the ANN's ReLUs).
  Spikes: count, rate per neuron per step (and per step ``t`` in the JSON), the
  fraction of (sample, neuron) pairs silent over all steps, and the fraction of neurons
  silent on every sample (``dead_fraction``).
- *TAC / TAC-TP* on ``x [T, B, F]``: one AC per nonzero input frame element into its group
  sum (a MAC when ``beta < 1``), one multiply per aggregated element (``/ S_k``), and for TAC
  one per output element (``* S_k``); each reads and writes one value. The wrapped layer
  is counted by its own rule on the ``G*B`` frames it really runs (``G = ceil(T/g)``); the
  report shows them as ``G of T`` frames per sample.
- *The non-spiking network* (ANN): the same layers, each run once per sample on the same
  frame shape with dense graded activations: ``B *`` MACs per frame (the same exact taps),
  bias ACs, ``weight_read = MACs * b_w``, ``state_read = MACs * b_s`` (the input operand),
  ``state_write = outputs * b_s``; neurons become free activations (AssociativeLeaky one
  step, ``2 d_k d_v`` MACs). A TAC network and its baseline share one ANN.
- *Not counted*: every other module that does work (BatchNorm, pooling, a custom module's
  own arrays, a plain callable inside TAC) is listed by name on a "not counted" line and
  in the JSON, or raises ``TypeError`` with ``Monitor(strict=True)``. Containers
  (``Sequential``, ``SeqToBatch``, models) are free. Spike transport (address events)
  and control logic are not modelled.

**Energy** = ``AC * add_pj + MAC * mac_pj + mult * mult_pj`` (compute) plus
``bytes * memory_pj_per_byte`` (memory), per sample, for both networks, with the memory
term shown apart: see :class:`EnergyCosts` for the default figures (Horowitz, ISSCC 2014,
45 nm) and alternatives. The memory model charges every operand access (no reuse), an
upper bound for both networks; pass the per-byte energy of the memory you assume.
"""

from .counts import KINDS, LayerStats, conv_fan_out
from .recorder import Monitor
from .report import HOROWITZ_45NM, CostReport, EnergyCosts

__all__ = [
    "HOROWITZ_45NM",
    "KINDS",
    "CostReport",
    "EnergyCosts",
    "LayerStats",
    "Monitor",
    "conv_fan_out",
]
