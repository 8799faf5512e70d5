r"""Matrix-state linear recurrence with input-dependent decay (associative memory).

For each batch element, a key-value memory :math:`S_t \in \mathbb{R}^{d_k \times d_v}`:

.. math::

    S_t = \operatorname{diag}(a_t)\, S_{t-1} + k_t v_t^\top, \qquad
    y_t = S_t^\top q_t, \qquad S_{-1} = S_0

with queries and keys :math:`q_t, k_t \in \mathbb{R}^{d_k}`, values
:math:`v_t \in \mathbb{R}^{d_v}` and decays :math:`a_t \in (0, 1]^{d_k}` (one per key
dimension). Unrolled,

.. math::

    y_{t,j} = \sum_i q_{t,i} \Big( e^{C_{t,i}} S_{0,ij}
        + \sum_{s \le t} e^{C_{t,i} - C_{s,i}} k_{s,i} v_{s,j} \Big), \qquad
    C_{t,i} = \sum_{r \le t} \log a_{r,i}.

**Why chunked.** Writing :math:`e^{C_t - C_s}` as :math:`P_t / P_s` with
:math:`P_t = \prod_{r \le t} a_r` (the textbook closed form) fails in fp32: :math:`P`
underflows within a few dozen steps and :math:`1/P` overflows. Here time is split
into chunks of ``chunk`` steps (gated linear attention's chunked form). Every factor
that is exponentiated is a sum of log-decays over an interval ``(s, t]`` with
``s <= t``, accumulated directly over that interval (never a difference of two
long cumulative sums), so it is ``<= 0`` and each factor lies in ``[0, 1]``:

* intra-chunk: :math:`y^{\text{intra}}_t = \sum_{s \le t} A_{ts} v_s` with
  :math:`A_{ts} = \sum_i q_{t,i} k_{s,i} e^{C_{t,i} - C_{s,i}}` (``s, t`` in one chunk);
* inter-chunk: :math:`y^{\text{inter}}_t = (q_t \odot e^{C_t - C_{c}})^\top S_{c}`,
  with :math:`S_c` the state at the end of the previous chunk;
* chunk carry: :math:`S_{\text{end}} = \operatorname{diag}(e^{C_{\text{end}} - C_c}) S_c
  + \sum_s (k_s \odot e^{C_{\text{end}} - C_s}) v_s^\top`, a linear scan over the
  ``ceil(T / chunk)`` chunk states (:func:`mlx_snn.functional.linear_scan`).

Gradients come from MLX autograd through these operations (the chunk carry
uses ``linear_scan``'s reverse-scan VJP); they are as stable as the forward
because every exponential is again of a non-positive number.

**Memory** (floats, ``G = ceil(T / chunk)``, ``L = chunk``): the forward pass
allocates the pairwise decay factors ``B·G·L·L·d_k = B·T·L·d_k`` (a few
temporaries of that size, some kept by autograd for the backward), the chunk
states ``2·B·G·d_k·d_v = 2·B·T·d_k·d_v / L``, the intra-chunk scores ``B·T·L``,
and ``O(B·T·(d_k + d_v))`` for the reshaped inputs and outputs. The naive
parallel form would materialise every state, ``B·T·d_k·d_v``; the step loop
under autograd keeps the same. Larger ``chunk`` means fewer sequential carry
steps and less chunk-state storage but a larger pairwise tensor and more work
per step (``O(L)`` per step and key); results do not depend on it beyond
rounding.
"""

from __future__ import annotations

import mlx.core as mx

from .._checks import check_float_array, check_int
from .._params import DECAY, LOG_DECAY, Interval, check_array_values
from .._precision import carry_dtype, to_dtype
from .scan import linear_scan

__all__ = ["associative_scan", "associative_scan_log"]

DEFAULT_CHUNK = 16


def check_state(name: str, S0: mx.array, state_shape: tuple[int, int, int]) -> None:
    """Check that ``S0`` is a floating array broadcastable to ``[B, d_k, d_v]``."""
    check_float_array(name, S0)
    try:
        ok = tuple(mx.broadcast_shapes(tuple(S0.shape), state_shape)) == state_shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(S0.shape)} does not broadcast to the state shape "
            f"{state_shape} ([B, key_dim, value_dim])"
        )


def _check(q, k, v, decay, decay_name, S0, chunk, interval: Interval):
    for name, x in (("q", q), ("k", k), ("v", v), (decay_name, decay)):
        check_float_array(name, x)
        if x.ndim != 3:
            raise ValueError(
                f"{name} must have 3 dimensions [T, B, features]; got shape {tuple(x.shape)}"
            )
    if q.shape[0] < 1:
        raise ValueError(f"q must have at least one time step; got shape {tuple(q.shape)}")
    for name, x in (("k", k), (decay_name, decay)):
        if x.shape != q.shape:
            raise ValueError(
                f"{name} of shape {tuple(x.shape)} must match q of shape {tuple(q.shape)} "
                "([T, B, key_dim])"
            )
    if v.shape[:2] != q.shape[:2]:
        raise ValueError(
            f"v of shape {tuple(v.shape)} must share [T, B] = {tuple(q.shape[:2])} with q"
        )
    check_int("chunk", chunk, minimum=1)
    if S0 is not None:
        check_state("S0", S0, (q.shape[1], q.shape[2], v.shape[2]))
    check_array_values(decay_name, decay, interval)


