r"""First-order linear recurrences (linear scans) over the time axis.

.. math::

    h_t = a_t \, h_{t-1} + b_t, \qquad t = 0, \dots, T-1, \qquad h_{-1} = h_0

With ``reverse=True`` the recurrence runs backwards,
:math:`h_t = a_t h_{t+1} + b_t` from :math:`t = T-1` down to 0 with
:math:`h_T = h_0`.

The gradient is itself a reverse scan: with :math:`g` the cotangent of
:math:`h`, :math:`\bar g_t = g_t + a_{t+1} \bar g_{t+1}`, then
:math:`\partial L/\partial b_t = \bar g_t`,
:math:`\partial L/\partial a_t = \bar g_t h_{t-1}` and
:math:`\partial L/\partial h_0 = a_0 \bar g_0`.
"""

from __future__ import annotations

import functools

import mlx.core as mx

from .. import backends
from .._checks import check_float_array

__all__ = ["linear_scan"]


@functools.cache
def _step():
    return mx.compile(lambda a_t, h, b_t: a_t * h + b_t)


def _scan_forward(a, b, h0):
    """Sequential scan; ``a`` is ``[T, ...]`` when ``a.ndim == b.ndim``, else constant."""
    step = _step()
    per_step = a.ndim == b.ndim
    h = h0
    out = []
    for t in range(b.shape[0]):
        h = step(a[t] if per_step else a, h, b[t])
        out.append(h)
    return mx.stack(out)


def _sum_to_shape(g, shape):
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


@mx.custom_function
def _scan(a, b, h0):
    return _scan_forward(a, b, h0)


@_scan.vjp
def _scan_vjp(primals, cotangent, output):
    a, b, h0 = primals
    h = output
    per_step = a.ndim == b.ndim
    # reverse scan of the cotangent with the next step's decay
    if per_step:
        a_next = mx.concatenate([a[1:], mx.zeros_like(a[:1])])
    else:
        a_next = a
    g_rev = _scan_forward(
        a_next[::-1] if per_step else a_next,
        cotangent[::-1],
        mx.zeros(b.shape[1:], b.dtype),
    )
    g_b = g_rev[::-1]
    h_prev = mx.concatenate([mx.broadcast_to(h0, b.shape[1:])[None], h[:-1]])
    g_a = _sum_to_shape(g_b * h_prev, a.shape)
    g_h0 = _sum_to_shape((a[0] if per_step else a) * g_b[0], h0.shape)
    return g_a, g_b, g_h0


def _as_param(name, value, dtype):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return mx.array(value, dtype=dtype)
    check_float_array(name, value)
    return value.astype(dtype)


def linear_scan(
    a: float | mx.array,
    b: mx.array,
    h0: float | mx.array | None = None,
    reverse: bool = False,
    backend: str = "auto",
) -> mx.array:
    r"""Solve :math:`h_t = a_t h_{t-1} + b_t` over axis 0 (see the module docstring).

    Args:
        a: decays. A float, an array broadcastable to ``b.shape[1:]`` (constant over
            time), or an array of ``b.ndim`` dimensions whose first axis is time
            (length ``T`` or 1), broadcastable to ``b``.
        b: inputs ``[T, ...]`` (floating point, ``T >= 1``).
        h0: initial value, broadcastable to ``b.shape[1:]`` (default 0).
        reverse: run from ``t = T-1`` down to 0.
        backend: ``"auto"`` | ``"mlx"`` | ``"metal"`` | ``"cuda"``.

    Returns:
        ``h`` with the shape and dtype of ``b``.

    Raises:
        ValueError: ``b`` without a time axis, shapes that do not broadcast.
        TypeError: non-floating arrays.
    """
    backends.resolve(backend)
    check_float_array("b", b, min_ndim=1)
    if b.shape[0] < 1:
        raise ValueError(f"b must have at least one time step; got shape {b.shape}")
    a = _as_param("a", a, b.dtype)
    h0 = mx.zeros((), b.dtype) if h0 is None else _as_param("h0", h0, b.dtype)
    feature_shape = tuple(b.shape[1:])
    if a.ndim == b.ndim:
        if a.shape[0] not in (1, b.shape[0]):
            raise ValueError(
                f"a has shape {tuple(a.shape)}: its time axis must have length 1 or "
                f"{b.shape[0]} to match b of shape {tuple(b.shape)}"
            )
        if a.shape[0] == 1:
            a = a[0]
    try:
        shape = mx.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError as err:
        raise ValueError(
            f"a of shape {tuple(a.shape)} does not broadcast to b of shape {tuple(b.shape)}"
        ) from err
    if tuple(shape) != tuple(b.shape):
        raise ValueError(
            f"a of shape {tuple(a.shape)} does not broadcast to b of shape {tuple(b.shape)}"
        )
    try:
        h0_shape = mx.broadcast_shapes(tuple(h0.shape), feature_shape)
    except ValueError as err:
        raise ValueError(
            f"h0 of shape {tuple(h0.shape)} does not broadcast to {feature_shape}"
        ) from err
    if tuple(h0_shape) != feature_shape:
        raise ValueError(f"h0 of shape {tuple(h0.shape)} does not broadcast to {feature_shape}")
    if reverse:
        a_rev = a[::-1] if a.ndim == b.ndim else a
        return _scan(a_rev, b[::-1], h0)[::-1]
    return _scan(a, b, h0)
