"""LIF over a sequence with the fused kernels ``lif_forward`` / ``lif_backward``."""

from __future__ import annotations

import functools

import mlx.core as mx

from .. import surrogate as _surrogate
from .._checks import check_choice, check_float_array
from . import registry
from . import surrogates as _kernel_surrogates
from ._arrays import check_sequence, lanes, per_feature, sum_to_shape
from ._arrays import spike_dtype as _spike_dtype

RESET_IDS = {"subtract": 0, "zero": 1, "none": 2}
TIMINGS = ("immediate", "delayed")


def _forward(backend, reset, delayed, write_mem, s_dtype, x, v0, beta, threshold):
    T, N = x.shape[0], lanes(x.shape)
    spikes, mem, state = registry.launch(
        "lif_forward",
        backend,
        [x.reshape(T, N), v0.reshape(N), beta, threshold],
        [(T, N), (T, N) if write_mem else (1,), (N,)],
        {
            "InT": x.dtype,
            "SpikeT": s_dtype,
            "RESET": RESET_IDS[reset],
            "DELAYED": delayed,
            "WRITE_MEM": write_mem,
        },
        n=N,
        steps=T,
    )
    return spikes.reshape(x.shape), mem.reshape(x.shape) if write_mem else None, state


@functools.cache
def _sequence_fn(backend, reset, timing, surrogate, detach, beta_grad, thr_grad, mem, s_dtype):
    delayed = timing == "delayed"
    p = mx.array(_kernel_surrogates.params(surrogate), dtype=mx.float32)

    @mx.custom_function
    def lif(x, v0, beta, threshold):
        feature_shape = tuple(x.shape[2:])
        b = per_feature("beta", beta, feature_shape)
        th = per_feature("threshold", threshold, feature_shape)
        spikes, h, state = _forward(backend, reset, delayed, mem, s_dtype, x, v0, b, th)
        state = state.reshape(v0.shape)
        return (spikes, h, state) if mem else (spikes, state)

    @lif.vjp
    def lif_vjp(primals, cotangents, outputs):
        x, v0, beta, threshold = primals
        T, N = x.shape[0], lanes(x.shape)
        feature_shape = tuple(x.shape[2:])
        b = per_feature("beta", beta, feature_shape)
        th = per_feature("threshold", threshold, feature_shape)
        if mem:
            g_s, g_m, g_v = cotangents
            spikes, h = outputs[0], outputs[1]
        else:
            g_s, g_v = cotangents
            g_m = mx.zeros((T, N), x.dtype)
            spikes, h, _ = _forward(backend, reset, delayed, True, s_dtype, x, v0, b, th)
        g_x, g_v0, g_beta, g_thr = registry.launch(
            "lif_backward",
            backend,
            [
                h.reshape(T, N),
                spikes.reshape(T, N),
                v0.reshape(N),
                b,
                th,
                g_s.astype(x.dtype).reshape(T, N),
                g_m.astype(x.dtype).reshape(T, N),
                g_v.astype(x.dtype).reshape(N),
                p,
            ],
            [(T, N), (N,), (N,) if beta_grad else (1,), (N,) if thr_grad else (1,)],
            {
                "InT": x.dtype,
                "SpikeT": spikes.dtype,
                "RESET": RESET_IDS[reset],
                "DELAYED": delayed,
                "DETACH": detach,
                "BETA_GRAD": beta_grad,
                "THR_GRAD": thr_grad,
            },
            n=N,
            steps=T,
            surrogate_cls=type(surrogate),
        )

        def per_param(g, flag, param):
            if not flag:
                return mx.zeros_like(param)
            g = g.reshape(-1, max(1, b.size)).sum(axis=0).reshape(feature_shape)
            return sum_to_shape(g, tuple(param.shape)).astype(param.dtype)

        return (
            g_x.reshape(x.shape),
            g_v0.reshape(v0.shape),
            per_param(g_beta, beta_grad, beta),
            per_param(g_thr, thr_grad, threshold),
        )

    return lif


