r"""LIF with exact reset computed by parallel scans (chunked speculate-and-restart).

Same equations as :mod:`mlx_snn.functional.lif` with ``reset_timing="immediate"``
and ``reset="subtract"`` or ``"zero"``:

.. math::

    h_t = \beta v_{t-1} + x_t,\quad s_t = \Theta(h_t - \theta),\quad
    v_t = h_t - \theta s_t \ (\text{subtract}) \mid h_t (1 - s_t) \ (\text{zero})

Between two spikes the membrane is a linear scan. Time is cut into chunks of
``K`` steps; the no-reset scans :math:`u` of every chunk (from zero) are computed
at once. Then, chunk by chunk, each neuron keeps a resolved prefix ending at its
position :math:`p` with known state :math:`v` entering step :math:`p`; one round
speculates "no spike from :math:`p` on",
:math:`h_t = u_t + \beta^{t-p+1}(v - u_{p-1})`, takes the first crossing
:math:`t^*` (exact: nothing before it spiked), fixes steps :math:`p..t^*`, applies
the reset at :math:`t^*` and continues from :math:`t^* + 1`. Rounds repeat, for all
neurons at once, until every neuron has reached the end of the chunk: about
``1 + max spikes per neuron in the chunk`` rounds. For very few neurons
(``B*N <= 16``) all chunks run at once instead, from guessed entry states, and
the passes repeat until the entry states stop moving (at most one pass per
chunk, since each pass makes one more chunk exact). Finally the membrane is
recomputed from the spikes by one linear scan over all of ``T`` (``h_t`` uses
``s_{<t}`` only) and :math:`s = \Theta(h - \theta)` is re-checked, repeated until it
holds (usually one pass; each pass fixes the first disagreeing step), so spikes
and membrane are consistent at the loop's fp32 accuracy. The spikes are those of
the sequential loop up to fp32 rounding of near-ties at the threshold.

Under ``mx.compile`` (no host checks, so no data-dependent round counts) the
forward pass runs the step loop of :mod:`mlx_snn.functional.lif` instead; the
results are the same.

The backward pass is the LIF hand-written backward of
:mod:`mlx_snn.functional.lif` with its reverse recurrence
:math:`q_t = a_t + d_t c_t,\ c_{t-1} = \beta q_t` solved as a reverse linear scan
with coefficient :math:`\beta d_t`.
"""

from __future__ import annotations

import functools

import mlx.core as mx
import numpy as np

from .. import surrogate as _surrogate
from .lif_backward import backward_immediate as _backward_immediate
from .lif_forward import loop_forward as _loop_forward
from .lif_forward import reset_membrane as _reset
from .scan import fold_initial as _first_input
from .scan import scan_from_zero as _solve

__all__ = ["DEFAULT_CHUNK", "PARALLEL_RESETS", "check_parallel_mode", "choose_algorithm"]

PARALLEL_RESETS = ("subtract", "zero")
DEFAULT_CHUNK = 64
ROUNDS_PER_CHECK = 2  # rounds fused into one compiled call between host checks
JACOBI_MAX_WIDTH = 16  # all chunks at once for at most this many neurons (B*N)
JACOBI_TOL = 1e-6
# auto rule (see choose_algorithm), from bench/lif_algorithms.py on a 2-core CPU
PARALLEL_MIN_T = 256
PARALLEL_MAX_WIDTH = 64


def check_parallel_mode(reset: str, reset_timing: str) -> None:
    """Raise ``ValueError`` for modes the parallel algorithm does not implement."""
    if reset not in PARALLEL_RESETS or reset_timing != "immediate":
        raise ValueError(
            "the parallel LIF supports reset='subtract' or 'zero' with "
            f"reset_timing='immediate'; got reset={reset!r}, reset_timing={reset_timing!r} "
            "(use snn.LIF / algorithm='loop' for the other modes)"
        )


def _round(u, v, p, s, h_last, pw, thr, reset):
    """One speculate-and-restart round over a chunk ``u [K, M]``; ``pw[k] = beta^k``.

    ``p [M]``: first unresolved step, ``v [M]``: state entering it, ``s [K, M]``:
    spikes so far, ``h_last [M]``: membrane at the chunk's last step once resolved.
    """
    K = u.shape[0]
    t = mx.arange(K)[:, None]
    u_prev = mx.take_along_axis(u, mx.clip(p - 1, 0, K - 1)[None], axis=0)[0]
    u_prev = mx.where(p > 0, u_prev, 0.0)
    lag = mx.maximum(t - p[None] + 1, 0)
    h = u + mx.take_along_axis(pw, lag, axis=0) * (v - u_prev)
    cross = (h >= thr) & (t >= p[None])
    hit = cross.any(axis=0)
    t_star = mx.where(hit, mx.argmax(cross, axis=0).astype(p.dtype), K)
    s = mx.where(t == t_star[None], 1.0, s).astype(u.dtype)
    h_last = mx.where((p < K) & (t_star >= K - 1), h[K - 1], h_last)
    h_star = mx.take_along_axis(h, mx.minimum(t_star, K - 1)[None], axis=0)[0]
    v = mx.where(hit, _reset(h_star, 1.0, thr, reset), v)
    return v, mx.where(hit, t_star + 1, K), s, h_last


