"""Float64 reference for the PTTFS networks of ``mlx_snn.models.ttfs``: plain loops over time.

AMOS without the forced last-step spike (``force_last=False``), alpha = 1 - 1/tau,
h_{-1} = 0, F_{-1} = 0:
    h_t = alpha * h_{t-1} + x_t / tau
    s_t = H(h_t - threshold) * (1 - F_{t-1})
    F_t = F_{t-1} + s_t
A neuron that never crosses stays silent. ``amos_unforced_backward`` differentiates this
recurrence step by step with d H(u) / du = sigma'(u) (the surrogate).

``mlp_forward`` runs the AMOS MLP: each layer sees the firing masks F of the layer below
(the input's too), Linear (no bias) -> BatchNorm in training mode (batch statistics over
the T*B rows, biased variance, eps 1e-5) -> AMOS; then the temporal selector decoder of
``reference.amos``.
"""

from __future__ import annotations

import numpy as np

from . import amos
from .lif import heaviside, surrogate_derivative


def amos_unforced_forward(x, tau=2.0, threshold=1.0):
    """Return dict(spikes, mem, fired_before), float64, for ``x [T, ...]``."""
    x = np.asarray(x, dtype=np.float64)
    alpha = 1.0 - 1.0 / tau
    h = np.zeros(x.shape[1:])
    fired = np.zeros(x.shape[1:])
    spikes, mem, fired_before = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    for t in range(x.shape[0]):
        h = alpha * h + x[t] / tau
        s = heaviside(h - threshold) * (1.0 - fired)
        mem[t], fired_before[t], spikes[t] = h, fired, s
        fired = fired + s
    return {"spikes": spikes, "mem": mem, "fired_before": fired_before}


def amos_unforced_backward(x, g_spikes, tau=2.0, threshold=1.0, surrogate="atan", **p):
    """BPTT of ``L = sum(g_spikes * s)`` through the recurrence above; returns dL/dx."""
    fw = amos_unforced_forward(x, tau, threshold)
    alpha = 1.0 - 1.0 / tau
    g_x = np.zeros_like(fw["mem"])
    g_h_next = np.zeros(fw["mem"].shape[1:])
    g_fired = np.zeros(fw["mem"].shape[1:])  # dL/dF_t
    for t in range(fw["mem"].shape[0] - 1, -1, -1):
        g_s = g_spikes[t] + g_fired  # F_t = F_{t-1} + s_t
        fake = heaviside(fw["mem"][t] - threshold)
        g_fake = g_s * (1.0 - fw["fired_before"][t])  # s_t = fake_t * (1 - F_{t-1})
        g_fired = g_fired - g_s * fake  # now dL/dF_{t-1}
        sg = surrogate_derivative(surrogate, fw["mem"][t] - threshold, **p)
        g_h = g_fake * sg + alpha * g_h_next
        g_x[t] = g_h / tau
        g_h_next = g_h
    return g_x


def batch_norm_train(z, gamma, beta, eps=1e-5):
    """BatchNorm over every axis but the last (training mode, biased variance)."""
    axes = tuple(range(z.ndim - 1))
    mean = z.mean(axis=axes)
    var = ((z - mean) ** 2).mean(axis=axes)
    return gamma * (z - mean) / np.sqrt(var + eps) + beta


def mlp_forward(x, layers, decoder, tau=2.0, threshold=1.0, decoder_threshold=1.0):
    """AMOS MLP (unforced) on input spikes ``x [T, B, F]``.

    ``layers``: list of dict(weight [out, in], gamma [out], beta [out]);
    ``decoder``: dict(weight [C, H], bias [C], tau [C]).
    Returns dict(logits [B, C], t_first [B], spikes: list of [T, B, out], mem: list).
    """
    masks = np.cumsum(np.asarray(x, dtype=np.float64), axis=0)
    spikes, mems = [], []
    for layer in layers:
        current = batch_norm_train(masks @ layer["weight"].T, layer["gamma"], layer["beta"])
        fw = amos_unforced_forward(current, tau, threshold)
        spikes.append(fw["spikes"])
        mems.append(fw["mem"])
        masks = np.cumsum(fw["spikes"], axis=0)
    out = amos.selector_forward(
        masks, decoder["weight"], decoder["bias"], decoder["tau"], decoder_threshold
    )
    return {"logits": out["logits"], "t_first": out["t_first"], "spikes": spikes, "mem": mems}
