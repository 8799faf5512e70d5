r"""The LIF update equations and the step loop (the forward pass of ``algorithm="loop"``).

Equations and symbols as in :mod:`mlx_snn.functional.lif`. The loop computes no
surrogate: the backward pass is written by hand in
:mod:`mlx_snn.functional.lif_backward`. Internal module: the public entry point
is :func:`mlx_snn.functional.lif_sequence`.

How the loop runs. :data:`~mlx_snn.functional._loops.BLOCK` steps are one
compiled call: MLX fuses them into one kernel in which each element's state
stays in a register from step to step, so a block reads its inputs once and
writes its outputs once (and Python and MLX pay their per-call cost once per
block, not per step). The lanes (batch rows,
else features) are split into parts that run on their own CPU streams, i.e. on
different cores (:mod:`mlx_snn._runtime`, ``set_cpu_streams``); every part
computes exactly what one stream would, so results do not depend on the split.
The per-step outputs are stacked into ``[T, B, ...]`` once at the end, spikes and
membrane on different streams.

Precision. Float16 and bfloat16 inputs are read as they are and converted to
float32 inside the compiled block: the membrane, the state carried from step to
step and the parameters are float32
(:func:`~mlx_snn.functional._loops.compute_dtype`); spikes come out in the
input's dtype, the membrane in float32 (the backward pass reads it; the public
function casts what it returns).

Memory budget (float32, subtract reset, bytes per element of ``x``; measured by
``bench/lif_profile.py``). Forward: the block reads ``x`` (4) and writes spikes
and membrane (8); stacking them reads and writes each again (16): 28 bytes, of
which 12 are the floor (the membrane must be kept for the backward pass). The
backward pass (:mod:`~mlx_snn.functional.lif_backward`) reads the spikes'
cotangent and the membrane (8, plus 4 where the membrane's cotangent is used),
writes the input gradient (4) and stacks it (8): 20-24 bytes. On the 2-core test
machine one stream copies about 10 GB/s (``x + 1`` on 52 MB, read plus write) and
two streams about 15 GB/s, so at ``T=25, B=128, N=4096`` (13.1 M elements) the
forward pass needs at least ``28 * 13.1e6 / 15e9`` = 24 ms and the backward 17
ms.
"""

from __future__ import annotations

import functools

import mlx.core as mx

from ._loops import Lanes, steps_per_call

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
            x_t = xb[j].astype(v.dtype)
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


def loop_forward(reset, timing, x, v0, beta, threshold, membrane_first=False):
    """``(spikes [T, ...], mem [T, ...], state)`` by the compiled step loop.

    ``v0``, ``beta`` and ``threshold`` are in the compute dtype of ``x.dtype``
    (:func:`~mlx_snn.functional._loops.compute_dtype`; ``v0 [B, ...]``; parameters
    broadcastable to the features). Spikes come out in ``x.dtype``, the membrane
    and the state in the compute dtype.

    Two ways to the same numbers. By default the steps write spikes and membrane
    and each is stacked by its own lazy op (two streams): the membrane reaches a
    ``[T, ...]`` array only if something evaluates it. With ``membrane_first``
    (for a backward pass, which reads the membrane anyway) the steps write only
    the membrane and the spikes are one pass over it: faster steps, one stack.
    """
    T = x.shape[0]
    lanes = Lanes(x.shape[1:])
    xs, v = lanes.sequence(x), lanes.state(v0)
    betas, thresholds = lanes.param(beta), lanes.param(threshold)
    spikes, mems = [], []
    k = 0 if membrane_first else 1  # spike outputs per step
    steps = steps_per_call(lanes.part_elements)
    for t0 in range(0, T, steps):
        n = min(steps, T - t0)
        block = _forward_block(reset, timing, n, None if membrane_first else x.dtype)
        outs = []
        for j, part in enumerate(lanes.parts):
            with mx.stream(part.stream):
                out = block(xs[j][t0 : t0 + n], v[j], betas[j], thresholds[j])
            v[j] = out[-1]
            outs.append(out)
        spikes += [[out[i] for out in outs] for i in range(k * n)]
        mems += [[out[k * n + i] for out in outs] for i in range(n)]
    first, last = lanes.parts[0].stream, lanes.parts[-1].stream
    mem = lanes.join_sequence(mems, last)
    if membrane_first:
        with mx.stream(first):
            return _spikes(timing, x.dtype)(mem, threshold), mem, lanes.join_state(v)
    return lanes.join_sequence(spikes, first), mem, lanes.join_state(v)
