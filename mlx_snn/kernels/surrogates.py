"""Kernel-side surrogate derivatives: one C expression per :class:`Surrogate` class.

Each entry is the body of ``float snn_surrogate_derivative(float x, float p0, float
p1)`` in the Metal dialect (``metal::abs``, ``metal::exp``; the CUDA preamble and
the test shim map them), with the class's dataclass fields bound by name to ``p0``
and ``p1`` in field order. The same text is compiled into the Metal, CUDA and shim
builds; ``tests/test_kernels_surrogates.py`` checks every expression against
:meth:`Surrogate.derivative` and fails for a subclass without one.
"""

from __future__ import annotations

import dataclasses

from .. import surrogate as _surrogate

__all__ = ["DERIVATIVES", "header", "params", "supports"]

DERIVATIVES: dict[type, str] = {
    _surrogate.FastSigmoid: (
        "const float d = 1.0f + slope * metal::abs(x);\n  return 1.0f / (d * d);"
    ),
    _surrogate.ATan: (
        "const float u = 1.5707963267948966f * alpha * x;\n  return 0.5f * alpha / (1.0f + u * u);"
    ),
    _surrogate.Sigmoid: (
        "const float e = metal::exp(-slope * metal::abs(x));\n"
        "  return slope * e / ((1.0f + e) * (1.0f + e));"
    ),
    _surrogate.Triangle: "return metal::max(1.0f - metal::abs(x) / width, 0.0f) / width;",
    _surrogate.StraightThrough: "return 1.0f;",
}

MAX_PARAMS = 2


def _fields(cls: type) -> tuple[str, ...]:
    if not dataclasses.is_dataclass(cls):
        return ()
    return tuple(f.name for f in dataclasses.fields(cls))


def supports(surrogate: _surrogate.Surrogate) -> bool:
    """True when ``surrogate``'s class has a kernel-side derivative."""
    return type(surrogate) in DERIVATIVES and len(_fields(type(surrogate))) <= MAX_PARAMS


def _check(surrogate) -> type:
    if not isinstance(surrogate, _surrogate.Surrogate):
        raise TypeError(
            f"surrogate must be a mlx_snn.surrogate.Surrogate; got {type(surrogate).__name__}"
        )
    if not supports(surrogate):
        raise ValueError(
            f"surrogate {type(surrogate).__name__} has no kernel-side derivative "
            "(mlx_snn.kernels.surrogates.DERIVATIVES); use backend='mlx'"
        )
    return type(surrogate)


def header(cls: type, name: str = "snn_surrogate_derivative") -> str:
    """The C function ``float name(float x, float p0, float p1)`` for a surrogate class."""
    if cls not in DERIVATIVES:
        raise ValueError(f"surrogate {cls.__name__} has no kernel-side derivative")
    binds = "".join(
        f"  const float {field} = p{k};\n" for k, field in enumerate(_fields(cls)[:MAX_PARAMS])
    )
    return (
        f"METAL_FUNC float {name}(float x, float p0, float p1) {{\n"
        f"{binds}  {DERIVATIVES[cls]}\n}}\n"
    )


def params(surrogate: _surrogate.Surrogate) -> tuple[float, float]:
    """The runtime values ``(p0, p1)`` of a surrogate's shape parameters."""
    _check(surrogate)
    values = [float(getattr(surrogate, f)) for f in _fields(type(surrogate))]
    return (*values, *([0.0] * (MAX_PARAMS - len(values))))
