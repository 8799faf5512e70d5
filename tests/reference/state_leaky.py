"""Float64 reference for StateLeaky (no reset): h_t = beta h_{t-1} + x_t, s_t = H(h_t - th)."""

from __future__ import annotations

import numpy as np

from .lif import sum_to


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
        "beta": sum_to(gbeta, np.shape(beta)),
        "threshold": sum_to(gth, np.shape(threshold)),
    }