def _chunks(x, G, L):
    """``[T, B, d]`` -> ``[G, B, L, d]``, zero-padded at the end to ``G·L`` steps."""
    T, B, d = x.shape
    if G * L != T:
        x = mx.concatenate([x, mx.zeros((G * L - T, B, d), x.dtype)])
    return x.reshape(G, L, B, d).transpose(0, 2, 1, 3)


def _scan_log(q, k, v, log_a, S0, L):
    """The chunked computation (inputs checked, fp32); returns ``(y, S_T)``."""
    T, B, dk = q.shape
    dv = v.shape[2]
    L = min(L, T)
    G = -(-T // L)
    # padded steps have k = v = 0 and log a = 0, so they leave the state unchanged
    q, k, v, la = (_chunks(x, G, L) for x in (q, k, v, log_a))
    t_idx = mx.arange(L)
    later = (t_idx[:, None] > t_idx[None, :])[..., None]  # [t, s, 1]: s < t
    causal = (t_idx[:, None] >= t_idx[None, :])[..., None]  # s <= t
    # D[t, s] = sum_{s < r <= t} log a_r, accumulated over the interval itself
    D = mx.cumsum(mx.where(later, la[:, :, :, None, :], 0.0), axis=2)
    E = mx.exp(mx.where(causal, D, -mx.inf))  # [G, B, L, L, dk], entries in [0, 1]
    scores = (q[:, :, :, None, :] * k[:, :, None, :, :] * E).sum(axis=-1)
    y = scores @ v
    to_end = mx.exp(mx.cumsum(la, axis=2, reverse=True, inclusive=False))
    writes = (k * to_end).swapaxes(-1, -2) @ v  # [G, B, dk, dv]
    from_start = mx.cumsum(la, axis=2)
    chunk_decay = mx.exp(from_start[:, :, -1, :])[..., None]  # [G, B, dk, 1]
    S0 = mx.zeros((B, dk, dv), mx.float32) if S0 is None else S0
    S_end = linear_scan(chunk_decay, writes, S0)
    S_start = mx.concatenate([mx.broadcast_to(S0, (1, B, dk, dv)), S_end[:-1]])
    y = y + (q * mx.exp(from_start)) @ S_start
    y = y.transpose(0, 2, 1, 3).reshape(G * L, B, dv)[:T]
    return y, S_end[-1]


def _run(q, k, v, log_a, S0, chunk, dtype):
    f32 = [to_dtype(x, mx.float32) for x in (q, k, v, log_a)]
    S0 = None if S0 is None else to_dtype(S0, mx.float32)
    y, S = _scan_log(*f32, S0, chunk)
    # readouts in the inputs' dtype; the state stays in the carry dtype
    return to_dtype(y, dtype), to_dtype(S, carry_dtype(dtype))


def associative_scan_log(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    log_a: mx.array,
    S0: mx.array | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[mx.array, mx.array]:
    r""":func:`associative_scan` with the decays given as ``log_a = log(a) <= 0``.

    Preferred when the decays come from a sigmoid: ``log_a = log_sigmoid(z)`` stays
    finite and accurate where ``sigmoid(z)`` itself would underflow. Same arguments,
    returns and errors as :func:`associative_scan` (``log_a`` in place of ``a``;
    its values must be finite and ``<= 0``, checked the same way).
    """
    _check(q, k, v, log_a, "log_a", S0, chunk, LOG_DECAY)
    return _run(q, k, v, log_a, S0, chunk, mx.result_type(q, k, v, log_a))


def associative_scan(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    a: mx.array,
    S0: mx.array | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[mx.array, mx.array]:
    r"""Readouts of the decaying key-value memory (see the module docstring).

    :math:`S_t = \operatorname{diag}(a_t) S_{t-1} + k_t v_t^\top`,
    :math:`y_t = S_t^\top q_t`, computed by a chunked scan that is accurate in fp32
    for any ``T`` (no cumulative products, no divisions).

    Args:
        q: queries ``[T, B, d_k]``.
        k: keys ``[T, B, d_k]``.
        v: values ``[T, B, d_v]``.
        a: decays ``[T, B, d_k]`` in ``(0, 1]``. The values are checked with one host
            read per call, skipped inside ``mx.compile`` (where they are used as
            given: ``a = 0`` then gives the right forward values but no finite
            gradient). Use :func:`associative_scan_log` for decays near 0.
        S0: initial state ``[B, d_k, d_v]`` (broadcastable; default zeros).
        chunk: time steps per chunk, ``>= 1`` (see the module docstring for memory).

    Returns:
        ``(y, S_T)``: readouts ``[T, B, d_v]`` and the state after the last step
        ``[B, d_k, d_v]``; pass ``S_T`` as ``S0`` to continue the sequence. The
        computation runs in float32; ``y`` comes back in the promoted dtype of
        ``q, k, v, a``, ``S_T`` in float32 when that dtype is a half type (the
        carry, see :mod:`mlx_snn._precision`), else in that dtype.

    Raises:
        TypeError: non-array or non-floating inputs, non-int ``chunk``.
        ValueError: ranks other than 3, shapes that disagree, ``T = 0``,
            ``chunk < 1``, ``S0`` not broadcastable to ``[B, d_k, d_v]``, decays
            outside ``(0, 1]`` (NaN included).
    """
    _check(q, k, v, a, "a", S0, chunk, DECAY)
    # the log in float32: a half-precision log would put its rounding into every decay
    return _run(q, k, v, mx.log(to_dtype(a, mx.float32)), S0, chunk, mx.result_type(q, k, v, a))
