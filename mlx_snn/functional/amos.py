r"""At-most-one-spike (AMOS) LIF neuron and first-spike extraction (PTTFS, Che et al.).

With input current :math:`x_t`, membrane time constant :math:`\tau > 1`,
:math:`\alpha = 1 - 1/\tau`, threshold :math:`\theta` and :math:`h_{-1} = 0`:

.. math::

    h_t &= \alpha h_{t-1} + x_t / \tau              \\
    t_f &= \min\{t : h_t \ge \theta \ \text{or}\ t = T-1\}  \\
    s_t &= [t = t_f]

There is no reset: each neuron fires exactly once, at its first threshold
crossing, or is forced to fire at the last step :math:`T-1` if it never crosses.
This equals the sequential recurrence with firing mask :math:`F`,
:math:`s_t = \tilde s_t (1 - F_{t-1})`, :math:`F_t = F_{t-1} + s_t`, where the
"fake spike" :math:`\tilde s_t = \Theta(h_t - \theta)` for :math:`t < T-1` and
:math:`\tilde s_{T-1} = 1` (the forced spike).

**Backward.** The surrogate replaces :math:`\Theta'` by :math:`\sigma'(h_t - \theta)`.
The forced last-step fake spike has forward value 1 and derivative
:math:`\sigma'(h_{T-1} - \theta)` (whether or not the neuron crossed at
:math:`T-1`). With that choice the paper's "second fake spike" rule (eqs 15-19)
is exactly the autodiff gradient of the sequential recurrence, forced neurons
included. With :math:`g_t = \partial L / \partial s_t` and :math:`t_{sf}` the first
fake spike after :math:`t_f` (step :math:`T-1` counts as one, so :math:`t_{sf}`
exists unless :math:`t_f = T-1`; then its term is 0):

.. math::

    \frac{dL}{ds_t} &= \begin{cases}
        g_t - g_{t_f} & t < t_f \\ g_{t_f} - g_{t_{sf}} & t = t_f \\ 0 & t > t_f
    \end{cases} \\
    G_t &= \frac{dL}{ds_t}\,\sigma'(h_t - \theta) + \frac{\partial L}{\partial h_t}, \qquad
    \bar g_t = G_t + \alpha \bar g_{t+1}, \qquad
    \frac{\partial L}{\partial x_t} = \bar g_t / \tau

``method="parallel"`` computes :math:`h` with a stable blocked scan (no
:math:`\alpha^{-t}` factors: the closed form :math:`A\,\mathrm{cumsum}(A^{-1}X)` of
the paper overflows in fp32 beyond :math:`t \approx 128` for :math:`\tau = 2`),
finds :math:`t_f` from the fake spikes (see :func:`first_spike`), and differentiates
with the rule above inside an ``mx.custom_function``. ``method="sequential"`` runs
the step loop with the firing mask and lets autograd differentiate it; it exists
as a baseline and a cross-check.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import mlx.core as mx
import numpy as np

from .. import surrogate as _surrogate
from .._checks import check_broadcastable_to_features, check_choice, check_float_array

METHODS = ("parallel", "sequential")

__all__ = [
    "METHODS",
    "AMOSSequence",
    "FirstSpike",
    "Selection",
    "amos",
    "first_spike",
    "temporal_selector",
]


class FirstSpike(NamedTuple):
    """Result of :func:`first_spike`; every field is ``[B, ...]`` (``h.shape[1:]``).

    Attributes:
        t_first: ``int32`` first step with ``h_t >= threshold``, else ``T - 1``.
        forced: ``bool``, ``True`` where no step crossed the threshold (the spike
            at ``T - 1`` is forced).
        t_second: ``int32`` first fake spike after ``t_first`` (step ``T - 1``
            counts as a fake spike), or ``T`` (the sentinel for "none", which
            happens exactly when ``t_first == T - 1``).
    """

    t_first: mx.array
    forced: mx.array
    t_second: mx.array


class AMOSSequence(NamedTuple):
    """Result of :func:`amos`.

    Attributes:
        spikes: ``[T, B, ...]``, one-hot in time (exactly one 1 per neuron), dtype of ``x``.
        mem: ``[T, B, ...]`` membrane ``h`` (no reset).
        t_first: ``[B, ...]`` ``int32`` firing step ``t_f``.
    """

    spikes: mx.array
    mem: mx.array
    t_first: mx.array


class Selection(NamedTuple):
    """Result of :func:`temporal_selector`.

    Attributes:
        logits: ``[B, ...]`` membrane of every output neuron at ``t_first``.
        t_first: ``[B]`` ``int32`` earliest firing step over the sample's neurons
            (``T - 1`` when none crosses the threshold).
    """

    logits: mx.array
    t_first: mx.array


def _fake_count(h, threshold):
    """Fake spikes ``h >= threshold`` with the last step forced (float32 0/1) and their
    running count over time. ``count == 0`` before the first spike and ``count <= 1``
    up to the second fake spike; sums of such full-size masks give the indices
    without ``argmax`` or ``[T, 1] x [1, N]`` broadcasts (both slow on CPU), and
    float-only masks let ``mx.compile`` fuse the chain."""
    T = h.shape[0]
    last = (mx.arange(T) == T - 1).astype(mx.float32).reshape(T, *([1] * (h.ndim - 1)))
    fake = mx.maximum((h >= threshold).astype(mx.float32), last)
    return fake, mx.cumsum(fake, axis=0)


def _indices(count):
    t_first = mx.sum(count == 0, axis=0).astype(mx.int32)
    return t_first, mx.sum(count <= 1, axis=0).astype(mx.int32)


def _first_spike(h, threshold) -> FirstSpike:
    t_first, t_second = _indices(_fake_count(h, threshold)[1])
    return FirstSpike(t_first, ~mx.any(h >= threshold, axis=0), t_second)


def _check_threshold(threshold, feature_shape, dtype, check_values=True):
    """Float > 0, or a floating array that broadcasts to the features (values checked
    with a host sync unless ``check_values=False``, for arrays validated before)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, mx.array)):
        raise TypeError(f"threshold must be a float or an mx.array; got {type(threshold).__name__}")
    if isinstance(threshold, mx.array):
        check_float_array("threshold", threshold)
        check_broadcastable_to_features("threshold", tuple(threshold.shape), feature_shape)
        if check_values and not mx.all(threshold > 0).item():
            raise ValueError("threshold must be > 0 everywhere; got an array with values <= 0")
        return mx.stop_gradient(threshold.astype(dtype))
    if not 0 < threshold < float("inf"):
        raise ValueError(f"threshold must be a finite number > 0; got {threshold!r}")
    return float(threshold)


