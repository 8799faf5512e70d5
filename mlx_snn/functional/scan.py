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

Methods (``method="auto"`` picks one by shape, see :func:`choose_method`; each
is exact up to fp rounding for any ``T``, zero and negative decays included, and
never divides by a product of decays):

- ``"loop"``: one compiled step per time step (best for wide, short problems).
- ``"strided"``: split time into blocks of ``L``; scan inside every block from
  zero as ``L`` sequential steps vectorised over all blocks, then scan the block
  ends with the whole-block decays (recursively) and fix up each block with its
  carried-in state, :math:`h_t \mathrel{+}= (\prod_{s \le t} a_s)\, c`.
- ``"doubling"``: Hillis-Steele log-depth scan on pairs ``(a, b)``.

:func:`decay_scan` is the scan for one constant scalar decay in ``(0, 1)`` that the
AMOS neuron uses: a blocked closed form built from cumulative sums.
"""

from __future__ import annotations

import functools
import math

import mlx.core as mx
import numpy as np

from .. import backends, kernels
from .._checks import check_bool, check_choice, check_float_array
from .._precision import carry_dtype
from ..kernels import registry as _kernel_registry
from ._loops import Lanes, at, steps_per_call
from ._untraced import untraced_function

__all__ = ["METHODS", "linear_scan"]

METHODS = ("auto", "loop", "strided", "doubling")


@functools.cache
def _scan_block(n: int, per_step: bool):
    """Compiled ``n`` steps ``h = a_t h + b_t``: ``(a, h, b [n, ...])`` -> ``(h_0, ..., h_{n-1})``
    (``a`` is ``[n, ...]`` when ``per_step``)."""

    def block(a, h, b):
        outs = []
        for j in range(n):
            h = (at(a, j) if per_step else a) * h + at(b, j)
            outs.append(h)
        return tuple(outs)

    return mx.compile(block)


def _is_const(a, b):
    return a.ndim < b.ndim


def _loop(a, b):
    """Sequential scan from zero over axis 0; ``a`` is ``[T, ...]`` or constant.

    ``_loops.steps_per_call`` steps per compiled call, the lanes
    split across CPU streams (``functional/_loops.py``), one stack at the end.
    """
    T = b.shape[0]
    per_step = not _is_const(a, b)
    lanes = Lanes(b.shape[1:])
    bs = lanes.sequence(b)
    as_ = lanes.sequence(a) if per_step else lanes.param(a)
    h = [mx.zeros_like(part[0]) for part in bs]
    steps = steps_per_call(lanes.part_elements)
    pieces = []
    for t0 in range(0, T, steps):
        n = min(steps, T - t0)
        block = _scan_block(n, per_step)
        outs = []
        for j, part in enumerate(lanes.parts):
            with mx.stream(part.stream):
                out = block(as_[j][t0 : t0 + n] if per_step else as_[j], h[j], bs[j][t0 : t0 + n])
            h[j] = out[-1]
            outs.append(out)
        pieces += [[out[i] for out in outs] for i in range(n)]
    return lanes.join_sequence(pieces, lanes.parts[0].stream)


def _doubling(a, b):
    """Hillis-Steele: after the pass with offset d, b_t holds the scan of (t-2d, t].

    A constant decay enters the pass with offset ``d`` as ``a^d`` computed by one
    ``power`` call (correctly rounded), not by squaring ``a`` again and again:
    each squaring doubles the relative error, and for a constant ``a`` those errors
    all have one sign (``0.95^512`` by squaring: ``-97`` ulp), which biased every
    membrane of the parallel LIF the same way.
    """
    if _is_const(a, b):
        T, d = b.shape[0], 1
        while d < T:
            a_d = a if d == 1 else mx.power(mx.abs(a), d)  # d even: a^d = |a|^d
            b = mx.concatenate([b[:d], a_d * b[:-d] + b[d:]])
            d *= 2
        return b
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
    carry = scan_from_zero(a_block, h_loc[:, L - 1])
    c_prev = mx.concatenate([mx.zeros_like(carry[:1]), carry[:-1]])
    return h_loc + P * c_prev[:, None]


def decay_powers(a: mx.array, L: int) -> mx.array:
    """Internal: ``[a^0, a^1, ..., a^L]`` stacked on a new first axis (no division, no pow)."""
    ones = mx.ones((1, *a.shape), a.dtype)
    return mx.concatenate([ones, mx.cumprod(mx.broadcast_to(a, (L, *a.shape)), axis=0)])


def _strided(a, b, L):
    T, F = b.shape[0], b.shape[1:]
    G, pad = _blocks(T, L)
    const = _is_const(a, b)
    bb = _pad_time(b, pad).reshape(G, L, *F)
    if const:
        P = decay_powers(a, L)[1:]  # [L, ...]
        a_block = P[L - 1]
        P = P[None]
    else:
        a = _pad_time(mx.broadcast_to(a, b.shape), pad, 1.0).reshape(G, L, *F)
        P = mx.cumprod(a, axis=1)
        a_block = P[:, L - 1]
    # the in-block scans: L steps over the block axis, all blocks at once
    h_loc = _loop(a if const else a.swapaxes(0, 1), bb.swapaxes(0, 1)).swapaxes(0, 1)
    h = _fix_up(h_loc, P, a_block, L)
    return h.reshape(G * L, *F)[:T]


def choose_method(T: int, width: int) -> str:
    """The method ``method="auto"`` runs for ``T`` steps of ``width`` independent lanes.

    Measured on CPU (bench/scan_methods.py): the strided block scan was fastest or
    within noise of the fastest from T = 64 up to width 4096, for constant and
    time-varying decays; the log-depth doubling scan wins for a handful of lanes
    and long T; short scans and wide ones (width >= 16384, where the step loop's
    per-step cost is spread over enough lanes to be bandwidth-bound) run the loop.
    """
    if T <= 16 or width >= 16384:
        return "loop"
    if width <= 16 and T >= 256:
        return "doubling"
    return "strided"


def _block_length(T):
    """Strided block length: about sqrt(T) sequential steps in-block, as many blocks."""
    return max(8, min(256, 1 << round(math.log2(math.sqrt(T)))))


def scan_from_zero(a: mx.array, b: mx.array, method: str = "auto") -> mx.array:
    """Internal: the scan from ``h_{-1} = 0`` on checked arrays, no custom gradient.

    ``a`` is constant over time (``a.ndim < b.ndim``) or ``[T, ...]``; ``method`` one
    of :data:`METHODS`. Shared by :func:`linear_scan` and the parallel LIF.
    """
    T = b.shape[0]
    if _is_const(a, b) and a.ndim < b.ndim - 1:
        a = a.reshape((1,) * (b.ndim - 1 - a.ndim) + tuple(a.shape))
    if method == "auto":
        method = choose_method(T, b.size // T)
    if method == "loop" or T == 1:
        return _loop(a, b)
    if method == "doubling":
        return _doubling(a, b)
    L = _block_length(T)
    if L >= T:
        return _loop(a, b)
    return _strided(a, b, L)


def sum_to_shape(g: mx.array, shape: tuple[int, ...]) -> mx.array:
    """Internal: sum a gradient ``[T, B, ...features]`` down to a parameter's ``shape``
    (leading axes, then the axes the parameter broadcast along)."""
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def fold_initial(a: mx.array, b: mx.array, h0: mx.array) -> mx.array:
    """Internal: fold ``h0`` into the first input, ``b_0 + a_0 h_0``, so that the scan
    can start from zero."""
    a0 = a if _is_const(a, b) else a[0]
    return mx.concatenate([(b[0] + a0 * h0)[None], b[1:]])


def _scan_forward(method, a, b, h0):
    return (scan_from_zero(a, fold_initial(a, b, h0), method),)


def _scan_backward(method, primals, cotangents, outputs):
    a, b, h0 = primals
    (cotangent,), (h,) = cotangents, outputs
    const = _is_const(a, b)
    # reverse scan of the cotangent with the next step's decay
    if const:
        g_b = scan_from_zero(a, cotangent[::-1], method)[::-1]
    else:
        a_next = mx.concatenate([a[1:], mx.zeros_like(a[:1])])
        g_b = scan_from_zero(a_next[::-1], cotangent[::-1], method)[::-1]
    h_prev = mx.concatenate([mx.broadcast_to(h0, b.shape[1:])[None], h[:-1]])
    g_a = sum_to_shape(g_b * h_prev, a.shape)
    g_h0 = sum_to_shape((a if const else a[0]) * g_b[0], h0.shape)
    return g_a, g_b, g_h0


@functools.cache
def _scan_fn(method):
    """The scan from ``h0`` with its reverse-scan backward, computing in
    :func:`~mlx_snn._precision.carry_dtype` (``a`` and ``h0`` come in it);
    the result in ``b``'s dtype. Fused under ``mx.grad`` too
    (``functional/_untraced.py``)."""
    scan = untraced_function(
        functools.partial(_scan_forward, method),
        functools.partial(_scan_backward, method),
        n_outputs=1,
    )

    def run(a, b, h0):
        return scan(a, b.astype(carry_dtype(b.dtype)), h0)[0].astype(b.dtype)

    return run


def _as_param(name, value, dtype):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return mx.array(value, dtype=dtype)
    check_float_array(name, value)
    return value.astype(dtype)


def _check_broadcast(name, shape, target):
    try:
        ok = tuple(mx.broadcast_shapes(tuple(shape), tuple(target))) == tuple(target)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(shape)} does not broadcast to "
            f"{'b of shape ' if name == 'a' else ''}{tuple(target)}"
        )


def _check_args(a, b, h0):
    check_float_array("b", b, min_ndim=1)
    if b.shape[0] < 1:
        raise ValueError(f"b must have at least one time step; got shape {b.shape}")
    dtype = carry_dtype(b.dtype)
    a = _as_param("a", a, dtype)
    h0 = mx.zeros((), dtype) if h0 is None else _as_param("h0", h0, dtype)
    if a.ndim == b.ndim:
        if a.shape[0] not in (1, b.shape[0]):
            raise ValueError(
                f"a has shape {tuple(a.shape)}: its time axis must have length 1 or "
                f"{b.shape[0]} to match b of shape {tuple(b.shape)}"
            )
        if a.shape[0] == 1:
            a = a[0]
    _check_broadcast("a", a.shape, b.shape)
    _check_broadcast("h0", h0.shape, b.shape[1:])
    return a, h0


def linear_scan(
    a: float | mx.array,
    b: mx.array,
    h0: float | mx.array | None = None,
    reverse: bool = False,
    backend: str = "auto",
    *,
    method: str = "auto",
) -> mx.array:
    r"""Solve :math:`h_t = a_t h_{t-1} + b_t` over axis 0 (see the module docstring).

    Args:
        a: decays. A float, an array broadcastable to ``b.shape[1:]`` (constant over
            time), or an array of ``b.ndim`` dimensions whose first axis is time
            (length ``T`` or 1), broadcastable to ``b``. Any real values (zero and
            negative included; not checked); products of up to one block of decays
            must stay finite.
        b: inputs ``[T, ...]`` (floating point, ``T >= 1``; other axes may be empty).
            Float16 and bfloat16 are computed in float32 (``a``, ``h0`` and the
            carried state too); ``h`` and the gradient of ``b`` come back in
            ``b``'s dtype.
        h0: initial value, broadcastable to ``b.shape[1:]`` (default 0).
        reverse: run from ``t = T-1`` down to 0 (a bool).
        backend: ``"auto"`` | ``"mlx"`` | ``"metal"`` | ``"cuda"``. ``"metal"`` and
            ``"cuda"`` run the scan kernels (``mlx_snn.kernels.linear_scan``: one thread
            per lane, or a chunked scan for few lanes and long ``T``; float32 carry, result
            in the dtype of ``b``) and are available only where that device and the kernel
            sources are present (``mlx-snn info`` and :func:`mlx_snn.backends.available`
            list them). ``"auto"`` (default) picks ``"metal"`` > ``"cuda"`` > ``"mlx"``, and
            stays on MLX for a call the kernels do not run: an MLX ``method`` named
            explicitly; naming a kernel backend with one raises ``ValueError``.
        method: ``"auto"`` (by shape, :func:`~mlx_snn.functional.scan.choose_method`;
            on a kernel backend the kernels pick theirs,
            :func:`mlx_snn.kernels.scan.choose_method`),
            ``"loop"``, ``"strided"`` or ``"doubling"`` (MLX methods, described in
            the module docstring). All give the same values up to fp rounding;
            keyword only.

    Returns:
        ``h`` with the shape and dtype of ``b``.

    Raises:
        ValueError: ``b`` without a time axis or with ``T = 0``, shapes that do not
            broadcast, unknown ``method`` or ``backend``, unavailable ``backend``, a
            kernel backend for a call the kernels do not run (see ``backend``).
        TypeError: non-floating arrays, non-bool ``reverse``.
    """
    check_bool("reverse", reverse)
    check_choice("method", method, METHODS)
    a, h0 = _check_args(a, b, h0)
    # Backend dispatch: every argument is checked and ``a``/``h0`` are in b's dtype.
    option = ("method", method) if method != "auto" else None
    backend = backends.resolve(backend, _kernel_registry.kernel_limit(option=option))
    if backend != "mlx" and b.size:
        return kernels.linear_scan(a, b, h0, reverse=reverse, backend=backend)
    scan = _scan_fn(method)
    if reverse:
        a_rev = a[::-1] if a.ndim == b.ndim else a
        return scan(a_rev, b[::-1], h0)[::-1]
    return scan(a, b, h0)


# ----------------------------------------------------------------------------
# One constant decay in (0, 1): a blocked closed form from cumulative sums (AMOS).
# Faster than the general methods above for this case (a handful of full-size
# ops, no step loop), so AMOS's forward and backward use it.
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


def decay_scan(b: mx.array, alpha: float, reverse: bool = False, scale: float = 1.0) -> mx.array:
    """Internal: solve ``h_t = alpha h_{t-1} + scale b_t`` over axis 0 of ``b [T, M]``.

    For one constant decay ``alpha`` in ``(0, 1)`` (AMOS); ``reverse=True`` runs
    ``h_t = alpha h_{t+1} + scale b_t`` backwards. A stable blocked scan: inside a
    block of length L the closed form ``h_j = alpha^j cumsum_j(alpha^-j b_j)`` uses
    exponents relative to the block
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
