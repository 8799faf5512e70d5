r"""The hand-written backward pass of the LIF sequence (both reset timings).

With :math:`g_s, g_h, g_v` the cotangents of the spikes, the membrane and the last
state, and :math:`\sigma'` the surrogate derivative at :math:`h_t - \theta`, the
gradient reaching the membrane obeys a reverse linear recurrence

.. math::

    q_t = a_t + d_t c_t, \qquad c_{t-1} = k_t q_t, \qquad c_{T-1} = g_v,
    \qquad a_t = g_{s,t} \sigma'_t + g_{h,t}

where :math:`d_t = \partial v_t / \partial h_t` along every path (through the
reset's spike too unless ``detach_reset``) and :math:`k_t = \beta` (immediate
timing) or :math:`\beta (1 - r_t)` (delayed zero reset). Then
:math:`\partial L/\partial x_t = q_t`, :math:`\partial L/\partial v_{-1} = c_{-1}`,
and the parameter gradients are reduced over time and batch to the parameter's
shape.

The loop algorithm solves the recurrence like its forward pass
(:mod:`~mlx_snn.functional.lif_forward`): ``_loops.steps_per_call``
reverse steps per compiled call, each computing the surrogate derivative and the
reset slope from the saved membrane in registers (the spikes are not read: they
are ``h >= θ``), the lanes split across CPU streams, the input gradient stacked
once. It computes in float32 for 16-bit inputs and returns gradients in the
primals' dtypes. The parallel algorithm passes a reverse linear scan as
``solve`` and works on whole ``[T, ...]`` arrays. Internal module: the public
entry point is :func:`mlx_snn.functional.lif_sequence`.
"""

from __future__ import annotations

import functools

import mlx.core as mx

from ._loops import Lanes, at, steps_per_call
from .lif_forward import fire, reset_membrane
from .scan import sum_to_shape

__all__ = ["backward_delayed", "backward_immediate"]


def _reset_slope(reset, detach, h, s, thr, sg):
    """``d_t = dv_t/dh_t`` along every path (direct + through the spike in the reset)."""
    if reset == "subtract":
        return None if detach else 1.0 - thr * sg
    if reset == "zero":
        return (1.0 - s) if detach else (1.0 - s) - h * sg
    return None


def _carry(reset, timing, q_next, m, beta, thr):
    """:math:`c_t = k_{t+1} q_{t+1}`; ``m`` is the membrane at ``t`` (its spike is the
    delayed reset at ``t + 1``)."""
    if timing == "delayed" and reset == "zero":
        return beta * (1.0 - fire(m, thr, timing)) * q_next
    return beta * q_next


@functools.cache
def _reverse_block(reset, timing, surrogate, detach, n, last):
    """Compiled ``n`` reverse steps of the recurrence over one block of time.

    ``(g_s [n, ...], g_h [n, ...], h [n, ...], after, beta, thr)`` ->
    ``(q_0, ..., q_{n-1})``. ``after`` is :math:`c_{T-1} = g_v` for the ``last``
    block of the sequence, else :math:`q` of the step after the block (the carry
    is rebuilt from it, so each step has one output: MLX's fused CPU kernels with
    one output run about twice as fast as with two).
    """

    def block(g_s, g_h, h, after, beta, thr):
        qs = [None] * n
        q = after
        for j in range(n - 1, -1, -1):
            h_t = at(h, j)
            c = after if last and j == n - 1 else _carry(reset, timing, q, h_t, beta, thr)
            sg = surrogate.derivative(h_t - thr)
            a = at(g_s, j).astype(c.dtype) * sg + at(g_h, j).astype(c.dtype)
            if timing == "immediate":
                s = fire(h_t, thr, timing) if reset == "zero" else None
                d = _reset_slope(reset, detach, h_t, s, thr, sg)
                q = a + (c if d is None else d * c)
            else:
                q = a + c
            qs[j] = q
        return tuple(qs)

    return mx.compile(block)


