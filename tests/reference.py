"""Float64 numpy reference for mlx_snn: the oracle of the parity suite.

Written as plainly as possible: explicit Python loops over time, one update per
line, and backward passes derived step by step with the chain rule (no
vectorised shortcuts, nothing shared with the library). Never imported by
library code.
"""

from __future__ import annotations

import math

import numpy as np

# ----------------------------------------------------------------------------
# Surrogate derivatives sigma'(x), x = h - threshold
# ----------------------------------------------------------------------------


def surrogate_derivative(name: str, x: np.ndarray, **p) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if name == "fast_sigmoid":
        k = p.get("slope", 25.0)
        return 1.0 / (1.0 + k * np.abs(x)) ** 2
    if name == "atan":
        a = p.get("alpha", 2.0)
        return (a / 2.0) / (1.0 + (math.pi / 2.0 * a * x) ** 2)
    if name == "sigmoid":
        k = p.get("slope", 4.0)
        sig = 1.0 / (1.0 + np.exp(-k * x))
        return k * sig * (1.0 - sig)
    if name == "triangle":
        w = p.get("width", 1.0)
        return np.maximum(0.0, 1.0 - np.abs(x) / w) / w
    if name == "straight_through":
        return np.ones_like(x)
    raise ValueError(name)


def heaviside(x: np.ndarray, strict: bool = False) -> np.ndarray:
    return (x > 0).astype(np.float64) if strict else (x >= 0).astype(np.float64)


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a [T, B, ...features] array to a parameter's (broadcastable) shape."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g.reshape(shape)


# ----------------------------------------------------------------------------
# LIF
# ----------------------------------------------------------------------------


def lif_forward(x, beta=0.9, threshold=1.0, reset="subtract", timing="immediate", v0=None):
    """LIF forward in float64. Returns dict(spikes, mem, state, v_prev, r).

    immediate: h = beta*v + x; s = H(h - th); v = reset(h, s)
    delayed (snnTorch Leaky): r = H>(m_prev - th);
        m = beta*m_prev + x - th*r (subtract) | beta*(1 - r)*m_prev + x (zero); s = H>(m - th)
    """
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    beta = np.broadcast_to(np.asarray(beta, np.float64), x.shape[2:])
    th = np.broadcast_to(np.asarray(threshold, np.float64), x.shape[2:])
    v = np.zeros(x.shape[1:]) if v0 is None else np.asarray(v0, np.float64).copy()
    spikes = np.zeros_like(x)
    mem = np.zeros_like(x)
    v_prev = np.zeros_like(x)  # state entering each step
    r_all = np.zeros_like(x)  # delayed mode: reset applied at each step
    for t in range(T):
        v_prev[t] = v
        if timing == "immediate":
            h = beta * v + x[t]
            s = heaviside(h - th)
            if reset == "subtract":
                v = h - th * s
            elif reset == "zero":
                v = h * (1.0 - s)
            else:
                v = h
        else:
            r = heaviside(v - th, strict=True)
            r_all[t] = r
            if reset == "subtract":
                h = beta * v + x[t] - th * r
            elif reset == "zero":
                h = beta * (1.0 - r) * v + x[t]
            else:
                h = beta * v + x[t]
            s = heaviside(h - th, strict=True)
            v = h
        spikes[t] = s
        mem[t] = h
    return {"spikes": spikes, "mem": mem, "state": v, "v_prev": v_prev, "r": r_all}


