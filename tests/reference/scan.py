"""Float64 reference for the linear scan h_t = a_t * h_{t-1} + b_t (plain loops)."""

from __future__ import annotations

import numpy as np

from .lif import sum_to

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
    return {"a": sum_to(ga, a_arr.shape), "b": gb, "h0": sum_to(carry[None], np.shape(h0))}