def _reverse_loop(cfg, timing, primals, cotangents, outputs):
    """Solve the recurrence by the blocked step loop; returns ``(q [T, ...], c_{-1})``."""
    reset, surrogate, detach, _, _ = cfg
    _, v0, beta, thr = primals
    g_s, g_h, g_v = cotangents
    h = outputs[1]
    T = h.shape[0]
    lanes = Lanes(h.shape[1:])
    # a broadcast cotangent (loss = sum(spikes) gives ones broadcast to [T, ...])
    # would send every step through MLX's strided kernels: copy it once instead
    g_s, g_h = mx.contiguous(g_s), mx.contiguous(g_h)
    g_s, g_h, h = lanes.sequence(g_s), lanes.sequence(g_h), lanes.sequence(h)
    carry = lanes.state(g_v.astype(h[0].dtype))
    betas, thresholds = lanes.param(beta), lanes.param(thr)
    pieces = [None] * T
    steps = steps_per_call(lanes.part_elements, backward=True)
    starts = range(0, T, steps)
    for t0 in reversed(starts):
        n = min(steps, T - t0)
        block = _reverse_block(reset, timing, surrogate, detach, n, t0 + n == T)
        outs = []
        for j, p in enumerate(lanes.parts):
            with mx.stream(p.stream):
                step = slice(t0, t0 + n)
                out = block(
                    g_s[j][step], g_h[j][step], h[j][step], carry[j], betas[j], thresholds[j]
                )
            carry[j] = out[0]
            outs.append(out)
        for i in range(n):
            pieces[t0 + i] = [out[i] for out in outs]
    g_v0 = []
    for j, (p, m) in enumerate(zip(lanes.parts, lanes.state(v0), strict=True)):
        with mx.stream(p.stream):
            g_v0.append(_carry(reset, timing, carry[j], m, betas[j], thresholds[j]))
    return lanes.join_sequence(pieces, lanes.parts[0].stream), lanes.join_state(g_v0)


def backward_immediate(cfg, primals, cotangents, outputs, solve=None):
    """Backward of the immediate-reset sequence.

    ``solve(a, d, k, g_last)`` runs the reverse recurrence on full ``[T, ...]``
    arrays (ParallelLIF passes a scan); ``None`` runs the blocked step loop.
    """
    reset, surrogate, detach, need_beta, need_thr = cfg
    x, v0, beta, thr = primals
    g_s, g_h, g_v = cotangents
    s, h, _ = outputs
    if solve is None:
        q, g_v0 = _reverse_loop(cfg, "immediate", primals, cotangents, outputs)
    else:
        sg = surrogate.derivative(h - thr)
        d = _reset_slope(reset, detach, h, s, thr, sg)
        q, g_v0 = solve(g_s * sg + g_h, d, beta, g_v)

    g_beta = mx.zeros_like(beta)
    g_thr = mx.zeros_like(thr)
    if need_thr:
        sg = surrogate.derivative(h - thr)
        # gradient reaching v_t: beta * g_h[t+1], and g_v at the last step
        g_vt = mx.concatenate([beta * q[1:], g_v[None]])
        g_spike = g_s
        if not detach and reset == "subtract":
            g_spike = g_s - thr * g_vt
        elif not detach and reset == "zero":
            g_spike = g_s - h * g_vt
        g_thr_full = -sg * g_spike
        if reset == "subtract":
            g_thr_full = g_thr_full - s * g_vt
        g_thr = sum_to_shape(g_thr_full, thr.shape)
    if need_beta:
        v_prev = mx.concatenate([v0[None], reset_membrane(h[:-1], s[:-1], thr, reset)])
        g_beta = sum_to_shape(q * v_prev, beta.shape)
    return q.astype(x.dtype), g_v0.astype(v0.dtype), g_beta, g_thr


def backward_delayed(cfg, primals, cotangents, outputs, solve=None):
    """Backward of the delayed-reset sequence; ``solve`` as in :func:`backward_immediate`
    (``None``: the blocked step loop)."""
    reset, surrogate, _, need_beta, need_thr = cfg
    x, v0, beta, thr = primals
    g_s, g_m, g_v = cotangents
    s, m, _ = outputs
    # r_t: the (detached) reset applied at step t, i.e. the previous step's spike
    r = mx.concatenate([(v0 > thr).astype(m.dtype)[None], s[:-1].astype(m.dtype)])
    if solve is None:
        g_mem, g_v0 = _reverse_loop(cfg, "delayed", primals, cotangents, outputs)
    else:
        sg = surrogate.derivative(m - thr)
        k = beta * (1.0 - r) if reset == "zero" else beta
        g_mem, g_v0 = solve(g_s * sg + g_m, None, k, g_v, k_per_step=reset == "zero")

    g_beta = mx.zeros_like(beta)
    g_thr = mx.zeros_like(thr)
    if need_thr:
        g_thr_full = -surrogate.derivative(m - thr) * g_s
        if reset == "subtract":
            g_thr_full = g_thr_full - r * g_mem
        g_thr = sum_to_shape(g_thr_full, thr.shape)
    if need_beta:
        m_prev = mx.concatenate([v0[None], m[:-1]])
        if reset == "zero":
            m_prev = m_prev * (1.0 - r)
        g_beta = sum_to_shape(g_mem * m_prev, beta.shape)
    return g_mem.astype(x.dtype), g_v0.astype(v0.dtype), g_beta, g_thr
