"""Float64 reference for the AMOS neuron, first-spike extraction and the temporal
selector decoder (PTTFS): plain loops over time, backward by hand-written BPTT.

AMOS, with alpha = 1 - 1/tau, h_{-1} = 0, F_{-1} = 0:
    h_t    = alpha * h_{t-1} + x_t / tau
    fake_t = H(h_t - threshold) for t < T-1, and 1 at t = T-1 (forced last-step spike)
    s_t    = fake_t * (1 - F_{t-1})
    F_t    = F_{t-1} + s_t
In the backward pass d fake_t / d h_t = sigma'(h_t - threshold) at every t, the
forced step T-1 included. ``amos_backward`` differentiates exactly this
recurrence step by step (it does not use the paper's second-fake-spike formula).
"""

from __future__ import annotations

import numpy as np

from .lif import heaviside, surrogate_derivative


def amos_forward(x, tau=2.0, threshold=1.0):
    """Return dict(spikes, mem, fake, fired_before, t_first, forced), all float64/int."""
    x = np.asarray(x, dtype=np.float64)
    alpha = 1.0 - 1.0 / tau
    T = x.shape[0]
    h = np.zeros(x.shape[1:])
    fired = np.zeros(x.shape[1:])
    mem = np.zeros_like(x)
    fake = np.zeros_like(x)
    fired_before = np.zeros_like(x)
    spikes = np.zeros_like(x)
    crossed_any = np.zeros(x.shape[1:], dtype=bool)
    for t in range(T):
        h = alpha * h + x[t] / tau
        crossed = heaviside(h - threshold)
        crossed_any = crossed_any | (crossed > 0)
        f = np.ones_like(h) if t == T - 1 else crossed
        s = f * (1.0 - fired)
        mem[t] = h
        fake[t] = f
        fired_before[t] = fired
        spikes[t] = s
        fired = fired + s
    t_first = np.zeros(x.shape[1:], dtype=np.int64)
    for t in range(T - 1, -1, -1):
        t_first = np.where(spikes[t] > 0, t, t_first)
    return {
        "spikes": spikes,
        "mem": mem,
        "fake": fake,
        "fired_before": fired_before,
        "t_first": t_first,
        "forced": ~crossed_any,
    }


def first_spike(h, threshold=1.0):
    """Return dict(t_first, forced, t_second) by scanning each neuron's trace in order.

    t_second is the first fake spike after t_first (step T-1 counts as one), or T.
    """
    h = np.asarray(h, dtype=np.float64)
    T = h.shape[0]
    flat = h.reshape(T, -1)
    t_first = np.zeros(flat.shape[1], dtype=np.int64)
    t_second = np.zeros(flat.shape[1], dtype=np.int64)
    forced = np.zeros(flat.shape[1], dtype=bool)
    for n in range(flat.shape[1]):
        fakes = [t for t in range(T) if flat[t, n] >= threshold or t == T - 1]
        t_first[n] = fakes[0]
        t_second[n] = fakes[1] if len(fakes) > 1 else T
        forced[n] = not any(flat[t, n] >= threshold for t in range(T))
    shape = h.shape[1:]
    return {
        "t_first": t_first.reshape(shape),
        "forced": forced.reshape(shape),
        "t_second": t_second.reshape(shape),
    }


def amos_backward(x, g_spikes, g_mem, tau=2.0, threshold=1.0, surrogate="atan", **p):
    """BPTT through the recurrence above for L = sum(g_spikes * s) + sum(g_mem * h).

    Returns dL/dx, same shape as x.
    """
    fw = amos_forward(x, tau, threshold)
    alpha = 1.0 - 1.0 / tau
    T = fw["mem"].shape[0]
    g_x = np.zeros_like(fw["mem"])
    g_h_next = np.zeros(fw["mem"].shape[1:])  # dL/dh_{t+1}
    g_fired = np.zeros(fw["mem"].shape[1:])  # dL/dF_t (F_{T-1} is not used)
    for t in range(T - 1, -1, -1):
        # F_t = F_{t-1} + s_t  ->  dL/ds_t gets dL/dF_t
        g_s = g_spikes[t] + g_fired
        # s_t = fake_t * (1 - F_{t-1})
        g_fake = g_s * (1.0 - fw["fired_before"][t])
        g_fired = g_fired - g_s * fw["fake"][t]  # now dL/dF_{t-1}
        # fake_t = H(h_t - threshold) (forced 1 at T-1), derivative sigma'
        sg = surrogate_derivative(surrogate, fw["mem"][t] - threshold, **p)
        # h_t feeds fake_t, the loss directly, and h_{t+1} = alpha * h_t + ...
        g_h = g_fake * sg + g_mem[t] + alpha * g_h_next
        g_x[t] = g_h / tau
        g_h_next = g_h
    return g_x


