"""Float64 reference for TAC / TAC-TP (Collapse-or-Preserve paper, section 4), plain loops.

Groups: ``G = ceil(T / g)`` (``g`` clamped to ``T``); group ``k`` holds frames
``k*g .. k*g + n_k - 1`` with ``n_k = min(g, T - k*g)``; weights
``w = beta**(n_k - 1 - j)`` (newest frame weighs 1), sum ``S_k``.
"""

from __future__ import annotations

import numpy as np

from .lif import lif_backward, lif_forward


def groups(T, g):
    """List of (start, length) per group."""
    g = min(g, T)
    out = []
    start = 0
    while start < T:
        out.append((start, min(g, T - start)))
        start += g
    return out


def weights(n, beta):
    """Weights of a group of n frames, oldest first."""
    w = []
    for j in range(n):
        e = n - 1 - j
        w.append(1.0 if e == 0 else float(beta) ** e)
    return w


def aggregate(x, g, beta=1.0, normalize=False):
    """A_k = sum_j w_j x[start + j] (divided by S_k if normalize): [T, ...] -> [G, ...]."""
    x = np.asarray(x, dtype=np.float64)
    gr = groups(x.shape[0], g)
    out = np.zeros((len(gr), *x.shape[1:]))
    for k, (start, n) in enumerate(gr):
        w = weights(n, beta)
        total = sum(w)
        for j in range(n):
            out[k] += w[j] * x[start + j]
        if normalize:
            out[k] /= total
    return out


def aggregate_backward(grad_out, T, g, beta=1.0, normalize=False):
    """dL/dx[start + j] = w_j * dL/dA_k (/ S_k if normalize)."""
    grad_out = np.asarray(grad_out, dtype=np.float64)
    gx = np.zeros((T, *grad_out.shape[1:]))
    for k, (start, n) in enumerate(groups(T, g)):
        w = weights(n, beta)
        total = sum(w)
        for j in range(n):
            gx[start + j] = w[j] * grad_out[k] / (total if normalize else 1.0)
    return gx


def tac_linear(x, weight, bias, g, beta=1.0):
    """Per-frame Linear then decayed group sum: Y_k = sum_j w_j (weight @ x_j + bias)."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    gr = groups(x.shape[0], g)
    out = np.zeros((len(gr), x.shape[1], weight.shape[0]))
    for k, (start, n) in enumerate(gr):
        w = weights(n, beta)
        for j in range(n):
            frame = x[start + j] @ weight.T
            if bias is not None:
                frame = frame + np.asarray(bias, dtype=np.float64)
            out[k] += w[j] * frame
    return out


def tactp_linear_drive(x, weight, bias, g, beta=1.0):
    """The per-step drive of TAC-TP: U_t = weight @ mean_k + bias for t in group k."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    mean = aggregate(x, g, beta, normalize=True)
    drive = np.zeros((x.shape[0], x.shape[1], weight.shape[0]))
    for k, (start, n) in enumerate(groups(x.shape[0], g)):
        y = mean[k] @ weight.T
        if bias is not None:
            y = y + np.asarray(bias, dtype=np.float64)
        for j in range(n):
            drive[start + j] = y
    return drive


def tactp_linear(x, weight, bias, g, agg_beta, g_spikes, **lif):
    """TAC-TP (Linear + LIF) spikes and dL/dweight for L = sum(g_spikes * s).

    ``agg_beta`` is the aggregation decay; ``lif`` holds reference.lif options.
    """
    x = np.asarray(x, dtype=np.float64)
    drive = tactp_linear_drive(x, weight, bias, g, agg_beta)
    spikes = lif_forward(
        drive, **{k: v for k, v in lif.items() if k in ("beta", "threshold", "reset")}
    )
    g_drive = lif_backward(drive, g_spikes, **lif)["x"]
    mean = aggregate(x, g, agg_beta, normalize=True)
    g_weight = np.zeros(np.shape(weight))
    for k, (start, n) in enumerate(groups(x.shape[0], g)):
        g_y = np.zeros(g_drive.shape[1:])
        for j in range(n):
            g_y += g_drive[start + j]
        g_weight += g_y.T @ mean[k]
    return spikes["spikes"], g_weight


def tac_linear_backward(x, g_out, g, beta=1.0):
    """Gradients of L = sum(g_out * tac_linear(x, weight, bias)) for weight and bias."""
    x = np.asarray(x, dtype=np.float64)
    g_out = np.asarray(g_out, dtype=np.float64)
    g_weight = np.zeros((g_out.shape[-1], x.shape[-1]))
    g_bias = np.zeros(g_out.shape[-1])
    for k, (start, n) in enumerate(groups(x.shape[0], g)):
        w = weights(n, beta)
        for j in range(n):
            g_weight += w[j] * (g_out[k].T @ x[start + j])
            g_bias += w[j] * g_out[k].sum(axis=0)
    return g_weight, g_bias