def _rounds(u, v, p, s, h_last, pw, thr, reset, n):
    for _ in range(n):
        v, p, s, h_last = _round(u, v, p, s, h_last, pw, thr, reset)
    return v, p, s, h_last


@functools.cache
def _rounds_fn(reset, n):
    return mx.compile(functools.partial(_rounds, reset=reset, n=n))


def _chunk(u, v, pw, thr, reset):
    """Resolve one chunk from state ``v``; returns ``(s [K, M], state after the chunk)``."""
    K = u.shape[0]
    n = min(ROUNDS_PER_CHECK, K)
    rounds = _rounds_fn(reset, n)
    p = mx.zeros(v.shape, mx.int32)
    s = mx.zeros_like(u)
    h_last = mx.zeros_like(v)
    for i in range(0, K, n):
        v, p, s, h_last = rounds(u, v, p, s, h_last, pw, thr)
        if i + n < K and _all_done(p, K):
            break
    return s, _reset(h_last, s[K - 1], thr, reset)


def _all_done(p, K):
    """Host check that every neuron finished the chunk."""
    return bool(mx.all(p >= K).item())


def _any_differs(a, b):
    """Host check ``any(a != b)``."""
    return bool(mx.any(a != b).item())


def _detached(*arrays):
    """Copies without graph history, or ``None`` when traced by ``mx.compile``.

    Inside ``mx.grad``/``mx.vjp`` the rounds' host checks would otherwise re-walk
    the graph back to the traced inputs each time (quadratic cost).
    """
    try:
        return [mx.array(np.array(a.astype(mx.float32))).astype(a.dtype) for a in arrays]
    except ValueError:
        return None


