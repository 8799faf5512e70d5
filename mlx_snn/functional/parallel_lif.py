r"""LIF with exact reset computed by parallel scans (chunked speculate-and-restart).

Same equations, resets and timings as :mod:`mlx_snn.functional.lif`. With
``reset_timing="immediate"``:

.. math::

    h_t = \beta v_{t-1} + x_t,\quad s_t = \Theta(h_t - \theta),\quad
    v_t = h_t - \theta s_t \ (\text{subtract}) \mid h_t (1 - s_t) \ (\text{zero})
    \mid h_t \ (\text{none})

``reset_timing="delayed"`` (snnTorch ``Leaky``) applies the previous step's spike
:math:`r_t = s_{t-1}`, with :math:`r_0 = \Theta_>(v_{-1} - \theta)` and the strict
comparison :math:`s_t = \Theta_>(m_t - \theta)`:
:math:`m_t = \beta m_{t-1} + x_t - \theta r_t` (subtract) or
:math:`\beta (1 - r_t) m_{t-1} + x_t` (zero).

``reset="none"`` (either timing) is one linear scan and a threshold. With a reset,
the membrane between two spikes is a linear scan. Time is cut into chunks of
``K`` steps; the no-reset scans :math:`u` of every chunk (from zero) are computed
at once. Then, chunk by chunk, each neuron keeps a resolved prefix ending at its
position :math:`p` with known state :math:`v` entering step :math:`p`; one round
speculates "no spike from :math:`p` on",
:math:`h_t = u_t + \beta^{t-p+1}(v - u_{p-1}) - c\,\beta^{t-p}` (:math:`c` is the
delayed subtract reset :math:`\theta r_p` still due at :math:`p`, else 0), takes
the first crossing :math:`t^*` (exact: nothing before it spiked), fixes steps
:math:`p..t^*`, applies the reset at :math:`t^*` and continues from
:math:`t^* + 1`. Rounds repeat, for all neurons at once, until every neuron has
reached the end of the chunk: about ``1 + max spikes per neuron in the chunk``
rounds, never more than ``K`` (each round resolves at least one step). For very
few neurons (``B*N <= 16``) all chunks run at once instead, from guessed entry
states, and the passes repeat until the entry states stop moving; each pass makes
at least one more chunk exact, and after ``JACOBI_MAX_PASSES`` passes the chunks
from the first one whose entry still moved run chunk by chunk.

Finally the settle pass recomputes the membrane from the spikes by one linear
scan (``h_t`` uses ``s_{<t}`` only) and re-checks the threshold, so spikes and
membrane are consistent at the loop's fp32 accuracy. The rounds and the scan
round differently, so at a near-tie they can disagree about one spike. At the
first disagreement the accurate state is known; the rounds resume from that step
for the neurons that disagree (at most ``MAX_RESUMES`` times), and a disagreement
after that finishes those neurons with the step loop. So the forward pass costs
at most ``MAX_RESUMES + 1`` speculate-and-check passes and one step loop, each
over the rest of the sequence, however many near-ties there are. The spikes are
those of the sequential loop up to fp32 rounding of near-ties at the threshold.
``counters`` counts the rounds, passes and resumes (tests bound them).

Under ``mx.compile`` (no host checks, so no data-dependent round counts) the
forward pass runs the step loop of :mod:`mlx_snn.functional.lif` instead; the
results are the same.

The backward pass is the hand-written backward of :mod:`mlx_snn.functional.lif`
with its reverse recurrence :math:`q_t = a_t + d_t c_t,\ c_{t-1} = k_t q_t`
solved as a reverse linear scan with coefficient :math:`d_t k_{t+1}`.
"""

from __future__ import annotations

import collections
import functools

import mlx.core as mx
import numpy as np

from .. import surrogate as _surrogate
from .._checks import check_choice
from .._precision import carry_dtype
from .._tracing import reads_deferred
from .lif_backward import backward_delayed as _backward_delayed
from .lif_backward import backward_immediate as _backward_immediate
from .lif_forward import RESETS, TIMINGS
from .lif_forward import loop_forward as _loop_forward
from .lif_forward import reset_membrane as _reset
from .scan import fold_initial as _first_input
from .scan import scan_from_zero as _solve

__all__ = ["DEFAULT_CHUNK", "check_parallel_mode", "choose_algorithm", "counters", "run_parallel"]

