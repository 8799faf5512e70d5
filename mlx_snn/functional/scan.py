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

Methods (``_method="auto"`` chooses ``"loop"``, ``"strided"`` or ``"doubling"`` by
shape; ``"toeplitz"`` and ``"matrix"`` are only run when named, by tests and
benchmarks; every one is exact up to fp rounding for any ``T``, zero and negative
decays included, and never divides by a product of decays):

- ``"loop"``: one compiled step per time step (best for wide, short problems).
- ``"toeplitz"`` (constant decay only): split time into blocks of ``L``; inside a
  block :math:`h = M b` with the Toeplitz matrix :math:`M_{ts} = a^{t-s}`
  (``t >= s``), one GEMM for all blocks; then a scan over the block ends with
  decay :math:`a^L` (recursively) and the fix-up :math:`h_t \mathrel{+}= a^{t+1} c`.
- ``"strided"``: the same three phases with the in-block scan run as ``L``
  sequential steps vectorised over all blocks (time-varying decays).
- ``"matrix"``: in-block transfer matrices
  :math:`M_{ts} = \prod_{s<k\le t} a_k` built by a cumulative product down each
  column (no division), contracted with ``b`` (time-varying decays, short blocks).
- ``"doubling"``: Hillis-Steele log-depth scan on pairs ``(a, b)``.
"""

from __future__ import annotations

import functools
import math

import mlx.core as mx

from .. import backends
from .._checks import check_choice, check_float_array

__all__ = ["linear_scan"]

METHODS = ("auto", "loop", "toeplitz", "strided", "matrix", "doubling")


@functools.cache
def _step():
    return mx.compile(lambda a_t, h, b_t: a_t * h + b_t)


def _is_const(a, b):
    return a.ndim < b.ndim


def _loop(a, b):
    """Sequential scan from zero; ``a`` is ``[T, ...]`` or constant."""
    step = _step()
    per_step = not _is_const(a, b)
    h = mx.zeros(b.shape[1:], b.dtype)
    out = []
    for t in range(b.shape[0]):
        h = step(a[t] if per_step else a, h, b[t])
        out.append(h)
    return mx.stack(out)


def _doubling(a, b):
    """Hillis-Steele: after the pass with offset d, b_t holds the scan of (t-2d, t]."""
    a = mx.broadcast_to(a if not _is_const(a, b) else a[None], b.shape)
    T, d = b.shape[0], 1
    while d < T:
        b = mx.concatenate([b[:d], a[d:] * b[:-d] + b[d:]])
        if 2 * d < T:
            a = mx.concatenate([a[:d], a[d:] * a[:-d]])
        d *= 2
    return b


def _blocks(T, L):
    G = -(-T // L)
    return G, G * L - T


def _pad_time(x, pad, value=0.0):
    if not pad:
        return x
    return mx.concatenate([x, mx.full((pad, *x.shape[1:]), value, x.dtype)])


def _fix_up(h_loc, P, a_block, L):
    """Scan the block ends, then add each block's carried-in state times ``P``.

    ``h_loc [G, L, ...]`` in-block scans from zero, ``P`` the in-block prefix
    products (broadcastable to ``h_loc``), ``a_block`` the whole-block decays.
    """
    carry = _solve(a_block, h_loc[:, L - 1])
    c_prev = mx.concatenate([mx.zeros_like(carry[:1]), carry[:-1]])
    return h_loc + P * c_prev[:, None]


def _toeplitz_matrix(pw, L):
    """``M[..., t, s] = pw[t - s]`` for ``t >= s`` else 0; ``pw [L+1, ...]``."""
    t = mx.arange(L)
    lag = t[:, None] - t[None, :]
    M = pw[mx.maximum(lag, 0).reshape(-1)].reshape(L, L, *pw.shape[1:])
    M = mx.where((lag >= 0).reshape(L, L, *([1] * (pw.ndim - 1))), M, 0)
    return mx.moveaxis(mx.moveaxis(M, 0, -1), 0, -1)  # [..., t, s]


def _powers(a, L):
    """``[a^0, a^1, ..., a^L]`` stacked on a new first axis (no division, no pow)."""
    ones = mx.ones((1, *a.shape), a.dtype)
    return mx.concatenate([ones, mx.cumprod(mx.broadcast_to(a, (L, *a.shape)), axis=0)])


def _feature_split(a_shape, F):
    """Split features ``F`` into ``(R, Na)``: ``a`` is constant over the first ``R``."""
    a_shape = (1,) * (len(F) - len(a_shape)) + tuple(a_shape)
    k = next((i for i, n in enumerate(a_shape) if n != 1), len(F))
    if tuple(a_shape[k:]) == tuple(F[k:]):
        return math.prod(F[:k]), math.prod(F[k:])
    return 1, math.prod(F)


def _toeplitz(a, b, L):
    T, F = b.shape[0], b.shape[1:]
    G, pad = _blocks(T, L)
    if a.size == 1:
        a1 = a.reshape(())
        pw = _powers(a1, L)
        M = _toeplitz_matrix(pw, L)
        bb = _pad_time(b.reshape(T, -1), pad).reshape(G, L, -1)
        h = _fix_up(M @ bb, pw[1:, None], pw[L], L)
        return h.reshape(G * L, *F)[:T]
    R, Na = _feature_split(a.shape, F)
    a1 = mx.broadcast_to(a.reshape((1,) * (len(F) - a.ndim) + a.shape), F)
    a1 = a1.reshape(-1)[-Na:] if R > 1 else a1.reshape(-1)
    pw = _powers(a1, L)  # [L+1, Na]
    M = _toeplitz_matrix(pw, L)  # [Na, L, L]
    bb = _pad_time(b.reshape(T, R, Na), pad).reshape(G, L, R, Na)
    bb = bb.transpose(3, 1, 0, 2).reshape(Na, L, G * R)
    h_loc = (M @ bb).reshape(Na, L, G, R).transpose(2, 1, 3, 0)  # [G, L, R, Na]
    h = _fix_up(h_loc, pw[1:, None], pw[L], L)
    return h.reshape(G * L, *F)[:T]


def _strided(a, b, L):
    T, F = b.shape[0], b.shape[1:]
    G, pad = _blocks(T, L)
    const = _is_const(a, b)
    bb = _pad_time(b, pad).reshape(G, L, *F)
    step = _step()
    if const:
        P = _powers(a, L)[1:]  # [L, ...]
        a_block = P[L - 1]
        P = P[None]
    else:
        a = _pad_time(mx.broadcast_to(a, b.shape), pad, 1.0).reshape(G, L, *F)
        P = mx.cumprod(a, axis=1)
        a_block = P[:, L - 1]
    h = mx.zeros((G, *F), b.dtype)
    outs = []
    for j in range(L):
        h = step(a if const else a[:, j], h, bb[:, j])
        outs.append(h)
    h = _fix_up(mx.stack(outs, axis=1), P, a_block, L)
    return h.reshape(G * L, *F)[:T]


def _matrix(a, b, L):
    T, F = b.shape[0], b.shape[1:]
    G, pad = _blocks(T, L)
    a = _pad_time(mx.broadcast_to(a if not _is_const(a, b) else a[None], b.shape), pad, 1.0)
    a = a.reshape(G, L, -1)
    bb = _pad_time(b, pad).reshape(G, L, -1)
    t = mx.arange(L)
    strict = (t[:, None] > t[None, :])[None, :, :, None]  # [1, k, s, 1]
    C = mx.cumprod(mx.where(strict, a[:, :, None, :], 1.0), axis=1)  # prod_{s<k<=t}
    M = mx.where((t[:, None] >= t[None, :])[None, :, :, None], C, 0.0)
    h_loc = (M * bb[:, None, :, :]).sum(axis=2)
    P = mx.cumprod(a, axis=1)
    h = _fix_up(h_loc, P, P[:, L - 1], L)
    return h.reshape(G * L, *F)[:T]


def _choose(T, width, const):
    """Pick a method from the shape (measured on CPU: see bench/scan_methods.py).

    ``width`` is the number of independent scans (``prod(b.shape[1:])``). The
    strided block scan was fastest or within noise of the fastest from T = 64 up
    to width 4096, for constant and time-varying decays; the log-depth doubling
    scan wins for a handful of lanes and long T; short scans and wide ones
    (width >= 16384, where the step loop's per-step cost is spread over enough
    lanes to be bandwidth-bound) run the step loop.
    """
    if T <= 16 or width >= 16384:
        return "loop"
    if width <= 16 and T >= 256:
        return "doubling"
    return "strided"


def _block_length(method, T):
    if method == "toeplitz":
        return 64 if T >= 4096 else 32
    if method == "matrix":
        return 16
    # strided: about sqrt(T) sequential steps in-block, as many blocks
    return max(8, min(256, 1 << round(math.log2(math.sqrt(T)))))


def _solve(a, b, method="auto"):
    """Scan from ``h_{-1} = 0``; ``a`` constant (``a.ndim < b.ndim``) or ``[T, ...]``."""
    T = b.shape[0]
    if _is_const(a, b) and a.ndim < b.ndim - 1:
        a = a.reshape((1,) * (b.ndim - 1 - a.ndim) + tuple(a.shape))
    if method == "auto":
        method = _choose(T, b.size // T, _is_const(a, b))
    if method == "loop" or T == 1:
        return _loop(a, b)
    if method == "doubling":
        return _doubling(a, b)
    if method == "toeplitz" and not _is_const(a, b):
        raise ValueError("the 'toeplitz' method needs a decay that is constant over time")
    L = _block_length(method, T)
    if L >= T:
        return _loop(a, b)
    return {"toeplitz": _toeplitz, "strided": _strided, "matrix": _matrix}[method](a, b, L)


def _sum_to_shape(g, shape):
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _first_input(a, b, h0):
    """Fold ``h0`` into the first step: ``b_0 + a_0 h_0``."""
    a0 = a if _is_const(a, b) else a[0]
    return mx.concatenate([(b[0] + a0 * h0)[None], b[1:]])


@functools.cache
def _scan_fn(method):
    @mx.custom_function
    def scan(a, b, h0):
        return _solve(a, _first_input(a, b, h0), method)

    @scan.vjp
    def scan_vjp(primals, cotangent, output):
        a, b, h0 = primals
        h = output
        const = _is_const(a, b)
        # reverse scan of the cotangent with the next step's decay
        if const:
            g_b = _solve(a, cotangent[::-1], method)[::-1]
        else:
            a_next = mx.concatenate([a[1:], mx.zeros_like(a[:1])])
            g_b = _solve(a_next[::-1], cotangent[::-1], method)[::-1]
        h_prev = mx.concatenate([mx.broadcast_to(h0, b.shape[1:])[None], h[:-1]])
        g_a = _sum_to_shape(g_b * h_prev, a.shape)
        g_h0 = _sum_to_shape((a if const else a[0]) * g_b[0], h0.shape)
        return g_a, g_b, g_h0

    return scan


def _as_param(name, value, dtype):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return mx.array(value, dtype=dtype)
    check_float_array(name, value)
    return value.astype(dtype)


def _check_args(a, b, h0):
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
    return a, h0


def linear_scan(
    a: float | mx.array,
    b: mx.array,
    h0: float | mx.array | None = None,
    reverse: bool = False,
    backend: str = "auto",
    *,
    _method: str = "auto",
) -> mx.array:
    r"""Solve :math:`h_t = a_t h_{t-1} + b_t` over axis 0 (see the module docstring).

    Args:
        a: decays. A float, an array broadcastable to ``b.shape[1:]`` (constant over
            time), or an array of ``b.ndim`` dimensions whose first axis is time
            (length ``T`` or 1), broadcastable to ``b``. Any real values (zero and
            negative included); products of up to one block of decays must stay finite.
        b: inputs ``[T, ...]`` (floating point, ``T >= 1``).
        h0: initial value, broadcastable to ``b.shape[1:]`` (default 0).
        reverse: run from ``t = T-1`` down to 0.
        backend: ``"auto"`` (the fastest available), ``"mlx"`` (pure MLX,
            everywhere) or ``"metal"`` / ``"cuda"`` (custom kernels: only where that device
            and its kernels are present, see :func:`mlx_snn.backends.available`).
        _method: private, for tests and benchmarks: force one of ``"loop"``,
            ``"toeplitz"`` (constant ``a`` only), ``"strided"``, ``"matrix"``,
            ``"doubling"`` instead of the shape-based ``"auto"`` choice.

    Returns:
        ``h`` with the shape and dtype of ``b``.

    Raises:
        ValueError: ``b`` without a time axis, shapes that do not broadcast, unknown
            ``_method``, ``"toeplitz"`` with time-varying ``a``.
        TypeError: non-floating arrays.
    """
    backends.resolve(backend)
    check_choice("_method", _method, METHODS)
    a, h0 = _check_args(a, b, h0)
    if _method == "toeplitz" and a.ndim == b.ndim:
        raise ValueError(
            f"_method='toeplitz' needs a decay constant over time; got a of shape "
            f"{tuple(a.shape)} with a time axis"
        )
    scan = _scan_fn(_method)
    if reverse:
        a_rev = a[::-1] if a.ndim == b.ndim else a
        return scan(a_rev, b[::-1], h0)[::-1]
    return scan(a, b, h0)