def _check_sequence(name, x):
    check_float_array(name, x, min_ndim=2)
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one time step; got shape {tuple(x.shape)}")
    return x


def first_spike(h: mx.array, threshold: float | mx.array = 1.0) -> FirstSpike:
    r"""First threshold crossing of each neuron, with a forced spike at the last step.

    :math:`t_f = \min\{t : h_t \ge \theta \text{ or } t = T-1\}`, computed in parallel
    from the fake spikes ``h >= threshold`` with step ``T - 1`` set to True. The paper
    takes their ``argmax`` over time; here a running count ``c_t`` of fake spikes
    gives :math:`t_f = \#\{t : c_t = 0\}` and :math:`t_{sf} = \#\{t : c_t \le 1\}`
    (same result, faster on CPU).

    Args:
        h: membrane ``[T, B, ...]`` (floating point, ``T >= 1``).
        threshold: ``> 0``; a float or an array broadcastable to ``h.shape[2:]``.

    Returns:
        :class:`FirstSpike` ``(t_first, forced, t_second)``, each ``[B, ...]``.

    Raises:
        ValueError: fewer than 2 dimensions, no time steps, threshold ``<= 0``,
            threshold shape that does not broadcast.
        TypeError: non-floating ``h`` or threshold.
    """
    _check_sequence("h", h)
    threshold = _check_threshold(threshold, tuple(h.shape[2:]), h.dtype)
    return _first_spike(h, threshold)