DEFAULT_CHUNK = 64
ROUNDS_PER_CHECK = 2  # rounds fused into one compiled call between host checks
JACOBI_MAX_WIDTH = 16  # all chunks at once for at most this many neurons (B*N)
JACOBI_TOL = 1e-6
JACOBI_MAX_PASSES = 8  # then the chunks still moving run chunk by chunk
MAX_RESUMES = 1  # settle: speculation resumes before the step loop finishes
# auto rule (see choose_algorithm), from bench/lif_algorithms.py on a 2-core CPU
PARALLEL_MIN_T = 256
PARALLEL_MAX_WIDTH = 64

#: Work done by the forward pass, counted for tests and benchmarks. Keys "rounds"
#: (speculate-and-restart rounds), "jacobi_passes", "speculations" (runs of the rounds over a
#: segment of time), "checks" (settle scans), "resumes", "loop_tails" (settle
#: finished by the step loop) and "loop_tail_steps".
counters: collections.Counter = collections.Counter()


def check_parallel_mode(reset: str, reset_timing: str) -> None:
    """Raise ``ValueError`` for a mode the parallel algorithm does not implement.

    Every ``reset`` (subtract, zero, none) with every ``reset_timing`` (immediate,
    delayed) runs in parallel; only unknown names are rejected.
    """
    check_choice("reset", reset, RESETS)
    check_choice("reset_timing", reset_timing, TIMINGS)


def _fire(h, thr, timing):
    """Spikes of membrane ``h``: ``h >= thr`` (immediate) or ``h > thr`` (delayed)."""
    above = h > thr if timing == "delayed" else h >= thr
    return above.astype(h.dtype)


def _exit_state(h, s, thr, reset, timing):
    """State after a step: ``v`` (immediate, after the reset) or ``m`` (delayed)."""
    return h if timing == "delayed" else _reset(h, s, thr, reset)


def _entry(m, thr, reset, timing):
    """Round state ``(v, c)`` entering a segment whose previous state is ``m``.

    ``h_p = beta v + x_p - c``. Delayed timing applies the previous step's spike
    ``r = [m > thr]`` now: zero reset folds it into ``v``, subtract reset owes ``c``.
    """
    if timing == "immediate":
        return m, mx.zeros_like(m)
    r = (m > thr).astype(m.dtype)
    if reset == "zero":
        return m * (1.0 - r), mx.zeros_like(m)
    return m, thr * r


def _round(u, v, c, p, s, h_last, pw, thr, reset, timing):
    """One speculate-and-restart round over a chunk ``u [K, M]``; ``pw[k] = beta^k``.

    ``p [M]``: first unresolved step, ``(v, c) [M]``: round state entering it (see
    :func:`_entry`), ``s [K, M]``: spikes so far, ``h_last [M]``: membrane at the
    chunk's last step once resolved.
    """
    K = u.shape[0]
    t = mx.arange(K)[:, None]
    u_prev = mx.take_along_axis(u, mx.clip(p - 1, 0, K - 1)[None], axis=0)[0]
    u_prev = mx.where(p > 0, u_prev, 0.0)
    lag = mx.maximum(t - p[None] + 1, 0)
    h = u + mx.take_along_axis(pw, lag, axis=0) * (v - u_prev)
    owes = timing == "delayed" and reset == "subtract"
    if owes:
        h = h - mx.take_along_axis(pw, mx.maximum(lag - 1, 0), axis=0) * c
    cross = (_fire(h, thr, timing) > 0) & (t >= p[None])
    hit = cross.any(axis=0)
    t_star = mx.where(hit, mx.argmax(cross, axis=0).astype(p.dtype), K)
    s = mx.where(t == t_star[None], 1.0, s).astype(u.dtype)
    h_last = mx.where((p < K) & (t_star >= K - 1), h[K - 1], h_last)
    h_star = mx.take_along_axis(h, mx.minimum(t_star, K - 1)[None], axis=0)[0]
    if owes:
        v, c = mx.where(hit, h_star, v), mx.where(hit, thr, c)
    else:
        v = mx.where(hit, _reset(h_star, 1.0, thr, reset), v)
    return v, c, mx.where(hit, t_star + 1, K), s, h_last


def _rounds(u, v, c, p, s, h_last, pw, thr, reset, timing, n):
    for _ in range(n):
        v, c, p, s, h_last = _round(u, v, c, p, s, h_last, pw, thr, reset, timing)
    return v, c, p, s, h_last


