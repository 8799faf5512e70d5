"""Float64 reference for the linear scan h_t = a_t * h_{t-1} + b_t (plain loops)."""

from __future__ import annotations

import numpy as np

from .lif import _sum_to

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


# ----------------------------------------------------------------------------
# StateLeaky: h_t = beta * h_{t-1} + x_t (no reset), s_t = H(h_t - threshold)
# ----------------------------------------------------------------------------


def state_leaky_forward(x, beta=0.9, threshold=1.0, h0=None):
    """Float64 loop. Returns dict(spikes, mem, state)."""
    x = np.asarray(x, np.float64)
    beta = np.broadcast_to(np.asarray(beta, np.float64), x.shape[2:])
    th = np.broadcast_to(np.asarray(threshold, np.float64), x.shape[2:])
    h = np.zeros(x.shape[1:]) if h0 is None else np.asarray(h0, np.float64).copy()
    spikes = np.zeros_like(x)
    mem = np.zeros_like(x)
    for t in range(x.shape[0]):
        h = beta * h + x[t]
        mem[t] = h
        spikes[t] = (h - th >= 0).astype(np.float64)
    return {"spikes": spikes, "mem": mem, "state": h}


def state_leaky_backward(x, g_spikes, g_mem, g_state, beta=0.9, threshold=1.0, sg_fn=None, h0=None):
    """Hand-written BPTT for L = sum(g_spikes*s) + sum(g_mem*h) + sum(g_state*h_{T-1}).

    ``sg_fn(h - threshold)`` is the surrogate derivative. Returns gradients for
    x, h0, beta (beta's shape) and threshold (threshold's shape).
    """
    x = np.asarray(x, np.float64)
    T = x.shape[0]
    beta_b = np.broadcast_to(np.asarray(beta, np.float64), x.shape[2:])
    th_b = np.broadcast_to(np.asarray(threshold, np.float64), x.shape[2:])
    fwd = state_leaky_forward(x, beta, threshold, h0)
    h_all = fwd["mem"]
    h_init = np.zeros(x.shape[1:]) if h0 is None else np.asarray(h0, np.float64)
    gx = np.zeros_like(x)
    gbeta = np.zeros_like(x)
    gth = np.zeros_like(x)
    carry = np.asarray(g_state, np.float64).copy()  # dL/dh_t from later steps
    for t in range(T - 1, -1, -1):
        sg = sg_fn(h_all[t] - th_b)
        gh = carry + g_mem[t] + g_spikes[t] * sg
        gth[t] = -g_spikes[t] * sg
        gx[t] = gh
        h_prev = h_all[t - 1] if t > 0 else h_init
        gbeta[t] = gh * h_prev
        carry = beta_b * gh
    return {
        "x": gx,
        "h0": carry,
        "beta": _sum_to(gbeta, np.shape(beta)),
        "threshold": _sum_to(gth, np.shape(threshold)),
    }
