"""functional.linear_scan against the float64 loop, forward and backward, long sequences.

Tolerance (fp32 vs float64): max abs error <= 1e-4 * max(1, max |ref|) for values
and gradients, no inf/NaN, for T up to 16384 and decays from 1e-4 to 0.9999.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import assert_close

from mlx_snn.functional import linear_scan

RTOL = 1e-4


def decays(shape, rng, lo=1e-4, hi=0.9999):
    """Log-uniform decays in [lo, hi], with both ends present."""
    a = np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))
    a.flat[0], a.flat[-1] = lo, hi
    return a.astype(np.float32)


@pytest.mark.parametrize("T", [1, 7, 1024, 16384])
@pytest.mark.parametrize("reverse", [False, True])
def test_time_varying_decays_match_reference(T, reverse):
    rng = np.random.default_rng(T)
    a = decays((T, 3), rng)
    b = rng.normal(size=(T, 3)).astype(np.float32)
    h0 = rng.normal(size=(3,)).astype(np.float32)
    g = rng.normal(size=(T, 3)).astype(np.float32)
    h, vjps = mx.vjp(
        lambda a_, b_, h0_: linear_scan(a_, b_, h0_, reverse=reverse),
        [mx.array(a), mx.array(b), mx.array(h0)],
        [mx.array(g)],
    )
    assert_close(h[0], ref.linear_scan(a, b, h0, reverse), RTOL, "h")
    expected = ref.linear_scan_backward(a, b, g, h0, reverse)
    for name, got in zip(("a", "b", "h0"), vjps, strict=True):
        assert_close(got, expected[name], RTOL, name)


@pytest.mark.parametrize("a_value", [1e-4, 0.5, 0.9999])
def test_constant_scalar_decay_over_16384_steps(a_value):
    rng = np.random.default_rng(1)
    b = rng.normal(size=(16384, 2)).astype(np.float32)
    g = rng.normal(size=b.shape).astype(np.float32)
    h, (ga, gb) = mx.vjp(
        lambda a_, b_: linear_scan(a_, b_), [mx.array(a_value), mx.array(b)], [mx.array(g)]
    )
    assert_close(h[0], ref.linear_scan(np.float32(a_value), b), RTOL, "h")
    expected = ref.linear_scan_backward(np.float32(a_value), b, g)
    assert_close(gb, expected["b"], RTOL, "b")
    assert_close(ga, expected["a"], RTOL, "a")


def test_per_feature_decay_broadcasts_over_batch():
    rng = np.random.default_rng(2)
    a = decays((4,), rng)
    b = rng.normal(size=(50, 3, 4)).astype(np.float32)
    g = rng.normal(size=b.shape).astype(np.float32)
    h, (ga, gb) = mx.vjp(
        lambda a_, b_: linear_scan(a_, b_), [mx.array(a), mx.array(b)], [mx.array(g)]
    )
    assert_close(h[0], ref.linear_scan(a, b), RTOL)
    expected = ref.linear_scan_backward(a, b, g)
    assert ga.shape == (4,)
    assert_close(ga, expected["a"], RTOL, "a")
    assert_close(gb, expected["b"], RTOL, "b")


def test_python_float_decay_and_no_initial_value():
    b = mx.ones((5, 2))
    np.testing.assert_allclose(
        np.array(linear_scan(0.5, b))[:, 0], [1, 1.5, 1.75, 1.875, 1.9375], rtol=1e-6
    )


@pytest.mark.parametrize(
    "a_shape, b_shape, h0_shape, match",
    [
        ((5, 3), (4, 3), None, r"time axis must have length 1 or 4"),
        ((2,), (4, 3), None, r"a of shape \(2,\) does not broadcast to b of shape \(4, 3\)"),
        ((3,), (4, 3), (2,), r"h0 of shape \(2,\) does not broadcast to \(3,\)"),
        ((), (0, 3), None, "at least one time step"),
        ((), (), None, "b must have at least 1 dimensions"),
    ],
)
def test_mismatched_shapes_raise(a_shape, b_shape, h0_shape, match):
    h0 = None if h0_shape is None else mx.zeros(h0_shape)
    with pytest.raises(ValueError, match=match):
        linear_scan(mx.ones(a_shape) * 0.5, mx.ones(b_shape), h0)


def test_integer_inputs_raise_type_error():
    with pytest.raises(TypeError, match="b must have a floating dtype"):
        linear_scan(0.5, mx.ones((3, 2), dtype=mx.int32))
    with pytest.raises(TypeError, match="a must have a floating dtype"):
        linear_scan(mx.ones((2,), dtype=mx.int32), mx.ones((3, 2)))
