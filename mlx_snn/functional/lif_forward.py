r"""The LIF update equations and the step loop (the forward pass of ``algorithm="loop"``).

Equations and symbols as in :mod:`mlx_snn.functional.lif`. The loop computes no
surrogate: the backward pass is written by hand in
:mod:`mlx_snn.functional.lif_backward`. Internal module: the public entry point
is :func:`mlx_snn.functional.lif_sequence`.

How the loop runs. Each compiled call runs one step, or a block of
``BLOCK`` (``functional/_loops.py``) steps for narrow inputs
(``_loops.steps_per_call``): MLX fuses a call into one
C++ loop over the elements, with the state in a register. The lanes (batch
rows, else features) are split into parts that run on their own CPU streams,
i.e. on different cores (:mod:`mlx_snn._runtime`, ``set_cpu_streams``); every
part computes exactly what one stream would, so results do not depend on the
split. Under ``mx.grad`` the graph is built on the library's graph-building
thread, where MLX still fuses the compiled calls
(``functional/_untraced.py``; on the calling thread a differentiated
compiled function runs op by op). The per-step outputs are stacked into
``[T, B, ...]`` once at the end.

Precision. Float16 and bfloat16 inputs are read as they are and converted to
float32 inside the compiled block: the membrane, the state carried from step to
step and the parameters are float32
(:func:`~mlx_snn._precision.carry_dtype`); spikes come out in the
input's dtype, the membrane in float32 (the backward pass reads it; the public
function casts what it returns).

Budget (float32, bytes moved per element of ``x``; ``bench/lif_profile.py``
times each pass and the step variants below).

- Forward under a gradient: each step reads ``x_t`` and the previous membrane
  and writes the membrane (12: one output per step, the previous membrane's
  reset applied at the start of the step, ``_membrane_block``), stacking the
  membrane moves 8, the spikes are one select pass over it (8): 28 bytes; the
  floor is 12 (read ``x``, write the spikes and the membrane the backward pass
  needs). Without a gradient the steps read ``x`` and the state and write
  spikes, membrane and state (20) and the spikes are stacked (8); the membrane
  is stacked (8) only if a caller evaluates it.
- Backward (:mod:`~mlx_snn.functional.lif_backward`): the steps read the spikes'
  cotangent, the membrane's cotangent, the membrane and the next step's
  gradient and write the input gradient (20), stacking it moves 8: 28 bytes,
  plus 4 for MLX to fill the membrane's zero cotangent when the loss does not
  use the membrane, plus 8 to copy a broadcast spike cotangent
  (``loss = sum(spikes)``) once; floor 12.
- What the fused steps cost: MLX compiles a call's elementwise ops into one C++
  loop, whose speed here depends on its shape more than on its bytes. Measured
  by ``bench/lif_profile.py`` (``step_variants``, one stream, T=25, B=128,
  N=4096; ``bench/results/lif_profile-cpu-vm.json``): a step with two outputs
  (membrane and state) is slower than one with the membrane alone, an input
  read through an integer index (``x[t]`` inside the call) slower than through
  a slice and a reshape (``_loops.at``), and the reset written as a select
  slower than as the cast comparison used here (while for the spike pass over
  the stacked membrane the select is the faster form). The stacks and the spike
  pass are single copies on one stream each; the steps scale with cores, which
  is what the split across streams buys.
"""

from __future__ import annotations

import functools

import mlx.core as mx

from ._loops import Lanes, at, steps_per_call

__all__ = [
    "RESETS",
    "TIMINGS",
    "delayed_charge",
    "fire",
    "loop_forward",
    "reset_membrane",
]

RESETS = ("subtract", "zero", "none")
TIMINGS = ("immediate", "delayed")


def delayed_charge(m, x_t, r, beta, threshold, reset):
    """snnTorch ``Leaky``: charge ``m`` with the previous step's reset ``r`` applied."""
    if reset == "subtract":
        return beta * m + x_t - threshold * r
    if reset == "zero":
        return beta * (m * (1.0 - r)) + x_t
    return beta * m + x_t


def reset_membrane(h, s, threshold, reset):
    """The state after an immediate reset: ``h - θ s``, ``h (1 - s)`` or ``h``."""
    if reset == "subtract":
        return h - threshold * s
    if reset == "zero":
        return h * (1.0 - s)
    return h


def fire(h, threshold, timing):
    """Spikes of membrane ``h``: 1 where ``h >= θ`` (immediate timing) or ``h > θ``
    (delayed), else 0, in ``h``'s dtype."""
    return (h > threshold if timing == "delayed" else h >= threshold).astype(h.dtype)


