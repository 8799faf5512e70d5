"""Neuron parameters: the one home for checking them and for storing them in modules.

Decays (``beta``, ``a``), thresholds and time constants are checked here, both
where a function receives them (:func:`functional_param`, :func:`check_threshold`)
and where a module is built (:func:`module_param`), and modules store them with
:func:`store_param` (a float stays a float; an array becomes a float32 parameter,
frozen unless it is learned).

Checking the values of an ``mx.array`` reads them on the host: one sync per call,
on the parameter only (never per time step). Inside ``mx.compile`` or ``mx.vmap``
an array cannot be read back; there the value check is skipped (dtype and shape
are still checked) and the values are used as given. The public functions say
this in their docstrings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ._checks import check_broadcastable_to_features, check_float_array, check_sequence
from ._tracing import host_values

__all__ = [
    "DECAY",
    "LOG_DECAY",
    "POSITIVE",
    "UNIT",
    "Interval",
    "array_values_ok",
    "check_array_values",
    "check_module_state",
    "check_scalar",
    "check_state",
    "check_tau",
    "check_threshold",
    "check_unit_or_none",
    "functional_param",
    "module_param",
    "param_repr",
    "store_param",
]


class Interval(NamedTuple):
    """Allowed values: ``test`` is elementwise (Python floats, numpy and MLX arrays);
    ``scalar`` / ``array`` complete "``{name} must ...``" for one value / an array."""

    scalar: str
    array: str
    test: Callable


UNIT = Interval("lie in [0, 1]", "lie in [0, 1] everywhere", lambda v: (v >= 0) & (v <= 1))
POSITIVE = Interval(
    "be > 0 and finite", "be > 0 and finite everywhere", lambda v: (v > 0) & (v < math.inf)
)
DECAY = Interval("lie in (0, 1]", "lie in (0, 1] everywhere", lambda v: (v > 0) & (v <= 1))
LOG_DECAY = Interval(
    "be finite and <= 0",
    "be finite and <= 0 everywhere (the log of a decay in (0, 1])",
    lambda v: (v <= 0) & (v > -math.inf),
)


def check_scalar(name: str, value: object, interval: Interval) -> float:
    """A Python number inside ``interval`` (NaN never is), returned as ``float``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    if not interval.test(float(value)):
        raise ValueError(f"{name} must {interval.scalar}; got {value!r}")
    return float(value)


def array_values_ok(x: mx.array, interval: Interval) -> bool | None:
    """Whether every value of ``x`` lies in ``interval``; ``None`` when ``x`` cannot be
    read back (traced by ``mx.compile`` or ``mx.vmap``, or inside
    :func:`mlx_snn._tracing.deferred_reads`)."""
    values = host_values(mx.all(interval.test(x)))
    return None if values is None else bool(values[0])


def check_array_values(name: str, x: mx.array, interval: Interval) -> None:
    """Raise ``ValueError`` if a value of ``x`` is outside ``interval`` (one host read;
    skipped under ``mx.compile`` / ``mx.vmap``)."""
    if array_values_ok(x, interval) is False:
        bad = np.asarray(mx.stop_gradient(x).astype(mx.float32)).ravel()
        bad = bad[~interval.test(bad)]
        raise ValueError(
            f"{name} must {interval.array}; got {bad.size} of {x.size} values outside "
            f"(e.g. {float(bad[0])!r})"
        )


