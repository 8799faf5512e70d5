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

from ._loops import BLOCK, Lanes

__all__ = [
    "RESETS",
    "TIMINGS",
    "delayed_charge",
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


@functools.cache
def _forward_block(reset: str, timing: str, n: int, out_dtype: mx.Dtype):
    """Compiled ``n`` steps: ``(x [n, ...], v, beta, threshold)`` ->
    ``(s_0, ..., s_{n-1}, h_0, ..., h_{n-1}, v)``; ``v`` is the state entering the
    block (delayed timing: the previous membrane, whose spike is the reset due now)."""

    def block(xb, v, beta, threshold):
        spikes, mems = [], []
        for j in range(n):
            x_t = xb[j].astype(v.dtype)
            if timing == "immediate":
                h = beta * v + x_t
                s = (h >= threshold).astype(v.dtype)
                v = reset_membrane(h, s, threshold, reset)
            else:
                r = (v > threshold).astype(v.dtype)
                h = v = delayed_charge(v, x_t, r, beta, threshold, reset)
                s = h > threshold
            spikes.append(s.astype(out_dtype))
            mems.append(h)
        return (*spikes, *mems, v)

    return mx.compile(block)


def loop_forward(reset, timing, x, v0, beta, threshold):
    """``(spikes [T, ...], mem [T, ...], state)`` by the compiled step loop.

    ``v0``, ``beta`` and ``threshold`` are in the compute dtype of ``x.dtype``
    (:func:`~mlx_snn.functional._loops.compute_dtype`; ``v0 [B, ...]``; parameters
    broadcastable to the features). Spikes come out in ``x.dtype``, the membrane
    and the state in the compute dtype.
    """
    T = x.shape[0]
    lanes = Lanes(x.shape[1:])
    xs = lanes.sequence(x)
    v = lanes.state(v0)
    betas, thresholds = lanes.param(beta), lanes.param(threshold)
    spikes, mems = [], []
    for t0 in range(0, T, BLOCK):
        n = min(BLOCK, T - t0)
        block = _forward_block(reset, timing, n, x.dtype)
        outs = []
        for j, part in enumerate(lanes.parts):
            with mx.stream(part.stream):
                out = block(xs[j][t0 : t0 + n], v[j], betas[j], thresholds[j])
            v[j] = out[-1]
            outs.append(out)
        for i in range(n):
            spikes.append([out[i] for out in outs])
            mems.append([out[n + i] for out in outs])
    last = lanes.parts[-1].stream
    return (
        lanes.join_sequence(spikes, lanes.parts[0].stream),
        lanes.join_sequence(mems, last),
        lanes.join_state(v),
    )
