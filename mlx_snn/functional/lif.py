r"""Leaky integrate-and-fire (LIF) neuron, one step and whole sequences.

With input current :math:`x_t`, decay :math:`\beta`, threshold :math:`\theta` and
Heaviside :math:`\Theta` (:math:`\Theta(0) = 1`), ``reset_timing="immediate"``
(the default) computes

.. math::

    h_t &= \beta v_{t-1} + x_t                 \\
    s_t &= \Theta(h_t - \theta)                \\
    v_t &= h_t - \theta s_t \quad (\text{subtract}),\quad
           h_t (1 - s_t) \quad (\text{zero}),\quad
           h_t \quad (\text{none})

with :math:`v_{-1}` the given state (zeros by default). ``h`` is the membrane
before reset (returned as ``mem``) and :math:`v_{T-1}` the state that continues
the sequence. ``detach_reset=True`` stops the gradient through the :math:`s_t`
inside the reset term.

``reset_timing="delayed"`` reproduces snnTorch's ``Leaky`` (reset of the
previous step's spike, strict comparison, reset always detached):

.. math::

    r_t &= \Theta_{>}(m_{t-1} - \theta) \quad (\text{no gradient}) \\
    m_t &= \beta m_{t-1} + x_t - \theta r_t \quad (\text{subtract}),\quad
           \beta (1 - r_t) m_{t-1} + x_t \quad (\text{zero}) \\
    s_t &= \Theta_{>}(m_t - \theta)

Here ``mem`` is :math:`m_t` and the state is :math:`m_{T-1}`.

The backward pass replaces :math:`\Theta'` by the surrogate derivative
:math:`\sigma'(h_t - \theta)`. :func:`~mlx_snn.functional.lif_sequence` is the one
entry point for whole sequences: it checks the arguments, picks the algorithm (the compiled step
loop of :mod:`~mlx_snn.functional.lif_forward`, or the exact parallel scans of
:mod:`~mlx_snn.functional.parallel_lif`) and the backend, and differentiates with
the hand-written reverse recurrence of :mod:`~mlx_snn.functional.lif_backward`
over the saved membrane (no autograd through the time loop).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import mlx.core as mx

from .. import backends, kernels
from .. import surrogate as _surrogate
from .._checks import (
    check_choice,
    check_float_array,
    check_int,
    check_optional_bool,
    check_sequence,
)
from .._params import POSITIVE, UNIT, check_state, functional_param
from .._precision import carry_dtype
from ..kernels import registry as _kernel_registry
from ._untraced import untraced_function
from .lif_backward import backward_delayed, backward_immediate
from .lif_forward import RESETS, TIMINGS, delayed_charge, loop_forward, reset_membrane
from .parallel_lif import DEFAULT_CHUNK, check_parallel_mode, choose_algorithm, run_parallel

ALGORITHMS = ("auto", "loop", "parallel")

__all__ = [
    "ALGORITHMS",
    "RESETS",
    "TIMINGS",
    "LIFSequence",
    "lif_sequence",
    "lif_step",
    "parallel_lif_sequence",
]


class LIFSequence(NamedTuple):
    """Result of :func:`lif_sequence`.

    Attributes:
        spikes: ``[T, B, ...]`` spikes (0/1, dtype of the input).
        mem: ``[T, B, ...]`` membrane compared with the threshold (before reset).
        state: ``[B, ...]`` state after the last step; pass as ``v0`` to continue.
    """

    spikes: mx.array
    mem: mx.array
    state: mx.array


def lif_options(reset, reset_timing, surrogate, detach_reset) -> tuple[_surrogate.Surrogate, bool]:
    """Internal: check the LIF mode options; return ``(surrogate, detach_reset)`` resolved.

    Shared by the functions here and the constructor of :class:`mlx_snn.LIF`.
    """
    check_choice("reset", reset, RESETS)
    check_choice("reset_timing", reset_timing, TIMINGS)
    surrogate = _surrogate.get(surrogate)
    if detach_reset is None:
        detach_reset = reset_timing == "delayed"
    if not isinstance(detach_reset, bool):
        raise TypeError(f"detach_reset must be a bool or None; got {type(detach_reset).__name__}")
    if reset_timing == "delayed" and not detach_reset:
        raise ValueError(
            "detach_reset=False is not supported with reset_timing='delayed': the "
            "delayed (snnTorch) reset is always detached; pass detach_reset=None or True"
        )
    return surrogate, detach_reset


def kernel_limit(algorithm: str, surrogate: _surrogate.Surrogate) -> str | None:
    """Internal: why a LIF call cannot run on the kernels (``None``: it can), for
    :func:`mlx_snn.backends.resolve`. Shared with the constructor of :class:`mlx_snn.LIF`."""
    option = ("algorithm", algorithm) if algorithm == "parallel" else None
    return _kernel_registry.kernel_limit(surrogate, option)


def _beta_threshold(beta, threshold, feature_shape, dtype):
    beta = functional_param("beta", beta, feature_shape, dtype, UNIT)
    return beta, functional_param("threshold", threshold, feature_shape, dtype, POSITIVE)


def lif_step(
    x_t: mx.array,
    v: mx.array | None,
    beta: float | mx.array = 0.9,
    threshold: float | mx.array = 1.0,
    reset: str = "subtract",
    surrogate: str | _surrogate.Surrogate = _surrogate.DEFAULT,
    detach_reset: bool | None = None,
    reset_timing: str = "immediate",
) -> tuple[mx.array, mx.array, mx.array]:
    """One LIF step (equations in the module docstring), differentiable by autograd.

    Args:
        x_t: input current ``[B, ...]``.
        v: state ``[B, ...]`` from the previous step, or ``None`` for zeros.
        beta, threshold, reset, surrogate, detach_reset, reset_timing: as in
            :func:`lif_sequence` (array values are checked the same way, once per call).

    Returns:
        ``(s_t, h_t, v_t)``: spikes, membrane before reset, new state; all ``[B, ...]``.
    """
    surrogate, detach_reset = lif_options(reset, reset_timing, surrogate, detach_reset)
    check_float_array("x_t", x_t, min_ndim=1)
    beta, threshold = _beta_threshold(beta, threshold, tuple(x_t.shape[1:]), x_t.dtype)
    v = check_state("v", v, x_t.shape, x_t.dtype)
    if reset_timing == "delayed":
        r = mx.stop_gradient((v > threshold).astype(x_t.dtype))
        m = delayed_charge(v, x_t, r, beta, threshold, reset)
        return surrogate.strict(m - threshold), m, m
    h = beta * v + x_t
    s = surrogate(h - threshold)
    v_new = reset_membrane(h, mx.stop_gradient(s) if detach_reset else s, threshold, reset)
    return s, h, v_new


@functools.cache
def _loop_fn(reset, timing, surrogate, detach, need_beta, need_thr):
    """The step loop with its hand-written backward (a custom function whose graphs
    are fused under ``mx.grad``, ``functional/_untraced.py``), computing in
    :func:`~mlx_snn._precision.carry_dtype`; returns ``(spikes, mem)`` in the input's
    dtype and ``state`` in the carry dtype."""
    cfg = (reset, surrogate, detach, need_beta, need_thr)
    backward = backward_immediate if timing == "immediate" else backward_delayed
    lif = untraced_function(
        lambda x, v0, beta, threshold: loop_forward(reset, timing, x, v0, beta, threshold),
        lambda primals, cotangents, outputs: backward(cfg, primals, cotangents, outputs),
        n_outputs=3,
        forward_for_grad=lambda x, v0, beta, threshold: loop_forward(
            reset, timing, x, v0, beta, threshold, membrane_first=True
        ),
    )

    def run(x, v0, beta, threshold):
        s, h, v = lif(x, v0, beta, threshold)
        return s, h.astype(x.dtype), v  # the state stays in the carry dtype

    return run


def _grad_flag(flag_name: str, flag: object, name: str, value: object) -> bool:
    """``None`` means "differentiate iff ``value`` is an array"; ``True`` needs an array."""
    flag = check_optional_bool(flag_name, flag)
    if flag is None:
        return isinstance(value, mx.array)
    if flag and not isinstance(value, mx.array):
        raise ValueError(
            f"{flag_name}=True needs {name} as an mx.array (a Python float has no gradient); "
            f"got {type(value).__name__}"
        )
    return flag


def lif_sequence(
    x: mx.array,
    beta: float | mx.array = 0.9,
    threshold: float | mx.array = 1.0,
    reset: str = "subtract",
    surrogate: str | _surrogate.Surrogate = _surrogate.DEFAULT,
    detach_reset: bool | None = None,
    v0: mx.array | None = None,
    backend: str = "auto",
    reset_timing: str = "immediate",
    *,
    algorithm: str = "auto",
    chunk: int | None = None,
    beta_grad: bool | None = None,
    threshold_grad: bool | None = None,
) -> LIFSequence:
    """Run a LIF neuron over a whole time-major sequence.

    Args:
        x: input current ``[T, B, ...]`` (floating point, ``T >= 1``; an empty batch
            gives empty outputs). Float16 and bfloat16 are computed in float32
            (membrane, state, parameters and the backward pass); the results come
            back in ``x``'s dtype.
        beta: decay in ``[0, 1]``; a float (constant) or an array broadcastable to
            the feature shape ``x.shape[2:]``. Arrays are used as given: clip them
            yourself if they are learned (``snn.LIF`` does).
        threshold: firing threshold, finite and ``> 0``; float or array like ``beta``.
            The values of array ``beta``/``threshold`` are checked with one host
            read per call (never per step); inside ``mx.compile`` (where arrays
            cannot be read back) that check is skipped and the values are used as
            given.
        reset: ``"subtract"`` | ``"zero"`` | ``"none"``.
        surrogate: name or :class:`mlx_snn.surrogate.Surrogate` for the backward.
            Default :data:`mlx_snn.surrogate.DEFAULT`.
        detach_reset: stop the gradient through the reset term (no effect with
            ``reset="none"``). ``None`` means ``False`` for immediate timing and
            ``True`` for delayed timing.
        v0: initial state ``[B, ...]`` (default zeros).
        backend: ``"auto"`` | ``"mlx"`` | ``"metal"`` | ``"cuda"``. ``"metal"`` and
            ``"cuda"`` run the fused LIF kernels (``mlx_snn.kernels.lif_sequence``: one
            thread per neuron loops over time, every reset and timing) and are available
            only where that device and the kernel sources are present (``mlx-snn info`` and
            :func:`mlx_snn.backends.available` list them). ``"auto"`` (default) picks
            ``"metal"`` > ``"cuda"`` > ``"mlx"``, and stays on MLX for a call the kernels do
            not run: ``algorithm="parallel"``, a surrogate without a kernel-side derivative
            (``mlx_snn.kernels.supports_surrogate``; every built-in surrogate has one).
            Naming a kernel backend for such a call raises ``ValueError``. The kernels
            accumulate in float32 and return spikes, mem and state in the input's dtype (the
            MLX path computes in the input's dtype).
        reset_timing: ``"immediate"`` | ``"delayed"`` (snnTorch ``Leaky``).
        algorithm: ``"loop"`` (compiled step loop, every mode), ``"parallel"``
            (exact-reset parallel scans, ``mlx_snn.functional.parallel_lif``;
            the modes ``parallel_lif.check_parallel_mode``
            accepts) or ``"auto"`` (default): the parallel path where the shape
            rule of ``parallel_lif.choose_algorithm`` says
            it is faster (few neurons, long sequences), the loop elsewhere. Results
            agree up to fp32 rounding of exact threshold ties. On a kernel backend
            ``"loop"`` and ``"auto"`` run the kernel (a fused time loop: it reads the
            input once and writes each output once, where the parallel algorithm
            exists to spread a CPU's work over time steps); ``"parallel"`` is an MLX
            algorithm (see ``backend``).
        chunk: steps per chunk of the parallel algorithm (``>= 1``, default 64);
            an error with ``algorithm="loop"``, which has no chunks.
        beta_grad, threshold_grad: whether ``beta`` / ``threshold`` get gradients.
            ``None`` (default): exactly when an array is passed. ``False`` treats
            an array as a constant (zero gradient, less work); ``True`` needs an array.

    Returns:
        :class:`LIFSequence` ``(spikes [T, B, ...], mem [T, B, ...], state [B, ...])``.

    Raises:
        ValueError: unknown option string, beta outside ``[0, 1]``, threshold ``<= 0``
            or not finite (NaN included, arrays too), input with fewer than 2
            dimensions or no time steps, mismatched state, a mode the parallel
            algorithm does not implement with ``algorithm="parallel"``, ``chunk``
            with ``algorithm="loop"``, an unavailable backend, a kernel backend for
            a call the kernels do not run (see ``backend``).
        TypeError: non-floating input, state or parameters, non-bool gradient flags,
            non-int ``chunk``.
    """
    surrogate, detach_reset = lif_options(reset, reset_timing, surrogate, detach_reset)
    check_choice("algorithm", algorithm, ALGORITHMS)
    if chunk is not None:
        check_int("chunk", chunk, minimum=1)
        if algorithm == "loop":
            raise ValueError(
                f"chunk sets the parallel algorithm's chunk length; got chunk={chunk} "
                "with algorithm='loop', which has none"
            )
    need_beta = _grad_flag("beta_grad", beta_grad, "beta", beta)
    need_thr = _grad_flag("threshold_grad", threshold_grad, "threshold", threshold)
    check_sequence("x", x)
    beta, threshold = _beta_threshold(beta, threshold, tuple(x.shape[2:]), carry_dtype(x.dtype))
    v0 = check_state("v0", v0, x.shape[1:], carry_dtype(x.dtype))
    if algorithm == "parallel":
        check_parallel_mode(reset, reset_timing)
    # Backend dispatch: every argument is checked above; the kernels run every mode.
    backend = backends.resolve(backend, kernel_limit(algorithm, surrogate))
    if x.size == 0:  # empty in, empty out (B = 0 or an empty feature axis)
        return LIFSequence(mx.zeros_like(x), mx.zeros_like(x), v0)
    # the same mode and gradient flags for the kernels and the parallel algorithm
    mode = {
        "reset": reset,
        "reset_timing": reset_timing,
        "surrogate": surrogate,
        "detach_reset": detach_reset,
        "beta_grad": need_beta,
        "threshold_grad": need_thr,
    }
    if backend != "mlx":  # the kernels take v0 in x's dtype; the state returns as the carry's
        s, h, v = kernels.lif_sequence(
            x, v0.astype(x.dtype), beta, threshold, **mode, backend=backend
        )
        return LIFSequence(s, h, v.astype(v0.dtype))
    if algorithm == "auto":
        algorithm = choose_algorithm(tuple(x.shape), reset, reset_timing)
    if algorithm == "parallel":
        chunk = DEFAULT_CHUNK if chunk is None else chunk
        out = run_parallel(x, v0, beta, threshold, **mode, chunk=chunk)
    else:
        fn = _loop_fn(reset, reset_timing, surrogate, detach_reset, need_beta, need_thr)
        out = fn(x, v0, beta, threshold)
    return LIFSequence(*out)


def parallel_lif_sequence(
    x: mx.array,
    beta: float | mx.array = 0.9,
    threshold: float | mx.array = 1.0,
    reset: str = "subtract",
    surrogate: str | _surrogate.Surrogate = _surrogate.DEFAULT,
    detach_reset: bool | None = None,
    v0: mx.array | None = None,
    backend: str = "auto",
    chunk: int = DEFAULT_CHUNK,
    *,
    reset_timing: str = "immediate",
    beta_grad: bool | None = None,
    threshold_grad: bool | None = None,
) -> LIFSequence:
    """:func:`lif_sequence` with ``algorithm="parallel"``: same arguments and results.

    ``x``, ``beta``, ``threshold``, ``reset``, ``surrogate``, ``detach_reset``, ``v0``,
    ``reset_timing``, ``beta_grad`` and ``threshold_grad`` are as in :func:`lif_sequence`.
    ``backend``: as in :func:`lif_sequence`, but the parallel algorithm runs on MLX:
    ``backend="auto"`` resolves to ``"mlx"`` and a kernel backend raises ``ValueError``.

    Args:
        chunk: steps ``K`` resolved per chunk (rounds run per chunk), ``>= 1``.

    Returns:
        :class:`LIFSequence` ``(spikes [T, B, ...], mem [T, B, ...], state [B, ...])``.

    Raises:
        ValueError: a mode the parallel algorithm does not implement (see
            ``parallel_lif.check_parallel_mode``), and every
            error of :func:`lif_sequence`.
        TypeError: as :func:`lif_sequence`.
    """
    return lif_sequence(
        x,
        beta,
        threshold,
        reset,
        surrogate,
        detach_reset,
        v0,
        backend,
        reset_timing,
        algorithm="parallel",
        chunk=chunk,
        beta_grad=beta_grad,
        threshold_grad=threshold_grad,
    )
