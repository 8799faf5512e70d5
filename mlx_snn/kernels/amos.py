"""AMOS neuron and first-spike extraction with the ``amos_*`` / ``first_spike`` kernels."""

from __future__ import annotations

import functools

import mlx.core as mx

from .. import surrogate as _surrogate
from . import registry
from . import surrogates as _kernel_surrogates
from ._arrays import check_sequence, lanes, per_feature
from ._arrays import spike_dtype as _spike_dtype


def _forward(backend, write_h, s_dtype, x, threshold, params):
    T, N = x.shape[0], lanes(x.shape)
    spikes, h, t_first, t_second = registry.launch(
        "amos_forward",
        backend,
        [x.reshape(T, N), threshold, params],
        [(T, N), (T, N) if write_h else (1,), (N,), (N,)],
        {"InT": x.dtype, "SpikeT": s_dtype, "WRITE_H": write_h},
        n=N,
        steps=T,
    )
    shape = tuple(x.shape[1:])
    return (
        spikes.reshape(x.shape),
        h.reshape(x.shape) if write_h else None,
        t_first.reshape(shape),
        t_second.reshape(shape),
    )


@functools.cache
def _amos_fn(backend, tau, surrogate, mem, s_dtype):
    alpha, inv_tau = 1.0 - 1.0 / tau, 1.0 / tau
    fwd_params = mx.array([alpha, inv_tau], dtype=mx.float32)
    bwd_params = mx.array([alpha, inv_tau, *_kernel_surrogates.params(surrogate)], mx.float32)

    @mx.custom_function
    def amos_fn(x, threshold):
        th = per_feature("threshold", threshold, tuple(x.shape[2:]))
        spikes, h, t_first, t_second = _forward(backend, mem, s_dtype, x, th, fwd_params)
        return (spikes, h, t_first, t_second) if mem else (spikes, t_first, t_second)

    @amos_fn.vjp
    def amos_vjp(primals, cotangents, outputs):
        x, threshold = primals
        T, N = x.shape[0], lanes(x.shape)
        th = per_feature("threshold", threshold, tuple(x.shape[2:]))
        g_s = cotangents[0]
        if mem:
            g_h, h, t_first, t_second = cotangents[1], *outputs[1:]
        else:
            g_h = None
            _, h, t_first, t_second = _forward(backend, True, s_dtype, x, th, fwd_params)
        (g_x,) = registry.launch(
            "amos_backward",
            backend,
            [
                g_s.astype(x.dtype).reshape(T, N),
                g_h.astype(x.dtype).reshape(T, N) if mem else mx.zeros((1,), x.dtype),
                h.reshape(T, N),
                t_first.reshape(N),
                t_second.reshape(N),
                th,
                bwd_params,
            ],
            [(T, N)],
            {"InT": x.dtype, "HAS_GH": mem},
            n=N,
            steps=T,
            surrogate_cls=type(surrogate),
        )
        return g_x.reshape(x.shape), mx.zeros_like(threshold)

    return amos_fn


def amos(
    x: mx.array,
    tau: float,
    threshold: float | mx.array,
    surrogate: _surrogate.Surrogate,
    *,
    mem: bool = True,
    spike_dtype: mx.Dtype | None = None,
    backend: str,
) -> tuple[mx.array, mx.array | None, mx.array, mx.array]:
    r"""AMOS neuron on a kernel backend (equations in :mod:`mlx_snn.functional.amos`).

    Args:
        x: input current ``[T, B, ...]`` (float32, float16 or bfloat16; float32 carry).
        tau: time constant ``> 1`` (decay ``alpha = 1 - 1/tau``).
        threshold: ``> 0``, a float or an array broadcastable to ``x.shape[2:]``
            (not differentiated; values not checked here).
        surrogate: a :class:`~mlx_snn.surrogate.Surrogate` with a kernel-side derivative.
        mem: write the membrane ``h`` and return it; ``False`` returns ``None`` in its
            place (the forward then never writes ``h``; the backward recomputes it).
        spike_dtype: ``None`` (dtype of ``x``) or ``mx.uint8`` (not differentiable).
        backend: ``"metal"`` | ``"cuda"``.

    Returns:
        ``(spikes [T, B, ...], mem [T, B, ...] or None, t_first [B, ...] int32,
        t_second [B, ...] int32)``: one-hot spikes at ``t_first``; ``t_second`` the next
        fake spike (``T`` when ``t_first = T-1``). Differentiable with respect to ``x``
        (second-fake-spike rule; saved: ``h``, ``t_first``, ``t_second``).

    Raises:
        ValueError: unknown backend, ``tau <= 1``, shapes that do not broadcast,
            a surrogate without a kernel-side derivative.
        TypeError: non-floating arrays.
        RuntimeError: the backend's device is absent.
    """
    registry.check_executor(backend)
    check_sequence("x", x)
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 1:
        raise ValueError(f"tau must be a number > 1; got {tau!r}")
    _kernel_surrogates.params(surrogate)
    per_feature("threshold", threshold, tuple(x.shape[2:]))
    if not isinstance(threshold, mx.array):
        threshold = mx.array(float(threshold), dtype=mx.float32)
    s_dtype = _spike_dtype(spike_dtype, x.dtype)
    out = _amos_fn(backend, float(tau), surrogate, bool(mem), s_dtype)(x, threshold)
    return tuple(out) if mem else (out[0], None, out[1], out[2])


def first_spike(
    h: mx.array, threshold: float | mx.array = 1.0, *, backend: str
) -> tuple[mx.array, mx.array, mx.array]:
    r"""First threshold crossing per neuron, forced at ``T-1`` (as
    :func:`mlx_snn.functional.first_spike`), on a kernel backend.

    Args:
        h: membrane ``[T, B, ...]`` (float32, float16 or bfloat16).
        threshold: ``> 0``, float or array broadcastable to ``h.shape[2:]``.
        backend: ``"metal"`` | ``"cuda"``.

    Returns:
        ``(t_first int32, forced bool, t_second int32)``, each ``[B, ...]``. The kernel
        stops reading a neuron's trace at its second fake spike. Not differentiable.

    Raises:
        ValueError: bad backend or shapes.
        TypeError: bad dtypes.
        RuntimeError: no device.
    """
    registry.check_executor(backend)
    check_sequence("h", h)
    T, N = h.shape[0], lanes(h.shape)
    th = per_feature("threshold", threshold, tuple(h.shape[2:]))
    t_first, forced, t_second = registry.launch(
        "first_spike",
        backend,
        [h.reshape(T, N), th],
        [(N,), (N,), (N,)],
        {"InT": h.dtype},
        n=N,
        steps=T,
    )
    shape = tuple(h.shape[1:])
    return t_first.reshape(shape), forced.reshape(shape), t_second.reshape(shape)
