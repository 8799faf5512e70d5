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
shape. The loop algorithm solves the recurrence step by step; the parallel one
passes a reverse linear scan as ``solve``. Internal module: the public entry
point is :func:`mlx_snn.functional.lif_sequence`.
"""

from __future__ import annotations

import functools

import mlx.core as mx

from .lif_forward import reset_membrane
from .scan import sum_to_shape

__all__ = ["FUSED_MIN_SLICE", "backward_delayed", "backward_immediate"]


def _reverse_recurrence(a, d, k, g_last, k_per_step=False):
    """Solve ``q_t = a_t + d_t * c_t``, ``c_{t-1} = k_t * q_t``, ``c_{T-1} = g_last``.

    ``d`` may be ``None`` (ones); ``k`` is per step ``[T, ...]`` when ``k_per_step``,
    else one array broadcast over time. Returns ``(q [T, ...], c_{-1})``.
    """
    c = g_last
    qs = [None] * a.shape[0]
    for t in range(a.shape[0] - 1, -1, -1):
        q = a[t] + (c if d is None else d[t] * c)
        c = (k[t] if k_per_step else k) * q
        qs[t] = q
    return mx.stack(qs), c


def _reset_slope(reset, detach, h, s, thr, sg):
    """``d_t = dv_t/dh_t`` along every path (direct + through the spike in the reset)."""
    if reset == "subtract":
        return None if detach else 1.0 - thr * sg
    if reset == "zero":
        return (1.0 - s) if detach else (1.0 - s) - h * sg
    return None


# Below this many elements per time slice the per-call cost of the compiled step
# outweighs the temporaries it saves (measured with atan, fwd+bwd: 16384 elements
# 10% slower fused, 524288 elements 6% faster fused).
FUSED_MIN_SLICE = 1 << 16


@functools.cache
def _fused_reverse_step(reset, surrogate, detach):
    """Compiled step of the loop backward: ``q_t`` and ``c_{t-1}`` from one time slice.

    Computing the surrogate derivative inside the step keeps the backward to one
    pass over ``[B, ...]`` slices instead of several full ``[T, B, ...]`` temporaries.
    """

    def step(g_s_t, g_h_t, h_t, s_t, c, beta, thr):
        sg = surrogate.derivative(h_t - thr)
        d = _reset_slope(reset, detach, h_t, s_t, thr, sg)
        q = g_s_t * sg + g_h_t + (c if d is None else d * c)
        return q, beta * q

    return mx.compile(step)


def _fused_reverse_loop(cfg, primals, cotangents, outputs):
    """Solve the immediate-reset reverse recurrence with :func:`_fused_reverse_step`."""
    reset, surrogate, detach, _, _ = cfg
    _, _, beta, thr = primals
    g_s, g_h, g_v = cotangents
    s, h, _ = outputs
    step = _fused_reverse_step(reset, surrogate, detach)
    c = g_v
    qs = [None] * h.shape[0]
    for t in range(h.shape[0] - 1, -1, -1):
        qs[t], c = step(g_s[t], g_h[t], h[t], s[t], c, beta, thr)
    return mx.stack(qs), c


def backward_immediate(cfg, primals, cotangents, outputs, solve=None):
    """Backward of the immediate-reset sequence.

    ``solve(a, d, k, g_last)`` runs the reverse recurrence on full ``[T, ...]``
    arrays (ParallelLIF passes a scan); ``None`` uses the fused step loop for
    wide slices and :func:`_reverse_recurrence` for narrow ones.
    """
    reset, surrogate, detach, need_beta, need_thr = cfg
    _, v0, beta, thr = primals
    g_s, g_h, g_v = cotangents
    s, h, _ = outputs
    if solve is None and h[0].size < FUSED_MIN_SLICE:
        solve = _reverse_recurrence
    sg = surrogate.derivative(h - thr) if (need_thr or solve is not None) else None
    if solve is None:
        g_x, g_v0 = _fused_reverse_loop(cfg, primals, cotangents, outputs)
    else:
        d = _reset_slope(reset, detach, h, s, thr, sg)
        g_x, g_v0 = solve(g_s * sg + g_h, d, beta, g_v)

    g_beta = mx.zeros_like(beta)
    g_thr = mx.zeros_like(thr)
    if need_thr:
        # gradient reaching v_t: beta * g_h[t+1], and g_v at the last step
        g_vt = mx.concatenate([beta * g_x[1:], g_v[None]])
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
        g_beta = sum_to_shape(g_x * v_prev, beta.shape)
    return g_x, g_v0, g_beta, g_thr


def backward_delayed(cfg, primals, cotangents, outputs, solve=None):
    """Backward of the delayed-reset sequence; ``solve`` as in :func:`backward_immediate`
    (``None``: the step loop)."""
    solve = _reverse_recurrence if solve is None else solve
    reset, surrogate, _, need_beta, need_thr = cfg
    x, v0, beta, thr = primals
    g_s, g_m, g_v = cotangents
    s, m, _ = outputs
    sg = surrogate.derivative(m - thr)
    a = g_s * sg + g_m
    # r_t: the (detached) reset applied at step t, i.e. the previous step's spike
    r = mx.concatenate([(v0 > thr).astype(x.dtype)[None], s[:-1]])
    k = beta * (1.0 - r) if reset == "zero" else beta
    g_mem, g_v0 = solve(a, None, k, g_v, k_per_step=reset == "zero")

    g_beta = mx.zeros_like(beta)
    g_thr = mx.zeros_like(thr)
    if need_thr:
        g_thr_full = -sg * g_s
        if reset == "subtract":
            g_thr_full = g_thr_full - r * g_mem
        g_thr = sum_to_shape(g_thr_full, thr.shape)
    if need_beta:
        m_prev = mx.concatenate([v0[None], m[:-1]])
        if reset == "zero":
            m_prev = m_prev * (1.0 - r)
        g_beta = sum_to_shape(g_mem * m_prev, beta.shape)
    return g_mem, g_v0, g_beta, g_thr