def _temporal_selector(h, threshold) -> Selection:
    t_f = _first_spike(mx.stop_gradient(h), threshold).t_first
    t_first = mx.stop_gradient(mx.min(t_f.reshape(t_f.shape[0], -1), axis=1))
    index = mx.broadcast_to(t_first.reshape(1, -1, *([1] * (h.ndim - 2))), (1, *h.shape[1:]))
    return Selection(mx.take_along_axis(h, index, axis=0)[0], t_first)


def temporal_selector(h: mx.array, threshold: float | mx.array = 1.0) -> Selection:
    r"""PTTFS temporal selector: read every output neuron's membrane at the first spike.

    For each sample ``b``, :math:`t_{1st} = \min_c t_f[b, c]` over its output
    neurons (:func:`first_spike`, so :math:`T-1` when none crosses), and
    ``logits[b] = h[t_1st, b]``. The selection is piecewise constant: the gradient
    flows into ``h`` at :math:`t_{1st}` only. At ``T = 1`` the logits are ``h[0]``
    (a membrane decoder).

    Args:
        h: output-layer membrane ``[T, B, ...]`` (usually ``[T, B, classes]``).
        threshold: confidence threshold ``> 0``; float or array broadcastable to ``h.shape[2:]``.

    Returns:
        :class:`Selection` ``(logits [B, ...], t_first [B])``.

    Raises:
        ValueError: as :func:`first_spike`.
        TypeError: as :func:`first_spike`.
    """
    _check_sequence("h", h)
    threshold = _check_threshold(threshold, tuple(h.shape[2:]), h.dtype)
    return _temporal_selector(h, threshold)


# ----------------------------------------------------------------------------
# Stable scan h_t = alpha * h_{t-1} + b_t for a constant decay (blocked)
# ----------------------------------------------------------------------------


# exponents inside a block stay within e^(+-_LOG_RANGE): alpha^-j <= 2.6e10 in fp32
_LOG_RANGE = 24.0


