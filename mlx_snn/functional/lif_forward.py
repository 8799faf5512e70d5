r"""The LIF update equations and the step loop (the forward pass of ``algorithm="loop"``).

Equations and symbols as in :mod:`mlx_snn.functional.lif`. The loop runs one
compiled step per time step and computes no surrogate: the backward pass is
written by hand in :mod:`mlx_snn.functional.lif_backward`. Internal module: the
public entry point is :func:`mlx_snn.functional.lif_sequence`.
"""

from __future__ import annotations

import functools

import mlx.core as mx

__all__ = ["RESETS", "TIMINGS", "delayed_charge", "loop_forward", "reset_membrane"]

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
def _forward_step(reset: str, timing: str):
    """Compiled forward step (no surrogate: the backward is written by hand)."""

    def immediate(x_t, v, beta, threshold):
        h = beta * v + x_t
        s = (h >= threshold).astype(x_t.dtype)
        return s, h, reset_membrane(h, s, threshold, reset)

    def delayed(x_t, m, s_prev, beta, threshold):
        m = delayed_charge(m, x_t, s_prev, beta, threshold, reset)
        return (m > threshold).astype(x_t.dtype), m

    return mx.compile(immediate if timing == "immediate" else delayed)


def loop_forward(reset, timing, x, v0, beta, threshold):
    """``(spikes [T, ...], mem [T, ...], state)`` by the compiled step loop."""
    step = _forward_step(reset, timing)
    spikes, mems = [], []
    if timing == "immediate":
        v = v0
        for t in range(x.shape[0]):
            s, h, v = step(x[t], v, beta, threshold)
            spikes.append(s)
            mems.append(h)
        return mx.stack(spikes), mx.stack(mems), v
    m = v0
    s = (v0 > threshold).astype(x.dtype)
    for t in range(x.shape[0]):
        s, m = step(x[t], m, s, beta, threshold)
        spikes.append(s)
        mems.append(m)
    mem = mx.stack(mems)
    return mx.stack(spikes), mem, m