@functools.cache
def _forward_block(reset: str, timing: str, n: int, out_dtype: mx.Dtype | None):
    """Compiled ``n`` steps: ``(x [n, ...], v, beta, threshold)`` -> the spikes
    ``(s_0, ..., s_{n-1})`` in ``out_dtype`` (none when ``out_dtype`` is ``None``),
    the membranes ``(h_0, ..., h_{n-1})``, then (immediate timing) the state after
    the block. ``v`` is the state entering the block (delayed timing: the previous
    membrane, whose spike is the reset due now, so the last membrane is the state)."""

    def block(xb, v, beta, threshold):
        spikes, mems = [], []
        for j in range(n):
            x_t = at(xb, j).astype(v.dtype)
            if timing == "immediate":
                h = beta * v + x_t
                s = fire(h, threshold, timing)
                v = reset_membrane(h, s, threshold, reset)
            else:
                v = h = delayed_charge(v, x_t, fire(v, threshold, timing), beta, threshold, reset)
                s = fire(h, threshold, timing)
            if out_dtype is not None:
                spikes.append(s.astype(out_dtype))
            mems.append(h)
        return (*spikes, *mems, v) if timing == "immediate" else (*spikes, *mems)

    return mx.compile(block)


@functools.cache
def _spikes(timing: str, dtype: mx.Dtype):
    """Compiled ``(mem [T, ...], threshold)`` -> spikes in ``dtype`` (the values of
    :func:`fire`; written as a select, which MLX's fused CPU kernel vectorises:
    about 1.7x faster than a cast of the comparison here)."""

    def spikes(mem, threshold):
        above = mem > threshold if timing == "delayed" else mem >= threshold
        return mx.where(above, 1.0, 0.0).astype(dtype)

    return mx.compile(spikes)


@functools.cache
def _membrane_block(reset: str, n: int, first: bool):
    """Compiled ``n`` immediate-timing steps that write only the membrane:
    ``(x [n, ...], h, beta, threshold)`` -> ``(h_0, ..., h_{n-1})``.

    The carry is the previous step's membrane before reset, whose reset is
    applied at the start of the next step (the same ops as the state update, so
    the same numbers): one output per step, which MLX's fused CPU loop runs faster
    than two (``bench/lif_profile.py``, ``step_variants``). With
    ``first`` the carry entering the block is the state ``v_{-1}`` itself."""

    def block(xb, h, beta, threshold):
        mems = []
        for j in range(n):
            v = h if first and j == 0 else _reset_immediate(h, threshold, reset)
            h = beta * v + at(xb, j).astype(v.dtype)
            mems.append(h)
        return tuple(mems)

    return mx.compile(block)


def _reset_immediate(h, threshold, reset):
    """The state after the immediate reset of membrane ``h`` (its own spike)."""
    return reset_membrane(h, fire(h, threshold, "immediate"), threshold, reset)


@functools.cache
def _after_reset(reset: str):
    """Compiled ``(h, threshold)`` -> ``_reset_immediate`` of ``h``."""
    return mx.compile(lambda h, threshold: _reset_immediate(h, threshold, reset))


def loop_forward(reset, timing, x, v0, beta, threshold, membrane_first=False):
    """``(spikes [T, ...], mem [T, ...], state)`` by the compiled step loop.

    ``v0``, ``beta`` and ``threshold`` are in the compute dtype of ``x.dtype``
    (:func:`~mlx_snn._precision.carry_dtype`; ``v0 [B, ...]``; parameters
    broadcastable to the features). Spikes come out in ``x.dtype``, the membrane
    and the state in the compute dtype.

    Two ways to the same numbers. By default the steps write spikes and membrane
    and each is stacked by its own lazy op (two streams): the membrane reaches a
    ``[T, ...]`` array only if something evaluates it. With ``membrane_first``
    (for a backward pass, which reads the membrane anyway) the steps write only
    the membrane (immediate timing: the carry is the membrane before reset, reset
    at the start of the next step, ``_membrane_block``) and the spikes are one
    pass over it: one output per step, one stack.
    """
    T = x.shape[0]
    lanes = Lanes(x.shape[1:])
    xs, v = lanes.sequence(x), lanes.state(v0)
    betas, thresholds = lanes.param(beta), lanes.param(threshold)
    spikes, mems = [], []
    k = 0 if membrane_first else 1  # spike outputs per step
    steps = steps_per_call(lanes.part_elements)
    carry_h = membrane_first and timing == "immediate"
    for t0 in range(0, T, steps):
        n = min(steps, T - t0)
        if carry_h:
            block = _membrane_block(reset, n, t0 == 0)
        else:
            block = _forward_block(reset, timing, n, None if membrane_first else x.dtype)
        outs = []
        for j, part in enumerate(lanes.parts):
            with mx.stream(part.stream):
                out = block(xs[j][t0 : t0 + n], v[j], betas[j], thresholds[j])
            v[j] = out[-1]
            outs.append(out)
        spikes += [[out[i] for out in outs] for i in range(k * n)]
        mems += [[out[k * n + i] for out in outs] for i in range(n)]
    if carry_h:
        for j, part in enumerate(lanes.parts):
            with mx.stream(part.stream):
                v[j] = _after_reset(reset)(v[j], thresholds[j])
    first, last = lanes.parts[0].stream, lanes.parts[-1].stream
    mem = lanes.join_sequence(mems, last)
    if membrane_first:
        with mx.stream(first):
            return _spikes(timing, x.dtype)(mem, threshold), mem, lanes.join_state(v)
    return lanes.join_sequence(spikes, first), mem, lanes.join_state(v)