def selector_forward(x, weight, bias, tau, threshold=1.0):
    """Temporal selector decoder: Linear -> per-class AMOS charge -> h at t_1st.

    x [T, B, F], weight [C, F], bias [C] or None, tau [C] (> 1).
    Returns dict(logits [B, C], t_first [B], mem [T, B, C], current [T, B, C]).
    """
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    T, B, _ = x.shape
    C = weight.shape[0]
    current = np.zeros((T, B, C))
    for t in range(T):
        current[t] = x[t] @ weight.T
        if bias is not None:
            current[t] = current[t] + np.asarray(bias, dtype=np.float64)
    mem = np.zeros((T, B, C))
    h = np.zeros((B, C))
    for t in range(T):
        h = (1.0 - 1.0 / tau) * h + current[t] / tau
        mem[t] = h
    t_first = np.full(B, T - 1, dtype=np.int64)
    for b in range(B):
        for t in range(T):
            if np.any(mem[t, b] >= threshold):
                t_first[b] = t
                break
    logits = np.zeros((B, C))
    for b in range(B):
        logits[b] = mem[t_first[b], b]
    return {"logits": logits, "t_first": t_first, "mem": mem, "current": current}


def selector_backward(x, weight, bias, tau, g_logits, threshold=1.0):
    """Gradients of L = sum(g_logits * logits) (t_1st is piecewise constant: no gradient).

    Returns dict(x, weight, bias, tau).
    """
    fw = selector_forward(x, weight, bias, tau, threshold)
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    T, B, _ = x.shape
    mem, current = fw["mem"], fw["current"]
    g_current = np.zeros_like(current)
    g_tau = np.zeros_like(tau)
    g_h_next = np.zeros(mem.shape[1:])
    for t in range(T - 1, -1, -1):
        g_h = (1.0 - 1.0 / tau) * g_h_next
        for b in range(B):
            if t == fw["t_first"][b]:
                g_h[b] = g_h[b] + g_logits[b]
        # h_t = (1 - 1/tau) h_{t-1} + I_t / tau: d/dtau = (h_{t-1} - I_t) / tau^2
        h_prev = mem[t - 1] if t > 0 else np.zeros(mem.shape[1:])
        g_tau = g_tau + np.sum(g_h * (h_prev - current[t]), axis=0) / tau**2
        g_current[t] = g_h / tau
        g_h_next = g_h
    g_x = np.zeros_like(x)
    g_w = np.zeros_like(weight)
    for t in range(T):
        g_x[t] = g_current[t] @ weight
        g_w = g_w + g_current[t].T @ x[t]
    g_b = g_current.sum(axis=(0, 1)) if bias is not None else None
    return {"x": g_x, "weight": g_w, "bias": g_b, "tau": g_tau}


def ttfs_encode(images, num_steps, tau=2.0, threshold=0.5, force_last=True):
    """Constant-current AMOS coding: h_t = alpha h_{t-1} + x / tau, one spike at t_f."""
    images = np.asarray(images, dtype=np.float64)
    alpha = 1.0 - 1.0 / tau
    spikes = np.zeros((num_steps, *images.shape))
    h = np.zeros(images.shape)
    fired = np.zeros(images.shape, dtype=bool)
    for t in range(num_steps):
        h = alpha * h + images / tau
        fire = (h >= threshold) & ~fired
        if t == num_steps - 1 and force_last:
            fire = ~fired
        spikes[t] = fire
        fired = fired | fire
    return spikes