@functools.cache
def _scan_plan(alpha: float, T: int, scale: float):
    """Block length and count, in-block powers, and the carry-doubling factors."""
    L = max(1, min(T, int(_LOG_RANGE / -math.log(alpha)))) if alpha > 0 else 1
    G = -(-T // L)
    L = -(-T // G)
    j = np.arange(L, dtype=np.float64)
    # carries obey c_k = e_k + alpha^L c_{k-1}: solve by doubling until the factor
    # underflows in fp32 (where the sequential fp32 loop adds zeros as well)
    doubling, d, factor = [], 1, alpha**L
    while d < G and factor > 1e-38:
        doubling.append((d, float(factor)))
        d, factor = 2 * d, factor * factor
    powers = [alpha**-j, alpha**j, scale * alpha**-j, scale * alpha**j]
    return L, G, *(mx.array(p.astype(np.float32))[:, None] for p in powers), tuple(doubling)


def _shift(c, d, reverse):
    """``c`` moved ``d`` blocks later (earlier when ``reverse``), zeros shifted in."""
    pad = mx.zeros((d, *c.shape[1:]), c.dtype)
    return mx.concatenate([c[d:], pad] if reverse else [pad, c[:-d]])


def _decay_scan(b: mx.array, alpha: float, reverse: bool = False, scale: float = 1.0) -> mx.array:
    """Solve ``h_t = alpha h_{t-1} + scale b_t`` (or backwards) over axis 0 of ``b [T, M]``.

    Stable blocked scan. Inside a block of length L the closed form
    ``h_j = alpha^j cumsum_j(alpha^-j b_j)`` uses exponents relative to the block
    start, bounded by ``alpha^-L <= e^24`` (never the overflowing ``alpha^-t``
    over the whole sequence). The block carries follow the same recurrence with
    decay ``alpha^L <= e^-24``, solved by a few doubling steps, and enter each
    block as a constant added to the cumulative sum. Every operand is either
    full-size or broadcast along one side only (outer broadcasts are slow in
    MLX's fused CPU kernels).
    """
    T, M = b.shape
    L, G, inv, pw, inv_in, pw_in, doubling = _scan_plan(alpha, T, scale)
    if G * L != T:
        b = mx.concatenate([b, mx.zeros((G * L - T, M), b.dtype)])
    blocks = b.reshape(G, L, M)
    if reverse:
        acc = mx.cumsum(blocks * pw_in, axis=1, reverse=True)  # alpha^j-scaled suffix sums
        if G > 1:
            c = acc[:, 0]  # each block's own value at its start
            for d, factor in doubling:
                c = c + factor * _shift(c, d, reverse=True)
            acc = acc + (alpha**L) * _shift(c, 1, reverse=True)[:, None]
        out = acc * inv
    else:
        acc = mx.cumsum(blocks * inv_in, axis=1)  # alpha^-j-scaled prefix sums
        if G > 1:
            c = acc[:, -1] * alpha ** (L - 1)  # each block's own value at its end
            for d, factor in doubling:
                c = c + factor * _shift(c, d, reverse=False)
            acc = acc + alpha * _shift(c, 1, reverse=False)[:, None]
        out = acc * pw
    return out.reshape(G * L, M)[:T]


def _cast(a, dtype):
    """The scans run in float32 (half-precision inputs are upcast)."""
    return a if a.dtype == dtype else a.astype(dtype)


def _charge(x, alpha, inv_tau):
    T = x.shape[0]
    h = _decay_scan(_cast(x, mx.float32).reshape(T, -1), alpha, scale=inv_tau)
    return _cast(h.reshape(x.shape), x.dtype)


def _forward_parallel(x, threshold, alpha, inv_tau):
    h = _charge(x, alpha, inv_tau)
    fake, count = _fake_count(h, threshold)
    spikes = _cast((count == 1) * fake, x.dtype)  # the first fake spike
    return spikes, h, *_indices(count)


def _backward_parallel(
    g_s, g_h, spikes, h, t_first, t_second, threshold, alpha, inv_tau, derivative
):
    T = h.shape[0]
    g_first = mx.take_along_axis(g_s, t_first[None], axis=0)
    # t_second = T means "no second fake spike" (t_first = T - 1): its term is 0
    g_second = mx.take_along_axis(g_s, mx.minimum(t_second, T - 1)[None], axis=0)
    g_second = mx.where(t_second < T, g_second, 0.0)
    # eq 15 as g_t - g_{t_f} for t <= t_f plus g_{t_f} - g_{t_sf} at t_f (at t_f the
    # first term is 0); upto = [t <= t_f] is the reverse cumsum of the one-hot spikes
    upto = mx.cumsum(spikes, axis=0, reverse=True)
    g_spike = upto * (g_s - g_first) + spikes * (g_first - g_second)
    grad = g_spike * derivative(h - threshold) + g_h
    g_x = _decay_scan(_cast(grad, mx.float32).reshape(T, -1), alpha, True, scale=inv_tau)
    return _cast(g_x.reshape(h.shape), h.dtype)


@functools.lru_cache(maxsize=64)
def _parallel_fn(tau: float, surrogate: _surrogate.Surrogate):
    alpha, inv_tau = 1.0 - 1.0 / tau, 1.0 / tau
    forward = mx.compile(functools.partial(_forward_parallel, alpha=alpha, inv_tau=inv_tau))
    backward = mx.compile(
        functools.partial(
            _backward_parallel, alpha=alpha, inv_tau=inv_tau, derivative=surrogate.derivative
        )
    )

    @mx.custom_function
    def amos_parallel(x, threshold):
        return forward(x, threshold)

    @amos_parallel.vjp
    def amos_parallel_vjp(primals, cotangents, outputs):
        _, threshold = primals
        g_s, g_h = cotangents[:2]
        g_x = backward(g_s, g_h, *outputs, threshold)
        return g_x, mx.zeros_like(threshold)

    return amos_parallel


def _amos_sequential(x, threshold, tau, surrogate):
    alpha, inv_tau = 1.0 - 1.0 / tau, 1.0 / tau
    T = x.shape[0]
    h = mx.zeros(x.shape[1:], x.dtype)
    fired = mx.zeros(x.shape[1:], x.dtype)
    spikes, mems = [], []
    for t in range(T):
        h = alpha * h + inv_tau * x[t]
        fake = surrogate(h - threshold)
        if t == T - 1:
            # forced spike: value 1, derivative sigma'(h - threshold)
            fake = fake + mx.stop_gradient(1.0 - fake)
        s = fake * (1.0 - fired)
        fired = fired + s
        spikes.append(s)
        mems.append(h)
    spikes = mx.stack(spikes)
    return AMOSSequence(spikes, mx.stack(mems), mx.argmax(spikes, axis=0).astype(mx.int32))


def _check_tau(tau):
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise TypeError(f"tau must be a number; got {type(tau).__name__}")
    if not 1 < tau < float("inf"):
        raise ValueError(f"tau must be a finite number > 1 (the decay is 1 - 1/tau); got {tau!r}")
    return float(tau)


def amos(
    x: mx.array,
    tau: float = 2.0,
    threshold: float | mx.array = 1.0,
    surrogate: str | _surrogate.Surrogate = "atan",
    method: str = "parallel",
) -> AMOSSequence:
    r"""Run an AMOS LIF neuron over a time-major sequence (equations in the module docstring).

    Args:
        x: input current ``[T, B, ...]`` (floating point, ``T >= 1``).
        tau: membrane time constant, a float ``> 1`` (decay ``alpha = 1 - 1/tau``).
        threshold: ``> 0``; a float or an array broadcastable to ``x.shape[2:]``
            (not differentiated; an array's values are checked with a host sync, so
            inside ``mx.compile`` pass a float or use :class:`mlx_snn.AMOS`).
        surrogate: name or :class:`mlx_snn.surrogate.Surrogate` for the backward.
        method: ``"parallel"`` (blocked scan, parallel first-spike search,
            second-fake-spike backward) | ``"sequential"`` (step loop differentiated by autograd).
            Both give the same spikes and, up to rounding, the same gradients.
            The parallel scans run in float32 for half-precision inputs.

    Returns:
        :class:`AMOSSequence` ``(spikes [T, B, ...], mem [T, B, ...], t_first [B, ...])``.

    Raises:
        ValueError: ``tau <= 1``, ``threshold <= 0``, unknown ``method`` or surrogate
            name, ``x`` with fewer than 2 dimensions or no time steps.
        TypeError: non-floating ``x`` or threshold, non-numeric ``tau``.
    """
    check_choice("method", method, METHODS)
    surrogate = _surrogate.get(surrogate)
    tau = _check_tau(tau)
    _check_sequence("x", x)
    threshold = _check_threshold(threshold, tuple(x.shape[2:]), x.dtype)
    return _amos(x, tau, threshold, surrogate, method)


def _amos(x, tau, threshold, surrogate, method) -> AMOSSequence:
    """:func:`amos` on validated arguments (used by the modules)."""
    if method == "sequential":
        return _amos_sequential(x, threshold, tau, surrogate)
    if not isinstance(threshold, mx.array):
        threshold = mx.array(threshold, dtype=x.dtype)
    return AMOSSequence(*_parallel_fn(tau, surrogate)(x, threshold)[:3])
