"""Argument checks shared by the public functions (messages name the argument)."""

from __future__ import annotations

from collections.abc import Iterable

import mlx.core as mx

FLOAT_DTYPES = (mx.float32, mx.float16, mx.bfloat16)


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}"
        )
    return value


def check_float_array(name: str, x: object, min_ndim: int = 0) -> mx.array:
    """Check that ``x`` is a floating-point ``mx.array`` with at least ``min_ndim`` dims."""
    if not isinstance(x, mx.array):
        raise TypeError(f"{name} must be an mx.array; got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have a floating dtype (float32, float16 or bfloat16); got {x.dtype}"
        )
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions "
            f"(time-major [T, B, ...]); got shape {tuple(x.shape)}"
        )
    return x


def check_positive(name: str, value: float) -> float:
    """Check that a Python number is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Check that ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def check_broadcastable_to_features(
    name: str, shape: tuple[int, ...], feature_shape: tuple[int, ...]
) -> None:
    """Check that a parameter of ``shape`` broadcasts to ``feature_shape`` unchanged."""
    ok = len(shape) <= len(feature_shape) and all(
        p in (1, f) for p, f in zip(reversed(shape), reversed(feature_shape), strict=False)
    )
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(shape)} does not broadcast to the feature "
            f"shape {tuple(feature_shape)} (the input's trailing dimensions after [T, B])"
        )


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a ``bool``; anything else (``"no"``, ``1``, ``None``) is a
    ``TypeError``, so a flag can never be read as true by accident."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}")
    return value


def check_optional_bool(name: str, value: object) -> bool | None:
    """:func:`check_bool` that also accepts ``None`` (for "decide from the other arguments")."""
    return None if value is None else check_bool(name, value)


def check_sequence(name: str, x: object) -> mx.array:
    """A floating ``[T, B, ...]`` array with ``T >= 1`` (``B`` and the features may be 0)."""
    check_float_array(name, x, min_ndim=2)
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one time step; got shape {tuple(x.shape)}")
    return x
