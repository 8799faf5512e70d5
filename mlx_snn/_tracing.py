"""Reading array values on the host, which ``mx.compile`` and ``mx.vmap`` tracing forbid.

While ``mx.compile`` or ``mx.vmap`` traces a function, the arrays that depend on its inputs are
placeholders without values. Evaluating one (``.item()``, ``np.array``, ``mx.eval``) raises
``ValueError("[eval] Attempting to eval an array during function transformations like compile
or vmap is not allowed.")`` (MLX 0.32; ``tests/test_tracing.py`` pins it). MLX has no public
"is this a tracer" query, so value checks try the read and treat that error as "traced".
``mx.grad``, ``mx.vjp``, ``mx.jvp``, ``mx.checkpoint`` and ``mx.custom_function`` evaluate
normally, and so do arrays inside a compiled function that do not depend on its inputs
(closure constants): value checks run there.
"""

from __future__ import annotations

import mlx.core as mx

__all__ = ["host_values"]

_TRACING_ERROR = "during function transformations"


def host_values(*arrays: mx.array) -> tuple[bool | int | float, ...] | None:
    """Evaluate scalar ``arrays`` and return their values, or ``None`` while they are traced.

    Args:
        arrays: scalar arrays (e.g. ``mx.min(x)``) whose values a check needs.

    Returns:
        ``tuple(a.item() for a in arrays)``, or ``None`` under ``mx.compile`` / ``mx.vmap``
        tracing, where the values do not exist yet (the caller then skips its check).
    """
    try:
        mx.eval(*arrays)
    except ValueError as err:
        if _TRACING_ERROR in str(err):
            return None
        raise
    return tuple(a.item() for a in arrays)
