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

``method="parallel"`` computes :math:`h` with a stable blocked scan
(:func:`mlx_snn.functional.scan.decay_scan`; no
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

from .. import backends, kernels
from .. import surrogate as _surrogate
from .._checks import check_choice, check_sequence
from .._params import check_tau, check_threshold
from .._precision import carry_dtype, to_carry, to_dtype
from ..kernels import registry as _kernel_registry
from .scan import decay_scan

METHODS = ("auto", "parallel", "sequential")

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


def first_spike(
    h: mx.array, threshold: float | mx.array = 1.0, backend: str = "auto"
) -> FirstSpike:
    r"""First threshold crossing of each neuron, with a forced spike at the last step.

    :math:`t_f = \min\{t : h_t \ge \theta \text{ or } t = T-1\}`, computed in parallel
    from the fake spikes ``h >= threshold`` with step ``T - 1`` set to True. The paper
    takes their ``argmax`` over time; here a running count ``c_t`` of fake spikes
    gives :math:`t_f = \#\{t : c_t = 0\}` and :math:`t_{sf} = \#\{t : c_t \le 1\}`
    (same result, faster on CPU).

    Args:
        h: membrane ``[T, B, ...]`` (floating point, ``T >= 1``; ``B`` may be 0;
            compared with the threshold in float32 when it is a half type).
        threshold: ``> 0``; a float or an array broadcastable to ``h.shape[2:]``.
            An array's values are checked with one host read per call (skipped
            inside ``mx.compile``, where they are used as given).
        backend: ``"auto"`` | ``"mlx"`` | ``"metal"`` | ``"cuda"``. ``"metal"`` and
            ``"cuda"`` run the ``first_spike`` kernel (``mlx_snn.kernels.first_spike``,
            one thread per neuron, stopping at its second fake spike) and are available only
            where that device and the kernel sources are present (``mlx-snn info`` and
            :func:`mlx_snn.backends.available` list them). ``"auto"`` (default) picks
            ``"metal"`` > ``"cuda"`` > ``"mlx"``.

    Returns:
        :class:`FirstSpike` ``(t_first, forced, t_second)``, each ``[B, ...]``
        (integer and bool results: no gradient flows through them).

    Raises:
        ValueError: fewer than 2 dimensions, no time steps, threshold ``<= 0``,
            or NaN, threshold shape that does not broadcast, an unavailable
            ``backend``.
        TypeError: non-floating ``h`` or threshold.
    """
    check_sequence("h", h)
    threshold = check_threshold(threshold, tuple(h.shape[2:]), carry_dtype(h.dtype))
    # Backend dispatch (the kernel has no vjp: its results are integers, so its input
    # is cut from the graph)
    backend = backends.resolve(backend)
    if backend != "mlx" and h.size:
        return FirstSpike(*kernels.first_spike(mx.stop_gradient(h), threshold, backend=backend))
    return _first_spike(to_carry(h), threshold)


def temporal_selector(
    h: mx.array, threshold: float | mx.array = 1.0, backend: str = "auto"
) -> Selection:
    r"""PTTFS temporal selector: read every output neuron's membrane at the first spike.

    For each sample ``b``, :math:`t_{1st} = \min_c t_f[b, c]` over its output
    neurons (:func:`first_spike`, so :math:`T-1` when none crosses), and
    ``logits[b] = h[t_1st, b]``. The selection is piecewise constant: the gradient
    flows into ``h`` at :math:`t_{1st}` only. At ``T = 1`` the logits are ``h[0]``
    (a membrane decoder).

    Args:
        h: output-layer membrane ``[T, B, ...]`` (usually ``[T, B, classes]``; the
            threshold test runs in float32 for a half type, the logits keep its dtype).
        threshold: confidence threshold ``> 0``; float or array broadcastable to
            ``h.shape[2:]`` (checked as in :func:`first_spike`).
        backend: as in :func:`first_spike` (the first-spike search; the selection
            is one MLX gather).

    Returns:
        :class:`Selection` ``(logits [B, ...], t_first [B])``; with no output neurons
        (``h.shape[2:]`` holding a 0) ``t_first`` is ``T - 1``.

    Raises:
        ValueError: as :func:`first_spike`.
        TypeError: as :func:`first_spike`.
    """
    t_f = first_spike(mx.stop_gradient(h), threshold, backend).t_first
    T, B = h.shape[:2]
    per_sample = t_f.reshape(B, math.prod(h.shape[2:]))
    if per_sample.shape[1] == 0:
        t_first = mx.full((B,), T - 1, dtype=mx.int32)
    else:
        t_first = mx.stop_gradient(mx.min(per_sample, axis=1))
    index = mx.broadcast_to(t_first.reshape(1, B, *([1] * (h.ndim - 2))), (1, *h.shape[1:]))
    return Selection(mx.take_along_axis(h, index, axis=0)[0], t_first)


def _lanes(a):
    """``[T, B, ...]`` -> ``[T, M]`` in the carry dtype (explicit width: ``-1`` fails on
    empty arrays)."""
    return to_carry(a).reshape(a.shape[0], math.prod(a.shape[1:]))


def _forward_parallel(x, threshold, alpha, inv_tau):
    # h and the first-spike search in float32; spikes and mem come back in x's dtype
    h = decay_scan(_lanes(x), alpha, scale=inv_tau).reshape(x.shape)
    fake, count = _fake_count(h, threshold)
    spikes = (count == 1) * fake  # the first fake spike
    return to_dtype(spikes, x.dtype), to_dtype(h, x.dtype), *_indices(count)


def _backward_parallel(
    g_s, g_h, spikes, h, t_first, t_second, threshold, alpha, inv_tau, derivative
):
    T, dtype = h.shape[0], h.dtype
    # float32 arithmetic: g_s explicitly (its gathers and differences), the rest by
    # promotion against it and the float32 threshold (no float32 copies to keep)
    g_s = to_carry(g_s)
    g_first = mx.take_along_axis(g_s, t_first[None], axis=0)
    # t_second = T means "no second fake spike" (t_first = T - 1): its term is 0
    g_second = mx.take_along_axis(g_s, mx.minimum(t_second, T - 1)[None], axis=0)
    g_second = mx.where(t_second < T, g_second, 0.0)
    # eq 15 as g_t - g_{t_f} for t <= t_f plus g_{t_f} - g_{t_sf} at t_f (at t_f the
    # first term is 0); upto = [t <= t_f] is the reverse cumsum of the one-hot spikes
    upto = mx.cumsum(spikes, axis=0, reverse=True)
    g_spike = upto * (g_s - g_first) + spikes * (g_first - g_second)
    grad = g_spike * derivative(h - threshold) + g_h
    g_x = decay_scan(_lanes(grad), alpha, True, scale=inv_tau)
    return to_dtype(g_x.reshape(h.shape), dtype)


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
    T, dtype = x.shape[0], x.dtype
    x = to_carry(x)  # h and the firing mask in float32 for half-precision inputs
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
    # steps before the (one) spike; unlike argmax this also works on an empty batch
    t_first = mx.sum(mx.cumsum(spikes, axis=0) == 0, axis=0).astype(mx.int32)
    return AMOSSequence(to_dtype(spikes, dtype), to_dtype(mx.stack(mems), dtype), t_first)


def kernel_limit(method: str, surrogate: _surrogate.Surrogate) -> str | None:
    """Internal: why an AMOS call cannot run on the kernels (``None``: it can), for
    :func:`mlx_snn.backends.resolve`. Shared with the constructor of :class:`mlx_snn.AMOS`."""
    option = ("method", method) if method != "auto" else None
    return _kernel_registry.kernel_limit(surrogate, option)


def amos(
    x: mx.array,
    tau: float = 2.0,
    threshold: float | mx.array = 1.0,
    surrogate: str | _surrogate.Surrogate = _surrogate.AMOS_DEFAULT,
    method: str = "auto",
    backend: str = "auto",
) -> AMOSSequence:
    r"""Run an AMOS LIF neuron over a time-major sequence (equations in the module docstring).

    Args:
        x: input current ``[T, B, ...]`` (floating point, ``T >= 1``; ``B`` may be 0).
        tau: membrane time constant, a float ``> 1`` (decay ``alpha = 1 - 1/tau``).
        threshold: ``> 0``; a float or an array broadcastable to ``x.shape[2:]``
            (not differentiated). An array's values (finite, ``> 0``) are checked
            with one host read per call, skipped inside ``mx.compile`` (where they
            are used as given).
        surrogate: name or :class:`mlx_snn.surrogate.Surrogate` for the backward.
            Default :data:`mlx_snn.surrogate.AMOS_DEFAULT` (``"atan"``, the PTTFS
            setup), not the library-wide :data:`~mlx_snn.surrogate.DEFAULT`.
        method: ``"auto"`` (default: the kernel on a kernel backend, else
            ``"parallel"``), ``"parallel"`` (MLX: blocked scan, parallel first-spike
            search, second-fake-spike backward) or ``"sequential"`` (MLX: step loop
            differentiated by autograd). All give the same spikes and, up to
            rounding, the same gradients. Half-precision inputs: the membrane, the
            first-spike search and the backward run in float32
            (:mod:`mlx_snn._precision`), on the kernels too; spikes and ``mem`` come
            back in the input dtype.
        backend: ``"auto"`` | ``"mlx"`` | ``"metal"`` | ``"cuda"``. ``"metal"`` and
            ``"cuda"`` run the fused AMOS kernels (``mlx_snn.kernels.amos``: the charge
            scan, first and second fake spike in one pass per neuron, and the
            second-fake-spike backward) and are available only where that device and the
            kernel sources are present (``mlx-snn info`` and
            :func:`mlx_snn.backends.available` list them). ``"auto"`` (default) picks
            ``"metal"`` > ``"cuda"`` > ``"mlx"``, and stays on MLX for a call the kernels do
            not run: an MLX ``method`` named explicitly, a surrogate without a kernel-side
            derivative. Naming a kernel backend for such a call raises ``ValueError``.

    Returns:
        :class:`AMOSSequence` ``(spikes [T, B, ...], mem [T, B, ...], t_first [B, ...])``.

    Raises:
        ValueError: ``tau <= 1``, ``threshold <= 0``, unknown ``method`` or surrogate
            name, ``x`` with fewer than 2 dimensions or no time steps, an unavailable
            ``backend`` or one the call cannot run on (see ``backend``).
        TypeError: non-floating ``x`` or threshold, non-numeric ``tau``.
    """
    check_choice("method", method, METHODS)
    surrogate = _surrogate.get(surrogate)
    tau = check_tau(tau)
    check_sequence("x", x)
    threshold = check_threshold(threshold, tuple(x.shape[2:]), carry_dtype(x.dtype))
    # Backend dispatch: every argument is checked above.
    backend = backends.resolve(backend, kernel_limit(method, surrogate))
    if backend != "mlx" and x.size:
        spikes, mem, t_first, _ = kernels.amos(x, tau, threshold, surrogate, backend=backend)
        return AMOSSequence(spikes, mem, t_first)
    if method == "sequential":
        return _amos_sequential(x, threshold, tau, surrogate)
    if not isinstance(threshold, mx.array):
        threshold = mx.array(threshold, dtype=carry_dtype(x.dtype))
    return AMOSSequence(*_parallel_fn(tau, surrogate)(x, threshold)[:3])