def functional_param(
    name: str,
    value: float | mx.array,
    feature_shape: tuple[int, ...],
    dtype: mx.Dtype,
    interval: Interval,
) -> mx.array:
    """A function's ``beta``/``threshold``: a number, or a floating array broadcastable
    to ``feature_shape`` whose values are checked (see the module docstring);
    returned as an array of ``dtype``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return mx.array(check_scalar(name, value, interval), dtype=dtype)
    if not isinstance(value, mx.array):
        raise TypeError(f"{name} must be a float or an mx.array; got {type(value).__name__}")
    check_float_array(name, value)
    check_broadcastable_to_features(name, tuple(value.shape), feature_shape)
    check_array_values(name, value, interval)
    return value.astype(dtype)


def check_threshold(
    threshold: float | mx.array, feature_shape: tuple[int, ...], dtype: mx.Dtype
) -> float | mx.array:
    """A non-differentiated threshold ``> 0`` (AMOS, first spike, TTFS): a float stays a
    float; an array is checked like :func:`functional_param` and returned as a
    ``stop_gradient`` array of ``dtype``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, mx.array)):
        raise TypeError(f"threshold must be a float or an mx.array; got {type(threshold).__name__}")
    if isinstance(threshold, mx.array):
        return mx.stop_gradient(
            functional_param("threshold", threshold, feature_shape, dtype, POSITIVE)
        )
    return check_scalar("threshold", threshold, POSITIVE)


def check_tau(tau: object) -> float:
    """A membrane time constant: a finite number ``> 1`` (the decay is ``1 - 1/tau``)."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float)):
        raise TypeError(f"tau must be a number; got {type(tau).__name__}")
    if not 1 < tau < math.inf:
        raise ValueError(f"tau must be a finite number > 1 (the decay is 1 - 1/tau); got {tau!r}")
    return float(tau)


def check_unit_or_none(name: str, value: float | None) -> float:
    """A float in ``[0, 1]``, or ``None`` meaning 1.0."""
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1] or None; got {type(value).__name__}")
    if not UNIT.test(float(value)):
        raise ValueError(f"{name} must lie in [0, 1] (None means 1.0); got {value!r}")
    return float(value)


def check_state(name: str, v: mx.array | None, shape: tuple[int, ...], dtype: mx.Dtype) -> mx.array:
    """Initial state of ``shape`` (zeros when ``None``), cast to ``dtype``; ``name`` is the
    argument the caller wrote (``state`` for modules, ``v0``/``h0`` for functions)."""
    if v is None:
        return mx.zeros(shape, dtype=dtype)
    check_float_array(name, v)
    if tuple(v.shape) != tuple(shape):
        raise ValueError(
            f"{name} has shape {tuple(v.shape)}, expected {tuple(shape)} "
            "(the input's shape without the time axis)"
        )
    return v.astype(dtype)


def check_module_state(x: object, state: mx.array | None) -> None:
    """A sequence module's ``x [T, B, ...]`` and ``state [B, ...]`` (if given), checked
    under the names its caller wrote (the functions it calls name them ``v0``/``h0``)."""
    if state is not None:
        check_state("state", state, check_sequence("x", x).shape[1:], x.dtype)


def module_param(name: str, value: object, interval: Interval) -> float | np.ndarray:
    """A module's fixed or initial parameter: a number (returned as ``float``) or an
    array-like (``mx.array``, numpy array, list; returned as a float64 numpy array),
    every value inside ``interval``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a float or an array; got bool")
    if isinstance(value, (int, float)):
        return check_scalar(name, value, interval)
    if isinstance(value, mx.array):
        value = np.asarray(value.astype(mx.float32))
    if not isinstance(value, (np.ndarray, list, tuple)):
        raise TypeError(f"{name} must be a float or an array; got {type(value).__name__}")
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(interval.test(arr)):
        raise ValueError(f"{name} must {interval.array}; got {value!r}")
    return arr


def store_param(module: nn.Module, name: str, value: float | np.ndarray, learn: bool) -> None:
    """Store a checked parameter on ``module``: a fixed float stays a plain float; a learned
    value or an array becomes a float32 ``mx.array``, frozen unless learned."""
    if learn or not isinstance(value, float):
        setattr(module, name, mx.array(value, dtype=mx.float32))
        if not learn:
            module.freeze(keys=[name], strict=True)
    else:
        setattr(module, name, value)


def param_repr(value: float | mx.array) -> str:
    """How a module's ``repr`` shows a stored parameter: the float, or the array's shape."""
    return f"{value}" if isinstance(value, float) else f"array{tuple(value.shape)}"