def lif_backward(
    x,
    g_spikes,
    g_mem=None,
    g_state=None,
    beta=0.9,
    threshold=1.0,
    reset="subtract",
    timing="immediate",
    detach_reset=False,
    surrogate="fast_sigmoid",
    surrogate_params=None,
    v0=None,
):
    """Hand-written BPTT in float64 for L = sum(g_spikes*s) + sum(g_mem*h) + sum(g_state*v_T).

    Returns dict of gradients: x, v0, beta (shape of beta), threshold (shape of threshold).
    """
    sp = surrogate_params or {}
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    beta_shape = np.shape(beta)
    th_shape = np.shape(threshold)
    beta_b = np.broadcast_to(np.asarray(beta, np.float64), x.shape[2:])
    th_b = np.broadcast_to(np.asarray(threshold, np.float64), x.shape[2:])
    fwd = lif_forward(x, beta, threshold, reset, timing, v0)
    s_all, h_all, v_prev = fwd["spikes"], fwd["mem"], fwd["v_prev"]
    g_spikes = np.asarray(g_spikes, np.float64)
    g_mem = np.zeros_like(x) if g_mem is None else np.asarray(g_mem, np.float64)
    gv = np.zeros(x.shape[1:]) if g_state is None else np.asarray(g_state, np.float64)
    gv = gv.copy()
    gx = np.zeros_like(x)
    gbeta = np.zeros_like(x)
    gth = np.zeros_like(x)

    for t in range(T - 1, -1, -1):
        h, s = h_all[t], s_all[t]
        sg = surrogate_derivative(surrogate, h - th_b, **sp)
        if timing == "immediate":
            # v_t = reset(h_t, s_t): distribute dL/dv_t to h_t, s_t, threshold
            if reset == "subtract":
                gh = gv.copy()
                gs_reset = -th_b * gv
                gth[t] += -s * gv
            elif reset == "zero":
                gh = gv * (1.0 - s)
                gs_reset = -h * gv
            else:
                gh = gv.copy()
                gs_reset = np.zeros_like(gv)
            if detach_reset:
                gs_reset = np.zeros_like(gv)
            gs = g_spikes[t] + gs_reset
            # s_t = H(h_t - threshold)
            gh = gh + gs * sg
            gth[t] += -gs * sg
            gh = gh + g_mem[t]
            # h_t = beta * v_{t-1} + x_t
            gx[t] = gh
            gbeta[t] = gh * v_prev[t]
            gv = beta_b * gh
        else:
            r = fwd["r"][t]
            gm = gv + g_mem[t] + g_spikes[t] * sg
            gth[t] += -g_spikes[t] * sg
            gx[t] = gm
            if reset == "subtract":
                gth[t] += -r * gm
                gbeta[t] = gm * v_prev[t]
                gv = beta_b * gm
            elif reset == "zero":
                gbeta[t] = gm * (1.0 - r) * v_prev[t]
                gv = beta_b * (1.0 - r) * gm
            else:
                gbeta[t] = gm * v_prev[t]
                gv = beta_b * gm
    return {
        "x": gx,
        "v0": gv,
        "beta": _sum_to(gbeta, beta_shape),
        "threshold": _sum_to(gth, th_shape),
    }


# ----------------------------------------------------------------------------
# Linear scan h_t = a_t * h_{t-1} + b_t
# ----------------------------------------------------------------------------


def linear_scan(a, b, h0=0.0, reverse=False):
    """Float64 loop. ``a`` broadcastable to ``b`` (constant over time if ndim < b.ndim)."""
    b = np.asarray(b, np.float64)
    a = np.asarray(a, np.float64)
    a_full = np.broadcast_to(a if a.ndim == b.ndim else a[None], b.shape)
    h = np.broadcast_to(np.asarray(h0, np.float64), b.shape[1:]).copy()
    out = np.zeros_like(b)
    order = range(b.shape[0] - 1, -1, -1) if reverse else range(b.shape[0])
    for t in order:
        h = a_full[t] * h + b[t]
        out[t] = h
    return out


def linear_scan_backward(a, b, g, h0=0.0, reverse=False):
    """Hand-written backward of :func:`linear_scan` for L = sum(g * h).

    Returns gradients for a (in a's shape), b and h0 (in h0's shape).
    """
    b = np.asarray(b, np.float64)
    a_arr = np.asarray(a, np.float64)
    a_full = np.broadcast_to(a_arr if a_arr.ndim == b.ndim else a_arr[None], b.shape)
    h = linear_scan(a, b, h0, reverse)
    h0_full = np.broadcast_to(np.asarray(h0, np.float64), b.shape[1:])
    order = list(range(b.shape[0]))
    if reverse:
        order = order[::-1]
    # walk the forward order backwards, carrying dL/dh of the step just undone
    gb = np.zeros_like(b)
    ga = np.zeros_like(b)
    carry = np.zeros(b.shape[1:])
    for i in range(len(order) - 1, -1, -1):
        t = order[i]
        gh = g[t] + carry
        gb[t] = gh
        h_prev = h[order[i - 1]] if i > 0 else h0_full
        ga[t] = gh * h_prev
        carry = a_full[t] * gh
    return {"a": _sum_to(ga, a_arr.shape), "b": gb, "h0": _sum_to(carry[None], np.shape(h0))}