def lif_sequence(
    x: mx.array,
    v0: mx.array,
    beta: float | mx.array,
    threshold: float | mx.array,
    *,
    reset: str = "subtract",
    reset_timing: str = "immediate",
    surrogate: _surrogate.Surrogate,
    detach_reset: bool = False,
    beta_grad: bool = False,
    threshold_grad: bool = False,
    mem: bool = True,
    spike_dtype: mx.Dtype | None = None,
    backend: str,
) -> tuple[mx.array, mx.array | None, mx.array]:
    r"""LIF over a time-major sequence on a kernel backend (equations in
    :mod:`mlx_snn.functional.lif`).

    Args:
        x: input current ``[T, B, ...]`` (float32, float16 or bfloat16; the kernel
            accumulates in float32).
        v0: initial state ``[B, ...]``, dtype of ``x``.
        beta, threshold: floats or arrays broadcastable to the feature shape
            ``x.shape[2:]`` (any float dtype; used in float32). Values are not checked
            here (``mlx_snn.functional`` does that).
        reset: ``"subtract"`` | ``"zero"`` | ``"none"``.
        reset_timing: ``"immediate"`` | ``"delayed"`` (needs ``detach_reset=True``).
        surrogate: a :class:`~mlx_snn.surrogate.Surrogate` with a kernel-side
            derivative (:func:`mlx_snn.kernels.surrogates.supports`).
        detach_reset: resolved bool (no ``None`` here).
        beta_grad, threshold_grad: compute those gradients (else zeros).
        mem: write the membrane ``h`` and return it; ``False`` returns ``None`` in its
            place and the backward recomputes ``h`` with one more forward pass.
        spike_dtype: ``None`` (dtype of ``x``) or ``mx.uint8`` (not differentiable).
        backend: ``"metal"`` | ``"cuda"``.

    Returns:
        ``(spikes [T, B, ...], mem [T, B, ...] or None, state [B, ...])``; spikes in
        ``spike_dtype``, mem and state in ``x.dtype``. Differentiable (``mx.vjp``) with
        respect to ``(x, v0, beta, threshold)``; the backward kernel reads the saved
        spikes and membrane, sums the beta/threshold gradients over time in the kernel
        and over the batch with one MLX sum.

    Raises:
        ValueError: unknown option or backend, delayed timing without ``detach_reset``,
            mismatched shapes, a surrogate without a kernel-side derivative.
        TypeError: non-floating arrays.
        RuntimeError: the backend's device is absent.
    """
    registry.check_executor(backend)
    check_choice("reset", reset, tuple(RESET_IDS))
    check_choice("reset_timing", reset_timing, TIMINGS)
    if not isinstance(detach_reset, bool):
        raise TypeError(f"detach_reset must be a bool; got {type(detach_reset).__name__}")
    if reset_timing == "delayed" and not detach_reset:
        raise ValueError("reset_timing='delayed' needs detach_reset=True (the reset is detached)")
    if not _kernel_surrogates.supports(surrogate):
        _kernel_surrogates.params(surrogate)  # raises the explanatory error
    check_sequence("x", x)
    check_float_array("v0", v0)
    if tuple(v0.shape) != tuple(x.shape[1:]) or v0.dtype != x.dtype:
        raise ValueError(
            f"v0 must have shape {tuple(x.shape[1:])} and dtype {x.dtype}; "
            f"got {tuple(v0.shape)} {v0.dtype}"
        )
    beta, threshold = (
        v if isinstance(v, mx.array) else mx.array(v, dtype=mx.float32) for v in (beta, threshold)
    )
    for name, value in (("beta", beta), ("threshold", threshold)):
        per_feature(name, value, tuple(x.shape[2:]))
    s_dtype = _spike_dtype(spike_dtype, x.dtype)
    fn = _sequence_fn(
        backend,
        reset,
        reset_timing,
        surrogate,
        detach_reset,
        bool(beta_grad),
        bool(threshold_grad),
        bool(mem),
        s_dtype,
    )
    out = fn(x, v0, beta, threshold)
    return (out[0], out[1], out[2]) if mem else (out[0], None, out[1])
