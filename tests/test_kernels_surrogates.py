"""Kernel-side surrogate derivatives (mlx_snn/kernels/surrogates.py): one per Surrogate
class, compiled with the shim header and compared with Surrogate.derivative
(float32 vs MLX float32: within 2e-6 * max(1, |ref|))."""

from __future__ import annotations

import ctypes

import mlx.core as mx
import numpy as np
import pytest
from conftest import assert_close
from shim import harness

import mlx_snn as snn
from mlx_snn.kernels import surrogates


def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


LIBRARY_SURROGATES = [
    c for c in all_subclasses(snn.surrogate.Surrogate) if c.__module__.startswith("mlx_snn")
]


def test_every_surrogate_class_has_a_kernel_side_derivative():
    assert LIBRARY_SURROGATES
    missing = [c.__name__ for c in LIBRARY_SURROGATES if c not in surrogates.DERIVATIVES]
    assert not missing, f"add a kernel expression to mlx_snn/kernels/surrogates.py for {missing}"
    for c in LIBRARY_SURROGATES:
        assert surrogates.supports(c()), c


def build_all():
    text = '#include "shim.h"\n'
    for c in LIBRARY_SURROGATES:
        text += surrogates.header(c, name=f"sg_{c.__name__}")
        text += (
            f'extern "C" void run_{c.__name__}(const float* x, float* y, int n, float p0, '
            f"float p1) {{ for (int i = 0; i < n; ++i) y[i] = sg_{c.__name__}(x[i], p0, p1); }}\n"
        )
    return harness.build(text)


@pytest.mark.parametrize(
    "surrogate",
    [
        snn.surrogate.fast_sigmoid(),
        snn.surrogate.fast_sigmoid(3.0),
        snn.surrogate.atan(),
        snn.surrogate.atan(0.5),
        snn.surrogate.sigmoid(),
        snn.surrogate.sigmoid(10.0),
        snn.surrogate.triangle(),
        snn.surrogate.triangle(0.3),
        snn.surrogate.straight_through(),
    ],
    ids=repr,
)
def test_kernel_derivative_matches_surrogate_derivative(surrogate):
    lib = build_all()
    x = np.linspace(-3.0, 3.0, 1201, dtype=np.float32)
    x = np.concatenate([x, np.array([0.0, -0.0, 1e-8, 30.0, -30.0], np.float32)])
    y = np.empty_like(x)
    p0, p1 = surrogates.params(surrogate)
    getattr(lib, f"run_{type(surrogate).__name__}")(
        x.ctypes.data_as(ctypes.c_void_p),
        y.ctypes.data_as(ctypes.c_void_p),
        ctypes.c_int(x.size),
        ctypes.c_float(p0),
        ctypes.c_float(p1),
    )
    want = np.array(surrogate.derivative(mx.array(x)), dtype=np.float64)
    assert_close(y, want, 2e-6, repr(surrogate))


def test_surrogate_without_a_kernel_expression_is_refused():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Gaussian(snn.surrogate.Surrogate):
        width: float = 1.0

        def derivative(self, x):
            return mx.exp(-x * x / self.width)

    assert not surrogates.supports(Gaussian())
    with pytest.raises(ValueError, match="no kernel-side derivative"):
        surrogates.params(Gaussian())
