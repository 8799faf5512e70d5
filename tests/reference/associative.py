"""Float64 reference for the associative (matrix-state) memory and AssociativeLeaky.

S_t = diag(a_t) S_{t-1} + k_t v_t^T,  y_t = S_t^T q_t, one explicit step per loop
iteration over t; the backward passes are written out with the chain rule, step
by step in reverse.
"""

from __future__ import annotations

import numpy as np

from .lif import heaviside, surrogate_derivative


def associative_forward(q, k, v, a, S0=None):
    """Sequential loop. q, k, a [T, B, dk]; v [T, B, dv]; S0 [B, dk, dv] or None.

    Returns dict(y [T, B, dv], states [T, B, dk, dv] (S_t after step t), state S_T).
    """
    q, k, v, a = (np.asarray(x, np.float64) for x in (q, k, v, a))
    T, B, dk = q.shape
    dv = v.shape[2]
    S = np.zeros((B, dk, dv)) if S0 is None else np.array(S0, np.float64)
    y = np.zeros((T, B, dv))
    states = np.zeros((T, B, dk, dv))
    for t in range(T):
        S = a[t][:, :, None] * S + k[t][:, :, None] * v[t][:, None, :]
        states[t] = S
        y[t] = np.einsum("bi,bij->bj", q[t], S)
    return {"y": y, "states": states, "state": S}


def associative_backward(q, k, v, a, g_y, S0=None, g_state=None):
    """Hand-written BPTT for L = sum(g_y * y) + sum(g_state * S_T).

    Returns dict of gradients for q, k, v, a, S0.
    """
    q, k, v, a = (np.asarray(x, np.float64) for x in (q, k, v, a))
    T, B, dk = q.shape
    dv = v.shape[2]
    fwd = associative_forward(q, k, v, a, S0)
    S0 = np.zeros((B, dk, dv)) if S0 is None else np.asarray(S0, np.float64)
    g = {n: np.zeros_like(x) for n, x in (("q", q), ("k", k), ("v", v), ("a", a))}
    gS = np.zeros((B, dk, dv)) if g_state is None else np.array(g_state, np.float64)
    for t in range(T - 1, -1, -1):
        S_t = fwd["states"][t]
        S_prev = fwd["states"][t - 1] if t > 0 else S0
        # y_t[j] = sum_i q_t[i] S_t[i, j]
        g["q"][t] = np.einsum("bij,bj->bi", S_t, g_y[t])
        gS = gS + q[t][:, :, None] * g_y[t][:, None, :]
        # S_t = a_t[i] S_prev[i, j] + k_t[i] v_t[j]
        g["k"][t] = np.einsum("bij,bj->bi", gS, v[t])
        g["v"][t] = np.einsum("bij,bi->bj", gS, k[t])
        g["a"][t] = np.einsum("bij,bij->bi", gS, S_prev)
        gS = a[t][:, :, None] * gS
    g["S0"] = gS
    return g


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def associative_leaky_forward(x, p, threshold=1.0):
    """The layer: q, k, v, a from linear maps of x [T, B, dim], then spikes on y.

    ``p`` holds float64 arrays Wq, Wk, Wv, Wa (each [out, dim]) and ba [dk]
    (biases bq, bk, bv optional). Returns dict(spikes, mem, state, q, k, v, a).
    """
    x = np.asarray(x, np.float64)

    def lin(name):
        out = x @ p["W" + name].T
        return out + p["b" + name] if "b" + name in p else out

    q, k, v = lin("q"), lin("k"), lin("v")
    a = sigmoid(lin("a"))
    fwd = associative_forward(q, k, v, a, p.get("S0"))
    spikes = heaviside(fwd["y"] - threshold)
    return {
        "spikes": spikes,
        "mem": fwd["y"],
        "state": fwd["state"],
        "q": q,
        "k": k,
        "v": v,
        "a": a,
    }


def associative_leaky_backward(x, p, g_spikes, g_mem, threshold=1.0, surrogate="fast_sigmoid"):
    """Hand-written backward of L = sum(g_spikes * spikes) + sum(g_mem * mem).

    Spikes are Heaviside(mem - threshold) with the surrogate derivative. Returns
    gradients for x and every entry of ``p``.
    """
    x = np.asarray(x, np.float64)
    f = associative_leaky_forward(x, p, threshold)
    g_y = g_spikes * surrogate_derivative(surrogate, f["mem"] - threshold) + g_mem
    g = associative_backward(f["q"], f["k"], f["v"], f["a"], g_y, p.get("S0"))
    g["za"] = g["a"] * f["a"] * (1.0 - f["a"])  # d sigmoid(z)/dz
    out = {"x": np.zeros_like(x)}
    for name, gz in (("q", g["q"]), ("k", g["k"]), ("v", g["v"]), ("a", g["za"])):
        out["W" + name] = np.einsum("tbo,tbd->od", gz, x)
        out["x"] += gz @ p["W" + name]
        if "b" + name in p:
            out["b" + name] = gz.sum(axis=(0, 1))
    if "S0" in p:
        out["S0"] = g["S0"]
    return out