def _forward(reset, chunk, x, v0, beta, threshold):
    fresh = _detached(x, v0, beta, threshold)
    if fresh is None:  # mx.compile: no host checks, so run the (exact) step loop
        return _loop_forward(reset, "immediate", x, v0, beta, threshold)
    x, v0, beta, threshold = fresh
    T, shape = x.shape[0], x.shape[1:]
    M = v0.size
    K = min(chunk, T)
    G = -(-T // K)
    xf = x.reshape(T, M)
    if G * K > T:
        xf = mx.concatenate([xf, mx.zeros((G * K - T, M), x.dtype)])
    b = mx.broadcast_to(beta, shape).reshape(M)
    thr = mx.broadcast_to(threshold, shape).reshape(M)
    # no-reset scans of every chunk from zero, all chunks at once: time axis K
    u = _solve(b, xf.reshape(G, K, M).transpose(1, 0, 2)).transpose(1, 0, 2)
    pw = mx.concatenate([mx.ones((1, M), x.dtype), mx.cumprod(mx.broadcast_to(b, (K, M)), 0)])
    if G > 1 and M <= JACOBI_MAX_WIDTH:
        s = _guess_jacobi(u, v0.reshape(M), pw, b, thr, reset)[:T]
    else:
        v = v0.reshape(M)
        spikes = []
        for g in range(G):
            s, v = _chunk(u[g], v, pw, thr, reset)
            spikes.append(s)
        s = mx.concatenate(spikes)[:T]
    s, h = _settle(s, xf[:T], v0.reshape(M), b, thr, reset)
    v_last = _reset(h[T - 1], s[T - 1], thr, reset)
    return s.reshape(x.shape), h.reshape(x.shape), v_last.reshape(shape)


def _guess_jacobi(u, v0, pw, beta, thr, reset):
    """All chunks at once from guessed entry states, repeated until the states settle.

    ``u [G, K, M]``. Chunk ``g`` is exact once chunk ``g - 1`` was, so at most ``G``
    passes; it stops early when no entry state moves by more than ``JACOBI_TOL``
    (relative), the settle pass then repairs any near-tie that is left.
    """
    G, K, M = u.shape
    lanes = u.transpose(1, 0, 2).reshape(K, G * M)
    pw = mx.tile(pw, (1, G))
    thr_l = mx.tile(thr, (G,))
    v_in = mx.concatenate([v0[None], mx.zeros((G - 1, M), u.dtype)])
    for _ in range(G):
        s, v_out = _chunk(lanes, v_in.reshape(-1), pw, thr_l, reset)
        v_new = mx.concatenate([v0[None], v_out.reshape(G, M)[:-1]])
        moved = mx.abs(v_new - v_in) > JACOBI_TOL * (1.0 + mx.abs(v_in))
        v_in = v_new
        if not bool(mx.any(moved).item()):
            break
    return s.reshape(K, G, M).transpose(1, 0, 2).reshape(G * K, M)


def _membrane(s, x, v0, beta, thr, reset):
    """``h [T, M]`` for given spikes by one linear scan (``h_t`` uses ``s_{<t}`` only)."""
    if reset == "subtract":
        v = _solve(beta, _first_input(beta, x - thr * s, v0))
        return beta * mx.concatenate([v0[None], v[:-1]]) + x
    a = beta * mx.concatenate([mx.ones_like(s[:1]), 1.0 - s[:-1]])
    return _solve(a, _first_input(a, x, v0))


def _settle(s, x, v0, beta, thr, reset):
    """Recompute ``h`` from ``s`` accurately and repeat ``s = Θ(h - θ)`` until it holds.

    The rounds' spikes are exact up to the rounding of the chunk formula; this makes
    spikes and membrane consistent with one accurate scan (usually one pass: each
    pass fixes at least the first disagreeing step, so it ends).
    """
    while True:
        h = _membrane(s, x, v0, beta, thr, reset)
        s_new = (h >= thr).astype(s.dtype)
        if not _any_differs(s_new, s):
            return s, h
        s = s_new


def _scan_recurrence(a, d, k, g_last, k_per_step=False):
    """``q_t = a_t + d_t c_t``, ``c_{t-1} = k q_t``, ``c_{T-1} = g_last`` by a reverse scan.

    Same contract as ``functional.lif._reverse_recurrence``; returns ``(q, c_{-1})``.
    """
    if k_per_step:
        raise ValueError("_scan_recurrence needs a decay constant over time")
    d_last = g_last if d is None else d[-1] * g_last
    b = mx.concatenate([a[:-1], (a[-1] + d_last)[None]])
    coef = k if d is None else d * k
    if coef.ndim == b.ndim:
        coef = coef[::-1]
    q = _solve(coef, b[::-1])[::-1]
    return q, k * q[0]


@functools.cache
def _parallel_fn(reset, surrogate, detach, need_beta, need_thr, chunk):
    cfg = (reset, surrogate, detach, need_beta, need_thr)

    @mx.custom_function
    def lif(x, v0, beta, threshold):
        return _forward(reset, chunk, x, v0, beta, threshold)

    @lif.vjp
    def lif_vjp(primals, cotangents, outputs):
        return _backward_immediate(cfg, primals, cotangents, outputs, solve=_scan_recurrence)

    return lif


def run_parallel(
    x: mx.array,
    v0: mx.array,
    beta: mx.array,
    threshold: mx.array,
    *,
    reset: str,
    reset_timing: str,
    surrogate: _surrogate.Surrogate,
    detach_reset: bool,
    beta_grad: bool,
    threshold_grad: bool,
    chunk: int,
) -> tuple[mx.array, mx.array, mx.array]:
    """Internal: ``(spikes, mem, state)`` by the parallel algorithm, differentiable.

    Called by :func:`mlx_snn.functional.lif_sequence` with checked arguments, after
    :func:`check_parallel_mode` accepted ``reset`` and ``reset_timing`` (today only
    the immediate timing, so ``reset_timing`` selects nothing yet).
    """
    fn = _parallel_fn(reset, surrogate, detach_reset, beta_grad, threshold_grad, chunk)
    return fn(x, v0, beta, threshold)


def choose_algorithm(shape: tuple[int, ...], reset: str, reset_timing: str) -> str:
    """``"parallel"`` or ``"loop"`` for an input of ``shape`` ``[T, B, ...]``.

    The parallel path needs subtract/zero reset with immediate timing. Its forward
    costs about (spikes of the busiest neuron per chunk + 1) rounds per chunk, each
    a handful of ops over ``[chunk, B*N]``, against one small op per step for the
    loop; its backward is one reverse scan against a reverse step loop. Measured
    (bench/lif_algorithms.py, firing rate about 0.1): with ``B*N <= 64`` and
    ``T >= 256`` its forward+backward was several times faster than the loop's
    and its forward alone about on par (slower at ``T = 256``, faster for long
    ``T``); at ``B*N = 256`` its forward was clearly slower (forward+backward still
    faster), and from ``B*N = 1024`` both were slower. The rule: parallel when
    ``T >= PARALLEL_MIN_T`` and ``B*N <= PARALLEL_MAX_WIDTH``.
    """
    if reset not in PARALLEL_RESETS or reset_timing != "immediate" or len(shape) < 2:
        return "loop"
    T = shape[0]
    width = 1
    for n in shape[1:]:
        width *= n
    return "parallel" if T >= PARALLEL_MIN_T and width <= PARALLEL_MAX_WIDTH else "loop"
