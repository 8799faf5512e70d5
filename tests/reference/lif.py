"""Float64 reference for surrogate derivatives and the LIF neuron (plain loops, hand BPTT)."""

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


def sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
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
        "beta": sum_to(gbeta, beta_shape),
        "threshold": sum_to(gth, th_shape),
    }
