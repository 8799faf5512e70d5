"""Surrogates: Heaviside forward, the documented derivative backward, under every transform."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import assert_close

from mlx_snn import surrogate

PARAMS = {
    "fast_sigmoid": {"slope": 7.0},
    "atan": {"alpha": 3.0},
    "sigmoid": {"slope": 2.5},
    "triangle": {"width": 0.5},
    "straight_through": {},
}
X = np.concatenate([np.linspace(-3, 3, 61), [0.0, 1e-7, -1e-7]]).astype(np.float32)


@pytest.mark.parametrize("name", list(PARAMS))
def test_forward_is_heaviside_with_theta_zero_equal_one(name):
    s = surrogate.NAMES[name](**PARAMS[name])(mx.array(X))
    np.testing.assert_array_equal(np.array(s), (X >= 0).astype(np.float32))
    strict = surrogate.NAMES[name](**PARAMS[name]).strict(mx.array(X))
    np.testing.assert_array_equal(np.array(strict), (X > 0).astype(np.float32))


@pytest.mark.parametrize("name", list(PARAMS))
def test_gradient_is_the_documented_derivative(name):
    f = surrogate.NAMES[name](**PARAMS[name])
    g = mx.grad(lambda x: f(x).sum())(mx.array(X))
    assert_close(g, ref.surrogate_derivative(name, X, **PARAMS[name]), 1e-6, name)
    g_strict = mx.grad(lambda x: f.strict(x).sum())(mx.array(X))
    assert_close(g_strict, ref.surrogate_derivative(name, X, **PARAMS[name]), 1e-6, name)


@pytest.mark.parametrize("name", list(PARAMS))
def test_default_parameters_match_the_api_contract(name):
    defaults = {"fast_sigmoid": 25.0, "atan": 2.0, "sigmoid": 4.0, "triangle": 1.0}
    f = surrogate.get(name)
    expected = ref.surrogate_derivative(name, X)
    assert_close(f.derivative(mx.array(X)), expected, 1e-6, name)
    if name in defaults:
        assert next(iter(f.__dict__.values())) == defaults[name]


@pytest.mark.parametrize("name", list(PARAMS))
def test_works_under_value_and_grad_compile_and_vmap(name):
    f = surrogate.NAMES[name](**PARAMS[name])
    x = mx.array(X.reshape(4, 16))
    expected = ref.surrogate_derivative(name, X, **PARAMS[name]).reshape(4, 16)

    def loss(x_):
        return (f(x_) * 2.0).sum()

    value, g = mx.value_and_grad(loss)(x)
    assert value.item() == 2.0 * float((X >= 0).sum())
    assert_close(g, 2.0 * expected, 1e-6)
    assert_close(mx.compile(mx.grad(loss))(x), 2.0 * expected, 1e-6)
    assert_close(mx.vmap(mx.grad(loss))(x), 2.0 * expected, 1e-6)
    np.testing.assert_array_equal(np.array(mx.vmap(f)(x)), (X >= 0).reshape(4, 16))


def test_surrogates_are_hashable_values():
    assert surrogate.fast_sigmoid(3.0) == surrogate.FastSigmoid(slope=3.0)
    assert hash(surrogate.atan()) == hash(surrogate.atan(2.0))
    assert surrogate.get(surrogate.triangle(0.3)) == surrogate.triangle(0.3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: surrogate.fast_sigmoid(0),
        lambda: surrogate.atan(-1.0),
        lambda: surrogate.sigmoid(float("inf")),
        lambda: surrogate.triangle(0.0),
    ],
)
def test_non_positive_shape_parameters_raise(make):
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        make()


def test_unknown_name_and_wrong_type_raise():
    with pytest.raises(ValueError, match="surrogate must be one of 'fast_sigmoid'"):
        surrogate.get("relu")
    with pytest.raises(TypeError, match="surrogate must be a name or a"):
        surrogate.get(lambda x: x)
