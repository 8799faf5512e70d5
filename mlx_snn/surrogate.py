r"""Surrogate gradients for the spike non-linearity.

Every surrogate computes the exact Heaviside step in the forward pass,
:math:`s = \Theta(x)` with :math:`\Theta(0) = 1`, and replaces its derivative by
a smooth :math:`\sigma'(x)` in the backward pass, where :math:`x = h - \theta`.

====================  ==================================================
name                  derivative :math:`\sigma'(x)`
====================  ==================================================
``fast_sigmoid``      :math:`1 / (1 + k|x|)^2`
``atan``              :math:`(\alpha/2) / (1 + (\pi \alpha x / 2)^2)`
``sigmoid``           :math:`k\,\mathrm{sig}(kx)(1 - \mathrm{sig}(kx))`
``triangle``          :math:`\max(0, 1 - |x|/w) / w`
``straight_through``  :math:`1`
====================  ==================================================

Each surrogate is a small frozen dataclass; calling it applies an
``mx.custom_function``, so it composes with ``mx.grad``, ``mx.value_and_grad``,
``mx.compile`` and ``mx.vmap``. Neurons also accept the names above; they
default to :data:`DEFAULT` (``"fast_sigmoid"``), AMOS to :data:`AMOS_DEFAULT`
(``"atan"``).
Write a new surrogate by subclassing :class:`Surrogate` and implementing
:meth:`Surrogate.derivative`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlx.core as mx

from ._checks import check_positive

__all__ = [
    "AMOS_DEFAULT",
    "DEFAULT",
    "NAMES",
    "ATan",
    "FastSigmoid",
    "Sigmoid",
    "StraightThrough",
    "Surrogate",
    "Triangle",
    "atan",
    "fast_sigmoid",
    "get",
    "sigmoid",
    "straight_through",
    "triangle",
]


def _make_spike_fn(derivative, strict: bool):
    @mx.custom_function
    def spike(x):
        return ((x > 0) if strict else (x >= 0)).astype(x.dtype)

    @spike.vjp
    def spike_vjp(primals, cotangent, output):
        return cotangent * derivative(primals)

    @spike.vmap
    def spike_vmap(inputs, axes):
        # elementwise: map over whatever axis the input is batched along
        if isinstance(inputs, (list, tuple)):
            inputs, axes = inputs[0], axes[0]
        return spike(inputs), axes

    return spike


class Surrogate:
    """Base class: Heaviside forward, ``derivative(x)`` backward.

    Subclasses are frozen dataclasses whose fields are the shape parameters,
    so equal surrogates compare and hash equal.
    """

    name = "surrogate"

    def derivative(self, x: mx.array) -> mx.array:
        """Surrogate derivative :math:`\\sigma'(x)`, elementwise, same shape as ``x``."""
        raise NotImplementedError

    def _fn(self, strict: bool):
        key = "_strict_fn" if strict else "_spike_fn"
        fn = self.__dict__.get(key)
        if fn is None:
            fn = _make_spike_fn(self.derivative, strict)
            object.__setattr__(self, key, fn)
        return fn

    def __call__(self, x: mx.array) -> mx.array:
        """Spikes ``x >= 0`` (same dtype as ``x``), surrogate gradient backward."""
        return self._fn(False)(x)

    def strict(self, x: mx.array) -> mx.array:
        """Spikes ``x > 0`` (snnTorch's convention), same surrogate gradient."""
        return self._fn(True)(x)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """Fast sigmoid (SuperSpike): ``1 / (1 + slope*|x|)^2``."""

    slope: float = 25.0
    name = "fast_sigmoid"

    def __post_init__(self):
        check_positive("slope", self.slope)

    def derivative(self, x):
        # 1 / y, not mx.reciprocal(y): the same value, but MLX's fused CPU kernels
        # vectorise a division and not a reciprocal
        return 1.0 / mx.square(1.0 + self.slope * mx.abs(x))


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent: ``(alpha/2) / (1 + (pi*alpha*x/2)^2)``."""

    alpha: float = 2.0
    name = "atan"

    def __post_init__(self):
        check_positive("alpha", self.alpha)

    def derivative(self, x):
        return (0.5 * self.alpha) / (1.0 + mx.square((0.5 * math.pi * self.alpha) * x))


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic sigmoid: ``slope * sig(slope*x) * (1 - sig(slope*x))``."""

    slope: float = 4.0
    name = "sigmoid"

    def __post_init__(self):
        check_positive("slope", self.slope)

    def derivative(self, x):
        sg = mx.sigmoid(self.slope * x)
        return self.slope * sg * (1.0 - sg)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle: ``max(0, 1 - |x|/width) / width``."""

    width: float = 1.0
    name = "triangle"

    def __post_init__(self):
        check_positive("width", self.width)

    def derivative(self, x):
        return mx.maximum(1.0 - mx.abs(x) / self.width, 0.0) / self.width


@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """Straight-through estimator: derivative 1 everywhere."""

    name = "straight_through"

    def derivative(self, x):
        return mx.ones_like(x)


def fast_sigmoid(slope: float = 25.0) -> FastSigmoid:
    """Fast-sigmoid surrogate, ``d/dx = 1 / (1 + slope*|x|)^2``."""
    return FastSigmoid(slope)


def atan(alpha: float = 2.0) -> ATan:
    """Arctangent surrogate, ``d/dx = (alpha/2) / (1 + (pi/2*alpha*x)^2)``."""
    return ATan(alpha)


def sigmoid(slope: float = 4.0) -> Sigmoid:
    """Sigmoid surrogate, ``d/dx = slope*sig(slope*x)*(1 - sig(slope*x))``."""
    return Sigmoid(slope)


def triangle(width: float = 1.0) -> Triangle:
    """Triangle surrogate, ``d/dx = max(0, 1 - |x|/width) / width``."""
    return Triangle(width)


def straight_through() -> StraightThrough:
    """Straight-through surrogate, ``d/dx = 1``."""
    return StraightThrough()


NAMES = {
    "fast_sigmoid": fast_sigmoid,
    "atan": atan,
    "sigmoid": sigmoid,
    "triangle": triangle,
    "straight_through": straight_through,
}

#: The surrogate of every neuron and function that takes one, unless said otherwise.
DEFAULT = "fast_sigmoid"
#: AMOS neurons default to the arctangent surrogate of the PTTFS setup they come from.
AMOS_DEFAULT = "atan"


def get(surrogate: str | Surrogate) -> Surrogate:
    """Resolve a surrogate given by name (default parameters) or as an object.

    Raises:
        ValueError: unknown name.
        TypeError: neither a string nor a :class:`Surrogate`.
    """
    if isinstance(surrogate, Surrogate):
        return surrogate
    if isinstance(surrogate, str):
        if surrogate not in NAMES:
            raise ValueError(
                f"surrogate must be one of {', '.join(repr(n) for n in NAMES)} "
                f"or a Surrogate object; got {surrogate!r}"
            )
        return NAMES[surrogate]()
    raise TypeError(
        f"surrogate must be a name or a mlx_snn.surrogate.Surrogate; got {type(surrogate).__name__}"
    )
