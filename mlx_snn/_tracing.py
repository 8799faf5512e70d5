"""Reading array values on the host, which ``mx.compile`` and ``mx.vmap`` tracing forbid.

While ``mx.compile`` or ``mx.vmap`` traces a function, the arrays that depend on its inputs are
placeholders without values. Evaluating one (``.item()``, ``np.array``, ``mx.eval``) raises
``ValueError("[eval] Attempting to eval an array during function transformations like compile
or vmap is not allowed.")`` (MLX 0.32; ``tests/test_tracing.py`` pins it). MLX has no public
"is this a tracer" query, so value checks try the read and treat that error as "traced".
``mx.grad``, ``mx.vjp``, ``mx.jvp``, ``mx.checkpoint`` and ``mx.custom_function`` evaluate
normally, and so do arrays inside a compiled function that do not depend on its inputs
(closure constants): value checks run there.

:func:`deferred_reads` makes the library behave as under ``mx.compile`` on purpose: code
that MLX differentiates while it builds a graph it must not evaluate yet (the
recomputation of a checkpointed chunk, :func:`mlx_snn.training.run_chunked`) would
otherwise evaluate, and so keep alive, every chunk's activations at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import mlx.core as mx

__all__ = ["deferred_evaluable", "deferred_reads", "host_values", "readable", "reads_deferred"]

_TRACING_ERROR = "during function transformations"
_deferred = threading.local()


@contextlib.contextmanager
def deferred_reads(evaluable: bool = False) -> Iterator[None]:
    """Inside: no host reads of array values on this thread (:func:`host_values` returns
    ``None`` and the checks that use it are skipped, as under ``mx.compile``).

    ``evaluable=True`` says that the caller has checked that its arrays could be
    evaluated (no ``mx.compile`` or ``mx.vmap`` is tracing them: see
    :func:`deferred_evaluable`); they only must not be evaluated yet."""
    before = reads_deferred(), deferred_evaluable()
    _deferred.on, _deferred.evaluable = True, evaluable
    try:
        yield
    finally:
        _deferred.on, _deferred.evaluable = before


def reads_deferred() -> bool:
    """Whether this thread is inside :func:`deferred_reads`."""
    return getattr(_deferred, "on", False)


def deferred_evaluable() -> bool:
    """Whether this thread is inside ``deferred_reads(evaluable=True)``: code that would
    read a value only to learn whether arrays are traced by ``mx.compile`` or ``mx.vmap``
    (the choice of the LIF loop's fused graphs) can take "not traced" without the read."""
    return reads_deferred() and getattr(_deferred, "evaluable", False)


def host_values(*arrays: mx.array) -> tuple[bool | int | float, ...] | None:
    """Evaluate scalar ``arrays`` and return their values, or ``None`` while they are traced.

    Args:
        arrays: scalar arrays (e.g. ``mx.min(x)``) whose values a check needs.

    Returns:
        ``tuple(a.item() for a in arrays)``, or ``None`` under ``mx.compile`` / ``mx.vmap``
        tracing, where the values do not exist yet (the caller then skips its check), and
        inside :func:`deferred_reads`.
    """
    if reads_deferred():
        return None
    try:
        mx.eval(*arrays)
    except ValueError as err:
        if _TRACING_ERROR in str(err):
            return None
        raise
    return tuple(a.item() for a in arrays)


def readable(*arrays: mx.array) -> bool:
    """Whether ``arrays`` can be read back now (no ``mx.compile`` or ``mx.vmap`` traces
    them, not inside :func:`deferred_reads`): one :func:`host_values` read of one
    element of each non-empty array; ``False`` when all are empty."""
    probes = [a[(0,) * a.ndim] for a in arrays if a.size]
    return bool(probes) and host_values(*probes) is not None