@functools.cache
def _rounds_fn(reset, timing, n):
    return mx.compile(functools.partial(_rounds, reset=reset, timing=timing, n=n))


def _chunk(u, m, pw, thr, reset, timing):
    """Resolve one chunk from state ``m``; returns ``(s [K, M], state after the chunk)``.

    At most ``K`` rounds: each resolves at least one more step of every neuron
    that is not done.
    """
    K = u.shape[0]
    n = min(ROUNDS_PER_CHECK, K)
    rounds = _rounds_fn(reset, timing, n)
    v, c = _entry(m, thr, reset, timing)
    p = mx.zeros(m.shape, mx.int32)
    s = mx.zeros_like(u)
    h_last = mx.zeros_like(m)
    for i in range(0, K, n):
        v, c, p, s, h_last = rounds(u, v, c, p, s, h_last, pw, thr)
        counters["rounds"] += n
        if i + n < K and _all_done(p, K):
            break
    return s, _exit_state(h_last, s[K - 1], thr, reset, timing)


def _all_done(p, K):
    """Host check that every neuron finished the chunk."""
    return bool(mx.all(p >= K).item())


def _detached(*arrays):
    """Copies without graph history, or ``None`` when traced by ``mx.compile`` (or
    inside :func:`mlx_snn._tracing.deferred_reads`).

    Inside ``mx.grad``/``mx.vjp`` the rounds' host checks would otherwise re-walk
    the graph back to the traced inputs each time (quadratic cost).
    """
    if reads_deferred():
        return None
    try:
        return [mx.array(np.array(a.astype(mx.float32))).astype(a.dtype) for a in arrays]
    except ValueError:
        return None


def _forward(reset, timing, chunk, x, v0, beta, threshold):
    """Inputs in their carry dtype (:func:`run_parallel` casts them)."""
    fresh = _detached(x, v0, beta, threshold)
    if fresh is None:  # mx.compile: no host checks, so run the (exact) step loop
        return _loop_forward(reset, timing, x, v0, beta, threshold)
    x, v0, beta, threshold = fresh
    T, shape = x.shape[0], x.shape[1:]
    M = v0.size
    xf = x.reshape(T, M)
    m0 = v0.reshape(M)
    b = mx.broadcast_to(beta, shape).reshape(M)
    thr = mx.broadcast_to(threshold, shape).reshape(M)
    if reset == "none":  # spikes do not feed back: one scan and a threshold
        h = _membrane(None, xf, m0, b, thr, reset, timing)
        s = _fire(h, thr, timing)
    else:
        s = _speculate(xf, m0, b, thr, reset, timing, chunk)
        s, h = _settle(s, xf, m0, b, thr, reset, timing, chunk)
    state = _exit_state(h[T - 1], s[T - 1], thr, reset, timing)
    return s.reshape(x.shape), h.reshape(x.shape), state.reshape(shape)


