"""functional.linear_scan against the float64 loop, forward and backward, long sequences.

Tolerance (fp32 vs float64): max abs error <= 1e-4 * max(1, max |ref|) for values
and gradients, no inf/NaN, for T up to 16384 and decays from 1e-4 to 0.9999, for
every method (forced with the ``method`` keyword), zero and negative decays
included; a = 0 must give h = b exactly. The block scans that only the benchmark
carries (bench/scan_methods.py) are checked in tests/test_bench_harness.py.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
import reference as ref
from conftest import assert_close, to_np

from mlx_snn.functional import SCAN_METHODS, linear_scan
from mlx_snn.functional.scan import choose_method

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


# ----------------------------------------------------------------------------
# Every method, forced with the ``method`` keyword
# ----------------------------------------------------------------------------

METHODS = ["loop", "strided", "doubling"]


def decay_case(kind, T, rng):
    """Decays for b of shape [T, 3, 4]: scalar, per-feature, time-varying, signed."""
    if kind == "scalar":
        return np.float32(0.9999)
    if kind == "feature":
        return decays((4,), rng)
    if kind == "varying":
        a = decays((T, 3, 4), rng)
        a[::5] = 0.0
        return a
    a = rng.uniform(-1.0, 1.0, size=(T, 1, 4)).astype(np.float32)
    a[::7] = 0.0
    a[1::11] = -1.0
    return a


@pytest.mark.parametrize(
    "T", [1, 7, 1024, pytest.param(16384, marks=pytest.mark.slow)], ids=lambda t: f"T{t}"
)
@pytest.mark.parametrize("kind", ["scalar", "feature", "varying", "signed"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_matches_reference(method, kind, T):
    if method == "loop" and T == 16384:
        pytest.skip("the loop is the baseline (tested at T = 16384 by the tests above)")
    rng = np.random.default_rng(T + len(kind))
    a = decay_case(kind, T, rng)
    b = rng.normal(size=(T, 3, 4)).astype(np.float32)
    h0 = rng.normal(size=(3, 4)).astype(np.float32)
    g = rng.normal(size=b.shape).astype(np.float32)
    for reverse in (False, True):
        h, vjps = mx.vjp(
            lambda a_, b_, h0_, r=reverse: linear_scan(a_, b_, h0_, reverse=r, method=method),
            [mx.array(a), mx.array(b), mx.array(h0)],
            [mx.array(g)],
        )
        assert_close(h[0], ref.linear_scan(a, b, h0, reverse), RTOL, f"h reverse={reverse}")
        expected = ref.linear_scan_backward(a, b, g, h0, reverse)
        for name, got in zip(("a", "b", "h0"), vjps, strict=True):
            assert_close(got, expected[name], RTOL, f"{name} reverse={reverse}")


@pytest.mark.parametrize("method", METHODS)
def test_zero_decay_is_exact(method):
    b = mx.array(np.random.default_rng(5).normal(size=(300, 2, 5)).astype(np.float32))
    a = mx.zeros((300, 2, 5))
    np.testing.assert_array_equal(to_np(linear_scan(a, b, method=method)), to_np(b))


@pytest.mark.parametrize("method", METHODS)
def test_constant_negative_decay(method):
    rng = np.random.default_rng(6)
    b = rng.normal(size=(2000, 3)).astype(np.float32)
    a = np.array([-1.0, -0.5, -0.999], np.float32)
    h = linear_scan(mx.array(a), mx.array(b), method=method)
    assert_close(h, ref.linear_scan(a, b), RTOL, "h")


@pytest.mark.parametrize("shape", [(3000, 5), (40, 3, 8, 2), (513, 1)])
def test_auto_matches_every_method(shape):
    rng = np.random.default_rng(7)
    b = mx.array(rng.normal(size=shape).astype(np.float32))
    a = mx.array(decays(shape, rng))
    h_auto = to_np(linear_scan(a, b))
    for method in METHODS:
        assert_close(linear_scan(a, b, method=method), h_auto, RTOL, method)


def test_grad_and_compile_compose():
    rng = np.random.default_rng(8)
    a = mx.array(decays((600, 4), rng))
    b = mx.array(rng.normal(size=(600, 4)).astype(np.float32))

    def loss(a_, b_):
        return (linear_scan(a_, b_) ** 2).sum()

    ga, gb = mx.grad(loss, argnums=(0, 1))(a, b)
    ca, cb = mx.compile(mx.grad(loss, argnums=(0, 1)))(a, b)
    assert_close(ca, to_np(ga), 1e-5, "a")
    assert_close(cb, to_np(gb), 1e-5, "b")
    assert_close(mx.compile(linear_scan)(a, b), to_np(linear_scan(a, b)), 1e-6, "h")


def test_public_methods_are_the_ones_auto_can_pick():
    assert SCAN_METHODS == ("auto", *METHODS)
    picks = {choose_method(T, w) for T in (1, 16, 64, 256, 4096) for w in (1, 16, 256, 16384)}
    assert picks == set(METHODS)


@pytest.mark.parametrize("method", ["fft", "toeplitz", "matrix", None])
def test_unknown_method_is_rejected(method):
    with pytest.raises(ValueError, match="method must be one of 'auto', 'loop', 'strided'"):
        linear_scan(0.5, mx.ones((4, 2)), method=method)


@pytest.mark.parametrize("reverse", ["yes", 1, None])
def test_non_bool_reverse_is_rejected(reverse):
    with pytest.raises(TypeError, match="reverse must be True or False"):
        linear_scan(0.5, mx.ones((4, 2)), reverse=reverse)


@pytest.mark.parametrize("a_value", [0.95, 0.99])
def test_doubling_scan_of_a_constant_decay_is_unbiased(a_value):
    # the pass with offset d needs a^d; squaring a nine times doubles its rounding
    # error each time, all of one sign (0.95^512: -97 ulp), and shifted every
    # output the same way (mean relative error -1.5 eps at 0.95, +6.4 eps at 0.99)
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 1.5, size=(2048, 64)).astype(np.float32)
    exact = ref.linear_scan(np.float64(np.float32(a_value)), b.astype(np.float64))
    got = to_np(linear_scan(a_value, mx.array(b), method="doubling"))
    rel = (got - exact) / exact / np.finfo(np.float32).eps
    assert abs(rel.mean()) < 1.0, f"mean relative error {rel.mean():+.2f} eps"
