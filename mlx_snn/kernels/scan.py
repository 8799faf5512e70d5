"""Linear scan with the ``linear_scan`` / ``linear_scan_chunked`` kernels."""

from __future__ import annotations

import functools

import mlx.core as mx

from .._checks import check_choice, check_float_array
from . import registry
from ._arrays import check_sequence, lanes

METHODS = ("auto", "lanes", "chunked")

# "auto" picks the chunked kernel for at most this many lanes and at least this
# many steps (a first guess: not yet measured on a GPU)
CHUNKED_MAX_LANES = 2048
CHUNKED_MIN_STEPS = 256


def choose_method(n: int, steps: int) -> str:
    """``"chunked"`` for few lanes x long T, else ``"lanes"`` (one thread per lane)."""
    return "chunked" if n <= CHUNKED_MAX_LANES and steps >= CHUNKED_MIN_STEPS else "lanes"


def _scan(backend, method, reverse, transpose, a, b, h0):
    """Run a kernel on ``a [T, N] or [N]``, ``b [T, N]``, ``h0 [N]`` (dtype of ``b``)."""
    T, N = b.shape
    templates = {
        "InT": b.dtype,
        "A_PER_STEP": a.ndim == 2,
        "REVERSE": reverse,
        "TRANSPOSE": transpose,
    }
    name = "linear_scan"
    if method == "chunked":
        name = "linear_scan_chunked"
        templates["LW"], templates["C"] = registry.chunked_plan(N, T)
    (h,) = registry.launch(name, backend, [a, b, h0], [(T, N)], templates, n=N, steps=T)
    return h


@functools.cache
def _scan_fn(backend, method, reverse):
    @mx.custom_function
    def scan(a, b, h0):
        return _scan(backend, method, reverse, False, a, b, h0)

    @scan.vjp
    def scan_vjp(primals, cotangent, output):
        a, _, h0 = primals
        h = output
        # the gradient is the transposed scan in the opposite direction
        g_b = _scan(backend, method, not reverse, True, a, cotangent, mx.zeros_like(h0))
        if reverse:
            h_prev = mx.concatenate([h[1:], h0[None]])
            first = -1
        else:
            h_prev = mx.concatenate([h0[None], h[:-1]])
            first = 0
        g_a = g_b * h_prev if a.ndim == 2 else (g_b * h_prev).sum(axis=0)
        a_first = a[first] if a.ndim == 2 else a
        return g_a, g_b, a_first * g_b[first]

    return scan


def linear_scan(
    a: float | mx.array,
    b: mx.array,
    h0: float | mx.array | None = None,
    *,
    reverse: bool = False,
    method: str = "auto",
    backend: str,
) -> mx.array:
    r"""Solve :math:`h_t = a_t h_{t-1} + b_t` over axis 0 on a kernel backend.

    Same contract as :func:`mlx_snn.functional.linear_scan`; the carry is float32.

    Args:
        a: a float, an array broadcastable to ``b.shape[1:]`` (constant over time), or
            an array with ``b.ndim`` dimensions whose time axis has length ``T`` or 1.
        b: ``[T, ...]`` (float32, float16 or bfloat16).
        h0: initial value broadcastable to ``b.shape[1:]`` (default 0).
        reverse: run from ``t = T-1`` down to 0 (``h_t = a_t h_{t+1} + b_t``).
        method: ``"lanes"`` (one thread per lane), ``"chunked"`` (threadgroup-memory
            chunked scan for few lanes and long ``T``) or ``"auto"``
            (:func:`~mlx_snn.kernels.scan.choose_method`).
        backend: ``"metal"`` | ``"cuda"``.

    Returns:
        ``h`` with the shape and dtype of ``b``. Differentiable with respect to ``a``,
        ``b`` and ``h0`` (the backward is the transposed scan in the opposite
        direction on the same kernel; nothing but ``h`` is saved).

    Raises:
        ValueError: unknown backend or method, shapes that do not broadcast.
        TypeError: non-floating arrays.
        RuntimeError: the backend's device is absent.
    """
    registry.check_executor(backend)
    check_choice("method", method, METHODS)
    check_sequence("b", b, min_ndim=1)
    T, N = b.shape[0], lanes(b.shape)
    features = tuple(b.shape[1:])
    a_in = a if isinstance(a, mx.array) else mx.array(float(a), dtype=b.dtype)
    check_float_array("a", a_in)
    h0_in = mx.zeros((), b.dtype) if h0 is None else h0
    h0_in = h0_in if isinstance(h0_in, mx.array) else mx.array(float(h0_in), dtype=b.dtype)
    check_float_array("h0", h0_in)
    if a_in.ndim == b.ndim and a_in.shape[0] not in (1, T):
        raise ValueError(
            f"a has shape {tuple(a_in.shape)}: its time axis must have length 1 or {T} "
            f"to match b of shape {tuple(b.shape)}"
        )
    per_step = a_in.ndim == b.ndim and a_in.shape[0] == T and T > 1
    try:
        if per_step:
            a2 = mx.broadcast_to(a_in.astype(b.dtype), b.shape).reshape(T, N)
        else:
            a_feat = a_in[0] if a_in.ndim == b.ndim else a_in
            a2 = mx.broadcast_to(a_feat.astype(b.dtype), features).reshape(N)
        h02 = mx.broadcast_to(h0_in.astype(b.dtype), features).reshape(N)
    except ValueError as err:
        raise ValueError(
            f"a of shape {tuple(a_in.shape)} and h0 of shape {tuple(h0_in.shape)} must "
            f"broadcast to b of shape {tuple(b.shape)} (a per step) or {features}"
        ) from err
    if method == "auto":
        method = choose_method(N, T)
    h = _scan_fn(backend, method, bool(reverse))(a2, b.reshape(T, N), h02)
    return h.reshape(b.shape)
