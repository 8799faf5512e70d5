"""StateLeaky / functional.state_leaky against the float64 loop (tests/reference/state_leaky.py).

Tolerances (fp32 vs float64): membrane, state and gradients within
1e-4 * max(1, max |ref|); spikes identical (inputs are checked to keep every
membrane at least 1e-5 away from the threshold). Long sequences: T = 4096 with
beta up to 0.999.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np
from reference import state_leaky as ref_state_leaky

import mlx_snn as snn
from mlx_snn.functional import state_leaky

RTOL = 1e-4


def inputs(T, shape, seed, beta, th):
    """Inputs whose reference membrane never comes within 1e-5 of the threshold."""
    for s in range(seed, seed + 50):
        rng = np.random.default_rng(s)
        x = rng.normal(0.05, 0.5, size=(T, *shape)).astype(np.float32)
        out = ref_state_leaky.state_leaky_forward(x, beta, th)
        if np.min(np.abs(out["mem"] - th)) > 1e-5:
            return x, rng
    raise AssertionError("no tie-free input found")


@pytest.mark.parametrize("T", [1, 25, 4096])
@pytest.mark.parametrize("per_feature", [False, True])
def test_forward_and_gradients_match_reference(T, per_feature):
    shape = (3, 4)
    beta = np.float32(0.95) if not per_feature else np.array([0.0, 0.5, 0.99, 0.999], np.float32)
    th = np.float32(1.5) if not per_feature else np.array([0.5, 1.0, 2.0, 3.0], np.float32)
    x, rng = inputs(T, shape, T, beta, th)
    h0 = rng.normal(size=shape).astype(np.float32)
    g_s = rng.normal(size=x.shape).astype(np.float32)
    g_m = rng.normal(size=x.shape).astype(np.float32) * 0.1
    g_v = rng.normal(size=shape).astype(np.float32)
    surr = snn.surrogate.atan(alpha=2.0)

    def f(x_, h0_, b_, t_):
        return tuple(state_leaky(x_, b_, t_, surr, h0_))

    out, vjps = mx.vjp(
        f,
        [mx.array(x), mx.array(h0), mx.array(beta), mx.array(th)],
        [mx.array(g_s), mx.array(g_m), mx.array(g_v)],
    )
    exp = ref_state_leaky.state_leaky_forward(x, beta, th, h0)
    np.testing.assert_array_equal(to_np(out[0]), exp["spikes"])
    assert_close(out[1], exp["mem"], RTOL, "mem")
    assert_close(out[2], exp["state"], RTOL, "state")
    grads = ref_state_leaky.state_leaky_backward(
        x, g_s, g_m, g_v, beta, th, lambda z: ref.surrogate_derivative("atan", z, alpha=2.0), h0
    )
    for name, got in zip(("x", "h0", "beta", "threshold"), vjps, strict=True):
        assert_close(got, grads[name], RTOL, name)


def test_module_state_continuation_and_learned_beta():
    T, shape = 600, (2, 5)
    x, rng = inputs(T, shape, 7, 0.9, 1.0)
    xm = mx.array(x)
    leaky = snn.StateLeaky(beta=0.9, threshold=1.0, learn_beta=True)
    spikes, out = leaky(xm, return_state=True)
    s1, o1 = leaky(xm[:250], return_state=True)
    s2, o2 = leaky(xm[250:], state=o1.state, return_state=True)
    np.testing.assert_array_equal(to_np(spikes), np.concatenate([to_np(s1), to_np(s2)]))
    assert_close(out.mem, np.concatenate([to_np(o1.mem), to_np(o2.mem)]), 1e-5, "mem")
    assert_close(out.state, to_np(o2.state), 1e-5, "state")

    g_s = rng.normal(size=x.shape).astype(np.float32)

    def loss(model, x_):
        return (model(x_) * mx.array(g_s)).sum()

    _, grads = nn.value_and_grad(leaky, loss)(leaky, xm)
    expected = ref_state_leaky.state_leaky_backward(
        x,
        g_s,
        np.zeros_like(x),
        np.zeros(shape, np.float32),
        np.float32(0.9),
        np.float32(1.0),
        lambda z: ref.surrogate_derivative("fast_sigmoid", z, slope=25.0),
    )
    assert set(grads) == {"beta"}
    assert_close(grads["beta"], expected["beta"], RTOL, "beta")


def test_beta_zero_and_one_edges():
    x = mx.array(np.random.default_rng(0).normal(size=(50, 2, 3)).astype(np.float32))
    out = state_leaky(x, beta=0.0)
    np.testing.assert_array_equal(to_np(out.mem), to_np(x))
    out = state_leaky(x, beta=1.0)
    assert_close(out.mem, np.cumsum(to_np(x), axis=0), 1e-5, "cumsum")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"beta": 1.5}, ValueError, r"beta must lie in \[0, 1\]"),
        ({"threshold": 0.0}, ValueError, "threshold must be"),
        ({"threshold": -1.0}, ValueError, "threshold must be"),
        ({"surrogate": "nope"}, ValueError, "nope"),
        ({"beta": "0.9"}, TypeError, "beta must be a float or an array"),
    ],
)
def test_bad_module_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        snn.StateLeaky(**kwargs)


def test_bad_functional_inputs():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        state_leaky(mx.ones((5,)))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        state_leaky(mx.ones((5, 2), dtype=mx.int32))
    with pytest.raises(ValueError, match=r"h0 has shape \(3,\), expected \(2,\)"):
        state_leaky(mx.ones((5, 2)), h0=mx.zeros((3,)))
    with pytest.raises(ValueError, match=r"beta of shape \(3,\) does not broadcast"):
        state_leaky(mx.ones((5, 2, 4)), beta=mx.ones((3,)) * 0.5)