def _speculate(x, m, beta, thr, reset, timing, chunk):
    """Spikes ``[T, M]`` of ``x [T, M]`` from state ``m [M]`` by speculate-and-restart."""
    counters["speculations"] += 1
    T, M = x.shape
    K = min(chunk, T)
    G = -(-T // K)
    if G * K > T:
        x = mx.concatenate([x, mx.zeros((G * K - T, M), x.dtype)])
    # no-reset scans of every chunk from zero, all chunks at once: time axis K
    u = _solve(beta, x.reshape(G, K, M).transpose(1, 0, 2)).transpose(1, 0, 2)
    pw = mx.concatenate([mx.ones((1, M), x.dtype), mx.cumprod(mx.broadcast_to(beta, (K, M)), 0)])
    if G > 1 and M <= JACOBI_MAX_WIDTH:
        return _guess_jacobi(u, m, pw, thr, reset, timing)[:T]
    return _chunk_by_chunk(u, m, pw, thr, reset, timing)[:T]


def _chunk_by_chunk(u, m, pw, thr, reset, timing):
    """Chunks ``u [G, K, M]`` in order from state ``m``; spikes ``[G*K, M]``."""
    spikes = []
    for g in range(u.shape[0]):
        s, m = _chunk(u[g], m, pw, thr, reset, timing)
        spikes.append(s)
    return mx.concatenate(spikes)


def _guess_jacobi(u, m0, pw, thr, reset, timing):
    """All chunks at once from guessed entry states, repeated until the states settle.

    ``u [G, K, M]``. A pass runs every chunk not yet final from its guessed entry
    state; the first of them has an exact entry, so it and every later one whose
    entry did not move (by more than ``JACOBI_TOL``, relative; the settle pass
    repairs any near-tie left) become final, and the next pass starts at the first
    chunk whose entry moved. So each pass finalises at least one chunk; after
    ``JACOBI_MAX_PASSES`` passes the chunks left run chunk by chunk: at most that
    many passes over the chunks and one pass over the rest, never one per chunk.
    """
    G, K, M = u.shape
    final = []
    m_in = mx.concatenate([m0[None], mx.zeros((G - 1, M), u.dtype)])
    for _ in range(JACOBI_MAX_PASSES):
        counters["jacobi_passes"] += 1
        n = m_in.shape[0]
        lanes = u[G - n :].transpose(1, 0, 2).reshape(K, n * M)
        s, m_out = _chunk(
            lanes, m_in.reshape(-1), mx.tile(pw, (1, n)), mx.tile(thr, (n,)), reset, timing
        )
        s = s.reshape(K, n, M).transpose(1, 0, 2)
        m_new = mx.concatenate([m_in[:1], m_out.reshape(n, M)[:-1]])
        moved = (mx.abs(m_new - m_in) > JACOBI_TOL * (1.0 + mx.abs(m_in))).any(axis=1)
        first = int(mx.where(moved, mx.arange(n), n).min().item())
        final.append(s[:first].reshape(first * K, M))
        if first == n:
            return mx.concatenate(final)
        m_in = m_new[first:]
    final.append(_chunk_by_chunk(u[G - m_in.shape[0] :], m_in[0], pw, thr, reset, timing))
    return mx.concatenate(final)


def _membrane(s, x, m0, beta, thr, reset, timing):
    """Membrane ``[T, M]`` for given spikes by one linear scan (uses ``s_{<t}`` only)."""
    if reset == "none":
        return _solve(beta, _first_input(beta, x, m0))
    if timing == "delayed":
        r = mx.concatenate([_fire(m0, thr, timing)[None], s[:-1]])
        if reset == "subtract":
            return _solve(beta, _first_input(beta, x - thr * r, m0))
        a = beta * (1.0 - r)
        return _solve(a, _first_input(a, x, m0))
    if reset == "subtract":
        v = _solve(beta, _first_input(beta, x - thr * s, m0))
        return beta * mx.concatenate([m0[None], v[:-1]]) + x
    a = beta * mx.concatenate([mx.ones_like(s[:1]), 1.0 - s[:-1]])
    return _solve(a, _first_input(a, x, m0))


def _settle(s, x, m0, beta, thr, reset, timing, chunk):
    """Recompute the membrane from ``s`` accurately and make ``s = Θ(h - θ)`` hold.

    ``s, x [T, M]``. Each check scans the unsettled neurons from the current step;
    the steps up to the first disagreement are consistent, and there the accurate
    spike and state are known. The neurons that disagree resume from the next step
    with the rounds (``MAX_RESUMES`` times) and then with the step loop, which is
    consistent by construction: at most ``MAX_RESUMES + 1`` checks and
    speculations and one step loop, each over the rest of the sequence.
    Returns ``(s, h)``.
    """
    T, M = x.shape
    start, cols, m = 0, mx.arange(M), m0
    seg = (x, beta, thr, s)
    for attempt in range(MAX_RESUMES + 1):
        xs, bs, ts, ss = seg
        counters["checks"] += 1
        hs = _membrane(ss, xs, m, bs, ts, reset, timing)
        fired = _fire(hs, ts, timing)
        bad = fired != ss
        n = T - start
        first = mx.where(bad.any(axis=0), mx.argmax(bad, axis=0), n)
        t0 = int(first.min().item())
        ss = mx.where(mx.arange(n)[:, None] <= t0, fired, ss)
        if start == 0:
            s, h = ss, hs
        else:
            s[start:, cols], h[start:, cols] = ss, hs
        if t0 == n or start + t0 + 1 == T:
            return s, h
        # steps up to t0 now hold; the neurons that disagree go on from t0 + 1
        idx = mx.array(np.flatnonzero(np.array(first < n)))
        m = _exit_state(hs[t0, idx], fired[t0, idx], ts[idx], reset, timing)
        start, cols = start + t0 + 1, cols[idx]
        xs, bs, ts = x[start:, cols], beta[cols], thr[cols]
        if attempt < MAX_RESUMES:
            counters["resumes"] += 1
            seg = (xs, bs, ts, _speculate(xs, m, bs, ts, reset, timing, chunk))
    # the last check still disagreed: the step loop finishes those neurons
    counters["loop_tails"] += 1
    counters["loop_tail_steps"] += T - start
    s_tail, h_tail, _ = _loop_forward(reset, timing, xs, m, bs, ts)
    s[start:, cols] = s_tail
    h[start:, cols] = h_tail
    return s, h


def _scan_recurrence(a, d, k, g_last, k_per_step=False):
    """``q_t = a_t + d_t c_t``, ``c_{t-1} = k_t q_t``, ``c_{T-1} = g_last`` by a reverse scan.

    The ``solve`` of :func:`~mlx_snn.functional.lif_backward.backward_immediate`
    (``k`` per step ``[T, ...]`` when ``k_per_step``); returns ``(q, c_{-1})``.
    """
    d_last = g_last if d is None else d[-1] * g_last
    b = mx.concatenate([a[:-1], (a[-1] + d_last)[None]])
    # q_t = b_t + coef_t q_{t+1} with coef_t = d_t k_{t+1} (coef_{T-1} is unused)
    k_next, k_first = (mx.concatenate([k[1:], k[:1]]), k[0]) if k_per_step else (k, k)
    coef = k_next if d is None else d * k_next
    if coef.ndim == b.ndim:
        coef = coef[::-1]
    q = _solve(coef, b[::-1])[::-1]
    return q, k_first * q[0]


@functools.cache
def _parallel_fn(reset, timing, surrogate, detach, need_beta, need_thr, chunk):
    cfg = (reset, surrogate, detach, need_beta, need_thr)
    backward = _backward_immediate if timing == "immediate" else _backward_delayed

    @mx.custom_function
    def lif(x, v0, beta, threshold):
        return _forward(reset, timing, chunk, x, v0, beta, threshold)

    @lif.vjp
    def lif_vjp(primals, cotangents, outputs):
        return backward(cfg, primals, cotangents, outputs, solve=_scan_recurrence)

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

    Called by :func:`mlx_snn.functional.lif_sequence` with checked arguments.
    Half-precision inputs run in float32 (:mod:`mlx_snn._precision`), the backward
    too, from a float32 membrane (rounding the saved membrane to the input dtype
    would put the rounding into every surrogate derivative and the beta gradient's
    sum over time): spikes and membrane come back in the input's dtype, the state
    in float32.
    """
    fn = _parallel_fn(
        reset, reset_timing, surrogate, detach_reset, beta_grad, threshold_grad, chunk
    )
    dtype = carry_dtype(x.dtype)
    s, h, v = fn(x.astype(dtype), v0.astype(dtype), beta.astype(dtype), threshold.astype(dtype))
    return s.astype(x.dtype), h.astype(x.dtype), v


def choose_algorithm(shape: tuple[int, ...], reset: str, reset_timing: str) -> str:
    """``"parallel"`` or ``"loop"`` for an input of ``shape`` ``[T, B, ...]``.

    Every reset and timing runs in parallel, so the choice is by shape. With a
    reset the parallel forward costs about (spikes of the busiest neuron per chunk
    + 1) rounds per chunk, each a handful of ops over ``[chunk, B*N]`` (the delayed
    timing the same), against one small op per step for the loop; its backward is
    one reverse scan against a reverse step loop. ``reset="none"`` needs no rounds
    (one scan), so the rule below is conservative for it. Measured
    (bench/lif_algorithms.py, subtract reset, immediate timing, firing rate about
    0.1): with ``B*N <= 64`` and ``T >= 256`` its forward+backward was several
    times faster than the loop's and its forward alone about on par (slower at
    ``T = 256``, faster for long ``T``); at ``B*N = 256`` its forward was clearly
    slower (forward+backward still faster), and from ``B*N = 1024`` both were
    slower. The rule: parallel when ``T >= PARALLEL_MIN_T`` and
    ``B*N <= PARALLEL_MAX_WIDTH``.
    """
    check_parallel_mode(reset, reset_timing)
    if len(shape) < 2:
        return "loop"
    T = shape[0]
    width = 1
    for n in shape[1:]:
        width *= n
    return "parallel" if T >= PARALLEL_MIN_T and width <= PARALLEL_MAX_WIDTH else "loop"
